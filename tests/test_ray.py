"""pufferlib.vector.Ray: same trajectories and batches as Multiprocessing (sync and async), make()
arguments, env errors, dead actors, timeouts, close() leaving no actors, and the local instance's
lifecycle. The checks every backend shares (actions, infos, non-finite values, seeding, adopted
buffers, autoreset) run on Ray too, through test_vector.py's `backend` fixture. One local Ray
instance serves the whole session (conftest.py's ray_session, so the backend leaves it running); the
lifecycle of an instance the backend starts itself runs in a subprocess."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

ray = pytest.importorskip('ray', reason='ray is not installed (pip install "pufferlib[ray]")')

import pufferlib.vector as pv  # noqa: E402
from pufferlib import ocean  # noqa: E402
from pufferlib.examples import Match  # noqa: E402
from pufferlib.exceptions import (APIUsageError, ClosedError, EnvTimeoutError,  # noqa: E402
                                  EnvWorkerError)
from pufferlib.vector import ray as ray_backend  # noqa: E402
from tests.helpers import (CORES, FaultyEnv, alive_actors, check_final_observations,  # noqa: E402
                           countdown, make, rollout, same)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY = dict(backend='Ray', num_envs=2, num_workers=2)
MP = dict(backend='Multiprocessing', num_envs=2, num_workers=2)


pytestmark = pytest.mark.usefixtures('ray_session')    # the session's local Ray instance (conftest)


# ---- make() ------------------------------------------------------------------------------------

def test_import_does_not_import_ray():
    code = 'import sys, pufferlib.vector; assert "ray" not in sys.modules, "ray imported"'
    subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT, timeout=60)


def test_without_ray_make_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'ray', None)    # `import ray` now raises ImportError
    with pytest.raises(APIUsageError, match=r'the Ray backend needs ray: pip install "pufferlib\[ray\]"'):
        pv.make(Match, backend=pv.Ray, num_envs=2)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_envs=5, num_workers=2), r'num_envs=5 is not divisible by num_workers=2 \(5 % 2 = 1\)'),
    (dict(num_envs=4, num_workers=2, batch_size=3), r'batch_size=3 is not a multiple of the envs per '
                                                    r'worker: num_envs / num_workers = 4 / 2 = 2'),
    (dict(num_envs=6, num_workers=6, batch_size=4, overwork=True),
     r'num_envs=6 must be divisible by batch_size=4 \(or pass zero_copy=False\)'),
    (dict(num_envs=2, num_workers=3), r'num_workers=3 is more than num_envs=2'),
    (dict(num_envs=2 * (CORES + 1), num_workers=CORES + 1),
     rf'num_workers={CORES + 1} is more than the {CORES} CPUs of the Ray cluster.*overwork=True'),
    (dict(num_envs=4, batch_size=8), r'batch_size=8 is more than num_envs=4'),
    (dict(num_envs=0), r'num_envs=0: it must be a positive integer'),
    (dict(num_envs=2, num_workers=0), r'num_workers=0'),
    (dict(num_envs=2, seed=1.5), r'seed=1.5'),
    (dict(num_envs=2, start_method='spawn'), r'start_method is for Multiprocessing'),
    (dict(num_envs=2, ray_address=6379), r'ray_address=6379: it must be a string'),
    (dict(num_envs=2, num_env=2), r'unknown argument\(s\) num_env; accepted: .*ray_address'),
])
def test_bad_arguments_start_nothing(kwargs, match):
    before = alive_actors()
    with pytest.raises(APIUsageError, match=match):
        pv.make(Match, backend='Ray', **kwargs)
    assert alive_actors() == before


def test_ray_address_is_only_for_ray():
    with pytest.raises(APIUsageError, match=r"ray_address='auto'.*only backend=Ray uses it"):
        pv.make(Match, backend='Multiprocessing', num_envs=2, ray_address='auto')


def test_attributes_and_auto_workers(vecs):
    vec = make(vecs, FaultyEnv, env_kwargs={'num_agents': 3}, backend=pv.Ray, num_envs=4,
               num_workers='auto')
    assert vec.num_workers == max(w for w in range(1, CORES + 1) if 4 % w == 0)
    assert vec.num_envs == 4 and vec.num_agents == vec.agents_per_batch == 12
    assert vec.observation_space.shape == (12, 3) and vec.single_action_space.n == 4
    # The driver env is env 0's twin (FaultyEnv takes its index from its seed), made in this process.
    assert (vec.driver_env.index, vec.driver_env.num_agents, vec.emulated) == (0, 3, None)
    # The envs run in Ray actors: one process per worker, none of them this one.
    pids = vec.worker_pids
    assert len(vec.actors) == len(set(pids)) == vec.num_workers and os.getpid() not in pids
    assert {psutil.Process(pid).name() for pid in pids} == {'ray::RayWorker'}
    obs, _ = vec.reset()
    assert obs[:, 1].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]    # env k seeded seed + 3k


# ---- same trajectories as Multiprocessing ------------------------------------------------------

@pytest.mark.parametrize('creator, num_actions, kwargs', [
    (Match, 4, dict(episode_length=5, num_envs=4)),
    (ocean.env_creator('squared'), 5, dict(size=5, num_envs=4)),
])
def test_sync_trajectories_equal_multiprocessing(vecs, creator, num_actions, kwargs):
    """2 env objects of 4 sub-envs, 200 steps, a re-seeding reset halfway: bit for bit."""
    mp = make(vecs, creator, env_kwargs=kwargs, **MP)
    on_ray = make(vecs, creator, env_kwargs=kwargs, **RAY)
    expected = rollout(mp, 7, 200, num_actions, reseed_at=100)
    assert same(rollout(on_ray, 7, 200, num_actions, reseed_at=100), expected)
    assert not same(rollout(on_ray, 8, 50, num_actions), expected[:1 + 4 * 50])    # another seed


def per_agent_rollout(vec, seed, steps, num_actions):
    """Async rollout where agent i's action at its t-th step is a hash of (i, t), so each agent's
    trajectory is fixed whatever the order of the batches. Returns {agent: [(obs, reward,
    terminal), ...]} for the first `steps` steps of every agent."""
    vec.async_reset(seed)
    taken = np.zeros(vec.num_agents, np.int64)
    seen = {i: [] for i in range(vec.num_agents)}
    while taken.min() < steps:
        obs, rewards, terminals, _, _, ids, masks = vec.recv()
        assert masks.all() and len(ids) == vec.agents_per_batch
        for row, i in enumerate(ids):
            seen[i].append((obs[row].tolist(), float(rewards[row]), bool(terminals[row])))
        vec.send(((ids * 7919 + taken[ids] * 104729) % num_actions).astype(np.int32))
        taken[ids] += 1
    return {i: s[:steps] for i, s in seen.items()}


@pytest.mark.parametrize('zero_copy', [True, False])
def test_async_trajectories_equal_multiprocessing(vecs, zero_copy):
    """4 env objects in 2 workers, batch = one worker: every agent's trajectory is the same."""
    kwargs = dict(env_kwargs=dict(num_envs=2, episode_length=3), num_envs=4, num_workers=2,
                  batch_size=2, zero_copy=zero_copy)
    mp = make(vecs, Match, backend='Multiprocessing', **kwargs)
    on_ray = make(vecs, Match, backend='Ray', **kwargs)
    assert on_ray.agents_per_batch == mp.agents_per_batch == 4
    expected = per_agent_rollout(mp, 5, 40, 4)
    assert per_agent_rollout(on_ray, 5, 40, 4) == expected


