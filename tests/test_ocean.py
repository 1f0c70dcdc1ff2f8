"""Every Ocean env (pufferlib.ocean.ENVS): the registry, the C-binding fault rows 10, 13, 17 and 18
of the fault matrix, determinism, episode stats, and (slow) flat memory over 10^7 steps."""
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from gymnasium import spaces

import pufferlib.ocean
from pufferlib.exceptions import APIUsageError

NAMES = sorted(pufferlib.ocean.ENVS)
# Extra configurations worth the same checks: the Box-action path of the binding, and the games'
# observation option `features` (a longer observation row).
CONFIGS = [(name, {}) for name in NAMES] + [('breakout', {'continuous': True}),
                                             ('connect4', {'features': True}),
                                             ('triple_triad', {'features': True})]
CONFIG_IDS = [name + ('-' + '-'.join(kw) if kw else '') for name, kw in CONFIGS]
INFO_KEYS = {'episode_return', 'episode_length', 'score', 'perf', 'n'}


def make(name, num_envs=8, seed=0, **kwargs):
    env = pufferlib.ocean.make(name, num_envs=num_envs, seed=seed, **kwargs)
    env.reset()
    return env


def random_actions(env, rng, steps):
    """`steps` in-range random action batches for env (pre-generated)."""
    space = env.single_action_space
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, space.n, (steps, env.num_agents), dtype=np.int32)
    return rng.uniform(space.low, space.high, (steps, env.num_agents, *space.shape)).astype(space.dtype)


def binding_module(name):
    return importlib.import_module(pufferlib.ocean.ENVS[name].split(':')[0].rsplit('.', 1)[0] + '.binding')


# ---- registry ----

@pytest.mark.parametrize('name', NAMES)
def test_registry_make_and_env_creator(name):
    cls = pufferlib.ocean.env_creator(name)
    env = pufferlib.ocean.make(name, num_envs=3, seed=1)
    assert type(env) is cls
    assert env.num_agents == 3 and env.observations.shape == (3, *env.single_observation_space.shape)
    env.close()


def test_unknown_name_lists_the_available_envs():
    for call in (pufferlib.ocean.make, pufferlib.ocean.env_creator, pufferlib.ocean.play):
        with pytest.raises(APIUsageError, match="unknown Ocean env 'nope'; available: " + ', '.join(NAMES)):
            call('nope')


# ---- fault row 10: close twice, use after close, bad env_id ----

@pytest.mark.parametrize('name', NAMES)
def test_close_twice_step_after_close_bad_env_id(name):
    env = make(name, num_envs=4)
    for bad in (4, -1, 10**6):
        with pytest.raises(IndexError, match=f'env_id {bad} is out of range for 4 sub-envs'):
            env.c.get_state(bad)
    env.close()
    env.close()
    for call in (lambda: env.step(env.actions), lambda: env.reset(), lambda: env.c.get_state(0),
                 lambda: env.c.log()):
        with pytest.raises(ValueError, match='^closed$'):
            call()


# ---- fault row 13: fuzzed actions ----

@pytest.mark.parametrize('name, kwargs', CONFIGS, ids=CONFIG_IDS)
def test_fuzzed_actions(name, kwargs):
    """10^4 steps of random int32 actions: an out-of-range value raises ValueError naming the sub-env
    and value before anything steps; in-range ones step; observations stay finite. Box actions take
    any float (NaN and infinities included) and the game clamps them."""
    n = 8
    env = make(name, num_envs=n, seed=3, **kwargs)
    rng = np.random.default_rng(0)
    space = env.single_action_space
    rejected = stepped = 0
    for t in range(10_000):
        if isinstance(space, spaces.Discrete):
            actions = rng.integers(0, space.n, n, dtype=np.int32)
            if rng.random() < 0.2:
                i = int(rng.integers(n))
                actions[i] = rng.choice([rng.integers(space.n, 2**31), rng.integers(-2**31, 0)])
                before = env.observations.copy()
                with pytest.raises(ValueError, match=f'action {actions[i]} of sub-env {i} is outside '
                                                     f'0..{space.n - 1}$'):
                    env.step(actions)
                np.testing.assert_array_equal(env.observations, before)
                rejected += 1
                continue
        else:
            bits = rng.integers(0, 2**32, (n, *space.shape), dtype=np.uint64).astype(np.uint32)
            actions = bits.view(np.float32).copy()
            actions[rng.random(actions.shape) < 0.1] = rng.choice([np.nan, np.inf, -np.inf])
        env.step(actions)
        stepped += 1
        assert np.isfinite(env.observations).all() and np.isfinite(env.rewards).all()
    assert stepped > 7000 and (rejected > 1000 or not isinstance(space, spaces.Discrete))
    env.close()


