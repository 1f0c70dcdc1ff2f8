"""Throughput of the CPU advantage kernel against baselines measured in the same run.

On (segments, 64) buffers of (1024, 64) and (16384, 64) float32 tensors:
  * ours: pufferlib.trainer.advantage.compute_advantage, as the trainer calls it (threads chosen by
    size), and also pinned to 1 thread and to every CPU,
  * one-row C: the published kernel's approach, one row at a time with its expression order, the
    same recurrence, compiled here with setup.py's flags (the stand-in for its ~200 M elements/s),
  * NumPy: the recurrence as a loop over t, vectorised over rows,
  * copy: np.copyto (1 thread) of as many bytes as the kernel moves (half read, half written): the
    memory bound to compare GB/s with. (torch's copy_ is left out: on a loaded 2-core machine its
    OpenMP threads made it vary a thousandfold.)
Every method's output is checked against ours first. A figure is the best of several rounds of
about `--window` seconds each (a shared machine only ever makes things slower). Target: ours >= 300 M
elements/s on (1024, 64), 1.5x the published kernel.

    python benchmarks/advantage.py [--quick] [--rounds R] [--window SECONDS]
"""
import argparse
import ctypes
import os
import subprocess
import sys
import sysconfig
import tempfile
import time

import numpy as np
import torch

from pufferlib.trainer import _advantage
from pufferlib.trainer.advantage import _CPUS, compute_advantage

GAMMA, LAM, RHO_CLIP, C_CLIP = 0.995, 0.90, 1.0, 1.0

ONE_ROW_C = r'''
#include <stdint.h>
// One row after another, one fused backward pass per row, in the published kernel's expression
// order: every step waits for the previous one through two multiplies and an add.
void one_row(const float* values, const float* rewards, const float* terminals,
        const float* truncations, const float* importance, float* advantages, int64_t segments,
        int64_t horizon, float gamma, float lambda, float rho_clip, float c_clip) {
    for (int64_t s = 0; s < segments; s++) {
        const float* v = values + s * (horizon + 1);
        const float* r = rewards + s * (horizon + 1);
        const float* d = terminals + s * (horizon + 1);
        const float* tr = truncations + s * (horizon + 1);
        const float* imp = importance + s * horizon;
        float* adv = advantages + s * horizon;
        float lastgaelam = 0;
        for (int64_t t = horizon - 1; t >= 0; t--) {
            float nextnonterminal = (1.0f - d[t + 1]) * (1.0f - tr[t + 1]);
            float nextvalue = tr[t + 1] != 0.0f ? v[t] : v[t + 1];
            float rho_t = imp[t] < rho_clip ? imp[t] : rho_clip;
            float c_t = imp[t] < c_clip ? imp[t] : c_clip;
            float delta = rho_t * (r[t + 1] + gamma * nextvalue * (1.0f - d[t + 1]) - v[t]);
            lastgaelam = delta + gamma * lambda * c_t * lastgaelam * nextnonterminal;
            adv[t] = lastgaelam;
        }
    }
}
'''


def build_one_row(tmp):
    """The one-row baseline as a shared library, or None when no C compiler is found."""
    src, lib = os.path.join(tmp, 'one_row.c'), os.path.join(tmp, 'one_row.so')
    with open(src, 'w') as f:
        f.write(ONE_ROW_C)
    cc = (sysconfig.get_config_var('CC') or 'cc').split()[0]
    try:
        subprocess.run([cc, '-O3', '-fno-strict-aliasing', '-shared', '-fPIC', src, '-o', lib],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f'one-row C baseline not built ({e}); skipping it')
        return None
    fn = ctypes.CDLL(lib).one_row
    fn.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 2 + [ctypes.c_float] * 4
    return fn


def make_inputs(segments, horizon, seed=0):
    rng = np.random.default_rng(seed)
    w = horizon + 1
    t = [rng.normal(size=(segments, w)), rng.normal(size=(segments, w)),
         rng.random((segments, w)) < 0.02, rng.random((segments, w)) < 0.005,
         rng.uniform(0.5, 1.5, (segments, horizon))]
    t = [torch.from_numpy(np.ascontiguousarray(x, np.float32)) for x in t]
    return t + [torch.zeros(segments, horizon)]


def numpy_rows(values, rewards, terminals, truncations, importance, advantages):
    """The recurrence vectorised over rows with NumPy (float32), a loop over t."""
    H = advantages.shape[1]
    d, tr = terminals[:, 1:], truncations[:, 1:]
    next_v = np.where(d != 0, 0, np.where(tr != 0, values[:, :H], values[:, 1:]))
    delta = np.minimum(importance, RHO_CLIP) * (rewards[:, 1:] + GAMMA * next_v - values[:, :H])
    coef = GAMMA * LAM * np.minimum(importance, C_CLIP) * (1 - d) * (1 - tr)
    last = np.zeros(advantages.shape[0], np.float32)
    for t in range(H - 1, -1, -1):
        last = delta[:, t] + coef[:, t] * last
        advantages[:, t] = last


