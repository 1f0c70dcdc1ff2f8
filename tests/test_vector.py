"""pufferlib.vector: make() arguments, the API on every backend, seeding and backend equivalence,
batching, action checks, and fault matrix rows 11, 12, 14, 16, 21, 22 and 23 (in process; the rows
that can hang or kill a process are in test_faults.py)."""
import sys

import gymnasium
import numpy as np
import psutil
import pytest

import pufferlib.vector as pv
from pufferlib import ocean
from pufferlib.examples import Match, MatchGym
from pufferlib.exceptions import APIUsageError, ClosedError, EnvDataError, EnvWorkerError
from tests.helpers import (BACKENDS, CORES, WITHOUT_RAY, BoxEnv, FaultyEnv, check_final_observations,
                           countdown, make, rollout, same, split_kwargs)

# ---- make() arguments (row 16) -----------------------------------------------------------------

@pytest.mark.parametrize('kwargs, match', [
    (dict(num_envs=5, num_workers=2), r'num_envs=5 is not divisible by num_workers=2 \(5 % 2 = 1\)'),
    (dict(num_envs=4, num_workers=2, batch_size=3), r'batch_size=3 is not a multiple of the envs per '
                                                    r'worker: num_envs / num_workers = 4 / 2 = 2'),
    (dict(num_envs=6, num_workers=2, batch_size=4),
     r'batch_size=4 is not a multiple of the envs per worker: num_envs / num_workers = 6 / 2 = 3'),
    (dict(num_envs=6, num_workers=6, batch_size=4, overwork=True),
     r'num_envs=6 must be divisible by batch_size=4 \(or pass zero_copy=False\)'),
    (dict(num_envs=2, num_workers=3), r'num_workers=3 is more than num_envs=2'),
    (dict(num_envs=2 * (CORES + 1), num_workers=CORES + 1), rf'num_workers={CORES + 1} is more than the '
                                                            rf'{CORES} cores.*overwork=True'),
    (dict(num_envs=4, batch_size=8), r'batch_size=8 is more than num_envs=4'),
    (dict(num_envs=0), r'num_envs=0: it must be a positive integer'),
    (dict(num_envs=2, num_workers=0), r'num_workers=0'),
    (dict(num_envs=2, start_method='threads'), r"start_method='threads'"),
    (dict(num_envs=2, seed=1.5), r'seed=1.5'),
])
def test_bad_multiprocessing_arguments(kwargs, match):
    before = psutil.Process().children()
    with pytest.raises(APIUsageError, match=match):
        pv.make(Match, backend='Multiprocessing', **kwargs)
    assert psutil.Process().children() == before


def test_unknown_argument_lists_accepted_names():
    with pytest.raises(APIUsageError, match=r"unknown argument\(s\) num_env; accepted: "
                                            r"env_creator_or_creators, env_args, env_kwargs, backend"):
        pv.make(Match, num_env=2)


def test_backend_by_name_in_any_case(vecs, monkeypatch):
    for name, cls, kwargs in [('Serial', pv.Serial, {}), ('serial', pv.Serial, {}),
                              ('NATIVE', pv.Native, {}), ('native', pv.Native, {}),
                              ('multiprocessing', pv.Multiprocessing, BACKENDS['Multiprocessing'])]:
        assert type(make(vecs, Match, **{**kwargs, 'backend': name})) is cls, name
    monkeypatch.setitem(sys.modules, 'ray', None)    # Ray, once chosen, asks for ray before anything
    for name in ('Ray', 'ray', 'RAY'):
        with pytest.raises(APIUsageError, match=r'the Ray backend needs ray'):
            pv.make(Match, backend=name, num_envs=2)
    with pytest.raises(APIUsageError, match=r"unknown backend 'Threads'; use one of Native, Serial, "
                                            r"Multiprocessing, Ray \(any case\)"):
        pv.make(Match, backend='Threads')


def test_moved_helpers_still_import_with_a_warning():
    """The helpers the backends imported from pufferlib.vector now live in protocol.py and local.py:
    the old path gives the same object for one release, with a DeprecationWarning."""
    from pufferlib.vector import local, protocol
    for name, module in [('begin', protocol), ('vector_specs', protocol), ('local_recv', local)]:
        with pytest.warns(DeprecationWarning, match=rf'pufferlib.vector.{name} moved to '
                                                    rf'{module.__name__}.{name}'):
            assert getattr(pv, name) is getattr(module, name)
    with pytest.raises(AttributeError, match="has no attribute 'create_vec'"):
        pv.create_vec


