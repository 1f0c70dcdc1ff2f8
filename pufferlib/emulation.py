"""Emulation: any Gymnasium or PettingZoo env in, a PufferEnv out.

`GymnasiumPufferEnv` and `PettingZooPufferEnv` flatten structured observations (Dict, Tuple,
Discrete, MultiDiscrete, MultiBinary, nested) into one row of a Box, and rebuild structured actions
from a MultiDiscrete or Box row, with the layout of `pufferlib.spaces` (whose `nativize` restores the
nested structure from flat rows for a policy). The other direction, any PufferEnv out to Gymnasium
and PettingZoo consumers, is `pufferlib.adapters`.
"""
import contextlib
import inspect
import math

import gymnasium
import numpy as np
from gymnasium.spaces import Discrete, Space
from gymnasium.utils.step_api_compatibility import convert_to_terminated_truncated_step_api
from pettingzoo.utils.env import AECEnv

from pufferlib import APIUsageError, PufferEnv, adopt_buffer, check_actions, moved_names, spaces

# Observations checked in full with `space.contains` after construction (always with check_space=True).
CHECK_STEPS = 16

# Names that lived here before they moved (importable from here for one release, with a warning).
MOVED = {**{name: 'pufferlib.spaces' for name in (
    'struct_dtype', 'emulate_observation_space', 'emulate_action_space', 'nativize', 'flatten',
    'observation_writer')},
    **{name: 'pufferlib.adapters' for name in ('GymnasiumEnv', 'GymnasiumVectorEnv', 'PettingZooEnv')}}
__getattr__ = moved_names(__name__, MOVED)


# ---------------------------------------------------------------------------------------------------
# Gymnasium and PettingZoo envs as PufferEnvs

def _make(owner, env, env_creator, env_args, env_kwargs):
    if env is not None and env_creator is not None:
        raise APIUsageError(f'{owner}: pass either env (an instance) or env_creator, not both')
    if env is None and env_creator is None:
        raise APIUsageError(f'{owner}: pass env=an env instance or env_creator=a callable that '
                            'returns one')
    if env_creator is None:
        if inspect.isclass(env):
            raise APIUsageError(f'{owner}: env is the class {env.__name__}, not an instance: pass '
                                f'env={env.__name__}() or env_creator={env.__name__}')
        if env_args or env_kwargs:
            raise APIUsageError(f'{owner}: env_args and env_kwargs apply to env_creator; env is '
                                'already built')
        what = 'env'
    else:
        if not callable(env_creator):
            raise APIUsageError(f'{owner}: env_creator is a {type(env_creator).__name__}, not a '
                                'callable that returns an env')
        if not isinstance(env_args, (tuple, list)):
            raise APIUsageError(f'{owner}: env_args must be a tuple or list, got '
                                f'{type(env_args).__name__}')
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise APIUsageError(f'{owner}: env_kwargs must be a dict, got '
                                f'{type(env_kwargs).__name__}')
        env = env_creator(*env_args, **(env_kwargs or {}))
        what = f'env_creator returned {type(env).__name__}, which'
    if not (hasattr(env, 'reset') and hasattr(env, 'step')):
        raise APIUsageError(f'{owner}: {what} is not an env (it has no reset/step methods)')
    return env


# How to turn an old-API Gym env (obs-only reset, 4-value step) into a Gymnasium one.
OLD_API_HINT = ("convert it with shimmy: GymnasiumPufferEnv(..., old_api=True) does it, or "
                "gymnasium.make('GymV21Environment-v0', env=env) (pip install 'shimmy[gym-v21]')")


def _old_api_signature(env):
    """True when `env.reset` cannot take a seed: the old Gym API (crafter as shipped)."""
    if isinstance(env, gymnasium.Env):
        return False
    try:
        params = inspect.signature(env.reset).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.name == 'seed' or p.kind == p.VAR_KEYWORD for p in params)


class _OldApi(gymnasium.Env):
    """An old-API env that already has Gymnasium spaces, as a Gymnasium env, with Gymnasium's own
    step conversion (done with info['TimeLimit.truncated'] is a truncation): the fallback of
    `old_api=True` when shimmy cannot run (it needs the old gym package for gym spaces)."""

    def __init__(self, env):
        self.env = env
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.metadata = getattr(env, 'metadata', None) or {'render_modes': []}
        self.render_mode = getattr(env, 'render_mode', None)

    @property
    def unwrapped(self):
        return self.env

    def reset(self, *, seed=None, options=None):
        if seed is not None and hasattr(self.env, 'seed'):
            self.env.seed(seed)
        return self.env.reset(), {}

    def step(self, action):
        return convert_to_terminated_truncated_step_api(self.env.step(action))

    def render(self):
        return self.env.render()

    def close(self):
        if hasattr(self.env, 'close'):
            self.env.close()


