"""Adapters: any PufferEnv, or any vector env from `pufferlib.vector.make`, out to code that speaks
Gymnasium or PettingZoo: `GymnasiumEnv` (one agent), `GymnasiumVectorEnv` and `PettingZooEnv`.

They drive the env through async_reset/send/recv, which PufferEnvs and every pufferlib.vector backend
provide, and pass those libraries' own API checkers. The other direction (Gymnasium/PettingZoo envs
in, PufferEnvs out) is `pufferlib.emulation`.
"""
import gymnasium
import numpy as np
from gymnasium.spaces import Box
from gymnasium.vector import AutoresetMode
from pettingzoo.utils.env import ParallelEnv

from pufferlib import PufferEnv
from pufferlib.exceptions import APIUsageError
from pufferlib.spaces import action_dtype, check_actions



def _check_puffer(env, owner):
    for name in ('single_observation_space', 'single_action_space', 'num_agents', 'async_reset',
                 'send', 'recv'):
        if not hasattr(env, name):
            raise APIUsageError(f'{owner}: {type(env).__name__} is not a PufferEnv or pufferlib '
                                f'vector env (it has no {name})')
    batch = getattr(env, 'agents_per_batch', env.num_agents)
    if batch != env.num_agents:
        raise APIUsageError(f'{owner}: the vector env returns {batch} of {env.num_agents} agents '
                            'per recv (batch_size < num_envs); make it with batch_size = num_envs')


def _merge(infos):
    out = {}
    for info in infos:
        out.update(info)
    return out


def _metadata(env, **extra):
    """render_modes and render_fps (Gymnasium warns without them when the env renders): the env's
    own `render_fps` (the emulated envs take it from the env they wrap), else 60, the frame rate of
    pufferlib's raylib window."""
    mode = getattr(env, 'render_mode', None)
    return {'render_modes': [mode] if mode else [],
            'render_fps': getattr(env, 'render_fps', None) or 60, **extra}


def _check_seed(seed, owner):
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise APIUsageError(f'{owner}: seed must be an int or None, got {seed!r} (sub-envs are '
                            'seeded from one int)')


class GymnasiumEnv(gymnasium.Env):
    """A one-agent PufferEnv as a `gymnasium.Env`.

    Returned observations are copies. The PufferEnv resets itself when an episode ends; this adapter
    then returns the final observation if the env records one (`final_observations`, as the
    emulated envs do) and otherwise the next episode's first. Call `reset()` after an episode ends,
    as Gymnasium requires: without a seed it returns the episode the PufferEnv already started
    (no second reset), so the trajectory is the wrapped env's own. Info dicts reported by the
    PufferEnv (episode statistics) are merged into the returned info."""

    def __init__(self, env):
        _check_puffer(env, 'GymnasiumEnv')
        if env.num_agents != 1:
            raise APIUsageError(f'GymnasiumEnv: the env has {env.num_agents} agents; a gymnasium.Env '
                                'has one (use GymnasiumVectorEnv or PettingZooEnv)')
        self.env = env
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.render_mode = getattr(env, 'render_mode', None)
        self.metadata = _metadata(env)
        self._actions = np.zeros((1, *self.action_space.shape),
                                 action_dtype(self.action_space))
        self._started = None  # the first observation of an episode the PufferEnv already began

    def reset(self, *, seed=None, options=None):
        _check_seed(seed, 'GymnasiumEnv')
        super().reset(seed=seed)
        if seed is None and self._started is not None:
            obs, self._started = self._started, None
            return obs, {}
        self.env.async_reset(seed)
        obs, _, _, _, infos, _, _ = self.env.recv()
        return obs[0].copy(), _merge(infos)

    def step(self, action):
        self._actions[0] = check_actions(np.asarray(action), self._actions[0])
        self.env.send(self._actions)
        obs, rewards, terminals, truncations, infos, _, _ = self.env.recv()
        terminated, truncated = bool(terminals[0]), bool(truncations[0])
        self._started = None
        if terminated or truncated:
            self._started = obs[0].copy()
            final = getattr(self.env, 'final_observations', None)
            obs = final if final is not None else obs
        return obs[0].copy(), float(rewards[0]), terminated, truncated, _merge(infos)

    def render(self):
        return self.env.render()

    def close(self):
        self.env.close()