def test_native_needs_one_puffer_env():
    with pytest.raises(APIUsageError, match=r"num_envs=2.*env_kwargs=\{'num_envs': N\}"):
        pv.make(Match, backend='Native', num_envs=2)
    with pytest.raises(APIUsageError, match=r'got a MatchGym: use Serial or Multiprocessing with '
                                            r'the env wrapped by pufferlib.emulation'):
        pv.make(lambda buf=None, seed=0: MatchGym(), backend='Native')


def test_serial_rejects_non_puffer_env():
    with pytest.raises(APIUsageError, match=r'env 0 is a MatchGym, not a PufferEnv: wrap it'):
        pv.make(lambda buf=None, seed=0: MatchGym(), backend='Serial', num_envs=2)


@pytest.mark.parametrize('kwargs, match', [
    (dict(env_kwargs={'seed': 3}), r"env_kwargs must not contain \['seed'\]"),
    (dict(env_kwargs=[{}, {}]), r'env_kwargs must be a dict'),
    (dict(env_args=3), r'env_args must be a list'),
])
def test_bad_env_arguments(kwargs, match):
    with pytest.raises(APIUsageError, match=match):
        pv.make(Match, num_envs=2, **kwargs)


class IgnoresBuf(BoxEnv):
    def __init__(self, buf=None, seed=0):
        super().__init__(buf=None)


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing', 'Ray'], indirect=True)
def test_env_that_ignores_buf_is_refused(backend):
    with pytest.raises(APIUsageError, match=r"env 0 \(IgnoresBuf\) did not adopt buf\['observations'\]"):
        pv.make(IgnoresBuf, **BACKENDS[backend])


class BadInfos(BoxEnv):
    def step(self, actions):
        return self.observations, self.rewards, self.terminals, self.truncations, {'a': 1}


def test_infos_must_be_a_list(vecs, backend):
    vec = make(vecs, BadInfos, **BACKENDS[backend])
    vec.reset()
    with pytest.raises(APIUsageError, match=r'env [01]: returned infos of type dict: infos must be a list'):
        vec.step(np.zeros((vec.agents_per_batch, 3), np.float32))


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing', 'Ray'], indirect=True)
def test_mismatched_env_objects_are_refused(backend):
    with pytest.raises(APIUsageError, match=r'env 1 has single_action_space Box\(-1.0, 1.0, \(3,\), '
                                            r'float32\) but env 0 has Box\(-2.0, 2.0'):
        pv.make([BoxEnv, BoxEnv], env_kwargs=[{'high': 2.0}, {'high': 1.0}], **BACKENDS[backend])


def test_creator_without_buf_and_seed_gets_a_hint():
    with pytest.raises(EnvWorkerError, match=r'must accept buf=None and seed=0'):
        pv.make(lambda: Match(), backend='Serial')


def test_per_env_creators_and_kwargs(vecs):
    vec = make(vecs, [BoxEnv, BoxEnv], env_kwargs=[{'high': 2.0}, {'high': 2.0}], backend='Serial',
               num_envs=2)
    assert vec.single_action_space.high.tolist() == [2, 2, 2]
    with pytest.raises(APIUsageError, match=r'env 1 has single_action_space Box\(-1.0, 1.0, \(3,\), '
                                            r'float32\) but env 0 has Box\(-2.0, 2.0'):
        pv.make([BoxEnv, BoxEnv], env_kwargs=[{'high': 2.0}, {'high': 1.0}], backend='Serial',
                num_envs=2)
    with pytest.raises(APIUsageError, match=r'got 3 env creators for num_envs=2'):
        pv.make([Match] * 3, num_envs=2)


def test_auto_workers_divide_envs_and_fit_cores(vecs):
    for num_envs in (3, 4, 6):
        expected = max(w for w in range(1, CORES + 1) if num_envs % w == 0)
        assert pv.plan_workers(num_envs, 'auto', None, True, False) == (expected, num_envs)
    vec = make(vecs, Match, backend='Multiprocessing', num_envs=4, num_workers='auto')
    assert vec.num_workers == max(w for w in range(1, CORES + 1) if 4 % w == 0)


# ---- the API on every backend ------------------------------------------------------------------