def _convert_old_api(env):
    """GymnasiumPufferEnv(old_api=True): shimmy's GymV21CompatibilityV0 (it converts gym spaces too),
    or `_OldApi` when shimmy cannot run and the env's spaces are Gymnasium's already."""
    try:
        from shimmy import GymV21CompatibilityV0
        return GymV21CompatibilityV0(env=env)
    except (ImportError, gymnasium.error.DependencyNotInstalled) as e:
        if all(isinstance(getattr(env, n, None), Space) for n in ('observation_space', 'action_space')):
            return _OldApi(env)
        raise APIUsageError(f'GymnasiumPufferEnv(old_api=True): {type(env).__name__} has gym (not '
                            f'Gymnasium) spaces, which shimmy converts, but shimmy cannot run: {e}. '
                            "pip install 'shimmy[gym-v21]'") from None


@contextlib.contextmanager
def _closed_on_error(env):
    """Close the wrapped env when the emulation cannot be built around it."""
    try:
        yield
    except BaseException:
        try:
            env.close()
        except Exception:
            pass
        raise


def _env_name(env):
    spec = getattr(env, 'spec', None)
    name = getattr(spec, 'id', None)
    return name or type(getattr(env, 'unwrapped', env)).__name__


def _numbers(info, prefix=''):
    """The scalar numbers of a (nested) info dict as {'a/b': float}."""
    out = {}
    for key, value in info.items():
        if isinstance(value, dict):
            out.update(_numbers(value, f'{prefix}{key}/'))
        elif isinstance(value, (int, float, np.number)) or (
                isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in 'biuf'):
            out[f'{prefix}{key}'] = float(value)
    return out


class _EpisodeLog:
    """Sums of episode statistics since the last report; `report()` gives their means and `n`."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.sums, self.counts, self.n = {}, {}, 0

    def add(self, stats):
        self.n += 1
        for key, value in stats.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def report(self):
        info = {k: v / self.counts[k] for k, v in self.sums.items()}
        info['n'] = self.n
        self.clear()
        return info


class _Emulated(PufferEnv):
    """Shared parts of the Gymnasium and PettingZoo emulation."""

    def _setup(self, obs_space, act_space, buf, seed, report_interval, check_space):
        obs_space = spaces.as_text(obs_space)  # MiniGrid's MissionSpace as a Text
        self.single_observation_space, self.obs_dtype = spaces.emulate_observation_space(obs_space)
        self.single_action_space, self._read_action = spaces.emulate_action_space(act_space)
        self.emulated = {'observation_space': obs_space, 'observation_dtype': self.obs_dtype,
                         'action_space': act_space}
        self._native_obs_space = obs_space
        super().__init__(buf)
        shape, dtype = self.observations.shape, self.observations.dtype
        if isinstance(buf, dict) and 'final_observations' in buf:
            self.final_observations = adopt_buffer(
                buf, 'final_observations', shape, dtype, type(self).__name__)
        else:
            self.final_observations = np.zeros(shape, dtype)
        if not isinstance(report_interval, int) or report_interval < 1:
            raise APIUsageError(f'report_interval is {report_interval!r}: it must be an int >= 1')
        self.report_interval = report_interval
        self._seed, self._seeded = seed, False
        self._checks_left = math.inf if check_space else CHECK_STEPS
        self._needs_reset = True
        self._log = _EpisodeLog()
        self.tick = 0
        self.render_mode = getattr(self.env, 'render_mode', None)
        self.render_fps = (getattr(self.env, 'metadata', None) or {}).get('render_fps')

    def _writers(self, rows):
        space = self._native_obs_space
        return [spaces.observation_writer(space, spaces.views(row, space)) for row in rows]

    def _seed_arg(self, seed):
        """The constructor's seed on the first reset; never an explicit seed=None."""
        if seed is None and not self._seeded:
            seed = self._seed
        self._seeded = True
        return {} if seed is None else {'seed': int(seed)}

    def _broken_rule(self, rule):
        return APIUsageError(f'{type(self).__name__}({self.name}): {rule}')

    def _reset_env(self, where, **seed):
        """The wrapped env's reset(), checked to return (observations, infos)."""
        result = self.env.reset(**seed)
        if not isinstance(result, tuple) or len(result) != 2:
            got = (f'{len(result)} values' if isinstance(result, tuple)
                   else f'a {type(result).__name__}, not a tuple')
            raise self._broken_rule(f'{where} returned {got}: reset() must return (observations, '
                                    f'infos) (the Gymnasium >= 0.26 and PettingZoo >= 1.22 API)')
        if not isinstance(result[1], dict):
            raise self._broken_rule(f'{where} returned infos of type {type(result[1]).__name__}: '
                                    'infos must be a dict')
        return result[0]

    def _bad_step(self, result):
        got = f'{len(result)} values' if isinstance(result, tuple) else f'a {type(result).__name__}'
        return self._broken_rule(f'step() returned {got}: step() must return 5 values (observations, '
                                 'rewards, terminated, truncated, infos), the Gymnasium >= 0.26 and '
                                 'PettingZoo >= 1.22 API')

    def _bad_observation(self, error, where):
        return APIUsageError(f'{type(self).__name__}({self.name}): {error} (returned by {where}); '
                             'pufferlib never casts observations silently')

    def _check_contains(self, obs, where, space=None):
        self._checks_left -= 1
        space = space or self._native_obs_space
        if not space.contains(obs):
            text = repr(obs)
            raise APIUsageError(f'{type(self).__name__}({self.name}): observation returned by '
                                f'{where} is outside {space}: {text[:200]}')

    def _report(self):
        self.tick += 1
        if self.tick % self.report_interval == 0 and self._log.n:
            return [self._log.report()]
        return []

    def render(self):
        return self.env.render()

    def close(self):
        self.env.close()