# ---- fault row 17: bad buffers ----

def good_buffers(env, n):
    return dict(observations=np.zeros((n, *env.single_observation_space.shape), np.float32),
                actions=np.zeros(n, np.int32), rewards=np.zeros(n, np.float32),
                terminals=np.zeros(n, bool), truncations=np.zeros(n, bool))


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('array, bad, match', [
    ('observations', lambda a: a.astype(np.float64), 'observations has dtype float64, expected float32'),
    ('observations', lambda a: np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)[:, ::2],
     'observations must be a writeable C-contiguous array'),
    ('observations', lambda a: a[:-1].copy(), 'observations has 3 rows, expected at least 4'),
    ('observations', lambda a: np.zeros((4, a.shape[1] + 1), a.dtype),
     r'observations rows hold \d+ values, expected \d+'),
    ('observations', lambda a: a.tolist(), 'observations must be a numpy array, got list'),
    ('actions', lambda a: a.astype(np.int64), 'actions has dtype int64, expected int32'),
    ('actions', lambda a: a.astype(np.float32), 'actions has dtype float32, expected int32'),
    ('actions', lambda a: a[:2].copy(), 'actions has 2 rows, expected at least 4'),
    ('rewards', lambda a: np.zeros(8, np.float32)[::2], 'rewards must be a writeable C-contiguous'),
    ('rewards', lambda a: a.astype(np.float16), 'rewards has dtype float16, expected float32'),
    ('terminals', lambda a: a.astype(np.uint8), 'terminals has dtype uint8, expected bool'),
    ('truncations', lambda a: np.zeros((4, 2), bool), 'truncations rows hold 2 values, expected 1'),
])
def test_bad_buffers_name_the_array(name, array, bad, match):
    env = make(name, num_envs=1)
    buffers = good_buffers(env, 4)
    buffers[array] = bad(buffers[array])
    if array == 'observations' and 'rows hold' in match:
        match = (f'observations rows hold {env.observations.shape[1] + 1} values, '
                 f'expected {env.observations.shape[1]}')
    with pytest.raises(ValueError, match=match):
        binding_module(name).Binding(buffers, 4)
    binding_module(name).Binding(good_buffers(env, 4), 4).close()   # the good ones work


@pytest.mark.parametrize('name', NAMES)
def test_buffers_must_be_a_dict_of_the_five_arrays(name):
    env = make(name, num_envs=1)
    buffers = good_buffers(env, 4)
    with pytest.raises(ValueError, match='buffers must be a dict with the arrays observations, '
                                         'actions, rewards, terminals, truncations; got list'):
        binding_module(name).Binding(list(buffers.values()), 4)
    del buffers['truncations']
    with pytest.raises(ValueError, match=r"got \['actions', 'observations', 'rewards', 'terminals'\]"):
        binding_module(name).Binding(buffers, 4)


# Each space as its game's header defines it (binding.obs_size(...) and binding.NUM_ACTIONS).
SPACES = {'squared': (121, 5), 'breakout': (118, 3), 'breakout-continuous': (118, None),
          'connect4': (42, 7), 'connect4-features': (42 + 5 * 42, 7), 'triple_triad': (114, 14),
          'triple_triad-features': (114 + 131, 14)}


