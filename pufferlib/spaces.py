"""Spaces: what a PufferEnv's buffers look like, and how structured spaces are laid out in them.

Buffers: `buffer_specs` gives the six arrays of a PufferEnv (`BUFFER_NAMES`), `adopt_buffer` checks
one handed in, `joint_space` is the space of n stacked agents, `check_actions` and
`check_action_values` check an action batch (O(1) and O(n)).

Structured spaces (what `pufferlib.emulation` builds on): `emulate_observation_space` flattens Dict,
Tuple, Discrete, MultiDiscrete, MultiBinary and nested spaces into one row of a Box through a NumPy
structured dtype (`struct_dtype`); `nativize` restores the nested structure from flat rows (the torch
version is `pufferlib.spaces_torch`) and `flatten` is its inverse; `observation_writer` writes a
sample into a row in place. `emulate_action_space` gives the flat action space and the reader that
rebuilds a structured action from one row of the action buffer.

Flat layout: each leaf keeps its space's dtype (Box/MultiDiscrete/MultiBinary their `dtype`, Discrete
its integer `dtype`; a Text is `max_length` int32 character codes, each the character's index in its
charset, padded with len(charset) as `gymnasium.spaces.flatten` does), laid out in space order (Dict in key order) as an aligned structured dtype. When
every leaf has the same dtype the row is a Box of that dtype with the leaves' own bounds; otherwise
it is the row's raw bytes, a uint8 Box.
"""
import functools
import itertools
import math
import string

import numpy as np
from gymnasium.spaces import Box, Dict, Discrete, MultiBinary, MultiDiscrete, Text, Tuple

from pufferlib.exceptions import APIUsageError


# ---------------------------------------------------------------------------------------------------
# The buffers of a PufferEnv, and checks of what goes into them.

BUFFER_NAMES = ('observations', 'actions', 'rewards', 'terminals', 'truncations', 'masks')


def action_dtype(space):
    """int32 for Discrete/MultiDiscrete, the space's own dtype for Box."""
    if isinstance(space, (Discrete, MultiDiscrete)):
        return np.dtype(np.int32)
    if isinstance(space, Box):
        return np.dtype(space.dtype)
    raise APIUsageError(f'action space {space} is not supported: use Discrete, MultiDiscrete or Box '
                        '(wrap structured action spaces with pufferlib.emulation)')


def buffer_specs(observation_space, action_space, num_agents):
    """{name: (shape, dtype)} of the six arrays a PufferEnv with `num_agents` agents writes into."""
    n = int(num_agents)
    act_shape = () if isinstance(action_space, Discrete) else tuple(action_space.shape)
    return {
        'observations': ((n, *observation_space.shape), np.dtype(observation_space.dtype)),
        'actions': ((n, *act_shape), action_dtype(action_space)),
        'rewards': ((n,), np.dtype(np.float32)),
        'terminals': ((n,), np.dtype(bool)),
        'truncations': ((n,), np.dtype(bool)),
        'masks': ((n,), np.dtype(bool)),
    }


def joint_space(space, n):
    """The space of `n` stacked copies of `space` (what one step of n agents takes or gives)."""
    if isinstance(space, Discrete):
        return MultiDiscrete(np.full(n, space.n), start=np.full(n, space.start))
    if isinstance(space, MultiDiscrete):
        return Box(np.broadcast_to(space.start, (n, *space.shape)),
                          np.broadcast_to(space.start + space.nvec - 1, (n, *space.shape)),
                          dtype=np.int32)
    if isinstance(space, Box):
        return Box(np.broadcast_to(space.low, (n, *space.shape)),
                          np.broadcast_to(space.high, (n, *space.shape)), dtype=space.dtype)
    raise APIUsageError(f'cannot stack {space}: only Discrete, MultiDiscrete and Box are supported')


