import numpy as np
import pytest
from gymnasium import spaces

import pufferlib
from pufferlib import APIUsageError, PufferEnv, check_action_values, check_actions
from pufferlib.examples import Match


def make_env(obs=spaces.Box(0, 1, (3,), np.float32), act=spaces.Discrete(4), n=2, buf=None):
    class Env(PufferEnv):
        def __init__(self):
            self.single_observation_space, self.single_action_space, self.num_agents = obs, act, n
            super().__init__(buf)
    return Env()


@pytest.mark.parametrize('act, shape, dtype', [
    (spaces.Discrete(4), (2,), np.int32),
    (spaces.MultiDiscrete([3, 5]), (2, 2), np.int32),
    (spaces.Box(-1, 1, (3,), np.float32), (2, 3), np.float32),
    (spaces.Box(-1, 1, (2, 2), np.float64), (2, 2, 2), np.float64),
])
def test_buffers_allocated(act, shape, dtype):
    env = make_env(obs=spaces.Box(0, 255, (4, 4), np.uint8), act=act)
    assert env.observations.shape == (2, 4, 4) and env.observations.dtype == np.uint8
    assert env.actions.shape == shape and env.actions.dtype == dtype
    assert env.rewards.shape == (2,) and env.rewards.dtype == np.float32
    for name in ('terminals', 'truncations', 'masks'):
        assert getattr(env, name).shape == (2,) and getattr(env, name).dtype == bool
    assert env.masks.all() and not env.terminals.any()
    assert env.observation_space.shape == (2, 4, 4)
    assert list(env.agent_ids) == [0, 1]


def test_joint_spaces():
    env = make_env(act=spaces.Discrete(4))
    assert env.action_space == spaces.MultiDiscrete([4, 4])
    env = make_env(act=spaces.MultiDiscrete([3, 5]))
    assert env.action_space.shape == (2, 2) and env.action_space.high.tolist() == [[2, 4], [2, 4]]


def test_buffers_adopted_without_copy():
    specs = pufferlib.buffer_specs(spaces.Box(0, 1, (3,), np.float32), spaces.Discrete(4), 2)
    buf = {name: np.zeros(shape, dtype) for name, (shape, dtype) in specs.items()}
    env = make_env(buf=buf)
    for name, arr in buf.items():
        assert getattr(env, name) is arr


@pytest.mark.parametrize('name, bad, match', [
    ('observations', np.zeros((2, 4), np.float32), r"buf\['observations'\] has shape \(2, 4\).*expected shape \(2, 3\)"),
    ('actions', np.zeros(2, np.int64), r"buf\['actions'\].*dtype int64.*expected.*int32"),
    ('rewards', np.zeros((2, 2), np.float32)[:, 0], r"buf\['rewards'\] must be a writeable C-contiguous"),
    ('masks', [True, True], r"buf\['masks'\] is a list"),
])
def test_bad_adopted_buffer_names_the_array(name, bad, match):
    specs = pufferlib.buffer_specs(spaces.Box(0, 1, (3,), np.float32), spaces.Discrete(4), 2)
    buf = {n: np.zeros(shape, dtype) for n, (shape, dtype) in specs.items()}
    buf[name] = bad
    with pytest.raises(APIUsageError, match=match):
        make_env(buf=buf)


def test_missing_buffer_in_buf():
    with pytest.raises(APIUsageError, match="buf has no 'observations' array"):
        make_env(buf={})


@pytest.mark.parametrize('missing', ['single_observation_space', 'single_action_space', 'num_agents'])
def test_missing_attribute_names_it_and_the_fix(missing):
    class Env(PufferEnv):
        def __init__(self):
            attrs = dict(single_observation_space=spaces.Box(0, 1, (3,)),
                         single_action_space=spaces.Discrete(2), num_agents=1)
            del attrs[missing]
            for k, v in attrs.items():
                setattr(self, k, v)
            super().__init__()
    with pytest.raises(APIUsageError, match=f'has no `{missing}`.*before calling super'):
        Env()