@pytest.mark.parametrize('name, kwargs', CONFIGS, ids=CONFIG_IDS)
def test_spaces_come_from_the_binding_and_fit_its_buffers(name, kwargs):
    """The Python spaces are the header's sizes, and the binding takes exactly the buffers they
    give: an observation row one value longer is refused with the size the binding expects."""
    env = make(name, num_envs=2, **kwargs)
    obs_size, num_actions = SPACES[CONFIG_IDS[CONFIGS.index((name, kwargs))]]
    assert env.single_observation_space.shape == (obs_size,)
    assert getattr(env.single_action_space, 'n', None) == num_actions
    buffers = {key: np.zeros_like(getattr(env, key)) for key in good_buffers(env, 2)}
    binding_module(name).Binding(buffers, 2, **kwargs).close()
    buffers['observations'] = np.zeros((2, obs_size + 1), np.float32)
    with pytest.raises(ValueError, match=f'observations rows hold {obs_size + 1} values, '
                                         f'expected {obs_size}$'):
        binding_module(name).Binding(buffers, 2, **kwargs)


def test_squared_size_below_3_is_refused_and_size_3_fills_its_9_cells():
    """Issue 12.1: Python sized the rows from size while C raised it to 3 (a heap overflow)."""
    for size in (1, 2, 0, -5):
        with pytest.raises(APIUsageError, match=rf'Squared: size is {size}: it must be an integer in \[3, '):
            pufferlib.ocean.make('squared', size=size)
    env = make('squared', num_envs=2, size=3, seed=0)
    assert env.observations.shape == (2, 9)
    for a in random_actions(env, np.random.default_rng(0), 50):
        env.step(a)
        for i in range(2):    # exactly the agent (+1) and the target (-1) on the 3x3 grid
            state = env.c.get_state(i)
            expected = np.zeros(9, np.float32)
            expected[3 * state['target_row'] + state['target_col']] = -1
            expected[3 * state['agent_row'] + state['agent_col']] = 1
            assert env.observations[i].tolist() == expected.tolist()
    # the binding alone still clamps (C never writes past its rows): obs_size(1) is 9
    assert binding_module('squared').obs_size(1) == 9


# Every constructor argument of every Ocean env (buf aside: fault row 17) with values that must be
# refused in Python, before C sees them, by an APIUsageError that names the argument.
BAD_ARGS = {
    'num_envs': [0, -1, 1.5, '4', True, None, 2**24 + 1, 2**64],
    'seed': [1.5, '0', None, True, 2**64, -2**63 - 1],
    'report_interval': [0, -3, 1.5, 2**31],
    'render_mode': ['rgb', 'ansi', 1],
    'size': [1, 2, 11.0, '11', 1024, 2**40],
    'crash_at_step': [-2, 0.5, 2**31],
    'frameskip': [0, -1, 2.0, 1001, 2**63],
    'max_episode_steps': [-1, 2**31, '10', 10.0],
    'continuous': [1, 'yes', None],
    'reward_scale': [float('nan'), float('inf'), '1', 1e39, True, None],
    'opponent_random_prob': [-0.1, 1.5, float('nan'), '0.5', None],
    'features': [1, 'True', None],
    'max_steps': [0, 2**31, 3.0],
    'invalid_penalty': [float('nan'), -float('inf'), 1e39, None, '0.1'],
}


@pytest.mark.parametrize('name', NAMES)
def test_every_constructor_argument_is_validated_by_name(name):
    import inspect
    params = [p for p in inspect.signature(pufferlib.ocean.env_creator(name)).parameters if p != 'buf']
    assert set(params) <= set(BAD_ARGS), f'no bad values listed for {set(params) - set(BAD_ARGS)}'
    for param in params:
        for bad in BAD_ARGS[param]:
            with pytest.raises(APIUsageError, match=rf'^\w+: {param} is {re.escape(repr(bad))}: it must'):
                pufferlib.ocean.make(name, **{param: bad})


@pytest.mark.parametrize('name', NAMES)
def test_64_bit_seeds_are_accepted(name):
    """Sub-env i is seeded from (seed + i) mod 2**64: any seed in [-2**63, 2**64) is fine."""
    for seed in (2**64 - 1, -2**63, -1, np.int64(3), np.uint64(2**64 - 1)):
        env = pufferlib.ocean.make(name, num_envs=2, seed=seed)
        env.reset()
        env.close()


# ---- fault row 18: symbol hygiene; every env really steps ----

@pytest.mark.parametrize('name', NAMES)
def test_only_pyinit_is_exported(name):
    path = binding_module(name).__file__
    out = subprocess.run(['nm', '-D', '--defined-only', path], capture_output=True, text=True,
                         check=True).stdout
    symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert symbols and all(s.startswith('PyInit_') for s in symbols), symbols