# (min, max) of each integer dtype, as Python ints (np.iinfo costs microseconds per call).
INT_LIMITS = {np.dtype(t): (int(np.iinfo(t).min), int(np.iinfo(t).max)) for t in (
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)}
SMALL_BATCH = 32    # up to this many values, Python's min/max beat two NumPy reductions


def value_range(arr):
    """(min, max) of a non-empty integer array, the cheapest way for its size."""
    if arr.size <= SMALL_BATCH:
        values = arr.ravel().tolist()
        return min(values), max(values)
    return arr.min(), arr.max()


def check_actions(actions, expected, fit=True):
    """Check of an action batch against the action buffer it will be written into: shape and
    dtype in O(1). Casts within a kind (int64 -> int32, float64 -> float32) are allowed; float ->
    int is not, nor an integer that the narrower buffer dtype cannot hold (one vectorised min/max,
    paid only when the dtypes differ), which would wrap into another, valid-looking action.
    fit=False skips that last check, for callers that check the range of every action anyway."""
    if not isinstance(actions, np.ndarray):
        actions = np.asarray(actions)
    if actions.shape != expected.shape:
        raise APIUsageError(f'actions have shape {actions.shape}, expected {expected.shape} '
                            f'(one row per agent)')
    if actions.dtype != expected.dtype and not np.can_cast(actions.dtype, expected.dtype, 'same_kind'):
        raise APIUsageError(f'actions have dtype {actions.dtype}, expected {expected.dtype}: '
                            f'cast them explicitly (pufferlib never truncates {actions.dtype} silently)')
    if (fit and actions.dtype != expected.dtype and actions.dtype.kind in 'iu'
            and expected.dtype.kind in 'iu' and actions.size):
        fits = INT_LIMITS[expected.dtype]
        low, high = value_range(actions)
        if low < fits[0] or high > fits[1]:
            value = low if low < fits[0] else high
            raise APIUsageError(f'actions have dtype {actions.dtype} and hold {value}, which '
                                f'{expected.dtype} cannot hold (it would wrap to another action): '
                                f'valid actions are in the action space')
    return actions


def check_action_values(actions, space):
    """O(n) range check of an action batch against the single-agent action space; the error names
    the first offending agent and value. Used when a vector env is made with check_actions=True."""
    actions = np.asarray(actions)
    if isinstance(space, (Discrete, MultiDiscrete)):
        low = space.start
        high = space.start + (space.n if isinstance(space, Discrete) else space.nvec) - 1
        bad = (actions < low) | (actions > high)
    else:
        bad = ~np.isfinite(actions) | (actions < space.low) | (actions > space.high)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise APIUsageError(f'action of agent {idx[0]} is {actions[tuple(idx)].item()!r}, outside {space}')


def adopt_buffer(buf, name, shape, dtype, owner):
    """buf[name], checked to be a writeable C-contiguous numpy array of `shape` and `dtype`; any
    mismatch is an APIUsageError naming `owner` (the env's class name), the array and what was
    expected. PufferEnv.__init__ adopts its six arrays with it; an env with more arrays (such as
    the emulated envs' final_observations) adopts them the same way."""
    try:
        arr = buf[name]
    except (KeyError, TypeError):
        raise APIUsageError(f'{owner}: buf has no {name!r} array; buf must be a dict with keys '
                            f'{", ".join(BUFFER_NAMES)}') from None
    if not isinstance(arr, np.ndarray):
        raise APIUsageError(f'{owner}: buf[{name!r}] is a {type(arr).__name__}, expected a numpy array')
    if arr.shape != shape or arr.dtype != dtype:
        raise APIUsageError(f'{owner}: buf[{name!r}] has shape {arr.shape} and dtype {arr.dtype}, '
                            f'expected shape {shape} and dtype {dtype}')
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise APIUsageError(f'{owner}: buf[{name!r}] must be a writeable C-contiguous array '
                            '(the env writes into it in place)')
    return arr


