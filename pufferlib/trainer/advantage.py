"""compute_advantage: V-trace-clipped GAE over segment rows, in C for CPU tensors and CUDA for GPU
tensors. The recurrence is written out in advantage.h."""
import functools
import hashlib
import os

import torch

from pufferlib.trainer import _advantage

# Below this many elements per thread, waking another thread costs more than it saves.
ELEMENTS_PER_THREAD = 1 << 17
NAMES = ('values', 'rewards', 'terminals', 'truncations', 'importance', 'advantages')
_FLOAT32 = torch.float32
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
    tensors = (values, rewards, terminals, truncations, importance, advantages)
    # One combined test per tensor keeps the per-call cost near 3 us; _bad_argument says what is wrong.
    if not (isinstance(values, torch.Tensor) and values.dim() == 2 and values.shape[1] >= 1):
        _bad_argument(tensors)
    segments, width = values.shape
    device = values.device
    shapes = ((segments, width),) * 4 + ((segments, width - 1),) * 2
    for x, shape in zip(tensors, shapes):
        if not (isinstance(x, torch.Tensor) and x.dtype is _FLOAT32 and x.device == device
                and x.shape == shape and x.is_contiguous()):
            _bad_argument(tensors)
    horizon = width - 1
    if not (values.is_cpu or values.is_cuda):
        raise ValueError(f'tensors are on {device}: compute_advantage supports cpu and cuda')
    ptrs = [x.data_ptr() for x in tensors]
    # The kernel reads inputs after it has written parts of advantages: they must not share memory.
    out, out_end = ptrs[5], ptrs[5] + 4 * segments * horizon
    for name, ptr, shape in zip(NAMES[:5], ptrs, shapes):
        if out < out_end and ptr < out_end and out < ptr + 4 * shape[0] * shape[1]:
            raise ValueError(f'advantages shares memory with {name}: pass a separate output tensor')
    args = (float(gamma), float(lam), float(rho_clip), float(c_clip))
    if values.is_cuda:
        _cuda_module().compute(*tensors, *args)
    else:
        if num_threads is None:
            num_threads = min(_CPUS, segments * horizon // ELEMENTS_PER_THREAD)
        _advantage.compute(*ptrs, segments, horizon, *args, int(num_threads))
    return advantages


def _bad_argument(tensors):
    """Raise the ValueError that names the first argument breaking the contract."""
    for name, x in zip(NAMES, tensors):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f'{name} must be a torch.Tensor, got {type(x).__name__}')
    values = tensors[0]
    if values.dim() != 2 or values.shape[1] < 1:
        raise ValueError(f'values has shape {tuple(values.shape)}, expected (segments, horizon + 1)')
    segments, width = values.shape
    for i, (name, x) in enumerate(zip(NAMES, tensors)):
        expected = (segments, width) if i < 4 else (segments, width - 1)
        if x.dtype != torch.float32:
            raise ValueError(f'{name} has dtype {x.dtype}, expected torch.float32')
        if x.device != values.device:
            raise ValueError(f'{name} is on {x.device} but values is on {values.device}: '
                             'all six tensors must be on one device')
        if tuple(x.shape) != expected:
            raise ValueError(f'{name} has shape {tuple(x.shape)}, expected {expected} '
                             f'(values is (segments, horizon + 1) = {tuple(values.shape)})')
        if not x.is_contiguous():
            raise ValueError(f'{name} is not C-contiguous: pass {name}.contiguous()')
    raise AssertionError('_bad_argument found nothing wrong')


@functools.lru_cache(maxsize=None)
def _cuda_module():
    """Build advantage.cu for this torch once; torch keeps the build across runs. torch's cache
    key hashes the .cu but not the header it includes, so the name carries a hash of both."""
    from torch.utils.cpp_extension import load
    sources = [os.path.join(_HERE, 'advantage.cu'), os.path.join(_HERE, 'advantage.h')]
    digest = hashlib.sha256(b''.join(open(path, 'rb').read() for path in sources)).hexdigest()
    try:
        return load(name=f'pufferlib_advantage_cuda_{digest[:12]}', sources=sources[:1],
                    extra_include_paths=[_HERE], extra_cuda_cflags=['-O3'], verbose=False)
    except Exception as e:
        raise RuntimeError(
            'could not build the CUDA advantage kernel (pufferlib/trainer/advantage.cu) with '
            'torch.utils.cpp_extension.load: it needs the CUDA toolkit (nvcc, matching the CUDA '
            f'version of torch) and ninja (pip install ninja). The build said: {e}') from e