@pytest.mark.parametrize('zero_copy', [True, False])
def test_async_pool_is_fair_and_ids_match_data(vecs, zero_copy):
    """4 workers sharing the CPUs, batch 2, env 0 five times slower: every env appears within a
    few recvs, and the agent ids of a batch are those of the observations it holds."""
    vec = make(vecs, FaultyEnv, env_kwargs=dict(fault='slow', env_idx=0, delay=0.01, base_delay=0.002),
               backend='Ray', num_envs=4, num_workers=4, batch_size=2, zero_copy=zero_copy,
               overwork=True)
    vec.async_reset()
    batches = []
    for _ in range(30):
        obs, _, _, _, _, ids, masks = vec.recv()
        assert obs.shape == (2, 3) and ids.shape == masks.shape == (2,)
        assert obs[:, 1].tolist() == ids.tolist()    # the env index, written by the env itself
        assert np.shares_memory(obs, vec.observations) == zero_copy
        if zero_copy:
            assert ids.tolist() in ([0, 1], [2, 3])
        batches.append(set(ids.tolist()))
        vec.send(np.zeros(2, np.int32))
    for start in range(len(batches) - 6):
        assert set().union(*batches[start:start + 6]) == {0, 1, 2, 3}, batches


@pytest.mark.parametrize('kwargs', [dict(num_envs=4, num_workers=2),
                                    dict(num_envs=4, num_workers=4, batch_size=2, overwork=True),
                                    dict(num_envs=4, num_workers=4, batch_size=2, overwork=True,
                                         zero_copy=False)], ids=['sync', 'async', 'async copy'])