# ---------------------------------------------------------------------------------------------------
# Layout of structured spaces. Each function dispatches on the space type; containers recurse.

@functools.singledispatch
def struct_dtype(space):
    """The NumPy (structured) dtype that holds one sample of `space`."""
    raise APIUsageError(f'{space!r} is not supported by pufferlib.emulation: use Box, Discrete, '
                        'MultiDiscrete, MultiBinary, Text, or Tuple/Dict of those')


@struct_dtype.register(Box)
@struct_dtype.register(MultiDiscrete)
@struct_dtype.register(MultiBinary)
def _(space):
    return np.dtype((space.dtype, space.shape))


@struct_dtype.register(Discrete)
def _(space):
    return np.dtype(space.dtype)


@struct_dtype.register(Text)
def _(space):
    return np.dtype((np.int32, (space.max_length,)))


@struct_dtype.register(Tuple)
@struct_dtype.register(Dict)
def _(space):
    children = _children(space)
    if not children:
        raise APIUsageError(f'{space!r} is empty: there is nothing to observe or act on')
    return np.dtype([(f'f{i}', struct_dtype(s)) for i, s in enumerate(children)], align=True)


def _children(space):
    return list(space.spaces.values()) if isinstance(space, Dict) else list(space.spaces)


def _row_dtype(space):
    """One flat row as a structured dtype with a single field 'x' holding the sample."""
    return np.dtype([('x', struct_dtype(space))], align=True)


@functools.singledispatch
def _leaves(space):
    return [space]


@_leaves.register(Tuple)
@_leaves.register(Dict)
def _(space):
    return [leaf for child in _children(space) for leaf in _leaves(child)]


@functools.singledispatch
def _bounds(space):
    """(low, high) of a leaf as flat arrays."""
    return space.low.ravel(), space.high.ravel()


@_bounds.register(Discrete)
def _(space):
    return np.array([space.start]), np.array([space.start + space.n - 1])


@_bounds.register(MultiDiscrete)
def _(space):
    return space.start.ravel(), (space.start + space.nvec - 1).ravel()


@_bounds.register(Text)
def _(space):
    return np.zeros(space.max_length, np.int32), np.full(space.max_length, len(space.character_set))


def _leaf_dtype(leaf):
    return struct_dtype(leaf).base


@_bounds.register(MultiBinary)
def _(space):
    size = int(np.prod(space.shape))
    return np.zeros(size, space.dtype), np.ones(size, space.dtype)


# Strings a MissionSpace-like space (MiniGrid's mission: a Space of str that is not a Text) can hold
# when its missions cannot be listed (BabyAI's free-form missions).
ANY_TEXT = Text(max_length=256, min_length=0, charset=string.printable)


def as_text(space):
    """`space` with every string space that is not a `Text` (MiniGrid's `MissionSpace`, which
    samples from `mission_func` over `ordered_placeholders`) replaced by a Text: the exact charset
    and longest length of the missions it lists, or ANY_TEXT when it lists none (BabyAI). Other
    spaces are returned as they are."""
    if isinstance(space, (Dict, Tuple)):
        children = _children(space)
        texts = [as_text(s) for s in children]
        if all(t is s for t, s in zip(texts, children)):
            return space
        if isinstance(space, Dict):
            return Dict(list(zip(space.spaces, texts)))
        return Tuple(texts)
    if not hasattr(space, 'mission_func'):
        return space
    places = space.ordered_placeholders or []
    if type(space).__name__ != 'MissionSpace' or math.prod(len(p) for p in places) > 100_000:
        return ANY_TEXT
    missions = [space.mission_func(*combo) for combo in itertools.product(*places)]
    return Text(max_length=max(map(len, missions)), min_length=min(map(len, missions)),
                charset=''.join(sorted(set(''.join(missions)))))


