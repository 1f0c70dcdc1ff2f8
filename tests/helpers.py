"""What several test modules share: small envs, rollouts, the backends' make() arguments, and
checks of what a test leaves behind. Test modules import from here, never from each other; the
fixtures built on these (vecs, backend, ray_session) are in conftest.py.

FaultyEnv, a small PufferEnv that misbehaves on request, for the vector-layer fault tests (in this
process, and in the fault cases that tests/test_faults.py runs as processes of their own).
Observation of each agent: [steps since reset, env index, agent index]; reward 1 every step; an
episode lasts `episode_length` steps and the env resets itself in the same step. The env's index is
derived from its seed (the vector backends give env object k the seed `seed + k * num_agents`, and
the fault tests make with seed=0).

fault (fires in env object `env_idx` only, at its `at_step`-th step since construction):
  'raise'        ValueError('boom') in step
  'raise_reset'  ValueError('boom in reset') in reset
  'raise_init'   ValueError('boom in init') in the constructor
  'hang'         sleeps an hour in step
  'segv'         the process sends itself SIGSEGV in step
  'nan'          writes NaN into its observations
  'slow'         sleeps `delay` seconds in every step (from the first); every env object sleeps
                 `base_delay` seconds per step in any case
  'big_info'     returns a ~1 MB info dict in every step (from the first)
  'alien_info'   returns, from at_step on, an info that the main process cannot unpickle (its
                 unpickling imports a module that does not exist)
  'kill_reset'   the process sends itself SIGKILL in reset
"""
import importlib
import os
import signal
import sys
import time

import gymnasium
import numpy as np
import psutil

from pufferlib import PufferEnv

CORES = len(os.sched_getaffinity(0))

# make() arguments of each backend for two env objects (one for Native). The `backend` fixture runs
# a test on every backend, Ray included; a test where Ray behaves as Multiprocessing by construction
# parametrizes over WITHOUT_RAY instead, to keep the suite fast.
BACKENDS = {
    'Native': dict(backend='Native'),
    'Serial': dict(backend='Serial', num_envs=2),
    'Multiprocessing': dict(backend='Multiprocessing', num_envs=2, num_workers=2),
    'Ray': dict(backend='Ray', num_envs=2, num_workers=2),
}
WITHOUT_RAY = ['Native', 'Serial', 'Multiprocessing']


def split_kwargs(backend, total, **env_kwargs):
    """env_kwargs and make kwargs so that `total` sub-envs are spread over the backend's objects."""
    opts = BACKENDS[backend]
    per_object = total // opts.get('num_envs', 1)
    return dict(env_kwargs={**env_kwargs, 'num_envs': per_object}, **opts)


def make(vecs, *args, **kwargs):
    """pufferlib.vector.make, the result collected in `vecs` (the fixture closes it after the test)."""
    import pufferlib.vector
    vec = pufferlib.vector.make(*args, **kwargs)
    vecs.append(vec)
    return vec


# ---- what a test leaves behind -----------------------------------------------------------------

def _cmdline(process):
    try:
        return ' '.join(process.cmdline())
    except psutil.Error:
        return ''


def our_processes():
    """This process's descendants, less multiprocessing's own helpers (resource tracker, fork
    server) and Ray's (its servers and worker pool, which live as long as its instance)."""
    return [p for p in psutil.Process().children(recursive=True)
            if not any(mark in _cmdline(p) for mark in ('from multiprocessing.', 'ray::', '/ray/'))]


def alive_actors():
    """Ids of the Ray actors the GCS does not list as DEAD (empty when Ray is not running).
    (ray.util.state.list_actors needs the dashboard, which the local instance does not run; this
    reads the same GCS table.)"""
    ray = sys.modules.get('ray')
    if ray is None or not ray.is_initialized():
        return set()
    from ray._private import state
    return {actor_id for actor_id, info in state.actors().items() if info['State'] != 'DEAD'}


# ---- envs --------------------------------------------------------------------------------------

FAULTS = (None, 'raise', 'raise_reset', 'raise_init', 'hang', 'segv', 'nan', 'slow', 'big_info',
          'alien_info', 'kill_reset')


class Alien:
    """Pickles fine; unpickling it imports a module that does not exist (ModuleNotFoundError)."""

    def __reduce__(self):
        return importlib.import_module, ('no_such_module_of_the_worker',)


