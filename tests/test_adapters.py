"""Adapters (pufferlib.adapters): PufferEnvs as gymnasium.Env, gymnasium.vector.VectorEnv and PettingZoo ParallelEnv.

The adapters must pass Gymnasium's and PettingZoo's own checkers (with their warnings treated as
failures, except the few listed below that describe the wrapped env, not the adapter) and agree with
Gymnasium's SyncVectorEnv in its same-step autoreset mode."""
import functools
import re
import warnings

import gymnasium as gym
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import pufferlib.spaces
import pufferlib.vector
from pufferlib import APIUsageError, PufferEnv
from pufferlib import adapters as A
from pufferlib import emulation as E
from pufferlib.examples import Match, MatchGym
from tests.helpers import pz, time_aware_cartpole

with warnings.catch_warnings():  # pettingzoo.test imports envs through PettingZoo's deprecated API
    warnings.simplefilter('ignore', DeprecationWarning)
    from pettingzoo.test import parallel_api_test

# Warnings check_env gives about the env's declared spaces, or because an adapter has no registry
# spec to remake itself from; anything else is a failure.
ALLOWED = ('infinity', 'not having a spec', 'symmetric and normalized space')


def checked(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        fn(*args, **kwargs)
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in ALLOWED)]
    assert not unexpected, unexpected


def squared(num_envs):
    from pufferlib.ocean.squared.squared import Squared
    return Squared(num_envs=num_envs)


GYM_SINGLE = {
    'emulated CartPole': lambda: E.GymnasiumPufferEnv(gym.make('CartPole-v1')),
    'emulated Pendulum': lambda: E.GymnasiumPufferEnv(gym.make('Pendulum-v1')),
    'emulated Blackjack': lambda: E.GymnasiumPufferEnv(gym.make('Blackjack-v1')),
    'emulated Dict obs': lambda: E.GymnasiumPufferEnv(time_aware_cartpole()),
    'numpy Match': lambda: Match(num_envs=1),
    'native Squared': lambda: squared(1),
}


@pytest.mark.parametrize('name', list(GYM_SINGLE))
def test_gymnasium_env_passes_check_env(name):
    checked(check_env, A.GymnasiumEnv(GYM_SINGLE[name]()))


def test_adapters_declare_render_fps():
    """An env that renders gets metadata['render_fps'] (the wrapped env's own, else 60), so neither
    check_env nor the passive checker warns 'No render fps was declared'."""
    emulated = E.GymnasiumPufferEnv(gym.make('CartPole-v1', render_mode='rgb_array'))
    env = A.GymnasiumEnv(emulated)
    assert env.metadata == {'render_modes': ['rgb_array'], 'render_fps': 50}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        check_env(env)
        gym.utils.passive_env_checker.env_render_passive_checker(env)
    assert not [str(w.message) for w in caught if 'fps' in str(w.message)]
    checked(check_env, env)
    match = Match(num_envs=1)
    match.render_mode = 'human'
    assert A.GymnasiumEnv(match).metadata['render_fps'] == 60
    assert A.GymnasiumVectorEnv(emulated).metadata['render_fps'] == 50
    assert A.PettingZooEnv(emulated).metadata['render_fps'] == 50


def test_gymnasium_env_reproduces_the_raw_env_across_episodes():
    """Terminal steps return the final observation; reset() continues the episode the emulated env
    already began, so the whole trajectory is the raw env's own."""
    env = A.GymnasiumEnv(E.GymnasiumPufferEnv(gym.make('CartPole-v1')))
    raw = gym.make('CartPole-v1')
    obs, _ = env.reset(seed=8)
    raw_obs, _ = raw.reset(seed=8)
    episodes = 0
    for t in range(400):
        assert np.array_equal(obs, raw_obs)
        step = env.step(t % 3 % 2)
        raw_step = raw.step(t % 3 % 2)
        obs, raw_obs = step[0], raw_step[0]
        assert np.array_equal(obs, raw_obs) and step[1:4] == raw_step[1:4]
        if step[2] or step[3]:
            episodes += 1
            obs, _ = env.reset()
            raw_obs, _ = raw.reset()
    assert episodes >= 3