class GymnasiumVectorEnv(gymnasium.vector.VectorEnv):
    """A PufferEnv, or a pufferlib vector env, as a `gymnasium.vector.VectorEnv` with one sub-env per
    agent, in any of Gymnasium's autoreset modes (`autoreset_mode`, declared in
    `metadata['autoreset_mode']`; NEXT_STEP by default, as Gymnasium's own vector envs):

    * SAME_STEP: a sub-env that ends returns the next episode's first observation in the same step;
      the ended episode's last observation is `infos['final_obs']` (an object array, mask
      `infos['_final_obs']`) when the env records final observations (`final_observations`, as the
      emulated envs do), with `infos['final_info']` / `_final_info`.
    * NEXT_STEP: the step that ends returns the final observation; the next step is the reset step
      of that sub-env: its action is ignored by SyncVectorEnv, reward 0, flags False. A PufferEnv
      has already reset the sub-env and steps every sub-env together, so on the reset step the
      sub-env takes the action it is given from the new episode's first observation, and the reset
      step returns the observation after it (the first observation itself is never returned and
      that one reward is not reported). Every transition returned is the env's own.
    * DISABLED: the step that ends returns the final observation; `reset(options={'reset_mask':
      mask})` (no seed) then returns the first observations the PufferEnv already began for those
      sub-envs, exactly as SyncVectorEnv. Stepping before they are reset is an APIUsageError.

    Without final observations (a native env), the "final observation" is the next episode's
    first. Infos are in Gymnasium's vector format (arrays with `_key` masks, so DictInfoToList
    works); PufferEnv info dicts (aggregate statistics, not per sub-env data) are a list under
    `infos['puffer'][0]` (mask `_puffer`) on steps that report. With `copy=True` (default) the
    returned arrays are copies, as Gymnasium's vector envs return; with `copy=False` they are
    overwritten by the next step."""
    __enter__, __exit__ = PufferEnv.__enter__, PufferEnv.__exit__    # `with` closes it

    def __init__(self, env, copy=True, autoreset_mode=AutoresetMode.NEXT_STEP):
        _check_puffer(env, 'GymnasiumVectorEnv')
        try:
            autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise APIUsageError(f'GymnasiumVectorEnv: autoreset_mode is {autoreset_mode!r}, expected '
                                f'one of {[m for m in AutoresetMode]}') from None
        self.env, self.copy, self.autoreset_mode = env, copy, autoreset_mode
        self.num_envs = env.num_agents
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.observation_space = gymnasium.vector.utils.batch_space(self.single_observation_space,
                                                                    self.num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space,
                                                               self.num_envs)
        self.render_mode = getattr(env, 'render_mode', None)
        self.metadata = _metadata(env, autoreset_mode=autoreset_mode)
        self._ended = np.zeros(self.num_envs, bool)  # ended last step: NEXT_STEP reset step, or
        self._current = None                         # DISABLED must reset; _current: env's obs
        self._batch = None                           # what the last call returned (not SAME_STEP)

    def _out(self, arr):
        return arr.copy() if self.copy else arr

    def _infos(self, infos):
        return self._add_info({}, {'puffer': list(infos)}, 0) if infos else {}

    def reset(self, *, seed=None, options=None):
        _check_seed(seed, 'GymnasiumVectorEnv')
        mask = (options or {}).get('reset_mask')
        if mask is not None:
            return self._reset_rows(mask, seed)
        self.env.async_reset(seed)
        obs, _, _, _, infos, _, _ = self.env.recv()
        self._ended[:] = False
        self._current, self._batch = obs, obs.copy()
        return self._out(obs), self._infos(infos)

    def _reset_rows(self, mask, seed):
        """reset(options={'reset_mask': mask}): the PufferEnv already began the next episode of
        every sub-env that ended; return those first observations."""
        if not (isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == (self.num_envs,)
                and mask.any()):
            raise APIUsageError(f"GymnasiumVectorEnv: options['reset_mask'] must be a bool array of "
                                f'shape ({self.num_envs},) with a True value, got {mask!r}')
        if seed is not None:
            raise APIUsageError('GymnasiumVectorEnv: reset with a reset_mask takes no seed (the '
                                'PufferEnv reset those sub-envs itself, unseeded, when they ended)')
        if (mask & ~self._ended).any():
            raise APIUsageError(f'GymnasiumVectorEnv: reset_mask selects sub-envs '
                                f'{np.flatnonzero(mask & ~self._ended).tolist()} that have not ended; '
                                'a PufferEnv resets a sub-env only when its episode ends')
        self._batch[mask] = self._current[mask]
        self._ended &= ~mask
        return self._out(self._batch), {}

    def step(self, actions):
        mode = AutoresetMode
        if self.autoreset_mode == mode.DISABLED and self._ended.any():
            raise APIUsageError(f'GymnasiumVectorEnv: sub-envs {np.flatnonzero(self._ended).tolist()} '
                                "ended; with AutoresetMode.DISABLED reset them (reset(options="
                                "{'reset_mask': mask})) before the next step()")
        self.env.send(actions)
        obs, rewards, terminals, truncations, infos, _, _ = self.env.recv()
        info = self._infos(infos)
        done = terminals | truncations
        final = getattr(self.env, 'final_observations', None)
        if self.autoreset_mode == mode.SAME_STEP:
            if done.any():
                final_obs = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    final_obs[i] = (final if final is not None else obs)[i].copy()
                info['final_obs'], info['_final_obs'] = final_obs, done
                info['final_info'], info['_final_info'] = {}, done.copy()
            return (self._out(obs), self._out(rewards), self._out(terminals),
                    self._out(truncations), info)
        rewards, terminals, truncations = rewards.copy(), terminals.copy(), truncations.copy()
        restarted = self._ended    # NEXT_STEP: this is their reset step
        rewards[restarted] = 0
        terminals[restarted] = truncations[restarted] = False
        ended = done & ~restarted
        self._current = obs
        self._batch[:] = obs
        if final is not None:
            self._batch[ended] = final[ended]
        self._ended = ended
        return self._out(self._batch), rewards, terminals, truncations, info

    def render(self):
        return self.env.render()

    def close_extras(self, **kwargs):
        self.env.close()