def test_attributes(vecs, backend):
    vec = make(vecs, FaultyEnv, env_kwargs={'num_agents': 3}, **BACKENDS[backend])
    objects = BACKENDS[backend].get('num_envs', 1)
    assert vec.num_envs == objects
    assert vec.num_workers == BACKENDS[backend].get('num_workers', 1)
    assert vec.num_agents == vec.agents_per_batch == 3 * objects
    assert vec.single_observation_space.shape == (3,)
    assert vec.single_action_space == gymnasium.spaces.Discrete(4)
    assert vec.observation_space.shape == (3 * objects, 3)
    assert vec.action_space == gymnasium.spaces.MultiDiscrete([4] * 3 * objects)
    assert isinstance(vec.driver_env, FaultyEnv)
    assert vec.emulated is None


@pytest.mark.parametrize('backend', WITHOUT_RAY)
def test_call_order_misuse(vecs, backend):
    vec = make(vecs, FaultyEnv, **BACKENDS[backend])
    actions = np.zeros(vec.agents_per_batch, np.int32)
    with pytest.raises(APIUsageError, match=r'send\(\) needs a batch: call reset\(\) or async_reset\(\)'):
        vec.send(actions)
    with pytest.raises(APIUsageError, match=r'recv\(\) before any reset: call reset\(\)'):
        vec.recv()
    vec.async_reset()
    with pytest.raises(APIUsageError, match=r'send\(\) after async_reset\(\): call recv\(\) first'):
        vec.send(actions)
    vec.recv()
    with pytest.raises(APIUsageError, match=r'recv\(\) twice: call send\(actions\) before recv\(\) again'):
        vec.recv()
    vec.send(actions)
    with pytest.raises(APIUsageError, match=r'send\(\) twice: call recv\(\) before send\(\) again'):
        vec.send(actions)
    vec.recv()
    vec.step(actions)    # still usable after the misuse
    vec.close()
    vec.close()
    with pytest.raises(ClosedError):
        vec.step(actions)
    with pytest.raises(ClosedError):
        vec.reset()