def test_gymnasium_env_needs_one_agent():
    with pytest.raises(APIUsageError, match='has 3 agents.*GymnasiumVectorEnv or PettingZooEnv'):
        A.GymnasiumEnv(Match(num_envs=3))
    with pytest.raises(APIUsageError, match='is not a PufferEnv.*has no single_observation_space'):
        A.GymnasiumEnv(gym.make('CartPole-v1'))


def test_round_trip_through_gymnasium_env_is_the_original():
    direct = Match(num_envs=1, seed=4)
    twice = E.GymnasiumPufferEnv(A.GymnasiumEnv(Match(num_envs=1, seed=4)), seed=4)
    assert np.array_equal(direct.reset(seed=4)[0], twice.reset()[0])
    rng = np.random.default_rng(0)
    for _ in range(50):
        action = rng.integers(0, 4, 1).astype(np.int32)
        a, b = direct.step(action), twice.step(action)
        for x, y in zip(a[:4], b[:4]):
            assert np.array_equal(x, y)


# ------------------------------------------------------------------------------------------------
# VectorEnv

def run_vector(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    out = [(obs, None, None, None, None)]
    for action in actions:
        obs, rew, term, trunc, info = env.step(action)
        out.append((obs, rew, term, trunc, info))
    return out


def assert_same_batches(a, b):
    """Observations, rewards, terminals and truncations of two run_vector results are equal."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for u, v in zip(x[:4], y[:4]):
            if v is not None:
                assert np.array_equal(u, v)


def test_vector_env_matches_sync_vector_env_same_step_mode():
    """Match(num_envs=4, seed=s) sub-env i is MatchGym(seed=s+i): Gymnasium's own SyncVectorEnv in
    SAME_STEP mode over MatchGyms must give the same batches as the adapter."""
    ours = A.GymnasiumVectorEnv(Match(num_envs=4, episode_length=5), autoreset_mode=AutoresetMode.SAME_STEP)
    theirs = SyncVectorEnv([lambda: MatchGym(episode_length=5) for _ in range(4)],
                           autoreset_mode=AutoresetMode.SAME_STEP)
    assert ours.metadata['autoreset_mode'] == AutoresetMode.SAME_STEP
    assert ours.single_observation_space == theirs.single_observation_space
    assert ours.action_space == theirs.action_space
    ours.action_space.seed(0)
    actions = [ours.action_space.sample() for _ in range(30)]
    a = run_vector(ours, actions, seed=10)
    b = run_vector(theirs, actions, seed=[10, 11, 12, 13])
    assert_same_batches(a, b)
    assert any(x[2].any() for x in a[1:])


def test_vector_env_final_obs_and_episode_statistics_match_sync_vector_env():
    ours = gym.wrappers.vector.RecordEpisodeStatistics(
        A.GymnasiumVectorEnv(E.GymnasiumPufferEnv(gym.make('CartPole-v1')), autoreset_mode=AutoresetMode.SAME_STEP))
    theirs = gym.wrappers.vector.RecordEpisodeStatistics(
        SyncVectorEnv([lambda: gym.make('CartPole-v1')], autoreset_mode=AutoresetMode.SAME_STEP))
    actions = [np.array([t % 3 % 2]) for t in range(300)]
    a = run_vector(ours, actions, seed=2)
    b = run_vector(theirs, actions, seed=2)
    ends = 0
    for x, y in zip(a[1:], b[1:]):
        for u, v in zip(x[:4], y[:4]):
            assert np.array_equal(u, v)
        if y[2].any() or y[3].any():
            ends += 1
            assert x[4]['_final_obs'][0] and np.array_equal(x[4]['final_obs'][0],
                                                            y[4]['final_obs'][0])
            assert x[4]['episode']['r'] == y[4]['episode']['r']
            assert x[4]['episode']['l'] == y[4]['episode']['l']
        else:
            assert 'final_obs' not in x[4]
    assert ends >= 5 and list(ours.return_queue) == list(theirs.return_queue)


def test_vector_env_copies_unless_told_not_to():
    env = Match(num_envs=2)
    copied = A.GymnasiumVectorEnv(env, autoreset_mode=AutoresetMode.SAME_STEP)
    obs, _ = copied.reset(seed=0)
    assert obs is not env.observations and np.array_equal(obs, env.observations)
    step = copied.step(np.array([0, 1]))
    assert all(x is not y for x, y in zip(step[:4], (env.observations, env.rewards, env.terminals,
                                                     env.truncations)))
    shared = A.GymnasiumVectorEnv(env, copy=False, autoreset_mode=AutoresetMode.SAME_STEP)
    assert shared.reset(seed=0)[0] is env.observations
    assert shared.step(np.array([0, 1]))[1] is env.rewards


def test_vector_env_reports_puffer_infos_and_rejects_seed_lists():
    env = A.GymnasiumVectorEnv(Match(num_envs=2, episode_length=2, report_interval=4))
    env.reset(seed=0)
    infos = [env.step(np.array([0, 0]))[4] for _ in range(8)]
    reports = [i['puffer'][0] for i in infos if 'puffer' in i]
    assert all(list(i['_puffer']) == [True, False] for i in infos if 'puffer' in i)
    assert len(reports) == 2 and reports[0][0]['n'] == 4  # 2 sub-envs x 2 episodes per report
    with pytest.raises(APIUsageError, match='seed must be an int or None'):
        env.reset(seed=[1, 2])


def test_vector_env_rejects_async_batches():
    class HalfBatch(Match):
        @property
        def agents_per_batch(self):
            return self.num_agents // 2
    with pytest.raises(APIUsageError, match='returns 2 of 4 agents per recv'):
        A.GymnasiumVectorEnv(HalfBatch(num_envs=4))


def gym_vec(name, n):
    """A Serial vector env of n emulated Gymnasium envs, without aggregate reports (so infos hold only
    what SyncVectorEnv's hold)."""
    make = {'CartPole': lambda: gym.make('CartPole-v1'), 'Dict obs': time_aware_cartpole}[name]
    creator = functools.partial(E.GymnasiumPufferEnv, env_creator=make, report_interval=10**9)
    return pufferlib.vector.make(creator, backend='Serial', num_envs=n), make


def assert_same_infos(ours, theirs, space):
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if key == 'final_obs':
            for i in np.flatnonzero(theirs['_final_obs']):
                assert np.array_equal(ours[key][i], pufferlib.spaces.flatten(space, value[i]))
        elif isinstance(value, dict):
            assert ours[key] == value
        else:
            assert np.array_equal(ours[key], value)


def side_by_side(name, mode, steps=150):
    """Our adapter over emulated envs and SyncVectorEnv over the raw envs, same seeds and actions:
    (our batches, their batches), observations compared after flattening theirs."""
    vec, make = gym_vec(name, 3)
    ours = A.GymnasiumVectorEnv(vec, autoreset_mode=mode)
    theirs = SyncVectorEnv([make] * 3, autoreset_mode=mode)
    space = theirs.single_observation_space
    flat = lambda batch: np.stack([pufferlib.spaces.flatten(space, x) for x in
                                   gym.vector.utils.iterate(theirs.observation_space, batch)])
    assert ours.metadata['autoreset_mode'] == mode
    rng = np.random.default_rng(5)
    a, b = [ours.reset(seed=4)], [theirs.reset(seed=4)]
    assert np.array_equal(a[0][0], flat(b[0][0])) and a[0][1] == b[0][1] == {}
    ends = 0
    for _ in range(steps):
        actions = rng.integers(0, 2, 3)
        x, y = ours.step(actions), theirs.step(actions)
        a.append(x), b.append(y)
        if mode == AutoresetMode.NEXT_STEP and ends:
            break
        assert np.array_equal(x[0], flat(y[0]))
        for u, v in zip(x[1:4], y[1:4]):
            assert np.array_equal(u, v)
        assert_same_infos(x[4], y[4], space)
        done = y[2] | y[3]
        ends += done.sum()
        if mode == AutoresetMode.DISABLED and done.any():
            x, y = ours.reset(options={'reset_mask': done}), theirs.reset(options={'reset_mask': done})
            assert np.array_equal(x[0], flat(y[0])) and x[1] == y[1] == {}
    vec.close()
    return a, b, ends


@pytest.mark.parametrize('name', ['CartPole', 'Dict obs'])
@pytest.mark.parametrize('mode', [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_vector_env_steps_like_sync_vector_env_in_each_mode(name, mode):
    """Observations, rewards, flags and infos (final_obs, final_info and their masks in SAME_STEP;
    the masked resets of DISABLED) are SyncVectorEnv's exactly, across many episode ends."""
    _, _, ends = side_by_side(name, mode)
    assert ends >= 10


@pytest.mark.parametrize('name', ['CartPole', 'Dict obs'])
def test_vector_env_next_step_mode_returns_final_then_a_reset_step(name):
    """NEXT_STEP (the default): SyncVectorEnv's batches until the first episode ends, the final
    observation on that step, then the reset step (reward 0, flags False); the trajectory goes on
    as the PufferEnv's own (compared with the SAME_STEP adapter on the same env and actions)."""
    a, b, _ = side_by_side(name, AutoresetMode.NEXT_STEP)
    assert A.GymnasiumVectorEnv(Match()).metadata['autoreset_mode'] == AutoresetMode.NEXT_STEP
    obs, rew, term, trunc, info = a[-1]
    restarted = b[-2][2] | b[-2][3]
    assert restarted.any() and not (term | trunc)[restarted].any() and (rew[restarted] == 0).all()
    vec, _ = gym_vec(name, 3)
    same, nxt = (A.GymnasiumVectorEnv(gym_vec(name, 3)[0], autoreset_mode=m)
                 for m in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP))
    rng = np.random.default_rng(1)
    same.reset(seed=2), nxt.reset(seed=2)
    ended = np.zeros(3, bool)
    for _ in range(200):
        actions = rng.integers(0, 2, 3)
        x, y = same.step(actions), nxt.step(actions)
        done = x[2] | x[3]
        for i in range(3):
            if ended[i]:      # reset step
                assert np.array_equal(y[0][i], x[0][i]) and y[1][i] == 0 and not y[2][i] | y[3][i]
            elif done[i]:
                assert np.array_equal(y[0][i], x[4]['final_obs'][i]) and y[1][i] == x[1][i]
            else:
                assert np.array_equal(y[0][i], x[0][i]) and y[1][i] == x[1][i]
        ended = done & ~ended
    same.close(), nxt.close(), vec.close()


def test_vector_env_disabled_mode_checks_resets():
    env = A.GymnasiumVectorEnv(Match(num_envs=2, episode_length=2), autoreset_mode='Disabled')
    env.reset(seed=0)
    with pytest.raises(APIUsageError, match=r'sub-envs \[0, 1\] that have not ended'):
        env.reset(options={'reset_mask': np.array([True, True])})
    env.step(np.array([0, 0]))
    env.step(np.array([0, 0]))
    with pytest.raises(APIUsageError, match=r'sub-envs \[0, 1\] ended; .*DISABLED reset them'):
        env.step(np.array([0, 0]))
    with pytest.raises(APIUsageError, match='takes no seed'):
        env.reset(seed=3, options={'reset_mask': np.array([True, False])})
    with pytest.raises(APIUsageError, match=r"reset_mask'\] must be a bool array of shape \(2,\)"):
        env.reset(options={'reset_mask': [True, False]})
    env.reset(options={'reset_mask': np.array([True, False])})
    env.reset(options={'reset_mask': np.array([False, True])})
    env.step(np.array([0, 0]))
    with pytest.raises(APIUsageError, match='autoreset_mode is .*expected one of'):
        A.GymnasiumVectorEnv(Match(), autoreset_mode='later')


class Picture(PufferEnv):
    """Two sub-envs whose observation is a 6x6 RGB image; continuous actions in [-1, 1]."""

    def __init__(self, buf=None, seed=0):
        self.single_observation_space = gym.spaces.Box(0, 255, (6, 6, 3), np.uint8)
        self.single_action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.num_agents = 2
        super().__init__(buf)

    def reset(self, seed=None):
        self.t = 0
        self.observations[:] = 7
        return self.observations, []

    def step(self, actions):
        self.t += 1
        self.observations[:] = self.t * 5 % 256
        self.rewards[:] = actions.sum(1)
        self.terminals[:] = self.t % 4 == 0
        return self.observations, self.rewards, self.terminals, self.truncations, []


class Still(gym.Env):
    """A gymnasium.Env with the given spaces that never moves (to build a SyncVectorEnv like ours)."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        return self.observation_space.low.copy(), {}

    def step(self, action):
        return self.observation_space.low.copy(), 0.0, False, False, {}


def cartpoles():
    return pufferlib.vector.make(cartpole, backend='Serial', num_envs=2)


W = gym.wrappers.vector
box = lambda env: gym.spaces.Box(-np.inf, np.inf, env.single_observation_space.shape, np.float32)
VECTOR_WRAPPERS = {
    'VectorizeTransformObservation': (cartpoles, lambda e: W.VectorizeTransformObservation(
        e, gym.wrappers.TransformObservation, func=lambda o: o * 2, observation_space=box(e))),
    'VectorizeTransformAction': (cartpoles, lambda e: W.VectorizeTransformAction(
        e, gym.wrappers.TransformAction, func=lambda a: 1 - a, action_space=e.single_action_space)),
    'VectorizeTransformReward': (cartpoles, lambda e: W.VectorizeTransformReward(
        e, gym.wrappers.TransformReward, func=lambda r: 2 * r)),
    'DictInfoToList': (lambda: Match(num_envs=2, episode_length=2, report_interval=2),
                       W.DictInfoToList),
    'TransformObservation': (cartpoles, lambda e: W.TransformObservation(
        e, lambda o: o * 2, gym.vector.utils.batch_space(box(e), e.num_envs), box(e))),
    'FlattenObservation': (Picture, W.FlattenObservation),
    'GrayscaleObservation': (Picture, W.GrayscaleObservation),
    'ReshapeObservation': (Picture, lambda e: W.ReshapeObservation(e, (3, 36))),
    'RescaleObservation': (lambda: Match(num_envs=2), lambda e: W.RescaleObservation(e, -1, 1)),
    'DtypeObservation': (cartpoles, lambda e: W.DtypeObservation(e, np.float64)),
    'NormalizeObservation': (cartpoles, W.NormalizeObservation),
    'TransformAction': (Picture, lambda e: W.TransformAction(e, lambda a: a / 2)),
    'ClipAction': (Picture, W.ClipAction),
    'RescaleAction': (Picture, lambda e: W.RescaleAction(e, 0, 1)),
    'TransformReward': (cartpoles, lambda e: W.TransformReward(e, lambda r: r - 1)),
    'ClipReward': (Picture, lambda e: W.ClipReward(e, 0, 0.5)),
    'NormalizeReward': (cartpoles, W.NormalizeReward),
    'RecordEpisodeStatistics': (cartpoles, W.RecordEpisodeStatistics),
}
# Not run here: FilterObservation needs Dict/Tuple observations (a PufferEnv observes one array);
# RecordVideo and HumanRendering render (the video work of issue 11 tests them); ArrayConversion,
# JaxToNumpy, JaxToTorch, NumpyToTorch need array_api_compat or jax, and ResizeObservation opencv,
# which are not installed.
NOT_RUN = {'FilterObservation', 'ResizeObservation', 'RecordVideo', 'HumanRendering', 'ArrayConversion', 'JaxToNumpy',
           'JaxToTorch', 'NumpyToTorch'}


def test_every_vector_wrapper_is_listed():
    assert set(W.__all__) == set(VECTOR_WRAPPERS) | NOT_RUN


@pytest.mark.parametrize('name', list(VECTOR_WRAPPERS))
@pytest.mark.parametrize('mode', list(AutoresetMode))
def test_gymnasium_vector_wrappers_work_over_the_adapter(name, mode):
    """Each wrapper of gymnasium.wrappers.vector builds over the adapter in each autoreset mode in
    which it builds over SyncVectorEnv (some refuse SAME_STEP or DISABLED, over theirs too) and steps
    across episode ends; its batches lie in its own spaces."""
    make_env, wrap = VECTOR_WRAPPERS[name]
    inner = A.GymnasiumVectorEnv(make_env(), autoreset_mode=mode)
    sync = SyncVectorEnv([lambda: Still(inner.single_observation_space, inner.single_action_space)],
                         autoreset_mode=mode)
    try:
        wrap(sync)
    except ValueError as refused:
        if 'autoreset_mode' not in str(refused):
            raise
        with pytest.raises(ValueError, match=re.escape(str(refused))):
            wrap(inner)
        return inner.close()
    finally:
        sync.close()
    env = wrap(inner)
    try:
        obs, info = env.reset(seed=1)
        assert obs in env.observation_space
        env.action_space.seed(0)
        ends = 0
        for _ in range(60):
            obs, rew, term, trunc, info = env.step(env.action_space.sample())
            assert obs in env.observation_space and rew.shape == (env.num_envs,)
            done = term | trunc
            ends += done.sum()
            if mode == AutoresetMode.DISABLED and done.any():
                env.reset(options={'reset_mask': done})
        assert ends >= 2
        if name == 'DictInfoToList':
            assert isinstance(info, list) and len(info) == 2
            reports = [i for i in info if 'puffer' in i]
            assert reports and reports[0]['puffer'][0]['n'] >= 1
    finally:
        env.close()


# ------------------------------------------------------------------------------------------------
# PettingZoo ParallelEnv

PARALLEL = {
    'numpy Match x3': lambda: Match(num_envs=3, episode_length=6),
    'native Squared x4': lambda: squared(4),
    'emulated rock-paper-scissors': lambda: E.PettingZooPufferEnv(pz('classic/rps-v2')),
    'emulated KAZ (agents die)': lambda: E.PettingZooPufferEnv(
        pz('butterfly/knights_archers_zombies-v11')),
    'emulated tic-tac-toe (AEC)': lambda: E.PettingZooPufferEnv(pz('classic/tictactoe-v3', 'aec')),
    'emulated CartPole': lambda: E.GymnasiumPufferEnv(gym.make('CartPole-v1')),
}


@pytest.mark.parametrize('name', list(PARALLEL))
def test_parallel_env_passes_parallel_api_test(name, capsys):
    env = A.PettingZooEnv(PARALLEL[name]())
    checked(parallel_api_test, env, num_cycles=600)
    assert 'Passed Parallel API test' in capsys.readouterr().out


def test_parallel_env_agents_leave_when_done_and_return_on_reset():
    env = A.PettingZooEnv(Match(num_envs=3, episode_length=4))
    obs, infos = env.reset(seed=1)
    assert env.agents == env.possible_agents == ['agent_0', 'agent_1', 'agent_2']
    assert set(obs) == set(infos) == set(env.agents)
    assert env.observation_space('agent_1') is env.observation_space('agent_2')
    with pytest.raises(APIUsageError, match="unknown agent 'agent_7'"):
        env.action_space('agent_7')
    for _ in range(3):
        obs, rew, term, trunc, _ = env.step({a: 0 for a in env.agents})
        assert not any(term.values()) and set(obs) == {'agent_0', 'agent_1', 'agent_2'}
    obs, rew, term, trunc, _ = env.step({a: 0 for a in env.agents})
    assert all(term.values()) and env.agents == []
    env.reset()
    assert env.agents == env.possible_agents


def test_parallel_round_trip_is_the_original_pettingzoo_env():
    """PettingZooPufferEnv(PettingZooEnv(PettingZooPufferEnv(rps))) steps like
    PettingZooPufferEnv(rps)."""
    direct = E.PettingZooPufferEnv(pz('classic/rps-v2'), seed=3)
    inner = E.PettingZooPufferEnv(pz('classic/rps-v2'), seed=3)
    twice = E.PettingZooPufferEnv(A.PettingZooEnv(inner), seed=3)
    assert twice.possible_agents == ['player_0', 'player_1']
    assert np.array_equal(direct.reset()[0], twice.reset()[0])
    rng = np.random.default_rng(1)
    for _ in range(40):  # rps truncates after 15 moves: crosses two episode ends
        action = rng.integers(0, 3, 2).astype(np.int32)
        a, b = direct.step(action), twice.step(action)
        for x, y in zip(a[:4], b[:4]):
            assert np.array_equal(x, y)
        assert np.array_equal(direct.masks, twice.masks)


class Blink(PufferEnv):
    """Two agents; agent 1 disappears (mask cleared, no terminal flag) at step 2 and comes back at
    step 4; episodes never end on their own."""

    def __init__(self, buf=None, seed=0):
        self.single_observation_space = gym.spaces.Box(0, 10, (1,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        self.num_agents = 2
        super().__init__(buf)

    def reset(self, seed=None):
        self.t = 0
        self.observations[:] = 0
        self.masks[:] = True
        return self.observations, []

    def step(self, actions):
        self.t += 1
        self.observations[:] = self.t
        self.masks[1] = self.t not in (2, 3)
        self.truncations[:] = self.t == 6
        return self.observations, self.rewards, self.terminals, self.truncations, []


def test_parallel_env_agent_whose_mask_clears_is_done():
    env = A.PettingZooEnv(Blink())
    env.reset()
    obs, rew, term, trunc, _ = env.step({'agent_0': 0, 'agent_1': 0})
    assert term == {'agent_0': False, 'agent_1': False}
    obs, rew, term, trunc, _ = env.step({'agent_0': 0, 'agent_1': 0})
    assert term == {'agent_0': False, 'agent_1': True} and env.agents == ['agent_0']
    for _ in range(3):  # its mask is set again at step 4, but a finished agent never comes back
        obs, rew, term, trunc, _ = env.step({'agent_0': 0})
        assert set(obs) == {'agent_0'}
    obs, rew, term, trunc, _ = env.step({'agent_0': 0})
    assert trunc == {'agent_0': True} and env.agents == []
    checked(parallel_api_test, A.PettingZooEnv(Blink()))


# ------------------------------------------------------------------------------------------------
# Adapters over pufferlib.vector envs

def cartpole(buf=None, seed=0):
    return E.GymnasiumPufferEnv(env_creator=gym.make, env_args=('CartPole-v1',), buf=buf, seed=seed)


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing'])
def test_vector_env_over_pufferlib_vector_matches_sync_vector_env(backend):
    """Batches and final observations (`final_obs`, `_final_obs`) as SyncVectorEnv's in SAME_STEP
    mode: the vector env passes the emulated envs' final_observations through."""
    vec = pufferlib.vector.make(cartpole, backend=backend, num_envs=4, num_workers=2)
    try:
        ours = A.GymnasiumVectorEnv(vec, autoreset_mode=AutoresetMode.SAME_STEP)
        theirs = SyncVectorEnv([lambda: gym.make('CartPole-v1')] * 4,
                               autoreset_mode=AutoresetMode.SAME_STEP)
        rng = np.random.default_rng(0)
        actions = [rng.integers(0, 2, 4) for _ in range(120)]
        a = run_vector(ours, actions, seed=6)
        b = run_vector(theirs, actions, seed=[6, 7, 8, 9])
        assert_same_batches(a, b)
        for x, y in zip(a[1:], b[1:]):
            assert ('final_obs' in x[4]) == ('final_obs' in y[4])
            if 'final_obs' in y[4]:
                assert np.array_equal(x[4]['_final_obs'], y[4]['_final_obs'])
                for i in np.flatnonzero(y[4]['_final_obs']):
                    assert np.array_equal(x[4]['final_obs'][i], y[4]['final_obs'][i])
        assert sum(x[2].sum() for x in a[1:]) >= 10
    finally:
        vec.close()


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing'])
def test_parallel_env_over_pufferlib_vector_passes_parallel_api_test(backend):
    rps = functools.partial(E.PettingZooPufferEnv, env_creator=pettingzoo.make,
                            env_args=('parallel', 'classic/rps-v2'))
    vec = pufferlib.vector.make(rps, backend=backend, num_envs=2, num_workers=2)
    try:
        env = A.PettingZooEnv(vec)
        assert env.possible_agents == [f'agent_{i}' for i in range(4)]
        checked(parallel_api_test, env, num_cycles=100)
    finally:
        vec.close()