class PettingZooEnv(ParallelEnv):
    """A PufferEnv, or a pufferlib vector env, as a PettingZoo `ParallelEnv`.

    Agents are the env's `possible_agents` when it has them (PettingZooPufferEnv), else 'agent_i'
    for row i. `agents` after reset are the rows whose mask is set. An agent whose row ends
    (terminal, truncated, or its mask cleared) is reported done with its final observation when the
    env records one, and leaves `agents` until the next `reset()`, although the PufferEnv itself has
    already reset it; agents that appear later (mask set) join. Dead agents' rows get the lowest
    valid action. When every row ended in the same step, the PufferEnv has already begun the next
    episode, and `reset()` without a seed returns it instead of resetting again. PufferEnv info
    dicts (episode statistics) are merged into every agent's info."""
    __enter__, __exit__ = PufferEnv.__enter__, PufferEnv.__exit__    # `with` closes it

    def __init__(self, env):
        _check_puffer(env, 'PettingZooEnv')
        self.env = env
        n = env.num_agents
        names = list(getattr(env, 'possible_agents', None) or [])
        self.possible_agents = names if len(names) == n else [f'agent_{i}' for i in range(n)]
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._obs_space, self._act_space = env.single_observation_space, env.single_action_space
        self.render_mode = getattr(env, 'render_mode', None)
        self.metadata = _metadata(env, name=f'puffer_{type(env).__name__}')
        space = self._act_space
        self._idle = np.zeros((n, *space.shape), action_dtype(space))
        self._idle[:] = (np.clip(0, space.low, space.high) if isinstance(space, Box)
                         else space.start)
        self._actions = self._idle.copy()
        self.agents = []
        self._finished = np.zeros(n, bool)
        self._started = None  # (observations, masks) of an episode the PufferEnv already began

    def observation_space(self, agent):
        self._agent_index(agent)
        return self._obs_space

    def action_space(self, agent):
        self._agent_index(agent)
        return self._act_space

    def _agent_index(self, agent):
        try:
            return self._index[agent]
        except (KeyError, TypeError):
            raise APIUsageError(f'PettingZooEnv: unknown agent {agent!r}') from None

    def reset(self, seed=None, options=None):
        _check_seed(seed, 'PettingZooEnv')
        if seed is None and self._started is not None:
            (obs, masks), infos = self._started, []
        else:
            self.env.async_reset(seed)
            obs, _, _, _, infos, _, masks = self.env.recv()
        self._started = None
        self._finished[:] = False
        self.agents = [a for a, m in zip(self.possible_agents, masks) if m]
        info = _merge(infos)
        return ({a: obs[self._index[a]].copy() for a in self.agents},
                {a: dict(info) for a in self.agents})

    def step(self, actions):
        self._actions[:] = self._idle
        for agent, action in actions.items():
            i = self._agent_index(agent)
            self._actions[i] = check_actions(np.asarray(action), self._actions[i])
        self.env.send(self._actions)
        obs, rewards, terminals, truncations, infos, _, masks = self.env.recv()
        final = getattr(self.env, 'final_observations', None)
        live = set(self.agents)
        keys = [a for i, a in enumerate(self.possible_agents) if a in live or (
            masks[i] and not self._finished[i] and not terminals[i] and not truncations[i])]
        out_obs, out_rew, out_term, out_trunc = {}, {}, {}, {}
        for agent in keys:
            i = self._index[agent]
            terminated = bool(terminals[i]) or not masks[i]
            truncated = bool(truncations[i]) and not terminated
            done = terminated or truncated
            self._finished[i] |= done
            out_obs[agent] = (final if done and final is not None else obs)[i].copy()
            out_rew[agent] = float(rewards[i])
            out_term[agent], out_trunc[agent] = terminated, truncated
        self.agents = [a for a in keys if not self._finished[self._index[a]]]
        ended = terminals | truncations | ~masks
        self._started = (obs.copy(), masks.copy()) if ended.all() else None
        info = _merge(infos)
        return out_obs, out_rew, out_term, out_trunc, {a: dict(info) for a in keys}

    def render(self):
        return self.env.render()

    def close(self):
        self.env.close()
