import multiprocessing
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest
import torch

from pufferlib.trainer.advantage import compute_advantage

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINER = os.path.join(HERE, '..', 'pufferlib', 'trainer')
NAMES = ('values', 'rewards', 'terminals', 'truncations', 'importance', 'advantages')


def reference(values, rewards, terminals, truncations, importance, gamma, lam, rho_clip, c_clip):
    """The recurrence of the contract, in float64, one step at a time over all rows."""
    v, r, d, tr, imp = (np.asarray(x, np.float64)
                        for x in (values, rewards, terminals, truncations, importance))
    segments, horizon = imp.shape
    adv = np.zeros((segments, horizon))
    a = np.zeros(segments)
    for t in range(horizon - 1, -1, -1):
        done, trunc = d[:, t + 1], tr[:, t + 1]
        next_v = np.where(done != 0, 0.0, np.where(trunc != 0, v[:, t], v[:, t + 1]))
        rho = np.minimum(imp[:, t], rho_clip)
        c = np.minimum(imp[:, t], c_clip)
        delta = rho * (r[:, t + 1] + gamma * next_v - v[:, t])
        a = delta + gamma * lam * c * (1 - done) * (1 - trunc) * a
        adv[:, t] = a
    return adv


def make_inputs(segments, horizon, seed=0, p_done=0.1, p_trunc=0.1, imp_high=2.5):
    rng = np.random.default_rng(seed)
    width = horizon + 1
    t = {
        'values': rng.normal(size=(segments, width)),
        'rewards': rng.normal(size=(segments, width)),
        'terminals': rng.random((segments, width)) < p_done,
        'truncations': rng.random((segments, width)) < p_trunc,
        'importance': rng.uniform(0, imp_high, (segments, horizon)),
    }
    t = {k: torch.from_numpy(np.ascontiguousarray(x, np.float32)) for k, x in t.items()}
    t['advantages'] = torch.full((segments, horizon), float('nan'))
    return t


def run(t, gamma=0.99, lam=0.95, rho_clip=1.0, c_clip=0.9, **kw):
    return compute_advantage(*(t[k] for k in NAMES), gamma, lam, rho_clip, c_clip, **kw)


def expected(t, gamma=0.99, lam=0.95, rho_clip=1.0, c_clip=0.9):
    return reference(*(t[k].cpu().numpy() for k in NAMES[:5]), gamma, lam, rho_clip, c_clip)


