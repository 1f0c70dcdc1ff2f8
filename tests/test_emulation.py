"""Emulation in: Gymnasium and PettingZoo envs as PufferEnvs.

Real envs nobody here wrote are driven side by side with a plain loop over the raw env (reset in the
same step when an episode ends) and must agree step for step; structured layouts are checked by
property-based round trips against a reference flattening written here."""
import functools
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pettingzoo
import pytest
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pufferlib import APIUsageError
from pufferlib import emulation as E
from pufferlib import spaces as S
from tests.helpers import pz, time_aware_cartpole


# ------------------------------------------------------------------------------------------------
# Helpers: a reference comparison of native values (structure, dtype, values)

def assert_same(got, want, path='obs'):
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), path
        for k in want:
            assert_same(got[k], want[k], f'{path}[{k!r}]')
    elif isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f'{path}[{i}]')
    else:
        want = np.asarray(want)
        got = np.asarray(got)
        assert got.shape == want.shape, (path, got.shape, want.shape)
        if want.dtype.kind in 'iub' and want.dtype != object:
            assert np.array_equal(got, want), (path, got, want)
        else:
            assert got.dtype == want.dtype, (path, got.dtype, want.dtype)
            assert np.array_equal(got, want), (path, got, want)


ENVS = {
    'CartPole-v1': lambda: gym.make('CartPole-v1'),
    'Pendulum-v1': lambda: gym.make('Pendulum-v1'),
    'Blackjack-v1': lambda: gym.make('Blackjack-v1'),
    'Taxi-v4': lambda: gym.make('Taxi-v4'),
    'FrozenLake-v1': lambda: gym.make('FrozenLake-v1'),
    'TimeAware-CartPole': time_aware_cartpole,
}


def reference_rollout(make, seed, actions):
    """The raw env with same-step auto-reset written out by hand."""
    env = make()
    first, _ = env.reset(seed=seed)
    steps = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        final = None
        if terminated or truncated:
            final = obs
            obs, _ = env.reset()
        steps.append((obs, reward, terminated, truncated, final))
    return first, steps


def native_actions(space, n, seed):
    space.seed(seed)
    return [space.sample() for _ in range(n)]


# ------------------------------------------------------------------------------------------------
# Agreement with the raw envs

@pytest.mark.parametrize('name', list(ENVS))
def test_matches_raw_env_step_for_step(name):
    make = ENVS[name]
    steps = 600 if name != 'Pendulum-v1' else 450
    env = E.GymnasiumPufferEnv(env_creator=make, seed=5)
    native_space = env.emulated['observation_space']
    actions = native_actions(make().action_space, steps, seed=1)
    first, reference = reference_rollout(make, 5, actions)

    obs, infos = env.reset()
    assert obs is env.observations and infos == []
    assert_same(S.nativize(obs[0], native_space), first)
    ends = 0
    for action, (r_obs, r_rew, r_term, r_trunc, r_final) in zip(actions, reference):
        o, rew, term, trunc, _ = env.step(np.asarray(action).reshape(env.actions.shape))
        assert o is env.observations and rew is env.rewards
        assert_same(S.nativize(o[0], native_space), r_obs)
        assert rew[0] == np.float32(r_rew)
        assert term[0] == r_term and trunc[0] == r_trunc
        assert env.masks[0]
        if r_final is not None:
            ends += 1
            assert_same(S.nativize(env.final_observations[0], native_space), r_final)
        assert o[0] in env.single_observation_space
    assert ends > 0, 'the rollout must cross an episode end'


def test_flattened_spaces_of_real_envs():
    env = E.GymnasiumPufferEnv(gym.make('Blackjack-v1'))
    assert env.single_observation_space == spaces.Box(np.array([0, 0, 0]), np.array([31, 10, 1]),
                                                      (3,), np.int64)
    env = E.GymnasiumPufferEnv(gym.make('Taxi-v4'))
    assert env.single_observation_space == spaces.Box(0, 499, (1,), np.int64)
    assert env.single_action_space == spaces.Discrete(6) and env.actions.dtype == np.int32
    env = E.GymnasiumPufferEnv(time_aware_cartpole())
    # float32[4] at 0, int32[1] at 16: mixed dtypes give the row's 20 raw bytes
    assert env.single_observation_space == spaces.Box(0, 255, (20,), np.uint8)
    assert env.emulated['observation_dtype'].itemsize == 20
    env = E.GymnasiumPufferEnv(gym.make('CartPole-v1'))
    assert env.single_observation_space is env.env.observation_space
    assert env.obs_dtype is None


def test_episode_stats_once_per_episode_as_means():
    steps, interval = 700, 50
    make = ENVS['CartPole-v1']
    actions = native_actions(make().action_space, steps, seed=3)
    _, reference = reference_rollout(make, 11, actions)
    env = E.GymnasiumPufferEnv(env_creator=make, seed=11, report_interval=interval)
    env.reset()
    episode_return = episode_length = 0
    window = []
    reports = expected = 0
    for t, (action, (_, r, term, trunc, _)) in enumerate(zip(actions, reference), 1):
        infos = env.step(np.array([action]))[4]
        episode_return += r
        episode_length += 1
        if term or trunc:
            window.append((episode_return, episode_length))
            episode_return = episode_length = 0
        if t % interval or not window:
            assert infos == []
            continue
        assert len(infos) == 1
        info = infos[0]
        assert info['n'] == len(window)
        assert info['episode_return'] == pytest.approx(np.mean([w[0] for w in window]))
        assert info['episode_length'] == pytest.approx(np.mean([w[1] for w in window]))
        reports += 1
        expected += len(window)
        window = []
    assert reports >= 10 and expected > 20


def test_final_info_numbers_are_averaged():
    class Scored(gym.Wrapper):
        def step(self, action):
            obs, r, term, trunc, info = self.env.step(action)
            if term or trunc:
                info = {'score': 2.0, 'nested': {'hits': np.int64(3)}, 'text': 'ignored',
                        'array': np.ones(3)}
            return obs, r, term, trunc, info

    env = E.GymnasiumPufferEnv(Scored(gym.make('CartPole-v1')), report_interval=1)
    env.reset()
    reports = []
    for _ in range(200):
        reports += env.step(np.array([0]))[4]
    assert reports and all(set(r) == {'score', 'nested/hits', 'episode_return', 'episode_length', 'n'}
                           and r['score'] == 2.0 and r['nested/hits'] == 3.0 and r['n'] == 1
                           for r in reports)