def test_joint_space_set_by_subclass_is_rejected():
    class Env(PufferEnv):
        def __init__(self):
            self.single_observation_space = self.observation_space = spaces.Box(0, 1, (3,))
            self.single_action_space, self.num_agents = spaces.Discrete(2), 1
            super().__init__()
    with pytest.raises(APIUsageError, match='sets `observation_space`: set `single_observation_space`'):
        Env()


@pytest.mark.parametrize('obs, act, n, match', [
    (spaces.Discrete(3), spaces.Discrete(2), 1, 'must be a Box'),
    (spaces.Box(0, 1, (3,)), spaces.Tuple([spaces.Discrete(2)]), 1, 'not supported'),
    (spaces.Box(0, 1, (3,)), spaces.Discrete(2), 0, 'num_agents is 0'),
    (spaces.Box(0, 1, (3,)), spaces.Discrete(2), 1.5, 'num_agents is 1.5'),
])
def test_bad_spaces_and_counts(obs, act, n, match):
    with pytest.raises(APIUsageError, match=match):
        make_env(obs=obs, act=act, n=n)


def test_check_actions_shape_and_dtype_on_every_call():
    env = make_env()
    for _ in range(3):
        with pytest.raises(APIUsageError, match=r'shape \(1,\), expected \(2,\)'):
            env.send(np.zeros(1, np.int32))
        with pytest.raises(APIUsageError, match=r'shape \(2, 2\), expected \(2,\)'):
            env.send(np.zeros((2, 2), np.int32))
        with pytest.raises(APIUsageError, match='dtype float64, expected int32'):
            check_actions(np.zeros(2), env.actions)
        with pytest.raises(APIUsageError, match='dtype object'):
            check_actions(np.array([1, None]), env.actions)
    assert check_actions(np.zeros(2, np.int64), env.actions).dtype == np.int64  # same-kind cast allowed
    box = make_env(act=spaces.Box(-1, 1, (3,), np.float32))
    with pytest.raises(APIUsageError, match=r'shape \(2,\), expected \(2, 3\)'):
        check_actions(np.zeros(2, np.float32), box.actions)


def test_check_action_values_names_agent_and_value():
    with pytest.raises(APIUsageError, match='agent 1 is 7'):
        check_action_values(np.array([0, 7, -1]), spaces.Discrete(3))
    with pytest.raises(APIUsageError, match='agent 0 is nan'):
        check_action_values(np.array([[np.nan], [0.0]]), spaces.Box(-1, 1, (1,)))
    check_action_values(np.array([0, 2]), spaces.Discrete(3))


def test_match_env_rules_and_autoreset():
    env = Match(num_envs=2, num_actions=3, episode_length=3, report_interval=3, seed=0)
    obs, infos = env.reset()
    assert obs.shape == (2, 4) and infos == []
    total = np.zeros(2)
    for t in range(3):
        target = obs[:, :3].argmax(1).astype(np.int32)
        actions = target.copy()
        actions[1] = (target[1] + 1) % 3  # agent 1 always misses
        obs, rew, term, trunc, infos = env.step(actions)
        assert rew.tolist() == [1.0, 0.0]
        total += rew
        assert term.tolist() == ([True, True] if t == 2 else [False, False])
        assert not trunc.any()
    # the terminal step returns the first observation of the next episode
    assert obs[:, -1].tolist() == [0.0, 0.0]
    assert infos == [{'episode_return': 1.5, 'episode_length': 3.0, 'score': 1.5, 'perf': 0.5, 'n': 2}]


def test_match_seeding():
    a, b = Match(num_envs=64, seed=1), Match(num_envs=64, seed=1)
    assert np.array_equal(a.reset()[0], b.reset()[0])
    assert not np.array_equal(a.reset(seed=2)[0], b.reset(seed=3)[0])
    assert len({tuple(row) for row in a.reset(seed=2)[0]}) > 1  # sub-envs differ
