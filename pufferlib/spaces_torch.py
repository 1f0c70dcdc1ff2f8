"""Torch counterpart of `pufferlib.spaces.nativize`, for policies that take structured observations.
Kept apart so that `import pufferlib.spaces` (and so every module outside the trainer) never imports
torch."""
import collections
import functools

import numpy as np
import torch
from gymnasium.spaces import Box, Dict, Tuple

from pufferlib.spaces import emulate_observation_space


def _torch_dtype(dtype):
    return torch.from_numpy(np.zeros(0, dtype)).dtype


Leaf = collections.namedtuple('Leaf', 'offset dtype shape')  # byte offset in the row


@functools.singledispatch
def _layout(space, dtype, offset):
    """The nested structure of `space` with a Leaf per leaf space."""
    return Leaf(offset, dtype.base, dtype.shape)


@_layout.register(Tuple)
def _(space, dtype, offset):
    return tuple(_layout(s, *_field(dtype, i, offset)) for i, s in enumerate(space.spaces))


@_layout.register(Dict)
def _(space, dtype, offset):
    return {k: _layout(s, *_field(dtype, i, offset)) for i, (k, s) in enumerate(space.spaces.items())}


def _field(dtype, i, offset):
    sub, sub_offset = dtype.fields[f'f{i}'][:2]
    return sub, offset + sub_offset


def nativize_layout(space):
    """Precompute what `nativize` needs for `space` (pass it as `layout=` to skip that work)."""
    box, row = emulate_observation_space(space)
    if row is None:
        return None
    inner, offset = row.fields['x'][:2]
    return _layout(space, inner, offset), np.dtype(box.dtype)


def _leaf(x, leaf, flat_dtype, batch):
    count = int(np.prod(leaf.shape, dtype=np.int64))
    if leaf.dtype == flat_dtype:  # a typed row: offsets count elements
        start = leaf.offset // flat_dtype.itemsize
        return x[..., start:start + count].reshape(*batch, *leaf.shape)
    part = x[..., leaf.offset:leaf.offset + count * leaf.dtype.itemsize]  # a row of bytes
    try:
        part = part.view(_torch_dtype(leaf.dtype))
    except RuntimeError:  # the slice does not start at a multiple of the leaf's alignment
        part = part.clone(memory_format=torch.contiguous_format).view(_torch_dtype(leaf.dtype))
    return part.reshape(*batch, *leaf.shape)


def _build(tree, x, flat_dtype, batch):
    if isinstance(tree, Leaf):
        return _leaf(x, tree, flat_dtype, batch)
    if isinstance(tree, dict):
        return {k: _build(v, x, flat_dtype, batch) for k, v in tree.items()}
    return tuple(_build(v, x, flat_dtype, batch) for v in tree)


def nativize(x, space, layout=None):
    """Rebuild the native structure of `space` from a tensor of flat observation rows `(..., n)`
    (the emulated observation dtype, on any device). Leaves are views of `x` where the layout
    allows, shaped `(..., *leaf_shape)` with the leaf's dtype. A Box space returns `x` itself."""
    if isinstance(space, Box):
        return x
    tree, flat_dtype = layout or nativize_layout(space)
    return _build(tree, x, flat_dtype, tuple(x.shape[:-1]))