class GymnasiumPufferEnv(_Emulated):
    """A one-agent PufferEnv over a `gymnasium.Env`.

    Pass exactly one of `env` (an instance) or `env_creator` (called with `env_args`, `env_kwargs`).
    Observations of any supported space are flattened into `observations[0]` (see the module doc);
    `emulated` holds the native spaces and the row dtype for `nativize`. Structured actions are
    rebuilt from the action row before `env.step`.

    Auto-reset: the step that ends an episode (terminated or truncated) resets the wrapped env in the
    same step. It returns the new episode's first observation with that step's reward and flags.
    The final observation of the ended episode is written to `final_observations[0]` (same shape and
    dtype as `observations`), only on such steps: read it where `terminals | truncations` is set.
    Pass a `final_observations` array in `buf` to have it written there instead.

    Seeding: `reset(seed)` passes `seed` to the wrapped env's reset; the first reset without a seed
    uses the constructor's `seed`; later resets, and the auto-resets, pass no seed.

    Episode statistics: every `report_interval` steps, if episodes ended since the last report, `step`
    returns one info dict with the means of `episode_return`, `episode_length` and the scalar numbers
    of each episode's final info, plus `n` (episodes counted).

    Bad observations: a wrong type, dtype or shape raises APIUsageError naming the env and the
    expected and actual value (checked every step in O(1)); values outside the space are checked in
    full for the first CHECK_STEPS observations, or always with `check_space=True`.

    Old-API Gym envs (obs-only reset, 4-value step, such as crafter): `old_api=True` converts them
    with shimmy's GymV21CompatibilityV0; without it, an env whose reset() takes no seed is refused
    with an APIUsageError that says so.
    """

    def __init__(self, env=None, env_creator=None, env_args=(), env_kwargs=None, buf=None, seed=0,
                 report_interval=128, check_space=False, old_api=False):
        self.env = _make('GymnasiumPufferEnv', env, env_creator, env_args, env_kwargs)
        with _closed_on_error(self.env):
            if old_api:
                self.env = _convert_old_api(self.env)
            elif _old_api_signature(self.env):
                raise APIUsageError(f'GymnasiumPufferEnv: {type(self.env).__name__} is an old-API Gym '
                                    f'env (its reset() takes no seed): {OLD_API_HINT}')
            obs_space = getattr(self.env, 'observation_space', None)
            act_space = getattr(self.env, 'action_space', None)
            if not isinstance(obs_space, Space) or not isinstance(act_space, Space):
                hint = (' (it looks like a PettingZoo env: use PettingZooPufferEnv)'
                        if callable(obs_space) else f' (for an old gym env, {OLD_API_HINT})'
                        if obs_space is not None else '')
                raise APIUsageError(f'GymnasiumPufferEnv: {type(self.env).__name__} has no gymnasium '
                                    f'observation_space/action_space{hint}')
            self.name = _env_name(self.env)
            self.num_agents = 1
            self._setup(obs_space, act_space, buf, seed, report_interval, check_space)
            self._write, = self._writers(self.observations)
            self._write_final, = self._writers(self.final_observations)
            if isinstance(act_space, Discrete):
                self._action = self.actions.item  # a Python int, the cheapest action to build
            else:
                read, row = self._read_action, self.actions[0]
                self._action = lambda: read(row)

    def _observe(self, write, obs, where):
        try:
            write(obs)
        except APIUsageError as e:
            raise self._bad_observation(e, where) from None
        if self._checks_left:
            self._check_contains(obs, where)

    def reset(self, seed=None):
        obs = self._reset_env('reset()', **self._seed_arg(seed))
        self._observe(self._write, obs, 'reset()')
        self.rewards[0] = 0
        self.terminals[0] = self.truncations[0] = False
        self.masks[0] = True
        self._flags_set = False
        self._needs_reset = False
        self._return, self._length = 0.0, 0
        self._log.clear()
        self.tick = 0
        return self.observations, []

    def step(self, actions):
        # The hot path: every line here is paid once per env step.
        if actions is not self.actions:
            self.actions[...] = check_actions(actions, self.actions)
        if self._needs_reset:
            raise APIUsageError(f'GymnasiumPufferEnv({self.name}): call reset() before step()')
        result = self.env.step(self._action())
        try:
            obs, reward, terminated, truncated, info = result
        except (ValueError, TypeError):
            raise self._bad_step(result) from None
        self.rewards[0] = reward
        self._return += reward
        self._length += 1
        if terminated or truncated:
            self.terminals[0] = terminated
            self.truncations[0] = truncated
            self._flags_set = True
            self._end_episode(obs, info)
        else:
            if self._flags_set:  # flags stay False between episode ends, written only then
                self.terminals[0] = self.truncations[0] = False
                self._flags_set = False
            try:
                self._write(obs)
            except APIUsageError as e:
                raise self._bad_observation(e, 'step()') from None
            if self._checks_left:
                self._check_contains(obs, 'step()')
        self.tick += 1
        if self.tick % self.report_interval or not self._log.n:
            return self.observations, self.rewards, self.terminals, self.truncations, []
        return (self.observations, self.rewards, self.terminals, self.truncations,
                [self._log.report()])

    def _end_episode(self, obs, info):
        self._observe(self._write_final, obs, 'step()')
        if not isinstance(info, dict):
            raise self._broken_rule(f'step() returned infos of type {type(info).__name__}: infos '
                                    'must be a dict (the 5th value of step())')
        stats = _numbers(info)
        stats['episode_return'] = float(self._return)
        stats['episode_length'] = self._length
        self._log.add(stats)
        self._return, self._length = 0.0, 0
        obs = self._reset_env('reset() (auto-reset)')
        self._observe(self._write, obs, 'reset() (auto-reset)')