# ------------------------------------------------------------------------------------------------
# Construction, seeding, misuse

class RecordReset(gym.Wrapper):
    def __init__(self, env):
        super().__init__(env)
        self.calls = []

    def reset(self, **kwargs):
        self.calls.append(kwargs)
        return self.env.reset(**kwargs)


def test_seeding_passes_seed_and_never_none():
    env = E.GymnasiumPufferEnv(RecordReset(gym.make('CartPole-v1')), seed=7)
    calls = env.env.calls
    env.reset()
    assert calls == [{'seed': 7}]
    env.reset(seed=3)
    assert calls[-1] == {'seed': 3}
    env.reset()
    assert calls[-1] == {}
    while len(calls) == 3:  # the auto-reset passes no seed either
        env.step(np.array([0]))
    assert calls[-1] == {}


def test_same_seed_same_trajectory_and_constructor_seed():
    def rollout(**kw):
        env = E.GymnasiumPufferEnv(gym.make('CartPole-v1'), **kw)
        out = [env.reset()[0].copy()]
        for t in range(60):
            out.append(env.step(np.array([t % 2]))[0].copy())
        return np.array(out)
    assert np.array_equal(rollout(seed=4), rollout(seed=4))
    assert not np.array_equal(rollout(seed=4), rollout(seed=5))
    env = E.GymnasiumPufferEnv(gym.make('CartPole-v1'), seed=99)
    assert np.array_equal(env.reset(seed=4)[0], E.GymnasiumPufferEnv(gym.make('CartPole-v1'),
                                                                    seed=4).reset()[0])


@pytest.mark.parametrize('kwargs, match', [
    (dict(), 'pass env=an env instance or env_creator'),
    (dict(env=gym.make('CartPole-v1'), env_creator=gym.make), 'not both'),
    (dict(env=gym.Env), 'env is the class Env, not an instance'),
    (dict(env_creator='CartPole-v1'), 'env_creator is a str, not a callable'),
    (dict(env_creator=gym.make, env_args='CartPole-v1'), 'env_args must be a tuple or list'),
    (dict(env_creator=gym.make, env_args=('CartPole-v1',), env_kwargs=[1]),
     'env_kwargs must be a dict'),
    (dict(env_creator=lambda: 42), 'env_creator returned int, which is not an env'),
    (dict(env=gym.make('CartPole-v1'), env_args=(1,)), 'env_args and env_kwargs apply to env_creator'),
    (dict(env=gym.make('CartPole-v1'), report_interval=0), 'report_interval is 0'),
])
def test_bad_construction_is_api_usage_error(kwargs, match):
    with pytest.raises(APIUsageError, match=match):
        E.GymnasiumPufferEnv(**kwargs)


def test_is_a_pufferenv_with_adopted_buffers():
    import pufferlib
    specs = pufferlib.buffer_specs(spaces.Box(-np.inf, np.inf, (4,), np.float32),
                                   spaces.Discrete(2), 1)
    buf = {name: np.zeros(shape, dtype) for name, (shape, dtype) in specs.items()}
    buf['final_observations'] = np.zeros((1, 4), np.float32)
    env = E.GymnasiumPufferEnv(gym.make('CartPole-v1'), buf=buf)
    for name, arr in buf.items():
        assert getattr(env, name) is arr
    # What PufferEnv gives it: the joint spaces, agent ids, and the vector API over those buffers.
    assert env.observation_space == pufferlib.joint_space(env.single_observation_space, 1)
    assert env.action_space == spaces.MultiDiscrete([2]) and env.agent_ids.tolist() == [0]
    env.async_reset(3)
    obs, rewards, terminals, truncations, infos, ids, masks = env.recv()
    assert obs is buf['observations'] and masks is buf['masks'] and masks.all() and infos == []
    assert np.array_equal(obs[0], gym.make('CartPole-v1').reset(seed=3)[0])
    env.reset()
    while not buf['terminals'][0]:
        env.step(np.array([1]))
    assert buf['final_observations'].any()
    bad = dict(buf, final_observations=np.zeros((1, 5), np.float32))
    with pytest.raises(APIUsageError, match=r"final_observations.*expected shape \(1, 4\)"):
        E.GymnasiumPufferEnv(gym.make('CartPole-v1'), buf=bad)


def test_step_before_reset_and_bad_actions():
    env = E.GymnasiumPufferEnv(gym.make('CartPole-v1'))
    with pytest.raises(APIUsageError, match='call reset'):
        env.step(np.array([0]))
    env.reset()
    with pytest.raises(APIUsageError, match=r'shape \(2,\), expected \(1,\)'):
        env.step(np.array([0, 1]))
    with pytest.raises(APIUsageError, match='float64'):
        env.step(np.array([0.5]))


def test_unsupported_spaces_are_named():
    class SequenceEnv(gym.Env):
        observation_space = spaces.Sequence(spaces.Discrete(2))
        action_space = spaces.Discrete(2)
    with pytest.raises(APIUsageError, match='Sequence.*not supported'):
        E.GymnasiumPufferEnv(SequenceEnv())

    class Mixed(gym.Env):
        observation_space = spaces.Box(0, 1, (2,), np.float32)
        action_space = spaces.Dict({'move': spaces.Discrete(3), 'force': spaces.Box(-1, 1, (1,))})
    with pytest.raises(APIUsageError, match='mixes discrete and continuous'):
        E.GymnasiumPufferEnv(Mixed())