def test_final_observations_of_the_batch(vecs, kwargs):
    vec = make(vecs, countdown, backend='Ray', **kwargs)
    check_final_observations(vec)
    vec.close()    # its workers hold the CPUs
    assert not hasattr(make(vecs, Match, backend='Ray', **kwargs), 'final_observations')


# ---- faults ------------------------------------------------------------------------------------

def test_env_error_names_worker_env_and_error(vecs):
    vec = make(vecs, FaultyEnv, env_kwargs=dict(fault='raise', at_step=5, env_idx=1), **RAY)
    vec.reset()
    for _ in range(4):
        vec.step(np.zeros(2, np.int32))
    start = time.monotonic()
    with pytest.raises(EnvWorkerError,
                       match=r'worker 1, env 1 raised ValueError: boom \(in step\(\)\)') as info:
        vec.step(np.zeros(2, np.int32))
    assert time.monotonic() - start < 2
    assert info.value.worker == 1 and info.value.envs == (1,)
    assert "raise ValueError('boom')" in info.value.remote_traceback
    assert 'Traceback of the env' in str(info.value)
    with pytest.raises(EnvWorkerError, match=r'broken by an earlier error.*boom'):
        vec.step(np.zeros(2, np.int32))
    vec.close()
    vec.close()
    with pytest.raises(ClosedError):
        vec.step(np.zeros(2, np.int32))


@pytest.mark.parametrize('fault, match', [
    ('raise_init', r'worker 1, env 1 raised ValueError: boom in init \(in its constructor\)'),
    ('raise_reset', r'worker 1, env 1 raised ValueError: boom in reset \(in reset\(\)\)'),
])
def test_env_error_in_constructor_or_reset(vecs, fault, match):
    before = alive_actors()
    with pytest.raises(EnvWorkerError, match=match):
        make(vecs, FaultyEnv, env_kwargs=dict(fault=fault, env_idx=1), **RAY).reset()
    for vec in vecs:
        vec.close()
    assert alive_actors() <= before


@pytest.mark.parametrize('how', ['ray.kill', 'SIGKILL'])
def test_dead_actor_is_reported(vecs, how):
    vec = make(vecs, Match, env_kwargs={'num_envs': 2}, **RAY)
    vec.reset()
    for _ in range(10):
        vec.step(np.zeros(4, np.int32))
    if how == 'ray.kill':
        ray.kill(vec.actors[1])
        reason = r'killed by `ray.kill`'
    else:
        os.kill(vec.worker_pids[1], signal.SIGKILL)
        reason = r'worker process has died'
    start = time.monotonic()
    with pytest.raises(EnvWorkerError, match=rf'worker 1 \(env 1, pid \d+\) died while stepping: its '
                                             rf'Ray actor is gone. Ray says: .*{reason}') as info:
        for _ in range(1000):    # the kill lands within a step or two
            vec.step(np.zeros(4, np.int32))
    assert time.monotonic() - start < 5
    assert info.value.worker == 1
    with pytest.raises(EnvWorkerError, match=r'broken by an earlier error'):
        vec.step(np.zeros(4, np.int32))


def test_recv_timeout_and_close_of_a_hung_actor(vecs):
    vec = make(vecs, FaultyEnv, env_kwargs=dict(fault='hang', at_step=2, env_idx=1), **RAY)
    vec.reset()
    vec.step(np.zeros(2, np.int32))
    vec.send(np.zeros(2, np.int32))
    start = time.monotonic()
    with pytest.raises(EnvTimeoutError,
                       match=r'recv\(\) timed out while workers \[1\] were still') as info:
        vec.recv(timeout=1.0)
    assert 1.0 <= time.monotonic() - start < 3 and info.value.workers == (1,)
    pids = vec.worker_pids
    start = time.monotonic()
    vec.close()
    assert time.monotonic() - start < 4
    alive = [psutil.Process(p) for p in pids if psutil.pid_exists(p)]
    assert not psutil.wait_procs(alive, timeout=3)[1]