def test_recv_returns_batch_and_flat_infos(vecs, backend):
    vec = make(vecs, **split_kwargs(backend, 4, episode_length=2, report_interval=4),
               env_creator_or_creators=Match)
    vec.async_reset(seed=1)
    obs, rewards, terminals, truncations, infos, agent_ids, masks = vec.recv()
    assert obs.shape == (4, 5) and rewards.shape == terminals.shape == truncations.shape == (4,)
    assert agent_ids.tolist() == [0, 1, 2, 3] and masks.all()
    # Every env object reports once per 4 steps, the 2-step episodes of its sub-envs since the last
    # report: a flat list with one dict per env object, each episode counted once.
    objects = BACKENDS[backend].get('num_envs', 1)
    for t in range(1, 9):
        infos = vec.step(np.zeros(4, np.int32))[4]
        assert type(infos) is list
        assert [(i['n'], i['episode_length']) for i in infos] == ([(2 * 4 // objects, 2)] * objects
                                                                  if t % 4 == 0 else [])


# ---- actions (rows 11 and 12, check_actions) ---------------------------------------------------

def test_wrong_action_shape_on_every_call(vecs, backend):
    vec = make(vecs, FaultyEnv, env_kwargs={'num_agents': 2}, **BACKENDS[backend])
    n = vec.agents_per_batch
    vec.reset()
    for bad in [np.zeros(n - 1, np.int32), np.zeros((n, 2), np.int32), np.zeros(n - 1, np.int32)]:
        with pytest.raises(APIUsageError, match=rf'actions have shape \({bad.shape[0]},.*expected \({n},\)'):
            vec.send(bad)
    vec.step(np.zeros(n, np.int32))
    with pytest.raises(APIUsageError, match=r'actions have shape'):
        vec.send(np.zeros(n + 1, np.int32))


def test_box_actions_shape_and_dtype(vecs, backend):
    vec = make(vecs, BoxEnv, **BACKENDS[backend])
    n = vec.agents_per_batch
    vec.reset()
    with pytest.raises(APIUsageError, match=rf'actions have shape \({n},\), expected \({n}, 3\)'):
        vec.send(np.zeros(n, np.float32))
    obs = vec.step(np.full((n, 3), 0.5, np.float64))[0]    # float64 -> float32: same kind
    assert obs.dtype == np.float32 and (obs == 0.5).all()
    obs = vec.step(np.ones((n, 3), np.int64))[0]          # int -> float: allowed (documented)
    assert (obs == 1).all()


def test_action_dtypes(vecs, backend):
    vec = make(vecs, FaultyEnv, **BACKENDS[backend])
    n = vec.agents_per_batch
    vec.reset()
    with pytest.raises(APIUsageError, match=r'actions have dtype float64, expected int32'):
        vec.send(np.zeros(n, np.float64))
    with pytest.raises(APIUsageError, match=r'actions have dtype object'):
        vec.send(np.array([None] * n))
    vec.step(np.full(n, 3, np.int64))    # int64 -> int32 within range is allowed
    if backend in ('Native', 'Serial'):  # elsewhere the driver env is a probe that never steps
        assert (vec.driver_env.actions == 3).all()


def test_check_actions_ranges(vecs, backend):
    vec = make(vecs, FaultyEnv, check_actions=True, **BACKENDS[backend])
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    actions[-1] = 7
    with pytest.raises(APIUsageError, match=rf'action of agent {len(actions) - 1} is 7, outside Discrete\(4\)'):
        vec.send(actions)
    actions[-1] = -1
    with pytest.raises(APIUsageError, match=r'is -1, outside'):
        vec.send(actions)


def test_integer_actions_that_int32_cannot_hold_are_refused(vecs, backend):
    """Issue 12.4: 2**32 + 1 as int64 (or uint64) used to wrap into the valid action 1."""
    vec = make(vecs, FaultyEnv, **BACKENDS[backend])
    n = vec.agents_per_batch
    vec.reset()
    for bad, dtype in ((2**32 + 1, np.int64), (2**32 + 1, np.uint64), (-2**40, np.int64)):
        actions = np.ones(n, dtype)
        actions[-1] = bad
        with pytest.raises(APIUsageError, match=rf'actions have dtype {np.dtype(dtype)} and hold '
                                                rf'{bad}, which int32 cannot hold'):
            vec.send(actions)
    vec.step(np.full(n, 3, np.int64))    # still usable


def test_out_of_range_discrete_action_is_a_usage_error_and_the_vec_stays_usable(vecs, backend):
    """Issue 12.4: without check_actions, out-of-range discrete actions are refused in the caller
    (not an env crash that breaks the vector env), Ocean C envs included."""
    vec = make(vecs, ocean.env_creator('squared'), **split_kwargs(backend, 4))
    vec.reset(seed=0)
    for bad in (5, -1, 2**31 - 1):
        actions = np.zeros(vec.agents_per_batch, np.int32)
        actions[1] = bad
        with pytest.raises(APIUsageError, match=rf'action of agent 1 is {bad}, outside Discrete\(5\)'):
            vec.send(actions)
    vec.step(np.zeros(vec.agents_per_batch, np.int32))    # the vector env still steps
    vec.step(np.ones(vec.agents_per_batch, np.int64))


def test_wide_integer_actions_into_an_env_directly():
    env = ocean.make('squared', num_envs=2)
    env.reset()
    with pytest.raises(APIUsageError, match='hold 4294967297, which int32 cannot hold'):
        env.step(np.array([1, 2**32 + 1], np.int64))
    env.step(np.array([1, 2], np.int64))
    env.close()


# ---- check_finite (row 14) ---------------------------------------------------------------------

def test_check_finite_names_env_step_and_field(vecs, backend):
    env_idx = 0 if backend == 'Native' else 1
    vec = make(vecs, FaultyEnv, env_kwargs=dict(fault='nan', at_step=5, env_idx=env_idx),
               check_finite=True, **BACKENDS[backend])
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    for _ in range(4):
        vec.step(actions)
    with pytest.raises(EnvDataError, match=rf'env {env_idx} \(agent {env_idx}\) produced a non-finite '
                                           r'value in observations at step 5 after reset: nan'):
        vec.step(actions)


def test_without_check_finite_nan_passes(vecs):
    vec = make(vecs, FaultyEnv, env_kwargs=dict(fault='nan', at_step=1, env_idx=1), **BACKENDS['Serial'])
    vec.reset()
    assert np.isnan(vec.step(np.zeros(2, np.int32))[0]).any()


# ---- seeding and equivalence (row 21) ----------------------------------------------------------

@pytest.mark.parametrize('creator, num_actions, kwargs', [
    (Match, 4, dict(episode_length=5)),
    (ocean.env_creator('squared'), 5, dict(size=5)),
])
def test_backends_agree_bit_for_bit(vecs, creator, num_actions, kwargs):
    """Row 21: Native with one object of 8 sub-envs == Serial and Multiprocessing with 2 objects of
    4, for 1000 steps; the same seed twice gives the same result; another seed differs."""
    runs = {}
    for backend in WITHOUT_RAY:    # Ray: tests/test_ray.py, against Multiprocessing
        vec = make(vecs, creator, **split_kwargs(backend, 8, **kwargs))
        runs[backend] = rollout(vec, 7, 1000, num_actions)
        assert same(runs[backend], rollout(vec, 7, 1000, num_actions)), f'{backend} is not reproducible'
        if backend == 'Serial':
            assert not same(runs[backend], rollout(vec, 8, 1000, num_actions))
    assert same(runs['Native'], runs['Serial'])
    assert same(runs['Native'], runs['Multiprocessing'])


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing', 'Ray'], indirect=True)
def test_env_object_seeds_are_global_indices(vecs, backend):
    """Env object k gets seed + k * agents_per_env (FaultyEnv shows seed // num_agents)."""
    vec = make(vecs, FaultyEnv, env_kwargs={'num_agents': 3}, **BACKENDS[backend])
    obs, _ = vec.reset()
    assert obs[:, 1].tolist() == [0, 0, 0, 1, 1, 1]
    assert obs[:, 2].tolist() == [0, 1, 2, 0, 1, 2]


def test_reset_none_does_not_reseed(vecs, backend):
    """reset(seed) restarts the same trajectories; reset(None) keeps the generators going."""
    vec = make(vecs, ocean.env_creator('squared'), **split_kwargs(backend, 8, size=5))
    first = rollout(vec, 3, 50, 5)
    assert same(first, rollout(vec, 3, 50, 5))
    assert not same(first, rollout(vec, None, 50, 5))


def test_multiprocessing_spawn_agrees_with_serial(vecs):
    serial = make(vecs, Match, **split_kwargs('Serial', 8, episode_length=5))
    spawned = make(vecs, Match, start_method='spawn', **split_kwargs('Multiprocessing', 8, episode_length=5))
    assert spawned.start_method == 'spawn'
    assert same(rollout(serial, 5, 100, 4), rollout(spawned, 5, 100, 4))


def test_native_env_objects_in_workers(vecs):
    """2 x 512 squared sub-envs in 2 processes equal one Native object of 1024."""
    mp = make(vecs, ocean.env_creator('squared'), env_kwargs={'num_envs': 512}, backend=pv.Multiprocessing,
              num_envs=2, num_workers=2)
    native = make(vecs, ocean.env_creator('squared'), env_kwargs={'num_envs': 1024}, backend=pv.Native)
    assert mp.num_agents == 1024 and mp.agents_per_batch == 1024
    assert same(rollout(mp, 11, 100, 5), rollout(native, 11, 100, 5))


# ---- autoreset (row 22) ------------------------------------------------------------------------

def test_autoreset_in_the_same_step(vecs, backend):
    vec = make(vecs, FaultyEnv, env_kwargs={'episode_length': 3}, **BACKENDS[backend])
    obs, _ = vec.reset()
    assert (obs[:, 0] == 0).all()
    seen = []
    for _ in range(7):
        obs, rew, term, trunc, _ = vec.step(np.zeros(vec.agents_per_batch, np.int32))
        assert (rew == 1).all() and not trunc.any()
        seen.append((obs[0, 0], bool(term[0])))
    # The terminal step carries reward and terminal; its observation is the new episode's first.
    assert seen == [(1, False), (2, False), (0, True), (1, False), (2, False), (0, True), (1, False)]


# ---- async batching (row 23) -------------------------------------------------------------------

@pytest.mark.parametrize('zero_copy', [True, False])
def test_async_pool_is_fair_and_ids_match_data(vecs, zero_copy):
    """4 workers, batch 2, env 0 five times slower: every env appears within a bounded number of
    recvs (one slow step spans about 7 batches of the three fast envs; 16 leaves room for a loaded
    machine, while starvation would never show env 0), and the agent ids of a batch are those of
    the observations it holds."""
    vec = make(vecs, FaultyEnv, env_kwargs=dict(fault='slow', env_idx=0, delay=0.01, base_delay=0.002),
               backend='Multiprocessing', num_envs=4, num_workers=4, batch_size=2, zero_copy=zero_copy,
               overwork=True)
    assert vec.agents_per_batch == 2
    vec.async_reset()
    batches = []
    for _ in range(64):
        obs, rew, term, trunc, infos, ids, masks = vec.recv()
        assert obs.shape == (2, 3) and ids.shape == (2,) and masks.shape == (2,)
        assert obs[:, 1].tolist() == ids.tolist()    # env index written by the env itself
        assert np.shares_memory(obs, vec.observations) == zero_copy
        if zero_copy:
            assert ids.tolist() in ([0, 1], [2, 3])
        batches.append(set(ids.tolist()))
        vec.send(np.zeros(2, np.int32))
    window = 16
    for start in range(0, len(batches) - window):
        assert set().union(*batches[start:start + window]) == {0, 1, 2, 3}, batches


def test_async_reset_drains_pending_work(vecs):
    """A reset while steps (with infos) are pending: each block's first batch after the reset is
    its reset observation, and no stale info leaks into it."""
    kwargs = {'num_envs': 2, 'report_interval': 1, 'episode_length': 1}
    vec = make(vecs, Match, env_kwargs=kwargs, backend='Multiprocessing', num_envs=4, num_workers=2,
               batch_size=2)
    expected, _ = make(vecs, Match, env_kwargs={**kwargs, 'num_envs': 8}, backend='Native').reset(seed=1)
    vec.async_reset(seed=1)
    vec.recv()
    vec.send(np.zeros(4, np.int32))    # the step's results and infos are never received
    vec.async_reset(seed=1)
    first = {}
    while len(first) < 8:
        obs, _, _, _, infos, ids, _ = vec.recv()
        if ids[0] not in first:
            assert infos == []
            first.update({i: o.copy() for i, o in zip(ids, obs)})
        vec.send(np.zeros(4, np.int32))
    assert all(np.array_equal(first[i], expected[i]) for i in range(8))


def test_recv_timeout_on_healthy_env_is_not_triggered(vecs):
    vec = make(vecs, FaultyEnv, env_kwargs=dict(base_delay=0.05), **BACKENDS['Multiprocessing'])
    vec.async_reset()
    vec.recv(timeout=5)
    vec.send(np.zeros(2, np.int32))
    assert vec.recv(timeout=5)[0].shape == (2, 3)


# ---- final observations -------------------------------------------------------------------------

ASYNC = dict(backend='Multiprocessing', num_envs=4, num_workers=4, batch_size=2, overwork=True)
FINAL_CONFIGS = {
    'Native': dict(backend='Native'),
    'Serial': dict(backend='Serial', num_envs=4),
    'Multiprocessing': dict(backend='Multiprocessing', num_envs=4, num_workers=2),
    'Multiprocessing async': ASYNC,
    'Multiprocessing async copy': dict(ASYNC, zero_copy=False),
}


@pytest.mark.parametrize('config', FINAL_CONFIGS)
def test_final_observations_of_the_batch(vecs, config):
    check_final_observations(make(vecs, countdown, **FINAL_CONFIGS[config]))


@pytest.mark.parametrize('config', FINAL_CONFIGS)
def test_no_final_observations_without_them(vecs, config):
    vec = make(vecs, Match, **FINAL_CONFIGS[config])
    assert not hasattr(vec, 'final_observations')


# ---- the wait primitive ------------------------------------------------------------------------

def test_wait_budget_adapts():
    """A wait that outlasts the yield budget halves it; a quick answer restores it."""
    from pufferlib.vector import _sync
    words = np.zeros(_sync.control_words(2), np.int32)
    ctl = _sync.Control(words, 2, 0.0, 400.0, 2000.0)
    assert ctl.wait_ready(2) == -1 and ctl.yield_us == 200    # nobody answered within 2.4 ms
    assert ctl.wait_ready(2) == -1 and ctl.yield_us == 100
    words[_sync.STRIDE::_sync.STRIDE][:2] = _sync.DONE
    assert ctl.wait_ready(2) == 0 and ctl.yield_us == 400      # answered at once
    assert ctl.wait_command(0) == 0 and ctl.yield_us == 200    # a worker with no command times out
    words[_sync.STRIDE] = _sync.STEP
    assert ctl.wait_command(0) == _sync.STEP
    # worker 0 busy, worker 1 ready: block 1 of size 1; one ready worker in count mode
    assert ctl.poll(1, 0) == 1 and ctl.poll(1, 0, True) == 1 and ctl.poll(2, 0, True) == -1
    words[2 * _sync.STRIDE] = _sync.ERROR
    assert ctl.wait_ready(2) == -2