def test_text_is_fixed_length_character_codes_restored_to_the_string():
    space = spaces.Dict({'mission': spaces.Text(6, min_length=0, charset='abc '),
                          'n': spaces.Discrete(3, dtype=np.int32)})
    box, _ = S.emulate_observation_space(space)
    assert box.dtype == np.int32 and box.shape == (7,)
    assert list(box.high) == [4] * 6 + [2] and list(box.low) == [0] * 7
    row = S.flatten(space, {'mission': 'ca b', 'n': 2})
    assert list(row) == [2, 0, 3, 1, 4, 4, 2]       # charset indices, padded with len(charset)
    assert S.nativize(row, space) == {'mission': 'ca b', 'n': 2}
    empty = S.flatten(space, {'mission': '', 'n': 0})
    batch = S.nativize(np.stack([row, empty, row]), space)
    assert list(batch['mission']) == ['ca b', '', 'ca b'] and list(batch['n']) == [2, 0, 2]
    assert S.nativize(S.flatten(space['mission'], 'abcabc'), space['mission']) == 'abcabc'
    with pytest.raises(APIUsageError, match=r"observation\['mission'\] is str 'abd'"):
        S.flatten(space, {'mission': 'abd', 'n': 0})
    with pytest.raises(APIUsageError, match='at most 6 characters'):
        S.flatten(space, {'mission': 'abcabca', 'n': 0})