@pytest.mark.parametrize('name, kwargs', CONFIGS, ids=CONFIG_IDS)
def test_observations_change_after_a_step_with_a_fixed_action(name, kwargs):
    env = make(name, num_envs=8, seed=5, **kwargs)
    before = env.observations.copy()
    action = 1 if isinstance(env.single_action_space, spaces.Discrete) else 1.0
    env.step(np.full_like(env.actions, action))
    assert (env.observations != before).any(axis=1).all()


# ---- determinism and seeding ----

def rollout(env, actions):
    obs, rewards, terminals = [], [], []
    for a in actions:
        env.step(a)
        obs.append(env.observations.copy())
        rewards.append(env.rewards.copy())
        terminals.append(env.terminals.copy())
    return np.array(obs), np.array(rewards), np.array(terminals)


@pytest.mark.parametrize('name, kwargs', CONFIGS, ids=CONFIG_IDS)
def test_same_seed_same_trajectory(name, kwargs):
    a, b = make(name, seed=11, **kwargs), make(name, seed=11, **kwargs)
    actions = random_actions(a, np.random.default_rng(1), 300)
    for x, y in zip(rollout(a, actions), rollout(b, actions)):
        np.testing.assert_array_equal(x, y)
    a.reset(seed=4)
    first = rollout(a, actions)
    a.reset(seed=4)
    for x, y in zip(first, rollout(a, actions)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize('name, kwargs', CONFIGS, ids=CONFIG_IDS)
def test_subenvs_differ_and_are_seeded_from_seed_plus_index(name, kwargs):
    # every sub-env gets the SAME actions: only their seeds can make them differ
    env = make(name, num_envs=4, seed=20, **kwargs)
    actions = random_actions(env, np.random.default_rng(2), 400)[:, :1]
    obs = rollout(env, np.repeat(actions, 4, axis=1))[0]
    trajectories = {obs[:, i].tobytes() for i in range(4)}
    assert len(trajectories) == 4
    single = make(name, num_envs=1, seed=22, **kwargs)      # == sub-env 2 of the env seeded 20
    np.testing.assert_array_equal(rollout(single, actions)[0][:, 0], obs[:, 2])


@pytest.mark.parametrize('name', NAMES)
def test_native_equals_multiprocessing(name):
    """One object of 8 sub-envs (Native) == 2 objects of 4 in 2 worker processes, bit for bit: object
    k is seeded with seed + 4k, so sub-env seeds are global indices either way."""
    import pufferlib.vector as vector
    creator = pufferlib.ocean.env_creator(name)
    native = vector.make(creator, env_kwargs={'num_envs': 8, 'report_interval': 16},
                         backend=vector.Native, seed=5)
    mp = vector.make(creator, env_kwargs={'num_envs': 4, 'report_interval': 16},
                     backend=vector.Multiprocessing, num_envs=2, num_workers=2, seed=5)
    try:
        actions = random_actions(native.env, np.random.default_rng(6), 400)
        for seed in (None, 17):
            np.testing.assert_array_equal(native.reset(seed)[0], mp.reset(seed)[0])
            episodes = [0, 0]
            for a in actions:
                ours, theirs = native.step(a), mp.step(a)
                for x, y in zip(ours[:4], theirs[:4]):
                    np.testing.assert_array_equal(x, y)
                episodes[0] += sum(info['n'] for info in ours[4])
                episodes[1] += sum(info['n'] for info in theirs[4])
            assert episodes[0] == episodes[1]
    finally:
        native.close()
        mp.close()


# ---- episode stats ----

@pytest.mark.parametrize('name, kwargs', CONFIGS, ids=CONFIG_IDS)
def test_info_dicts_carry_episode_stats(name, kwargs):
    env = make(name, num_envs=32, report_interval=50, **kwargs)
    rng = np.random.default_rng(3)
    infos, episodes = [], 0
    for step in range(20_000):
        infos += env.step(random_actions(env, rng, 1)[0])[4]
        episodes += int(env.terminals.sum() + env.truncations.sum())
        if step % 50 == 49 and infos and episodes > 0:
            break
    assert infos, f'no episode of {name} finished in 20000 random steps'
    for info in infos:
        assert set(info) >= INFO_KEYS and info['n'] >= 1
        assert all(np.isfinite(info[key]) for key in INFO_KEYS)
        assert 0 <= info['perf'] <= 1 and info['episode_length'] >= 1
    assert sum(info['n'] for info in infos) == episodes


# ---- fault row 20a (slow): flat memory over 10^7 agent steps ----

MEMORY_SCRIPT = textwrap.dedent('''
    import gc, json, sys
    import numpy as np, psutil
    import pufferlib.ocean
    env = pufferlib.ocean.make(sys.argv[1], num_envs=1024, seed=0)
    env.reset()
    space = env.single_action_space
    actions = [np.random.default_rng(i).integers(0, space.n, 1024, dtype=np.int32) for i in range(64)]
    process = psutil.Process()
    rss, objects, max_infos = [], [], 0
    for step in range(9766):                     # 1024 x 9766 = 10^7 agent steps
        infos = env.step(actions[step % 64])[4]
        max_infos = max(max_infos, len(infos))
        if step % 977 == 976:                    # about every 10^6 agent steps
            rss.append(process.memory_info().rss)
            objects.append(len(gc.get_objects()))
    env.close()
    print(json.dumps({'rss': rss, 'objects': objects, 'max_infos': max_infos}))
''')


@pytest.mark.slow
@pytest.mark.parametrize('name', NAMES)
def test_memory_stays_flat_over_10m_steps(name):
    out = subprocess.run([sys.executable, '-c', MEMORY_SCRIPT, name], capture_output=True, text=True,
                         timeout=240, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    rss, objects = result['rss'][1:], result['objects'][1:]   # the first sample is the warm-up
    assert len(rss) == 8
    assert max(rss) - rss[0] < 1 << 20, f'RSS grew by {(max(rss) - rss[0]) / 1024:.0f} KiB: {rss}'
    assert max(objects) - min(objects) < 100, objects
    assert result['max_infos'] <= 1


# ---- docs/writing_envs.md stays accurate ----

GUIDE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'writing_envs.md')


def guide_blocks():
    """(marker, code) for every fenced block right after an HTML-comment marker in the guide."""
    import re
    with open(GUIDE) as f:
        text = f.read()
    return re.findall(r'<!-- (.+?) -->\n```\w*\n(.*?)```', text, re.S)


def test_writing_envs_guide_matches_the_code():
    root = os.path.dirname(GUIDE) + '/..'
    excerpts = [(marker[len('from '):], code) for marker, code in guide_blocks() if marker.startswith('from ')]
    assert len(excerpts) >= 8
    for path, code in excerpts:
        with open(os.path.join(root, path)) as f:
            assert code in f.read(), f'docs/writing_envs.md quotes {path}, which no longer contains:\n{code}'


def test_writing_envs_guide_python_squared_equals_the_c_env():
    code, = [code for marker, code in guide_blocks() if marker == 'python-squared']
    namespace = {}
    exec(compile(code, GUIDE, 'exec'), namespace)
    py = namespace['PySquared'](num_envs=4, size=7, report_interval=50, seed=3)
    c = pufferlib.ocean.make('squared', num_envs=4, size=7, report_interval=50, seed=3)
    actions = np.random.default_rng(0).integers(0, 5, (600, 4), dtype=np.int32)
    for obs in (py.reset()[0], c.reset()[0]):
        assert obs.shape == (4, 49)
    np.testing.assert_array_equal(py.observations, c.observations)
    episodes = 0
    for step, a in enumerate(actions):
        if step == 300:
            py.reset(seed=9)
            c.reset(seed=9)
        py_out, c_out = py.step(a), c.step(a)
        for x, y in zip(py_out[:4], c_out[:4]):
            np.testing.assert_array_equal(x, y)
        assert len(py_out[4]) == len(c_out[4])
        for x, y in zip(py_out[4], c_out[4]):
            assert x.keys() == y.keys() and x['n'] == y['n']
            assert [x[k] for k in INFO_KEYS] == pytest.approx([y[k] for k in INFO_KEYS], rel=1e-6)
        episodes += int(c.terminals.sum() + c.truncations.sum())
    assert episodes > 50