def pad_spaces(agent_spaces, what):
    """(one space that holds each of `agent_spaces`, masks): Boxes of one dtype and rank padded with
    zeros to the largest shape (bounds widened to include 0 where padded), Discretes of one start to
    the largest n. masks[i] is True where agent i's own space is real: shape (agents, *shape) for a
    Box, (agents, n) for a Discrete (the actions it may take). `what` names the spaces in errors."""
    first = agent_spaces[0]
    if all(isinstance(s, Discrete) for s in agent_spaces) and len(
            {(int(s.start), np.dtype(s.dtype)) for s in agent_spaces}) == 1:
        n = max(int(s.n) for s in agent_spaces)
        masks = np.array([np.arange(n) < s.n for s in agent_spaces])
        return Discrete(n, start=int(first.start), dtype=first.dtype), masks
    if all(isinstance(s, Box) for s in agent_spaces) and len(
            {(np.dtype(s.dtype), len(s.shape)) for s in agent_spaces}) == 1:
        shape = tuple(int(d) for d in np.max([s.shape for s in agent_spaces], axis=0))
        masks = np.zeros((len(agent_spaces), *shape), bool)
        lows, highs = np.zeros((2, len(agent_spaces), *shape), first.dtype)
        for i, s in enumerate(agent_spaces):
            region = padded_region(s)
            masks[i][region], lows[i][region], highs[i][region] = True, s.low, s.high
        return Box(lows.min(0), highs.max(0), shape, first.dtype), masks
    raise APIUsageError(f'pad_spaces pads Box {what} spaces of one dtype and rank, or Discrete ones '
                        f'of one start; these are not: {agent_spaces}')


def padded_region(space):
    """The index of `space`'s own part in a padded row (a Box's leading corner)."""
    return tuple(slice(0, d) for d in space.shape)


def emulate_observation_space(space):
    """(flat Box, row dtype): the Box a PufferEnv observes and the structured dtype of one row (None
    when `space` is already a Box, which passes through unchanged)."""
    if isinstance(space, Box):
        return space, None
    row = _row_dtype(space)
    leaves = _leaves(space)
    dtypes = {_leaf_dtype(leaf) for leaf in leaves}
    if len(dtypes) > 1:
        return Box(0, 255, (row.itemsize,), np.uint8), row
    dtype = dtypes.pop()
    lows, highs = zip(*[_bounds(leaf) for leaf in leaves])
    low, high = np.concatenate(lows).astype(dtype), np.concatenate(highs).astype(dtype)
    assert low.size * dtype.itemsize == row.itemsize  # one dtype: an aligned struct has no padding
    return Box(low, high, low.shape, dtype), row


def nativize(flat, space):
    """Rebuild the native structure of `space` from flat observation rows.

    `flat` is one row `(n,)` or a batch `(..., n)` of the emulated observation dtype (last axis
    contiguous). Returns the nested dict/tuple whose leaves are views of `flat` shaped
    `(..., *leaf_shape)` with the leaf's dtype, except Text leaves, decoded to the string (one row)
    or an object array of strings (a batch). A Box space returns `flat` itself."""
    native = views(flat, space)
    if any(isinstance(leaf, Text) for leaf in _leaves(space)):
        return _decode(space, native)
    return native


def views(flat, space):
    """`nativize` without decoding Text: every leaf a view of `flat` (Text as its character codes),
    for writing into a row in place."""
    if isinstance(space, Box):
        return flat
    rows = flat.view(_row_dtype(space))[..., 0]['x']
    return _unflatten(space, rows)


@functools.singledispatch
def _decode(space, leaf):
    return leaf


@_decode.register(Tuple)
def _(space, native):
    return tuple(_decode(s, x) for s, x in zip(space.spaces, native))


@_decode.register(Dict)
def _(space, native):
    return {k: _decode(s, native[k]) for k, s in space.spaces.items()}