class OldCountdown:
    """An old-API Gym env (gym < 0.26, as crafter ships): seed(), obs-only reset, 4-value step whose
    time limit shows as info['TimeLimit.truncated']. Counts down from 3 + seed % 3; action 1 ends
    the episode (terminal), reaching 0 is a time-limit truncation."""
    observation_space = spaces.Box(0, 10, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def seed(self, seed):
        self.start = 3 + seed % 3

    def reset(self):
        self.left = getattr(self, 'start', 3)
        return np.array([self.left], np.float32)

    def step(self, action):
        self.left -= 1
        stop, timeout = action == 1, self.left == 0 and action != 1
        info = {'TimeLimit.truncated': True} if timeout else {}
        return np.array([self.left], np.float32), float(self.left), stop or timeout, info


def test_old_api_env_is_refused_with_the_way_to_convert_it():
    with pytest.raises(APIUsageError, match=r"OldCountdown is an old-API Gym env \(its reset\(\) takes "
                                            r"no seed\): convert it with shimmy: .*old_api=True.*"
                                            r"GymV21Environment-v0.*shimmy\[gym-v21\]"):
        E.GymnasiumPufferEnv(OldCountdown())

    class GymSpaces(OldCountdown):   # the old gym package's spaces, which are not Gymnasium's
        observation_space = action_space = object()
    class NewSignature(GymSpaces):
        def reset(self, seed=None):
            return super().reset()
    with pytest.raises(APIUsageError, match=r"has no gymnasium observation_space.*old_api=True"):
        E.GymnasiumPufferEnv(NewSignature())
    with pytest.raises(APIUsageError, match=r"old_api=True.*gym \(not Gymnasium\) spaces.*"
                                            r"shimmy\[gym-v21\]"):
        E.GymnasiumPufferEnv(GymSpaces(), old_api=True)


def test_old_api_env_converted_with_old_api_true():
    """Seeded through seed(), done split into terminal and truncation, reset in the same step."""
    env = E.GymnasiumPufferEnv(OldCountdown(), old_api=True, seed=2)
    assert env.name == 'OldCountdown'
    obs, _ = env.reset()
    assert obs[0, 0] == 5
    flags = []
    for action in [0, 0, 0, 0, 0, 0, 1]:
        obs, rew, term, trunc, _ = env.step(np.array([action]))
        flags.append((obs[0, 0], rew[0], term[0], trunc[0]))
    assert flags == [(4, 4, False, False), (3, 3, False, False), (2, 2, False, False),
                     (1, 1, False, False), (5, 0, False, True), (4, 4, False, False),
                     (5, 3, True, False)]
    assert env.final_observations[0, 0] == 3


def minigrid_env(name):
    import minigrid  # noqa: F401  (registers the MiniGrid envs)
    return gym.make(name)


@pytest.mark.parametrize('name', ['MiniGrid-Fetch-5x5-N2-v0', 'BabyAI-GoToLocal-v0'])
@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing'])
def test_minigrid_missions_through_emulation_and_vector(name, backend):
    """MiniGrid's Dict observation with its MissionSpace (not a gymnasium Text) as shipped: the
    image, direction and mission string restored by nativize are the raw envs' own, step for step."""
    import pufferlib.vector
    creator = functools.partial(E.GymnasiumPufferEnv, env_creator=minigrid_env, env_args=(name,))
    raw = [minigrid_env(name) for _ in range(2)]
    with pufferlib.vector.make(creator, backend=backend, num_envs=2, num_workers=2) as vec:
        space = E.GymnasiumPufferEnv(minigrid_env(name)).emulated['observation_space']
        obs, _ = vec.reset(seed=3)
        want = [env.reset(seed=3 + k)[0] for k, env in enumerate(raw)]
        for t in range(40):
            native = S.nativize(obs, space)
            for k in range(2):
                assert native['mission'][k] == want[k]['mission']
                assert np.array_equal(native['image'][k], want[k]['image'])
                assert native['direction'][k] == want[k]['direction']
            actions = np.array([t % 3, (t + 1) % 3])
            obs = vec.step(actions)[0]
            want = [env.step(int(a))[0] for env, a in zip(raw, actions)]


def test_pettingzoo_env_into_gymnasium_is_named():
    with pytest.raises(APIUsageError, match='use PettingZooPufferEnv'):
        E.GymnasiumPufferEnv(pz('classic/rps-v2'))
    with pytest.raises(APIUsageError, match='use GymnasiumPufferEnv'):
        E.PettingZooPufferEnv(gym.make('CartPole-v1'))


def test_import_does_not_import_torch():
    code = ('import sys, pufferlib.spaces, pufferlib.emulation, pufferlib.adapters; '
            'print("torch" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'False'


def test_moved_names_still_import_with_a_warning():
    """The layout moved to pufferlib.spaces (its torch twin to pufferlib.spaces_torch), the adapters
    to pufferlib.adapters: the old paths give the same objects for one release, with a
    DeprecationWarning naming the new home."""
    for name in ('nativize', 'flatten', 'struct_dtype', 'emulate_observation_space',
                 'emulate_action_space', 'observation_writer'):
        with pytest.warns(DeprecationWarning, match=rf'pufferlib.emulation.{name} moved to '
                                                    rf'pufferlib.spaces.{name}'):
            assert getattr(E, name) is getattr(S, name)
    from pufferlib import adapters
    for name in ('GymnasiumEnv', 'GymnasiumVectorEnv', 'PettingZooEnv'):
        with pytest.warns(DeprecationWarning, match=rf'moved to pufferlib.adapters.{name}'):
            assert getattr(E, name) is getattr(adapters, name)
    with pytest.raises(AttributeError, match="has no attribute 'nativise'"):
        E.nativise
    pytest.importorskip('torch')
    from pufferlib import spaces_torch
    with pytest.warns(DeprecationWarning, match='moved to pufferlib.spaces_torch.nativize'):
        from pufferlib.emulation_torch import nativize
    assert nativize is spaces_torch.nativize


# ------------------------------------------------------------------------------------------------
# Structured actions

class RecordActions(gym.Env):
    """Records the actions the wrapped side receives."""
    observation_space = spaces.Box(0, 1, (1,), np.float32)

    def __init__(self, action_space):
        self.action_space = action_space
        self.received = []

    def reset(self, seed=None, options=None):
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.received.append(action)
        return np.zeros(1, np.float32), 0.0, False, False, {}


def test_structured_actions_are_rebuilt_before_env_step():
    space = spaces.Dict({'move': spaces.Discrete(3, start=-1), 'buttons': spaces.MultiBinary(2),
                         'aim': spaces.Tuple((spaces.Discrete(4), spaces.MultiDiscrete([2, 5])))})
    env = E.GymnasiumPufferEnv(RecordActions(space))
    # Dict keys are sorted by gymnasium: aim (1 + 2 values), buttons (2), move (1)
    assert env.single_action_space == spaces.MultiDiscrete([4, 2, 5, 2, 2, 3],
                                                           start=[0, 0, 0, 0, 0, -1])
    env.reset()
    env.step(np.array([[3, 1, 4, 1, 0, -1]], np.int32))
    got = env.env.received[-1]
    assert_same(got, {'aim': (np.int64(3), np.array([1, 4])), 'buttons': np.array([1, 0], np.int8),
                      'move': np.int64(-1)})
    assert got in space

    env = E.GymnasiumPufferEnv(RecordActions(spaces.MultiBinary(3)))
    assert env.single_action_space == spaces.MultiDiscrete([2, 2, 2])
    env.reset()
    env.step(np.array([[1, 0, 1]]))
    assert_same(env.env.received[-1], np.array([1, 0, 1], np.int8))

    boxes = spaces.Tuple((spaces.Box(-1, 1, (2,), np.float32), spaces.Box(0, 5, (), np.float32)))
    env = E.GymnasiumPufferEnv(RecordActions(boxes))
    assert env.single_action_space == spaces.Box(np.array([-1, -1, 0]), np.array([1, 1, 5]), (3,),
                                                 np.float32)
    env.reset()
    env.step(np.array([[0.5, -0.5, 4.0]], np.float32))
    assert_same(env.env.received[-1], (np.array([0.5, -0.5], np.float32), np.array(4.0, np.float32)))


# ------------------------------------------------------------------------------------------------
# Fault-matrix row 15: bad observations from the wrapped env

class Faulty(gym.Env):
    observation_space = spaces.Box(-1, 1, (4,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, fault, at_step):
        self.fault, self.at_step, self.t = fault, at_step, 0

    def _obs(self):
        obs = np.full(4, self.t / 1000, np.float32)
        if self.t == self.at_step:
            obs = {'wrong_dtype': obs.astype(np.float64), 'wrong_shape': np.zeros(5, np.float32),
                   'outside': np.full(4, 7, np.float32), 'list': [0.0] * 4}[self.fault]
        return obs

    def reset(self, seed=None, options=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, False, False, {}


@pytest.mark.parametrize('fault, match', [
    ('wrong_dtype', r'a float64 array of shape \(4,\), expected a float32 array of shape \(4,\)'),
    ('wrong_shape', r'a float32 array of shape \(5,\), expected a float32 array of shape \(4,\)'),
    ('list', r'is list \[0\.0, .*expected a float32 array'),
    ('outside', r'outside Box'),
])
@pytest.mark.parametrize('at_step', [0, 3])
def test_bad_observation_raises_on_first_occurrence(fault, match, at_step):
    env = E.GymnasiumPufferEnv(Faulty(fault, at_step))
    where = 'reset()' if at_step == 0 else 'step()'
    if at_step:
        env.reset()
        for _ in range(at_step - 1):
            env.step(np.array([0]))
    before = env.observations.copy()
    with pytest.raises(APIUsageError, match=match) as info:
        env.reset() if at_step == 0 else env.step(np.array([0]))
    message = str(info.value)
    assert 'GymnasiumPufferEnv(Faulty)' in message and where in message
    if fault != 'outside':
        assert np.array_equal(env.observations, before), 'nothing is written from a bad observation'


def test_space_contains_only_on_first_steps_unless_asked():
    late = E.CHECK_STEPS + 5
    env = E.GymnasiumPufferEnv(Faulty('outside', late))
    env.reset()
    for _ in range(late):
        env.step(np.array([0]))  # past the first steps only shape and dtype are checked
    assert env.observations[0, 0] == 7
    env = E.GymnasiumPufferEnv(Faulty('outside', late), check_space=True)
    env.reset()
    with pytest.raises(APIUsageError, match='outside Box'):
        for _ in range(late):
            env.step(np.array([0]))
    env = E.GymnasiumPufferEnv(Faulty('wrong_dtype', late))
    env.reset()
    with pytest.raises(APIUsageError, match='float64'):  # dtype and shape: checked on every step
        for _ in range(late):
            env.step(np.array([0]))


def test_discrete_observation_must_be_an_integer():
    class FloatTaxi(gym.ObservationWrapper):
        def observation(self, obs):
            return float(obs)
    env = E.GymnasiumPufferEnv(FloatTaxi(gym.make('Taxi-v4')))
    with pytest.raises(APIUsageError, match=r'float .*expected an integer \(Discrete\(500\)\)'):
        env.reset()


def test_nested_bad_observation_names_the_path():
    class Nested(gym.Env):
        observation_space = spaces.Dict({'a': spaces.Tuple((spaces.Discrete(3),
                                                            spaces.Box(0, 1, (2,), np.float32)))})
        action_space = spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            return {'a': (1, np.zeros(2, np.float64))}, {}
    with pytest.raises(APIUsageError, match=r"observation\['a'\]\[1\] is a float64 array"):
        E.GymnasiumPufferEnv(Nested()).reset()

    class MissingKey(Nested):
        def reset(self, seed=None, options=None):
            return {'b': 1}, {}
    with pytest.raises(APIUsageError, match=r"expected a dict with keys \['a'\]"):
        E.GymnasiumPufferEnv(MissingKey()).reset()


# ------------------------------------------------------------------------------------------------
# Property-based round trips over random nested spaces

FLOATS = [np.float16, np.float32, np.float64]
INTS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.uint32]
shapes = st.lists(st.integers(1, 3), max_size=2).map(tuple)


def box(dtype, shape):
    if dtype is bool:
        return spaces.Box(0, 1, shape, bool)
    if np.dtype(dtype).kind == 'f':
        return spaces.Box(-10, 10, shape, dtype)
    info = np.iinfo(dtype)
    return spaces.Box(max(info.min, -100), min(info.max, 100), shape, dtype)


boxes = st.builds(box, st.sampled_from(FLOATS + INTS + [bool]), shapes)
discretes = st.builds(lambda n, s: spaces.Discrete(n, start=s), st.integers(1, 9), st.integers(-4, 4))
multidiscretes = st.builds(spaces.MultiDiscrete, st.lists(st.integers(1, 6), min_size=1, max_size=4))
multibinaries = st.builds(spaces.MultiBinary, st.integers(1, 5))
keys = st.text('abcxyz', min_size=1, max_size=3)


def nested(leaves):
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: spaces.Tuple(c)),
        st.dictionaries(keys, children, min_size=1, max_size=3).map(spaces.Dict)), max_leaves=8)


