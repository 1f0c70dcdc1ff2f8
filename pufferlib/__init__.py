"""pufferlib: fast, sane reinforcement learning environments, vectorization and training.

`PufferEnv` is the base class of every env: a subclass declares its spaces and agent count, and the
base class allocates (or adopts) the arrays the env writes into in place. The buffer helpers it uses
live in `pufferlib.spaces` and are re-exported here.
"""
import importlib
import warnings

import gymnasium
import numpy as np

from pufferlib.exceptions import (APIUsageError, ClosedError, EnvDataError, EnvTimeoutError,
                                  EnvWorkerError)
from pufferlib.spaces import (BUFFER_NAMES, action_dtype, adopt_buffer, buffer_specs,
                              check_action_values, check_actions, joint_space)

__version__ = '0.1.0'
__all__ = ['PufferEnv', 'APIUsageError', 'ClosedError', 'EnvDataError', 'EnvTimeoutError',
           'EnvWorkerError', 'adopt_buffer', 'buffer_specs', 'joint_space', 'check_actions',
           'check_action_values']


def moved_names(module, moved):
    """A module `__getattr__` for names that moved to other modules (`moved`: {name: new module}):
    they stay importable from `module` for one release, each access with a DeprecationWarning that
    names the new home."""
    def __getattr__(name):
        if name not in moved:
            raise AttributeError(f'module {module!r} has no attribute {name!r}')
        warnings.warn(f'{module}.{name} moved to {moved[name]}.{name}', DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(moved[name]), name)
    return __getattr__


class PufferEnv:
    """Base class of every pufferlib env.

    A subclass sets `single_observation_space` (a Box), `single_action_space` (Discrete,
    MultiDiscrete or Box) and `num_agents`, then calls `super().__init__(buf)`. The base class then
    provides `observations, actions, rewards, terminals, truncations, masks` (allocated, or adopted
    from the dict `buf` without copying), the joint `observation_space`/`action_space` and
    `agent_ids`. The subclass implements `reset(seed=None) -> (observations, infos)` and
    `step(actions) -> (observations, rewards, terminals, truncations, infos)`, writing into those
    arrays and returning them; an agent whose episode ends is reset inside the same step.

    A PufferEnv is also a vector env (the Native backend): `async_reset/send/recv` are provided.
    """
    render_mode = None
    emulated = None

    def __init__(self, buf=None):
        owner = type(self).__name__
        for name in ('single_observation_space', 'single_action_space', 'num_agents'):
            if not hasattr(self, name):
                raise APIUsageError(f'{owner} has no `{name}`: set single_observation_space, '
                                    'single_action_space and num_agents before calling '
                                    'super().__init__(buf)')
        for name in ('observation_space', 'action_space'):
            if hasattr(self, name):
                raise APIUsageError(f'{owner} sets `{name}`: set `single_{name}` (one agent\'s '
                                    f'space); the base class builds the joint `{name}`')
        obs_space, act_space, n = self.single_observation_space, self.single_action_space, self.num_agents
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise APIUsageError(f'{owner}.num_agents is {n!r}: it must be an integer >= 1')
        if not isinstance(obs_space, gymnasium.spaces.Box):
            raise APIUsageError(f'{owner}.single_observation_space is {obs_space}: it must be a Box '
                                '(wrap other spaces with pufferlib.emulation.GymnasiumPufferEnv)')
        action_dtype(act_space)  # raises on an unsupported action space
        if buf is not None and not isinstance(buf, dict):
            name = getattr(self, 'name', None)    # the wrapped env of an emulated env
            who = f'{owner}({name})' if isinstance(name, str) else owner
            raise APIUsageError(f'{who}: buf is a {type(buf).__name__}: it must be None or a dict of '
                                f'arrays by name ({", ".join(BUFFER_NAMES)}), which the env adopts')
        for name, (shape, dtype) in buffer_specs(obs_space, act_space, n).items():
            setattr(self, name, np.zeros(shape, dtype) if buf is None
                    else adopt_buffer(buf, name, shape, dtype, owner))
        self.masks[:] = True
        self.observation_space = joint_space(obs_space, n)
        self.action_space = joint_space(act_space, n)
        self.agent_ids = np.arange(n)
        self._infos = []

    def reset(self, seed=None):
        raise NotImplementedError(f'{type(self).__name__} must implement reset(seed=None)')

    def step(self, actions):
        raise NotImplementedError(f'{type(self).__name__} must implement step(actions)')

    def render(self):
        pass

    def close(self):
        pass

    # `with env:` closes the env on exit; an exception raised in the block propagates. The vector
    # backends and the adapters take these two methods too.
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # The vector env API, so that a PufferEnv holding many sub-envs is its own vector env.
    @property
    def agents_per_batch(self):
        return self.num_agents

    def async_reset(self, seed=None):
        _, self._infos = self.reset(seed)

    def send(self, actions):
        actions = check_actions(actions, self.actions)
        self._infos = self.step(actions)[4]

    def recv(self):
        return (self.observations, self.rewards, self.terminals, self.truncations, self._infos,
                self.agent_ids, self.masks)