class PettingZooPufferEnv(_Emulated):
    """A PufferEnv over a PettingZoo `ParallelEnv` (an `AECEnv` is converted with PettingZoo's own
    `aec_to_parallel`, or `turn_based_aec_to_parallel` when it is not parallelizable).

    `num_agents = len(possible_agents)`; row i is `possible_agents[i]`. All agents must share one
    observation space and one action space, unless `pad_spaces=True`: then each space is the
    elementwise union of the agents' own (`pufferlib.spaces.pad_spaces`: Boxes padded with zeros to
    the largest shape, Discretes to the largest n), `observation_masks` / `action_masks` (also in
    `emulated`) tell which entries of each agent's row and which actions are real, each agent's
    observation fills the leading corner of its row, and an action outside the agent's own
    Discrete is an APIUsageError. Actions are an array with one row per agent or a dict
    {agent: action}; only agents alive in the wrapped env get theirs, and unknown names raise.

    Padding: an agent absent from a step's observations has a zero observation, reward 0,
    `terminals` True, `truncations` False and `masks` False. `masks[i]` is True when the agent has
    data in the returned batch (its step result, or its first observation of a new episode).

    Auto-reset: when the wrapped env has no agents left, it is reset in the same step; the returned
    rows hold the new episode's first observations with the ended step's rewards and flags, and
    `final_observations` holds the ended step's observations (zeros for absent agents). Seeding,
    episode statistics (`episode_return` is the mean over the agents that took part) and bad
    observation checks are as in `GymnasiumPufferEnv`.
    """

    def __init__(self, env=None, env_creator=None, env_args=(), env_kwargs=None, buf=None, seed=0,
                 report_interval=128, check_space=False, pad_spaces=False):
        env = _make('PettingZooPufferEnv', env, env_creator, env_args, env_kwargs)
        with _closed_on_error(env):
            if isinstance(env, AECEnv):
                from pettingzoo.utils.conversions import aec_to_parallel, turn_based_aec_to_parallel
                parallel = env.metadata.get('is_parallelizable', False)
                env = aec_to_parallel(env) if parallel else turn_based_aec_to_parallel(env)
            self.env = env
            self.name = _env_name(env)
            agents = getattr(env, 'possible_agents', None)
            if not callable(getattr(env, 'observation_space', None)) or not agents:
                raise APIUsageError(f'PettingZooPufferEnv: {type(env).__name__} is not a PettingZoo '
                                    'env with possible_agents (for a Gymnasium env use '
                                    'GymnasiumPufferEnv)')
            self.possible_agents = list(agents)
            self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
            first = self.possible_agents[0]
            obs_spaces = [env.observation_space(a) for a in self.possible_agents]
            act_spaces = [env.action_space(a) for a in self.possible_agents]
            obs_space, act_space = obs_spaces[0], act_spaces[0]
            if pad_spaces:
                obs_space, obs_mask = spaces.pad_spaces(obs_spaces, 'observation')
                act_space, act_mask = spaces.pad_spaces(act_spaces, 'action')
            for agent, own_obs, own_act in zip(self.possible_agents[1:], obs_spaces[1:],
                                               act_spaces[1:]):
                for kind, space, own in (('observation', obs_spaces[0], own_obs),
                                         ('action', act_spaces[0], own_act)):
                    if own != space and not pad_spaces:
                        raise APIUsageError(f'PettingZooPufferEnv({self.name}): agent {agent!r} has '
                                            f'{kind} space {own}, but {first!r} has {space}: all '
                                            'agents must share one space, or pass pad_spaces=True '
                                            'to pad them to one')
            self.num_agents = len(self.possible_agents)
            self._setup(obs_space, act_space, buf, seed, report_interval, check_space)
            self._write = self._writers(self.observations)
            self._agent_obs_spaces = [obs_space] * self.num_agents
            self._readers = [self._read_action] * self.num_agents
            if pad_spaces:
                self._pad(obs_spaces, act_spaces, obs_mask, act_mask)
            self._returns = np.zeros(self.num_agents, np.float64)
            self._seen = np.zeros(self.num_agents, bool)

    def _pad(self, obs_spaces, act_spaces, obs_mask, act_mask):
        """pad_spaces=True: each agent writes its own observation into its part of the row and reads
        its own action from the padded action row."""
        self.emulated['observation_mask'], self.emulated['action_mask'] = obs_mask, act_mask
        self.observation_masks, self.action_masks = obs_mask, act_mask
        self._agent_obs_spaces = obs_spaces
        views = [spaces.views(row, self._native_obs_space) for row in self.observations]
        self._write = [spaces.observation_writer(space, view[spaces.padded_region(space)])
                       for space, view in zip(obs_spaces, views)]
        self._readers = [self._padded_reader(agent, space) for agent, space in
                         zip(self.possible_agents, act_spaces)]

    def _padded_reader(self, agent, space):
        read = self._read_action
        if isinstance(space, Discrete):
            def read_own(row):
                action = read(row)
                if action >= space.start + space.n:
                    raise APIUsageError(f'PettingZooPufferEnv({self.name}): agent {agent!r} took '
                                        f'action {action}, outside its {space} (pad_spaces: '
                                        'action_masks tells which actions are real)')
                return action
            return read_own
        region = spaces.padded_region(space)
        return lambda row: read(row)[region]

    def _agent_index(self, agent):
        try:
            return self._index[agent]
        except (KeyError, TypeError):
            raise APIUsageError(f'PettingZooPufferEnv({self.name}): unknown agent {agent!r}; '
                                f'possible agents: {self.possible_agents}') from None

    def _observe(self, obs, where):
        """Write each present agent's observation, zero the absent rows; returns the present mask."""
        if not isinstance(obs, dict):
            raise self._broken_rule(f'{where} returned observations of type {type(obs).__name__}: '
                                    'they must be a dict {agent: observation}')
        present = np.zeros(self.num_agents, bool)
        known = 0
        for i, agent in enumerate(self.possible_agents):
            if agent in obs:
                present[i] = True
                known += 1
                try:
                    self._write[i](obs[agent])
                except APIUsageError as e:
                    raise self._bad_observation(f'agent {agent!r}: {e}', where) from None
                if self._checks_left:
                    self._check_contains(obs[agent], where, self._agent_obs_spaces[i])
            else:
                self.observations[i] = 0
        if len(obs) != known:    # an agent that is not in possible_agents
            unknown = [a for a in obs if a not in self._index]
            raise self._broken_rule(f'{where} returned observations for agents {unknown}, which are '
                                    f'not in possible_agents {self.possible_agents}: every agent '
                                    'must be listed there from the start')
        return present

    def reset(self, seed=None):
        obs = self._reset_env('reset()', **self._seed_arg(seed))
        present = self._observe(obs, 'reset()')
        self.rewards[:] = 0
        self.terminals[:] = ~present
        self.truncations[:] = False
        self.masks[:] = present
        self._needs_reset = False
        self._returns[:] = 0
        self._seen[:] = present
        self._length = 0
        self._log.clear()
        self.tick = 0
        return self.observations, []

    def _env_actions(self, actions):
        if isinstance(actions, dict):
            given = set()
            for agent, action in actions.items():
                i = self._agent_index(agent)
                action = np.asarray(action)
                self.actions[i] = check_actions(action, self.actions[i])
                given.add(agent)
            if not set(self.env.agents) <= self._index.keys():
                raise self._unknown_live_agents()
            return {a: self._readers[self._index[a]](self.actions[self._index[a]])
                    for a in self.env.agents if a in given}
        if actions is not self.actions:
            np.copyto(self.actions, check_actions(actions, self.actions), casting='same_kind')
        try:
            return {a: self._readers[self._index[a]](self.actions[self._index[a]]) for a in self.env.agents}
        except KeyError:
            raise self._unknown_live_agents() from None

    def _unknown_live_agents(self):
        unknown = [a for a in self.env.agents if a not in self._index]
        return self._broken_rule(f'env.agents holds {unknown}, which are not in possible_agents '
                                 f'{self.possible_agents}: every agent must be listed there from '
                                 'the start')

    def step(self, actions):
        if self._needs_reset:
            raise APIUsageError(f'PettingZooPufferEnv({self.name}): call reset() before step()')
        result = self.env.step(self._env_actions(actions))
        try:
            obs, rewards, terms, truncs, infos = result
        except (ValueError, TypeError):
            raise self._bad_step(result) from None
        if not isinstance(infos, dict):
            raise self._broken_rule(f'step() returned infos of type {type(infos).__name__}: infos '
                                    'must be a dict {agent: info}')
        present = self._observe(obs, 'step()')
        agents = self.possible_agents
        self.rewards[:] = [rewards.get(a, 0) if p else 0 for a, p in zip(agents, present)]
        self.terminals[:] = [bool(terms.get(a, False)) if p else True
                             for a, p in zip(agents, present)]
        self.truncations[:] = [bool(truncs.get(a, False)) if p else False
                               for a, p in zip(agents, present)]
        self.masks[:] = present
        self._returns += self.rewards
        self._seen |= present
        self._length += 1
        if not self.env.agents:
            self.final_observations[:] = self.observations
            self._log.add({'episode_return': float(self._returns[self._seen].mean())
                           if self._seen.any() else 0.0, 'episode_length': self._length})
            obs = self._reset_env('reset() (auto-reset)')
            new = self._observe(obs, 'reset() (auto-reset)')
            self.masks |= new
            self._returns[:] = 0
            self._seen[:] = new
            self._length = 0
        return self.observations, self.rewards, self.terminals, self.truncations, self._report()