obs_spaces = nested(st.one_of(boxes, discretes, multidiscretes, multibinaries))
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def leaves_of(sample):
    if isinstance(sample, dict):
        return [x for v in sample.values() for x in leaves_of(v)]
    if isinstance(sample, tuple):
        return [x for v in sample for x in leaves_of(v)]
    return [np.asarray(sample)]


@PROPERTY
@given(obs_spaces, st.integers(0, 2**31 - 1))
def test_flatten_nativize_round_trip(space, seed):
    space.seed(seed)
    samples = [space.sample() for _ in range(3)]
    box_space, row_dtype = S.emulate_observation_space(space)
    rows = np.stack([S.flatten(space, s) for s in samples])
    assert rows.shape == (3, *box_space.shape) and rows.dtype == box_space.dtype
    for row, sample in zip(rows, samples):
        assert np.asarray(row) in box_space
        assert_same(S.nativize(row, space), sample)
    if row_dtype is not None and box_space.dtype != np.uint8:
        # one dtype: the row is the leaves' values in space order (reference flattening)
        reference = np.concatenate([leaf.ravel() for leaf in leaves_of(samples[0])])
        assert np.array_equal(rows[0], reference.astype(box_space.dtype))
    batch = S.nativize(rows, space)  # a batch gives leaves with the batch axis in front
    for i, sample in enumerate(samples):
        assert all(np.array_equal(b[i], s) for b, s in zip(leaves_of(batch), leaves_of(sample)))


@PROPERTY
@given(obs_spaces, st.integers(0, 2**31 - 1))
def test_torch_nativize_matches_numpy(space, seed):
    torch = pytest.importorskip('torch')
    from pufferlib.spaces_torch import nativize
    space.seed(seed)
    rows = np.stack([S.flatten(space, space.sample()) for _ in range(4)])
    expected = leaves_of(S.nativize(rows, space))
    got = leaves_of(nativize(torch.from_numpy(rows), space))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype and np.array_equal(g, e)
    if rows.ndim == 2:  # a slice that starts off its leaves' alignment still works (copied)
        shifted = torch.from_numpy(np.concatenate([np.zeros((4, 1), rows.dtype), rows], 1))[:, 1:]
        got = leaves_of(nativize(shifted, space))
        assert all(np.array_equal(g, e) for g, e in zip(got, expected))


discrete_actions = nested(st.one_of(discretes, multidiscretes, multibinaries))
box_actions = nested(st.builds(lambda shape: spaces.Box(-2, 3, shape, np.float32), shapes))


@PROPERTY
@given(st.one_of(discrete_actions, box_actions), st.integers(0, 2**31 - 1))
def test_action_round_trip(space, seed):
    import pufferlib
    flat_space, read = S.emulate_action_space(space)
    dtype = pufferlib.action_dtype(flat_space)
    space.seed(seed)
    for _ in range(3):
        action = space.sample()
        reference = np.concatenate([leaf.ravel() for leaf in leaves_of(action)]).astype(dtype)
        reference = reference.reshape(flat_space.shape)
        assert reference in flat_space
        rebuilt = read(reference)
        assert_same(rebuilt, action)
        assert rebuilt in space
    flat_space.seed(seed)
    assert read(np.asarray(flat_space.sample(), dtype)) in space


# ------------------------------------------------------------------------------------------------
# PettingZoo (envs made through PettingZoo's registry; the butterfly ones need pygame-ce and pymunk)

def pz_reference(make, seed, actions_per_step):
    env = make()
    obs, _ = env.reset(seed=seed)
    out = [(obs, None, None, None, None)]
    for actions in actions_per_step:
        obs, rew, term, trunc, _ = env.step({a: actions[a] for a in env.agents})
        final = None
        if not env.agents:
            final = obs
            obs, _ = env.reset()
        out.append((obs, rew, term, trunc, final))
    return out


def check_pz_against_reference(make, steps, seed=3):
    env = E.PettingZooPufferEnv(env_creator=make, seed=seed)
    agents = env.possible_agents
    space = env.emulated['observation_space']
    act_space = env.emulated['action_space']
    act_space.seed(seed)
    actions = [{a: act_space.sample() for a in agents} for _ in range(steps)]
    reference = pz_reference(make, seed, actions)
    env.reset()
    ended = 0
    for t, (r_obs, r_rew, r_term, r_trunc, r_final) in enumerate(reference):
        if t:
            batch = np.stack([np.asarray(actions[t - 1][a]) for a in agents])
            env.step(batch.astype(env.actions.dtype).reshape(env.actions.shape))
        present = [a in r_obs for a in agents]
        for i, agent in enumerate(agents):
            if agent in r_obs:
                assert_same(S.nativize(env.observations[i], space), r_obs[agent])
            elif r_final is None:
                assert not env.observations[i].any()
            if t and agent in r_term:
                assert env.rewards[i] == np.float32(r_rew[agent])
                assert env.terminals[i] == r_term[agent] and env.truncations[i] == r_trunc[agent]
            elif t and r_final is None:
                assert env.terminals[i] and not env.masks[i] and env.rewards[i] == 0
        if r_final is None:
            assert list(env.masks) == present
        else:
            ended += 1
            for i, agent in enumerate(agents):
                if agent in r_final:
                    assert_same(S.nativize(env.final_observations[i], space), r_final[agent])
    return env, ended