def best_time(fn, rounds, window):
    """Best seconds per call over `rounds` windows of about `window` seconds."""
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < window / 4:
        fn()
        calls += 1
    per_window = max(1, int(calls * 4))
    best = float('inf')
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_window):
            fn()
        best = min(best, (time.perf_counter() - start) / per_window)
    return best


def bench(segments, horizon, one_row, rounds, window):
    t = make_inputs(segments, horizon)
    out = t[5]
    arrays = [x.numpy() for x in t]
    elements = segments * horizon
    moved = 4 * (4 * segments * (horizon + 1) + 2 * elements)   # bytes read + written by the kernel
    methods = {
        'ours (auto threads)': lambda: compute_advantage(*t, GAMMA, LAM, RHO_CLIP, C_CLIP),
        'ours, 1 thread': lambda: compute_advantage(*t, GAMMA, LAM, RHO_CLIP, C_CLIP, num_threads=1),
        f'ours, {_CPUS} threads': lambda: compute_advantage(*t, GAMMA, LAM, RHO_CLIP, C_CLIP,
                                                            num_threads=_CPUS),
        'ours, C call only (1 thread)': lambda: _advantage.compute(
            *(x.data_ptr() for x in t), segments, horizon, GAMMA, LAM, RHO_CLIP, C_CLIP, 1),
        'NumPy over rows': lambda: numpy_rows(*arrays),
    }
    if one_row is not None:
        ptrs = [x.data_ptr() for x in t]
        methods['one-row C (published approach)'] = lambda: one_row(
            *ptrs, segments, horizon, GAMMA, LAM, RHO_CLIP, C_CLIP)

    compute_advantage(*t, GAMMA, LAM, RHO_CLIP, C_CLIP, num_threads=1)
    ours = out.clone()
    for name, fn in methods.items():
        out.fill_(float('nan'))
        fn()
        err = (out - ours).abs().max().item()
        if not err <= 1e-4:
            sys.exit(f'{name} disagrees with ours by {err} on ({segments}, {horizon})')

    src = np.ones(moved // 8, np.float32)   # copy reads half the bytes and writes half
    dst = np.empty_like(src)
    seconds = {name: best_time(fn, rounds, window) for name, fn in methods.items()}
    copy_np = best_time(lambda: np.copyto(dst, src), rounds, window)

    base = seconds.get('one-row C (published approach)')
    numpy_s = seconds['NumPy over rows']
    print(f'\n({segments}, {horizon}): {elements / 1e6:.2f} M elements, {moved / 1e6:.1f} MB moved per call')
    print(f'{"method":34s} {"us/call":>9s} {"M elem/s":>9s} {"GB/s":>7s} {"x one-row C":>12s} {"x NumPy":>8s}')
    for name, s in seconds.items():
        vs_base = f'{base / s:11.2f}x' if base else '          -'
        print(f'{name:34s} {s * 1e6:9.1f} {elements / s / 1e6:9.0f} {moved / s / 1e9:7.2f} '
              f'{vs_base} {numpy_s / s:7.2f}x')
    print(f'{"copy: np.copyto (1 thread)":34s} {copy_np * 1e6:9.1f} {"":>9s} {moved / copy_np / 1e9:7.2f}')
    auto = seconds['ours (auto threads)']
    print(f'ours (auto): {elements / auto / 1e6:.0f} M elements/s, {moved / auto / 1e9:.1f} GB/s = '
          f'{copy_np / auto:.2f}x np.copyto\'s GB/s'
          + (f', {base / auto:.2f}x the one-row C loop' if base else ''))
    return elements / auto


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='(1024, 64) only, short rounds')
    parser.add_argument('--rounds', type=int, default=None)
    parser.add_argument('--window', type=float, default=None, help='seconds per round')
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    window = args.window or (0.05 if args.quick else 0.2)
    sizes = [(1024, 64)] if args.quick else [(1024, 64), (16384, 64)]
    print(f'{_CPUS} CPUs available; torch {torch.__version__} with {torch.get_num_threads()} threads; '
          f'best of {rounds} rounds of ~{window}s')
    with tempfile.TemporaryDirectory() as tmp:
        one_row = build_one_row(tmp)
        rates = [bench(s, h, one_row, rounds, window) for s, h in sizes]
    verdict = 'met' if rates[0] >= 300e6 else 'NOT met'
    print(f'\ntarget >= 300 M elements/s on (1024, 64) (1.5x the published ~200 M): '
          f'{rates[0] / 1e6:.0f} M/s, {verdict}')


if __name__ == '__main__':
    main()