@pytest.mark.parametrize('segments', [1, 3, 17, 1000])
@pytest.mark.parametrize('horizon', [1, 2, 7, 64])
def test_matches_reference(segments, horizon):
    t = make_inputs(segments, horizon, seed=segments * 100 + horizon)
    out = run(t)
    assert out is t['advantages']
    np.testing.assert_allclose(out.numpy(), expected(t), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('gamma, lam, rho_clip, c_clip', [
    (0.995, 0.90, 1.0, 1.0), (0.9, 0.5, 0.5, 2.0), (1.0, 1.0, 10.0, 10.0), (0.0, 0.95, 1.0, 1.0)])
def test_matches_reference_hyperparameters(gamma, lam, rho_clip, c_clip):
    t = make_inputs(37, 33, seed=7)
    out = run(t, gamma, lam, rho_clip, c_clip).numpy()
    np.testing.assert_allclose(out, expected(t, gamma, lam, rho_clip, c_clip), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('segments', [3, 17, 40])
def test_episode_ends_at_every_position(segments):
    """Row s has a terminal, a truncation, or both at column s % (H + 1): every position 0..H."""
    horizon = 7
    t = make_inputs(segments, horizon, seed=segments, p_done=0, p_trunc=0, imp_high=2.0)
    for s in range(segments):
        kind = (s // (horizon + 1)) % 3
        if kind in (0, 2):
            t['terminals'][s, s % (horizon + 1)] = 1
        if kind in (1, 2):
            t['truncations'][s, s % (horizon + 1)] = 1
    np.testing.assert_allclose(run(t).numpy(), expected(t), rtol=1e-5, atol=1e-5)


def test_gae_closed_form():
    """Importance 1, no episode end: A[t] = sum_k (gamma lam)^k delta[t+k] with plain TD errors."""
    gamma, lam, horizon = 0.97, 0.8, 20
    t = make_inputs(9, horizon, seed=3, p_done=0, p_trunc=0)
    t['importance'].fill_(1.0)
    out = run(t, gamma, lam, 1.0, 1.0).numpy()
    v, r = t['values'].double().numpy(), t['rewards'].double().numpy()
    delta = r[:, 1:] + gamma * v[:, 1:] - v[:, :-1]
    for step in range(horizon):
        weights = (gamma * lam) ** np.arange(horizon - step)
        np.testing.assert_allclose(out[:, step], delta[:, step:] @ weights, rtol=1e-5, atol=1e-5)


def test_terminal_and_truncation_rules():
    """Hand-written cases of one row, H = 3: what a terminal or truncated next step does."""
    gamma, lam = 0.5, 0.5
    values = [[1.0, 2.0, 3.0, 4.0]]
    rewards = [[100.0, 10.0, 20.0, 30.0]]

    def one(terminals, truncations, importance=(1.0, 1.0, 1.0), rho_clip=1.0, c_clip=1.0):
        t = {'values': values, 'rewards': rewards, 'terminals': [terminals],
             'truncations': [truncations], 'importance': [list(importance)]}
        t = {k: torch.tensor(x, dtype=torch.float32) for k, x in t.items()}
        t['advantages'] = torch.zeros(1, 3)
        return run(t, gamma, lam, rho_clip, c_clip)[0].tolist()

    # No episode end: delta = r[t+1] + 0.5 v[t+1] - v[t]; A[t] = delta + 0.25 A[t+1].
    d2 = 30 + 2 - 3
    d1 = 20 + 1.5 - 2 + 0.25 * d2
    d0 = 10 + 1 - 1 + 0.25 * d1
    assert one([0, 0, 0, 0], [0, 0, 0, 0]) == pytest.approx([d0, d1, d2])
    # Terminal arrives with step 2: A[1] = r[2] - v[1], nothing flows back from A[2].
    a2 = 30 + 2 - 3
    a1 = 20 - 2
    assert one([0, 0, 1, 0], [0, 0, 0, 0]) == pytest.approx([10 + 1 - 1 + 0.25 * a1, a1, a2])
    # Truncation at step 2: bootstrap from v[1] itself, and cut the trace.
    a1 = 20 + 0.5 * 2 - 2
    assert one([0, 0, 0, 0], [0, 0, 1, 0]) == pytest.approx([10 + 1 - 1 + 0.25 * a1, a1, a2])
    # An end at column 0 belongs to the previous segment and changes nothing.
    assert one([1, 0, 0, 0], [1, 0, 0, 0]) == pytest.approx([d0, d1, d2])
    # Terminal at column H: the last step's advantage is r[H] - v[H-1], not zero.
    assert one([0, 0, 0, 1], [0, 0, 0, 0])[2] == pytest.approx(30 - 3)
    # Importance clipped: rho = min(2, 1.5) scales delta, c = min(2, 0.5) the trace.
    a2 = 1.5 * (30 + 2 - 3)
    a1 = 1.5 * (20 + 1.5 - 2) + 0.25 * 0.5 * a2
    assert one([0] * 4, [0] * 4, (2, 2, 2), 1.5, 0.5)[1:] == pytest.approx([a1, a2])
    # Importance below the clips is used as is.
    a2 = 0.5 * (30 + 2 - 3)
    assert one([0] * 4, [0] * 4, (0.5, 0.5, 0.5), 1.5, 1.5)[2] == pytest.approx(a2)


def test_inputs_unchanged_and_views_with_offsets():
    big = make_inputs(20, 9, seed=11)
    t = {k: x[5:12] for k, x in big.items()}   # contiguous row slices starting mid-storage
    before = {k: x.clone() for k, x in big.items() if k != 'advantages'}
    run(t)
    np.testing.assert_allclose(t['advantages'].numpy(), expected(t), rtol=1e-5, atol=1e-5)
    for k, x in before.items():
        assert torch.equal(big[k], x), k
    assert big['advantages'][:5].isnan().all() and big['advantages'][12:].isnan().all()


@pytest.mark.parametrize('segments, horizon', [(0, 5), (4, 0), (0, 0)])
def test_empty(segments, horizon):
    """No rows or no steps: on any thread count the call returns the output it was given and writes
    nothing around it (it is a view into NaN storage here); the shape checks still apply."""
    t = make_inputs(segments, horizon)
    storage = torch.full((16,), float('nan'))
    t['advantages'] = storage[8:8].view(segments, horizon)
    for threads in (None, 1, 4):
        assert run(t, num_threads=threads) is t['advantages']
    assert storage.isnan().all()
    t['importance'] = torch.zeros((segments + 1, horizon))
    with pytest.raises(ValueError, match=rf'importance has shape \({segments + 1}, {horizon}\), '
                                         rf'expected \({segments}, {horizon}\)'):
        run(t)


@pytest.mark.parametrize('segments', [9, 100, 1003])
def test_threads_give_identical_results(segments):
    t = make_inputs(segments, 64, seed=segments)
    one = run(t, num_threads=1).clone()
    for threads in (2, 3, 8, 1000):
        t['advantages'].fill_(float('nan'))
        assert torch.equal(run(t, num_threads=threads), one), threads
    np.testing.assert_allclose(one.numpy(), expected(t), rtol=1e-5, atol=1e-5)


def test_concurrent_callers():
    """Python threads calling at once: one gets the pool, the others run on their own thread."""
    inputs = [make_inputs(257, 64, seed=i) for i in range(4)]
    results = [None] * 4

    def work(i):
        for _ in range(20):
            results[i] = run(inputs[i], num_threads=2).clone()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    for i in range(4):
        np.testing.assert_allclose(results[i].numpy(), expected(inputs[i]), rtol=1e-5, atol=1e-5)


def _child(queue):
    t = make_inputs(300, 64, seed=5)
    queue.put(run(t, num_threads=2).numpy())


def test_threaded_after_fork():
    """A forked child has none of the parent's pool threads; it must build its own, not hang."""
    run(make_inputs(300, 64), num_threads=2)   # make sure the parent's pool exists
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    try:
        out = queue.get(timeout=60)
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0
    np.testing.assert_allclose(out, expected(make_inputs(300, 64, seed=5)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', NAMES)
def test_wrong_dtype(name):
    t = make_inputs(4, 5)
    t[name] = t[name].double()
    with pytest.raises(ValueError, match=f'{name} has dtype torch.float64'):
        run(t)


@pytest.mark.parametrize('name', NAMES)
def test_wrong_shape(name):
    t = make_inputs(4, 5)
    t[name] = t[name][:, :-1].contiguous() if name != 'values' else t[name][:, :-2].contiguous()
    bad = 'rewards' if name == 'values' else name   # a short values row makes the others look wrong
    with pytest.raises(ValueError, match=f'{bad} has shape'):
        run(t)


@pytest.mark.parametrize('name', NAMES)
def test_wrong_rows(name):
    t = make_inputs(4, 5)
    t[name] = t[name][:3]
    with pytest.raises(ValueError, match='has shape'):
        run(t)


def test_wrong_ndim():
    t = make_inputs(4, 5)
    t['values'] = t['values'].reshape(-1)
    with pytest.raises(ValueError, match=r'values has shape \(24,\), expected \(segments, horizon \+ 1\)'):
        run(t)


@pytest.mark.parametrize('name', NAMES)
def test_not_contiguous(name):
    t = make_inputs(4, 5)
    x = t[name]
    t[name] = torch.empty(x.shape[1], x.shape[0]).t()
    assert t[name].shape == x.shape and not t[name].is_contiguous()
    with pytest.raises(ValueError, match=f'{name} is not C-contiguous'):
        run(t)


@pytest.mark.parametrize('name', NAMES)
def test_not_a_tensor(name):
    t = make_inputs(4, 5)
    t[name] = t[name].numpy()
    with pytest.raises(ValueError, match=f'{name} must be a torch.Tensor, got ndarray'):
        run(t)


@pytest.mark.parametrize('name', NAMES[1:])
def test_mixed_devices(name):
    t = make_inputs(4, 5)
    t[name] = t[name].to('meta')
    with pytest.raises(ValueError, match=f'{name} is on meta but values is on cpu'):
        run(t)


def test_unsupported_device():
    t = {k: x.to('meta') for k, x in make_inputs(4, 5).items()}
    with pytest.raises(ValueError, match='tensors are on meta: compute_advantage supports cpu and cuda'):
        run(t)


@pytest.mark.parametrize('name', NAMES[:5])
def test_output_overlapping_an_input(name):
    t = make_inputs(4, 5)
    storage = torch.zeros(100)
    t[name] = storage[:t[name].numel()].view(t[name].shape)
    t['advantages'] = storage[3:3 + 20].view(4, 5)
    with pytest.raises(ValueError, match=f'advantages shares memory with {name}'):
        run(t)


@pytest.mark.gpu
@pytest.mark.parametrize('segments', [1, 3, 17, 1000, 5000])
@pytest.mark.parametrize('horizon', [1, 2, 7, 64])
def test_cuda_matches_reference(segments, horizon):
    t = make_inputs(segments, horizon, seed=segments + horizon)
    cuda = {k: x.cuda() for k, x in t.items()}
    out = run(cuda)
    assert out is cuda['advantages'] and out.is_cuda
    np.testing.assert_allclose(out.cpu().numpy(), expected(t), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.cpu().numpy(), run(t).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_cuda_episode_ends_and_offsets():
    big = make_inputs(50, 7, seed=2, p_done=0.3, p_trunc=0.3)
    cuda = {k: x.cuda()[10:41] for k, x in big.items()}
    run(cuda)
    cpu = {k: x[10:41] for k, x in big.items()}
    np.testing.assert_allclose(cuda['advantages'].cpu().numpy(), expected(cpu), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_cuda_and_cpu_tensors_mixed():
    t = make_inputs(4, 5)
    t['rewards'] = t['rewards'].cuda()
    with pytest.raises(ValueError, match='rewards is on cuda:0 but values is on cpu'):
        run(t)


@pytest.mark.skipif(shutil.which('nvcc') is None, reason='nvcc not installed')
def test_cuda_row_function_compiles(tmp_path):
    """The shared one-row function and a kernel around it compile for the GPU (runs without one)."""
    src = tmp_path / 'harness.cu'
    src.write_text('#include "advantage.h"\n'
                   '__global__ void k(const float* v, const float* r, const float* d,\n'
                   '        const float* tr, const float* imp, float* a, long long s, long long h) {\n'
                   '    long long row = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n'
                   '    if (row < s) advantage_row(v + row * (h + 1), r + row * (h + 1),\n'
                   '        d + row * (h + 1), tr + row * (h + 1), imp + row * h, a + row * h,\n'
                   '        h, 0.99f, 0.95f, 1.0f, 1.0f);\n'
                   '}\n')
    result = subprocess.run(['nvcc', '--ptx', '-I', TRAINER, str(src), '-o', str(tmp_path / 'k.ptx')],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert '.entry' in (tmp_path / 'k.ptx').read_text()


def test_cuda_build_glue(monkeypatch):
    """Without a GPU: the CUDA path builds advantage.cu once by name and reports a failed build."""
    import torch.utils.cpp_extension
    from pufferlib.trainer import advantage
    calls = []

    def fake_load(name, sources, **kw):
        calls.append((name, sources, kw))
        if len(calls) == 1:
            raise OSError('Ninja is required to load C++ extensions')
        return 'module'

    monkeypatch.setattr(torch.utils.cpp_extension, 'load', fake_load)
    advantage._cuda_module.cache_clear()
    try:
        with pytest.raises(RuntimeError, match='could not build the CUDA advantage kernel.*Ninja is'):
            advantage._cuda_module()
        assert advantage._cuda_module() == 'module' and advantage._cuda_module() == 'module'
    finally:
        advantage._cuda_module.cache_clear()
    assert len(calls) == 2
    name, sources, kw = calls[0]
    assert name.startswith('pufferlib_advantage_cuda_') and len(sources) == 1
    assert os.path.isfile(sources[0]) and sources[0].endswith('advantage.cu')
    assert os.path.isfile(os.path.join(kw['extra_include_paths'][0], 'advantage.h'))