def test_pettingzoo_rock_paper_scissors_matches_raw_env():
    # Discrete observations; a game is 15 moves, then truncated
    env, ended = check_pz_against_reference(lambda: pz('classic/rps-v2'), 40)
    assert ended == 2
    assert env.single_observation_space == spaces.Box(0, 3, (1,), np.int64)


def test_pettingzoo_agents_that_die_are_padded_and_masked():
    env, ended = check_pz_against_reference(lambda: pz('butterfly/knights_archers_zombies-v11'), 260)
    assert ended >= 1  # agents die one by one before the game ends, then the game auto-resets


def test_pettingzoo_box_actions_and_image_observations():
    env, _ = check_pz_against_reference(lambda: pz('butterfly/pistonball-v6'), 3)
    assert env.num_agents == 20 and env.actions.shape == (20, 1)
    assert env.observations.shape == (20, 457, 120, 3) and env.observations.dtype == np.uint8


def test_pettingzoo_turn_based_aec_env_is_converted():
    from pettingzoo.utils.conversions import turn_based_aec_to_parallel
    env = E.PettingZooPufferEnv(pz('classic/tictactoe-v3', 'aec'), seed=2, report_interval=1)
    raw = turn_based_aec_to_parallel(pz('classic/tictactoe-v3', 'aec'))
    raw_obs, _ = raw.reset(seed=2)
    space = env.emulated['observation_space']
    assert env.single_observation_space.dtype == np.int8  # Dict of int8 action_mask and board
    env.reset()
    rng = np.random.default_rng(0)
    games = 0
    for _ in range(40):
        native = S.nativize(env.observations, space)
        for i, agent in enumerate(env.possible_agents):
            assert_same({k: v[i] for k, v in native.items()}, raw_obs[agent])
        mover = [i for i in range(2) if native['action_mask'][i].any()][0]
        legal = np.flatnonzero(native['action_mask'][mover])
        move = int(rng.choice(legal))
        raw_obs, raw_rew, raw_term, _, _ = raw.step({a: move for a in raw.agents})
        if not raw.agents:
            raw_obs, _ = raw.reset()
        infos = env.step(np.array([move, move]))[4]
        assert [env.rewards[i] for i in range(2)] == [raw_rew[a] for a in env.possible_agents]
        if any(raw_term.values()):
            games += 1
            assert env.terminals.all() and infos[0]['n'] == 1 and infos[0]['episode_length'] >= 5
    assert games >= 3


def test_pettingzoo_dict_actions_and_misuse():
    env = E.PettingZooPufferEnv(pz('classic/rps-v2'))
    env.reset()
    env.step({'player_0': 1, 'player_1': 2})
    assert list(env.actions) == [1, 2]
    with pytest.raises(APIUsageError, match=r"unknown agent 'player_9'"):
        env.step({'player_9': 1})
    with pytest.raises(APIUsageError, match=r'shape \(3,\), expected \(2,\)'):
        env.step(np.array([0, 1, 2]))
    with pytest.raises(APIUsageError, match='float64'):
        env.step({'player_0': 1.5})


def test_pettingzoo_agents_must_share_spaces():
    from pettingzoo.utils.env import ParallelEnv

    class Uneven(ParallelEnv):
        possible_agents = ['a', 'b']

        def observation_space(self, agent):
            return spaces.Box(0, 1, (2 if agent == 'a' else 3,), np.float32)

        def action_space(self, agent):
            return spaces.Discrete(2)
    with pytest.raises(APIUsageError, match=r"agent 'b' has observation space Box.*\(3,\).*share "
                                            r"one space, or pass pad_spaces=True"):
        E.PettingZooPufferEnv(Uneven())


class Unequal(pettingzoo.ParallelEnv):
    """Agent 'big' observes a (2, 3) Box and has 4 actions, 'small' a (1, 2) Box and 2 actions.
    Observations count steps (agent 'small' negated); the episode truncates after 3 steps."""
    metadata = {'name': 'unequal'}
    possible_agents = ['big', 'small']
    spaces = {'big': (spaces.Box(-1, 9, (2, 3), np.float32), spaces.Discrete(4)),
              'small': (spaces.Box(-9, 1, (1, 2), np.float32), spaces.Discrete(2))}

    def observation_space(self, agent):
        return self.spaces[agent][0]

    def action_space(self, agent):
        return self.spaces[agent][1]

    def _obs(self):
        return {'big': np.full((2, 3), self.t, np.float32), 'small': np.full((1, 2), -self.t, np.float32)}

    def reset(self, seed=None, options=None):
        self.t, self.agents, self.taken = 0, list(self.possible_agents), []
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        self.taken.append(dict(actions))
        obs, done = self._obs(), self.t == 3
        out = (obs, {a: float(np.sum(actions[a])) for a in self.agents}, {a: False for a in self.agents},
               {a: done for a in self.agents}, {a: {} for a in self.agents})
        if done:
            self.agents = []
        return out


