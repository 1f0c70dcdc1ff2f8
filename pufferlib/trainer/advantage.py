"""compute_advantage: V-trace-clipped GAE over segment rows, in C for CPU tensors and CUDA for GPU
tensors. The recurrence is written out in advantage.h."""
import functools
import os

import torch

from pufferlib.trainer import _advantage

# Below this many elements per thread, waking another thread costs more than it saves.
ELEMENTS_PER_THREAD = 1 << 17
_HERE = os.path.dirname(os.path.abspath(__file__))
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)


def compute_advantage(values, rewards, terminals, truncations, importance, advantages,
                      gamma, lam, rho_clip, c_clip, num_threads=None):
    """Write the advantages of every row into `advantages` (in place) and return it.

    values, rewards, terminals, truncations: float32 (segments, horizon + 1); column `horizon` is
    the first step of the agent's next segment, so every row yields `horizon` real advantages.
    terminals and truncations hold 0 or 1. importance, advantages: float32 (segments, horizon).
    All C-contiguous torch tensors on one device (cpu or cuda). A truncated step bootstraps from
    its own value; a terminal one from nothing. With importance 1 and rho_clip, c_clip >= 1 this
    is GAE. num_threads (CPU only): None picks by size, 1 keeps to the calling thread."""
    tensors = (('values', values), ('rewards', rewards), ('terminals', terminals),
               ('truncations', truncations), ('importance', importance),
               ('advantages', advantages))
    for name, x in tensors:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f'{name} must be a torch.Tensor, got {type(x).__name__}')
    if values.dim() != 2 or values.shape[1] < 1:
        raise ValueError(f'values has shape {tuple(values.shape)}, expected (segments, horizon + 1)')
    segments, horizon = values.shape[0], values.shape[1] - 1
    device = values.device
    for i, (name, x) in enumerate(tensors):
        expected = (segments, horizon + 1) if i < 4 else (segments, horizon)
        if x.dtype != torch.float32:
            raise ValueError(f'{name} has dtype {x.dtype}, expected torch.float32')
        if x.device != device:
            raise ValueError(f'{name} is on {x.device} but values is on {device}: '
                             'all six tensors must be on one device')
        if tuple(x.shape) != expected:
            raise ValueError(f'{name} has shape {tuple(x.shape)}, expected {expected} '
                             f'(values is (segments, horizon + 1) = {tuple(values.shape)})')
        if not x.is_contiguous():
            raise ValueError(f'{name} is not C-contiguous: pass {name}.contiguous()')
    if device.type not in ('cpu', 'cuda'):
        raise ValueError(f'tensors are on {device}: compute_advantage supports cpu and cuda')
    _check_no_overlap(tensors)
    args = [float(gamma), float(lam), float(rho_clip), float(c_clip)]
    if device.type == 'cuda':
        _cuda_module().compute(values, rewards, terminals, truncations, importance, advantages, *args)
    else:
        if num_threads is None:
            num_threads = min(_CPUS, segments * horizon // ELEMENTS_PER_THREAD)
        _advantage.compute(values.data_ptr(), rewards.data_ptr(), terminals.data_ptr(),
                           truncations.data_ptr(), importance.data_ptr(), advantages.data_ptr(),
                           segments, horizon, *args, int(num_threads))
    return advantages


def _check_no_overlap(tensors):
    # The kernel reads inputs after it has written parts of advantages: they must not share memory.
    out = tensors[-1][1]
    if out.numel() == 0:
        return
    begin = out.data_ptr()
    end = begin + 4 * out.numel()
    for name, x in tensors[:-1]:
        if x.numel() and x.data_ptr() < end and begin < x.data_ptr() + 4 * x.numel():
            raise ValueError(f'advantages shares memory with {name}: pass a separate output tensor')


@functools.lru_cache(maxsize=None)
def _cuda_module():
    """Build advantage.cu for this torch once (torch caches the build across runs too)."""
    from torch.utils.cpp_extension import load
    try:
        return load(name='pufferlib_advantage_cuda', sources=[os.path.join(_HERE, 'advantage.cu')],
                    extra_include_paths=[_HERE], extra_cuda_cflags=['-O3'], verbose=False)
    except Exception as e:
        raise RuntimeError(
            'could not build the CUDA advantage kernel (pufferlib/trainer/advantage.cu) with '
            'torch.utils.cpp_extension.load: it needs the CUDA toolkit (nvcc, matching the CUDA '
            f'version of torch) and ninja (pip install ninja). The build said: {e}') from e
