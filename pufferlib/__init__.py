"""pufferlib: fast, sane reinforcement learning environments, vectorization and training.

`PufferEnv` is the base class of every env: a subclass declares its spaces and agent count, and the
base class allocates (or adopts) the arrays the env writes into in place.
"""
import numpy as np
from gymnasium import spaces

from pufferlib.exceptions import (APIUsageError, ClosedError, EnvDataError, EnvTimeoutError,
                                  EnvWorkerError)

__version__ = '0.1.0'
__all__ = ['PufferEnv', 'APIUsageError', 'ClosedError', 'EnvDataError', 'EnvTimeoutError',
           'EnvWorkerError', 'adopt_buffer', 'buffer_specs', 'joint_space', 'check_actions',
           'check_action_values']

BUFFER_NAMES = ('observations', 'actions', 'rewards', 'terminals', 'truncations', 'masks')


def action_dtype(space):
    """int32 for Discrete/MultiDiscrete, the space's own dtype for Box."""
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        return np.dtype(np.int32)
    if isinstance(space, spaces.Box):
        return np.dtype(space.dtype)
    raise APIUsageError(f'action space {space} is not supported: use Discrete, MultiDiscrete or Box '
                        '(wrap structured action spaces with pufferlib.emulation)')


def buffer_specs(observation_space, action_space, num_agents):
    """{name: (shape, dtype)} of the six arrays a PufferEnv with `num_agents` agents writes into."""
    n = int(num_agents)
    act_shape = () if isinstance(action_space, spaces.Discrete) else tuple(action_space.shape)
    return {
        'observations': ((n, *observation_space.shape), np.dtype(observation_space.dtype)),
        'actions': ((n, *act_shape), action_dtype(action_space)),
        'rewards': ((n,), np.dtype(np.float32)),
        'terminals': ((n,), np.dtype(bool)),
        'truncations': ((n,), np.dtype(bool)),
        'masks': ((n,), np.dtype(bool)),
    }


def joint_space(space, n):
    """The space of `n` stacked copies of `space` (what one step of n agents takes or gives)."""
    if isinstance(space, spaces.Discrete):
        return spaces.MultiDiscrete(np.full(n, space.n), start=np.full(n, space.start))
    if isinstance(space, spaces.MultiDiscrete):
        return spaces.Box(np.broadcast_to(space.start, (n, *space.shape)),
                          np.broadcast_to(space.start + space.nvec - 1, (n, *space.shape)),
                          dtype=np.int32)
    if isinstance(space, spaces.Box):
        return spaces.Box(np.broadcast_to(space.low, (n, *space.shape)),
                          np.broadcast_to(space.high, (n, *space.shape)), dtype=space.dtype)
    raise APIUsageError(f'cannot stack {space}: only Discrete, MultiDiscrete and Box are supported')


def check_actions(actions, expected):
    """O(1) check of an action batch against the action buffer it will be written into.
    Casts within a kind (int64 -> int32, float64 -> float32) are allowed; float -> int is not."""
    if not isinstance(actions, np.ndarray):
        actions = np.asarray(actions)
    if actions.shape != expected.shape:
        raise APIUsageError(f'actions have shape {actions.shape}, expected {expected.shape} '
                            f'(one row per agent)')
    if actions.dtype != expected.dtype and not np.can_cast(actions.dtype, expected.dtype, 'same_kind'):
        raise APIUsageError(f'actions have dtype {actions.dtype}, expected {expected.dtype}: '
                            f'cast them explicitly (pufferlib never truncates {actions.dtype} silently)')
    return actions


def check_action_values(actions, space):
    """O(n) range check of an action batch against the single-agent action space; the error names
    the first offending agent and value. Used when a vector env is made with check_actions=True."""
    actions = np.asarray(actions)
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        low = space.start
        high = space.start + (space.n if isinstance(space, spaces.Discrete) else space.nvec) - 1
        bad = (actions < low) | (actions > high)
    else:
        bad = ~np.isfinite(actions) | (actions < space.low) | (actions > space.high)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise APIUsageError(f'action of agent {idx[0]} is {actions[tuple(idx)].item()!r}, outside {space}')


def adopt_buffer(buf, name, shape, dtype, owner):
    """buf[name], checked to be a writeable C-contiguous numpy array of `shape` and `dtype`; any
    mismatch is an APIUsageError naming `owner` (the env's class name), the array and what was
    expected. PufferEnv.__init__ adopts its six arrays with it; an env with more arrays (such as
    the emulated envs' final_observations) adopts them the same way."""
    try:
        arr = buf[name]
    except (KeyError, TypeError):
        raise APIUsageError(f'{owner}: buf has no {name!r} array; buf must be a dict with keys '
                            f'{", ".join(BUFFER_NAMES)}') from None
    if not isinstance(arr, np.ndarray):
        raise APIUsageError(f'{owner}: buf[{name!r}] is a {type(arr).__name__}, expected a numpy array')
    if arr.shape != shape or arr.dtype != dtype:
        raise APIUsageError(f'{owner}: buf[{name!r}] has shape {arr.shape} and dtype {arr.dtype}, '
                            f'expected shape {shape} and dtype {dtype}')
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise APIUsageError(f'{owner}: buf[{name!r}] must be a writeable C-contiguous array '
                            '(the env writes into it in place)')
    return arr


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
        if not isinstance(obs_space, spaces.Box):
            raise APIUsageError(f'{owner}.single_observation_space is {obs_space}: it must be a Box '
                                '(wrap other spaces with pufferlib.emulation.GymnasiumPufferEnv)')
        action_dtype(act_space)  # raises on an unsupported action space
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