def test_workers_that_cannot_be_placed_fail_make(vecs, monkeypatch):
    """Each worker reserves a CPU: when another vector env holds them all, make() says so instead
    of waiting forever; with more workers than CPUs (overwork) they reserve none and start."""
    deadline = time.monotonic() + 5    # the CPUs of the actors closed just before come back
    while ray.available_resources().get('CPU', 0) < CORES and time.monotonic() < deadline:
        time.sleep(0.05)
    make(vecs, Match, backend='Ray', num_envs=CORES, num_workers=CORES)
    before = alive_actors()
    monkeypatch.setattr(ray_backend, 'SCHEDULE_TIMEOUT_S', 1.0)
    with pytest.raises(APIUsageError, match=rf'Ray could not start [12] of the 2 workers within 1 s: '
                                            rf'each reserves 1 CPU and the cluster has 0 of {CORES} CPUs '
                                            r'free. Close other Ray vector envs'):
        pv.make(Match, **RAY)
    assert alive_actors() <= before
    monkeypatch.setattr(ray_backend, 'SCHEDULE_TIMEOUT_S', 30.0)
    vec = make(vecs, Match, backend='Ray', num_envs=CORES + 1, num_workers=CORES + 1, overwork=True)
    assert vec.reset()[0].shape == (CORES + 1, 5)


def test_close_leaves_no_actors_and_use_after_close_fails(vecs):
    before = alive_actors()
    vec = make(vecs, Match, env_kwargs={'num_envs': 2}, **RAY)
    assert len(alive_actors() - before) == 2
    vec.reset()
    vec.step(np.zeros(4, np.int32))
    vec.send(np.zeros(4, np.int32))    # close with a step pending
    vec.close()
    vec.close()
    assert alive_actors() <= before
    for call in (vec.reset, vec.recv, lambda: vec.step(np.zeros(4, np.int32))):
        with pytest.raises(ClosedError, match=r'Ray\.\w+\(\) after close\(\)'):
            call()


# ---- local instance and cluster address --------------------------------------------------------

def run_script(code, timeout=90):
    """Run `code` in a fresh Python (no RAY_ADDRESS) and return the JSON its last line prints."""
    env = {k: v for k, v in os.environ.items() if k != 'RAY_ADDRESS'}
    out = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_local_instance_on_loopback_shut_down_after_last_close():
    result = run_script('''
        import json, numpy as np, psutil, ray
        import pufferlib.vector as pv
        from pufferlib.examples import Match
        a = pv.make(Match, backend='Ray', num_envs=2, num_workers=1)
        b = pv.make(Match, backend='Ray', num_envs=2, num_workers=1)
        a.reset(); b.reset()
        listening = sorted({c.laddr.ip for p in psutil.Process().children(recursive=True)
                            for c in p.net_connections('inet') if c.status == 'LISTEN'})
        a.close()
        alive_after_first = ray.is_initialized() and b.step(np.zeros(2, np.int32))[0].shape == (2, 5)
        children = psutil.Process().children(recursive=True)
        b.close()
        left = psutil.wait_procs(children, timeout=5)[1]
        print(json.dumps(dict(listening=listening, alive_after_first=alive_after_first,
                              initialized=ray.is_initialized(), left=[p.pid for p in left])))
    ''')
    assert result['listening'] and set(result['listening']) <= {'127.0.0.1', '::ffff:127.0.0.1'}
    assert result['alive_after_first'] and not result['initialized']
    assert result['left'] == []


def test_ray_address_connects_and_leaves_the_cluster_running():
    """ray_address (or Ray's RAY_ADDRESS variable) connects to a running cluster, here the module's
    instance; closing the vector env leaves that cluster running."""
    address = ray.get_runtime_context().gcs_address
    result = run_script(f'''
        import json, os, numpy as np, ray
        import pufferlib.vector as pv
        from pufferlib.examples import Match
        seen = []
        for how in ('argument', 'environment'):
            if how == 'environment':
                ray.shutdown()    # disconnect this driver; the cluster is the test's
                os.environ['RAY_ADDRESS'] = {address!r}
            kwargs = dict(ray_address={address!r}) if how == 'argument' else {{}}
            vec = pv.make(Match, backend='Ray', num_envs=2, num_workers=2, **kwargs)
            vec.reset()
            vec.step(np.zeros(2, np.int32))
            seen.append(ray.get_runtime_context().gcs_address)
            vec.close()
            seen.append(ray.is_initialized())
        print(json.dumps(seen))
    ''')
    assert result == [address, True, address, True]    # connected, not shut down
    assert ray.cluster_resources().get('CPU') == CORES    # the cluster still serves us