def test_pettingzoo_pad_spaces_pads_with_zeros_and_masks_actions():
    raw = Unequal()
    env = E.PettingZooPufferEnv(raw, pad_spaces=True)
    assert env.single_observation_space == spaces.Box(     # the union of the two agents' bounds
        np.array([[-9, -9, -1], [-1, -1, -1]], np.float32), np.full((2, 3), 9, np.float32))
    assert env.single_action_space == spaces.Discrete(4)
    assert env.observation_masks.tolist() == [[[True] * 3] * 2, [[True, True, False], [False] * 3]]
    assert env.action_masks.tolist() == [[True] * 4, [True, True, False, False]]
    assert env.emulated['action_mask'] is env.action_masks
    obs, _ = env.reset()
    assert obs.tolist() == [[[0] * 3] * 2, [[0] * 3] * 2]
    obs, rew, term, trunc, _ = env.step(np.array([3, 1], np.int32))
    assert obs.tolist() == [[[1] * 3] * 2, [[-1, -1, 0], [0, 0, 0]]] and rew.tolist() == [3, 1]
    assert raw.taken[-1] == {'big': 3, 'small': 1}
    with pytest.raises(APIUsageError, match=r"agent 'small' took action 2, outside its Discrete\(2\) "
                                            r"\(pad_spaces: action_masks"):
        env.step(np.array([0, 2], np.int32))

    class BoxActions(Unequal):
        spaces = {'big': (spaces.Box(0, 9, (3,), np.float32), spaces.Box(-1, 1, (3,), np.float32)),
                  'small': (spaces.Box(0, 9, (2,), np.float32), spaces.Box(-2, 2, (1,), np.float32))}

        def _obs(self):
            return {'big': np.full(3, self.t, np.float32), 'small': np.full(2, self.t, np.float32)}
    raw = BoxActions()
    env = E.PettingZooPufferEnv(raw, pad_spaces=True)
    assert env.single_action_space == spaces.Box(np.array([-2, -1, -1], np.float32),
                                                 np.array([2, 1, 1], np.float32))
    env.reset()
    env.step(np.array([[0.5, 0.25, -1], [1.5, 0.75, 0.5]], np.float32))
    assert raw.taken[-1]['big'].tolist() == [0.5, 0.25, -1] and raw.taken[-1]['small'].tolist() == [1.5]
    with pytest.raises(APIUsageError, match='pad_spaces pads Box observation spaces of one dtype'):
        class Ranks(BoxActions):
            spaces = {'big': (spaces.Box(0, 1, (3,)), spaces.Discrete(2)),
                      'small': (spaces.Box(0, 1, (1, 3)), spaces.Discrete(2))}
        E.PettingZooPufferEnv(Ranks(), pad_spaces=True)


def test_pettingzoo_pad_spaces_mpe2_simple_tag_matches_raw_env():
    """simple_tag: adversaries observe 16 numbers, the good agent 14; padded to 16 with zeros, every
    agent's row is its own observation, step for step across episode ends."""
    from mpe2 import simple_tag_v3
    env = E.PettingZooPufferEnv(simple_tag_v3.parallel_env(max_cycles=20), pad_spaces=True, seed=7)
    raw = simple_tag_v3.parallel_env(max_cycles=20)
    assert env.single_observation_space.shape == (16,)
    assert env.observation_masks.sum(1).tolist() == [16, 16, 16, 14]
    obs, _ = env.reset()
    want, _ = raw.reset(seed=7)
    rng = np.random.default_rng(0)
    for t in range(50):
        for i, agent in enumerate(env.possible_agents):
            size = raw.observation_space(agent).shape[0]
            assert np.array_equal(obs[i, :size], want[agent]) and not obs[i, size:].any()
        actions = rng.integers(0, 5, env.num_agents).astype(np.int32)
        obs, rew, _, trunc, _ = env.step(actions)
        want, raw_rew, _, raw_trunc, _ = raw.step(dict(zip(env.possible_agents, actions.tolist())))
        assert rew.tolist() == [np.float32(raw_rew[a]) for a in env.possible_agents]
        if not raw.agents:
            assert trunc.all()
            want, _ = raw.reset()


# ------------------------------------------------------------------------------------------------
# Envs that break the Gymnasium / PettingZoo API: an APIUsageError naming the env and the rule
# (issue 12.12), never a raw unpacking, attribute or key error.

class BrokenGym(gym.Env):
    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, rule):
        self.rule = rule

    def reset(self, seed=None, options=None):
        obs = np.zeros(2, np.float32)
        return obs if self.rule == 'obs_only_reset' else (obs, {})

    def step(self, action):
        obs = np.zeros(2, np.float32)
        if self.rule == 'four_values':
            return obs, 1.0, True, {}
        return obs, 1.0, True, False, [] if self.rule == 'list_infos' else {}


def test_infos_that_are_a_list_are_named():
    env = E.GymnasiumPufferEnv(BrokenGym('list_infos'))
    env.reset()
    with pytest.raises(APIUsageError, match=r'^GymnasiumPufferEnv\(BrokenGym\): step\(\) returned infos '
                                            r'of type list: infos must be a dict'):
        env.step(np.zeros(1, np.int64))


def test_a_four_value_step_is_named():
    env = E.GymnasiumPufferEnv(BrokenGym('four_values'))
    env.reset()
    with pytest.raises(APIUsageError, match=r'^GymnasiumPufferEnv\(BrokenGym\): step\(\) returned 4 '
                                            r'values: step\(\) must return 5 values'):
        env.step(np.zeros(1, np.int64))


def test_an_obs_only_reset_is_named():
    env = E.GymnasiumPufferEnv(BrokenGym('obs_only_reset'))
    with pytest.raises(APIUsageError, match=r'^GymnasiumPufferEnv\(BrokenGym\): reset\(\) returned a '
                                            r'ndarray, not a tuple: reset\(\) must return '
                                            r'\(observations, infos\)'):
        env.reset()