@_decode.register(Text)
def _(space, codes):
    chars = space.character_list
    decode = lambda row: ''.join(chars[c] for c in row if c < len(chars))
    if codes.ndim == 1:
        return decode(codes)
    strings = np.empty(codes.shape[:-1], object)
    for index in np.ndindex(strings.shape):
        strings[index] = decode(codes[index])
    return strings


@functools.singledispatch
def _unflatten(space, arr):
    return arr


@_unflatten.register(Tuple)
def _(space, arr):
    return tuple(_unflatten(s, arr[f'f{i}']) for i, s in enumerate(space.spaces))


@_unflatten.register(Dict)
def _(space, arr):
    return {k: _unflatten(s, arr[f'f{i}']) for i, (k, s) in enumerate(space.spaces.items())}


def flatten(space, sample):
    """One flat observation row of `sample`: the inverse of `nativize` (it allocates; the envs
    write through writers built once instead)."""
    box, _ = emulate_observation_space(space)
    row = np.zeros(box.shape, box.dtype)
    observation_writer(space, views(row, space))(sample)
    return row


# ---------------------------------------------------------------------------------------------------
# Writers: built once per env against views into its observation buffer, called every step. Each
# checks type, shape and dtype in O(1) and never casts: a mismatch raises APIUsageError.

def _describe(x):
    if isinstance(x, np.ndarray):
        return f'a {x.dtype} array of shape {x.shape}'
    text = repr(x)
    return f'{type(x).__name__} {text[:80]}{"..." if len(text) > 80 else ""}'


def _mismatch(path, got, expected):
    return APIUsageError(f'observation{path} is {_describe(got)}, expected {expected}')


@functools.singledispatch
def observation_writer(space, view, path=''):
    """A function that writes one sample of `space` into `view` (the row itself for a Box, else
    `views` of the row) after checking its type, shape and dtype."""
    raise APIUsageError(f'{space!r} is not supported by pufferlib.emulation')


@observation_writer.register(Box)
@observation_writer.register(MultiDiscrete)
@observation_writer.register(MultiBinary)
def _(space, view, path=''):
    shape, dtype = space.shape, np.dtype(space.dtype)
    expected = f'a {dtype} array of shape {shape} ({space})'

    def write(x):
        try:  # `is` first: NumPy reuses one dtype object per builtin type, and == is slower
            ok = x.shape == shape and (x.dtype is dtype or x.dtype == dtype)
        except AttributeError:
            ok = False
        if not ok:
            raise _mismatch(path, x, expected)
        view[...] = x
    return write


@observation_writer.register(Discrete)
def _(space, view, path=''):
    expected = f'an integer ({space})'

    def write(x):
        if not isinstance(x, (int, np.integer)) and not (
                isinstance(x, np.ndarray) and x.shape == () and x.dtype.kind in 'iub'):
            raise _mismatch(path, x, expected)
        try:
            view[...] = x
        except OverflowError:
            raise _mismatch(path, x, expected) from None
    return write


@observation_writer.register(Text)
def _(space, view, path=''):
    index, pad, longest = space.character_index, len(space.character_set), space.max_length
    expected = f'a str of at most {longest} characters of its charset ({space})'

    def write(x):
        try:
            codes = [index(c) for c in x] if isinstance(x, str) and len(x) <= longest else None
        except KeyError:
            codes = None
        if codes is None:
            raise _mismatch(path, x, expected)
        view[:len(codes)] = codes
        view[len(codes):] = pad
    return write


@observation_writer.register(Tuple)
def _(space, view, path=''):
    writers = [observation_writer(s, view[i], f'{path}[{i}]') for i, s in enumerate(space.spaces)]
    n = len(writers)

    def write(x):
        if not isinstance(x, (tuple, list)) or len(x) != n:
            raise _mismatch(path, x, f'a tuple of {n} ({space})')
        for w, v in zip(writers, x):
            w(v)
    return write