class FaultyEnv(PufferEnv):
    def __init__(self, num_agents=1, fault=None, at_step=5, env_idx=1, delay=0.01, base_delay=0.0,
                 episode_length=1000, buf=None, seed=0):
        if fault not in FAULTS:
            raise ValueError(f'fault={fault!r}: use one of {FAULTS}')
        self.single_observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(4)
        self.num_agents = num_agents
        super().__init__(buf)
        self.index = seed // num_agents
        self.armed = self.index == env_idx
        self.fault = fault if self.armed else None
        self.at_step, self.episode_length = at_step, episode_length
        self.delay = delay if self.fault == 'slow' else base_delay
        self.total_steps = self.ticks = 0
        if self.fault == 'raise_init':
            raise ValueError('boom in init')

    def _observe(self):
        self.observations[:, 0] = self.ticks
        self.observations[:, 1] = self.index
        self.observations[:, 2] = np.arange(self.num_agents)

    def reset(self, seed=None):
        if self.fault == 'raise_reset':
            raise ValueError('boom in reset')
        if self.fault == 'kill_reset':
            os.kill(os.getpid(), signal.SIGKILL)
        self.ticks = 0
        self._observe()
        return self.observations, []

    def step(self, actions):
        self.total_steps += 1
        self.ticks += 1
        fire = self.total_steps >= self.at_step
        infos = []
        if self.fault == 'raise' and fire:
            raise ValueError('boom')
        if self.fault == 'hang' and fire:
            time.sleep(3600)
        if self.fault == 'segv' and fire:
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.delay:
            time.sleep(self.delay)
        if self.fault == 'big_info':
            infos.append({'blob': b'x' * (1 << 20), 'step': self.total_steps})
        if self.fault == 'alien_info' and fire:
            infos.append({'thing': Alien()})
        self.rewards[:] = 1
        self.terminals[:] = self.ticks >= self.episode_length
        if self.ticks >= self.episode_length:
            self.ticks = 0
        self._observe()
        if self.fault == 'nan' and fire:
            self.observations[0, 0] = np.nan
        return self.observations, self.rewards, self.terminals, self.truncations, infos


class BoxEnv(PufferEnv):
    """Box(3) actions in [-high, high]; observation = last action."""

    def __init__(self, num_agents=2, high=1.0, buf=None, seed=0):
        self.single_observation_space = gymnasium.spaces.Box(-1, 1, (3,), np.float32)
        self.single_action_space = gymnasium.spaces.Box(-high, high, (3,), np.float32)
        self.num_agents = num_agents
        super().__init__(buf)

    def reset(self, seed=None):
        self.observations[:] = 0
        return self.observations, []

    def step(self, actions):
        self.observations[:] = actions
        return self.observations, self.rewards, self.terminals, self.truncations, []


class Countdown(gymnasium.Env):
    """Observes (its id, steps into the episode); an episode lasts 2 + id % 3 steps. The id is the
    seed of its first reset: env k of a vector env reset with seed 0 is id k."""
    observation_space = gymnasium.spaces.Box(0, 100, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.id = seed
        self.t = 0
        return np.array([self.id, 0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.id, self.t], np.float32), 0.0, self.t == 2 + self.id % 3, False, {}


def time_aware_cartpole():
    """A Dict observation of mixed dtypes (float32 obs, int32 time) from gymnasium's own wrappers."""
    return gymnasium.wrappers.TimeAwareObservation(gymnasium.make('CartPole-v1'), flatten=False)


def pz(name, kind='parallel'):
    """A PettingZoo env by its registry name, such as 'classic/rps-v2' ('aec' for the AEC API)."""
    import pettingzoo
    return pettingzoo.make(kind, name)


def countdown(buf=None, seed=0):
    from pufferlib.emulation import GymnasiumPufferEnv
    return GymnasiumPufferEnv(Countdown(), buf=buf, seed=seed)


# ---- rollouts and checks -----------------------------------------------------------------------

def rollout(vec, seed, steps, num_actions, reseed_at=None):
    rng = np.random.default_rng(123)
    obs, _ = vec.reset(seed)
    out = [obs.copy()]
    for t in range(steps):
        if t == reseed_at:
            obs, _ = vec.reset(seed)
            out.append(obs.copy())
        obs, rew, term, trunc, _ = vec.step(rng.integers(0, num_actions, vec.agents_per_batch))
        out += [obs.copy(), rew.copy(), term.copy(), trunc.copy()]
    return out


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def check_final_observations(vec, recvs=30):
    """Steps `vec` (of countdown envs) and checks that `vec.final_observations` holds, in the rows
    of each batch, the last observation of every episode that ended in that step."""
    vec.async_reset(seed=0)
    ends = 0
    for _ in range(recvs):
        obs, _, terminals, _, _, ids, _ = vec.recv()
        final = vec.final_observations
        assert final.shape == obs.shape and final.dtype == obs.dtype
        assert obs[:, 0].tolist() == ids.tolist()
        for i in np.flatnonzero(terminals):
            assert final[i].tolist() == [ids[i], 2 + ids[i] % 3]
            assert obs[i].tolist() == [ids[i], 0]    # the next episode's first
        ends += int(terminals.sum())
        vec.send(np.zeros(len(ids), np.int32))
    assert ends >= recvs // 4