class Joining(pettingzoo.ParallelEnv):
    """Agents 'a' and 'b'; agent 'c', not in possible_agents, joins env.agents at step `join_at`,
    with an observation of its own when `observed`."""
    possible_agents = ['a', 'b']

    def __init__(self, join_at, observed):
        self.join_at, self.observed = join_at, observed

    def observation_space(self, agent):
        return spaces.Box(-1, 1, (2,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.t = ['a', 'b'], 0
        return {a: np.zeros(2, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        if self.t == self.join_at:
            self.agents = ['a', 'b', 'c']
        seen = self.agents if self.observed else ['a', 'b']
        obs = {a: np.zeros(2, np.float32) for a in seen}
        return obs, {a: 0.0 for a in seen}, {a: False for a in seen}, {a: False for a in seen}, \
            {a: {} for a in seen}


@pytest.mark.parametrize('join_at, observed', [(3, False), (40, True)])
def test_a_pettingzoo_agent_appearing_mid_episode_is_named(join_at, observed):
    """Unobserved, it used to be a raw KeyError on the next step; observed after the first
    CHECK_STEPS steps, it was silently dropped."""
    env = E.PettingZooPufferEnv(Joining(join_at, observed))
    env.reset()
    for _ in range(join_at - 1):
        env.step(np.zeros(2, np.int64))
    rule = (r"step\(\) returned observations for agents \['c'\], which are not in possible_agents"
            if observed else r"env.agents holds \['c'\], which are not in possible_agents")
    with pytest.raises(APIUsageError, match=rf"^PettingZooPufferEnv\(Joining\): {rule} \['a', 'b'\]"):
        env.step(np.zeros(2, np.int64))
        env.step(np.zeros(2, np.int64))


def test_an_ndarray_as_buf_is_named():
    with pytest.raises(APIUsageError, match=r'^GymnasiumPufferEnv\(CartPole-v1\): buf is a ndarray: it '
                                            r'must be None or a dict of arrays by name'):
        E.GymnasiumPufferEnv(gym.make('CartPole-v1'), buf=np.zeros((1, 4), np.float32))
    with pytest.raises(APIUsageError, match=r'^PettingZooPufferEnv\(Joining\): buf is a ndarray'):
        E.PettingZooPufferEnv(Joining(3, False), buf=np.zeros((2, 2), np.float32))


# ------------------------------------------------------------------------------------------------
# Through pufferlib.vector: Serial and Multiprocessing give identical trajectories

import functools  # noqa: E402

import pufferlib.vector  # noqa: E402


def gym_creator(name):
    return functools.partial(E.GymnasiumPufferEnv, env_creator=gym.make, env_args=(name,),
                             report_interval=16)


def pz_creator(name):
    return functools.partial(E.PettingZooPufferEnv, env_creator=pettingzoo.make,
                             env_args=('parallel', name), report_interval=16)


def vector_rollout(creator, backend, num_envs, steps, seed=21):
    vec = pufferlib.vector.make(creator, backend=backend, num_envs=num_envs,
                                num_workers=2 if backend == 'Multiprocessing' else None, seed=seed)
    try:
        obs, infos = vec.reset(seed=seed)
        out = [(obs.copy(), infos)]
        space = vec.action_space
        space.seed(seed)
        for _ in range(steps):
            obs, rew, term, trunc, infos = vec.step(space.sample())
            out.append((obs.copy(), rew.copy(), term.copy(), trunc.copy(), infos))
        return out
    finally:
        vec.close()


@pytest.mark.parametrize('creator, num_envs, steps', [
    (gym_creator('CartPole-v1'), 4, 200),
    (gym_creator('Blackjack-v1'), 4, 60),
    (pz_creator('classic/rps-v2'), 2, 40),
])
def test_serial_and_multiprocessing_identical(creator, num_envs, steps):
    serial = vector_rollout(creator, 'Serial', num_envs, steps)
    multi = vector_rollout(creator, 'Multiprocessing', num_envs, steps)
    assert len(serial) == len(multi) == steps + 1
    reports = 0
    for a, b in zip(serial, multi):
        for x, y in zip(a[:-1], b[:-1]):
            assert np.array_equal(x, y)
        assert sorted(map(sorted, (i.items() for i in a[-1]))) == \
            sorted(map(sorted, (i.items() for i in b[-1])))
        reports += len(a[-1])
    assert reports > 0 and any(a[2].any() or a[3].any() for a in serial[1:])


def test_vector_env_k_is_the_env_seeded_seed_plus_k():
    rollout = vector_rollout(gym_creator('CartPole-v1'), 'Serial', 3, 0, seed=40)
    for k in range(3):
        alone = E.GymnasiumPufferEnv(gym.make('CartPole-v1'), seed=40 + k)
        assert np.array_equal(rollout[0][0][k], alone.reset()[0][0])


def faulty(buf=None, seed=0):
    """The env seeded 1 returns a float64 observation at its third step."""
    return E.GymnasiumPufferEnv(Faulty('wrong_dtype', 3 if seed == 1 else -1), buf=buf, seed=seed)


@pytest.mark.parametrize('backend, prefix', [('Native', 'env 0: '), ('Serial', 'env 1: '),
                                             ('Multiprocessing', 'worker 1, env 1: ')])
def test_bad_observation_is_api_usage_error_naming_the_env(backend, prefix):
    """Row 15 through every local backend: the same error type, with the env's index (env 1 of
    two under Serial and Multiprocessing; the one env, seeded 1, under Native)."""
    num_envs = 1 if backend == 'Native' else 2
    vec = pufferlib.vector.make(faulty, backend=backend, num_envs=num_envs,
                                num_workers=2 if backend == 'Multiprocessing' else None,
                                seed=1 if backend == 'Native' else 0)
    try:
        vec.reset()
        actions = np.zeros(num_envs, np.int32)
        vec.step(actions)
        vec.step(actions)
        with pytest.raises(APIUsageError, match=r'GymnasiumPufferEnv\(Faulty\): observation is a '
                           r'float64 array of shape \(4,\), expected a float32') as info:
            vec.step(actions)
        assert str(info.value).startswith(prefix + 'GymnasiumPufferEnv(Faulty): '), str(info.value)
    finally:
        vec.close()


@pytest.mark.slow
def test_memory_is_flat_over_a_million_emulated_steps():
    """Fault-matrix row 20c: 10^6 steps of emulated CartPole (Serial, so that all of it runs in
    this process); its RSS, its object count and the info lists stay flat."""
    import gc

    import psutil
    vec = pufferlib.vector.make(gym_creator('CartPole-v1'), backend='Serial', num_envs=4)
    try:
        vec.reset(seed=0)
        processes = [psutil.Process()]
        actions = np.random.default_rng(0).integers(0, 2, (1000, 4)).astype(np.int32)
        rss, objects, most_infos = [], [], 0
        for _ in range(10):  # 10 samples, 10^5 env steps apart
            for _ in range(25):
                for a in actions:
                    most_infos = max(most_infos, len(vec.step(a)[4]))
            gc.collect()
            rss.append(sum(p.memory_info().rss for p in processes))
            objects.append(len(gc.get_objects()))
    finally:
        vec.close()
    assert rss[-1] - rss[2] < 5 * 2**20, [r // 2**10 for r in rss]
    assert objects[-1] - objects[2] < 500, objects
    assert most_infos <= 4  # at most one report per env object per step