@observation_writer.register(Dict)
def _(space, view, path=''):
    keys = list(space.spaces)
    writers = [observation_writer(s, view[k], f'{path}[{k!r}]') for k, s in space.spaces.items()]

    def write(x):
        try:
            values = [x[k] for k in keys]
        except (KeyError, TypeError, IndexError):
            raise _mismatch(path, x, f'a dict with keys {keys}') from None
        for w, v in zip(writers, values):
            w(v)
    return write


# ---------------------------------------------------------------------------------------------------
# Actions: Discrete, MultiDiscrete and Box pass through; MultiBinary and Tuple/Dict of discrete spaces
# become one MultiDiscrete, Tuple/Dict of Boxes of one dtype one Box. A reader rebuilds the native
# action from one row of the action buffer.

@functools.singledispatch
def _action_leaf(space, off):
    """(reader of the leaf at flat offset `off`, its flat size, 'discrete' or 'box')."""
    raise _unsupported_action(space)


def _unsupported_action(space):
    return APIUsageError(f'action space {space!r} is not supported: use Discrete, MultiDiscrete, '
                         'MultiBinary, Box, or Tuple/Dict of discrete spaces or of Boxes of one dtype')


@_action_leaf.register(Discrete)
def _(space, off):
    cast = space.dtype.type
    return (lambda row: cast(row[off])), 1, 'discrete'


@_action_leaf.register(MultiDiscrete)
@_action_leaf.register(MultiBinary)
@_action_leaf.register(Box)
def _(space, off):
    shape, dtype = space.shape, space.dtype
    size = int(np.prod(shape))
    kind = 'box' if isinstance(space, Box) else 'discrete'
    return (lambda row: row[off:off + size].astype(dtype).reshape(shape)), size, kind


@_action_leaf.register(Tuple)
@_action_leaf.register(Dict)
def _(space, off):
    readers, kinds, start = [], set(), off
    for child in _children(space):
        reader, size, kind = _action_leaf(child, off)
        readers.append(reader)
        kinds.add(kind)
        off += size
    if not readers:
        raise APIUsageError(f'action space {space!r} is empty')
    if len(kinds) > 1:
        raise APIUsageError(f'action space {space!r} mixes discrete and continuous actions, which '
                            'one action buffer cannot hold: split them, or make them all Box')
    if isinstance(space, Dict):
        keys = list(space.spaces)
        return (lambda row: {k: r(row) for k, r in zip(keys, readers)}), off - start, kinds.pop()
    return (lambda row: tuple(r(row) for r in readers)), off - start, kinds.pop()


@functools.singledispatch
def emulate_action_space(space):
    """(flat space, reader): the action space a PufferEnv exposes and a function that turns one row
    of its action buffer into an action of `space`."""
    raise _unsupported_action(space)


@emulate_action_space.register(Discrete)
def _(space):
    return space, int


@emulate_action_space.register(MultiDiscrete)
def _(space):
    return space, lambda row: row.astype(space.dtype)


@emulate_action_space.register(Box)
def _(space):
    return space, lambda row: row.copy()


@emulate_action_space.register(MultiBinary)
def _(space):
    return MultiDiscrete(np.full(space.shape, 2)), lambda row: row.astype(space.dtype)


@emulate_action_space.register(Tuple)
@emulate_action_space.register(Dict)
def _(space):
    reader, _, kind = _action_leaf(space, 0)
    leaves = _leaves(space)
    lows, highs = zip(*[_bounds(leaf) for leaf in leaves])
    low, high = np.concatenate(lows), np.concatenate(highs)
    if kind == 'discrete':
        return MultiDiscrete(high - low + 1, start=low), reader
    dtypes = {np.dtype(leaf.dtype) for leaf in leaves}
    if len(dtypes) > 1:
        raise APIUsageError(f'action space {space!r} mixes Box dtypes {sorted(map(str, dtypes))}: '
                            'one action buffer holds one dtype')
    dtype = dtypes.pop()
    return Box(low.astype(dtype), high.astype(dtype), low.shape, dtype), reader
