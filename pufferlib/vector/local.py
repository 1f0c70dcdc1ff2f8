"""The in-process backends: Native (one env object that steps its own sub-envs is the vector env) and
Serial (several env objects in this process, each on its rows of one set of buffers)."""
import numpy as np

from pufferlib import BUFFER_NAMES, PufferEnv
from pufferlib.exceptions import APIUsageError
from pufferlib.vector.protocol import (CLOSED, NEW, PENDING, READY, RESET, EnvRows, allocate, begin,
                                       check_finite, check_infos, checked_actions, close_quietly,
                                       create_env, error_report, fail, report_error, reset,
                                       set_spaces, spaces_of, step, vector_specs)


def local_recv(vec, timeout=None):
    """recv of Native and Serial: the batch is every agent, stepped by the last send."""
    begin(vec, 'recv')
    if vec._check_finite:
        check_finite(vec, vec.observations, vec.rewards, vec.agent_ids, lambda row: vec._steps)
    vec._state = READY
    return (vec.observations, vec.rewards, vec.terminals, vec.truncations, vec._infos,
            vec.agent_ids, vec.masks)


def env_failure(vec, report):
    """The error to raise for an env's error report in this process: misuse stays an APIUsageError
    and leaves `vec` usable; anything else breaks `vec` (see fail)."""
    error = report_error(report)
    return error if isinstance(error, APIUsageError) else fail(vec, error)


class Native:
    """One PufferEnv object as the vector env: `env` (also `driver_env`) holds all the sub-envs and
    steps them itself. This class only adds the vector API's checks around it."""
    reset, step, recv = reset, step, local_recv
    __enter__, __exit__ = PufferEnv.__enter__, PufferEnv.__exit__    # `with` closes it

    def __init__(self, creator, args, kwargs, seed=0, check_actions=False, check_finite=False):
        self.num_envs, self.num_workers = 1, 1
        self.env = create_env(creator, args, kwargs, seed, native=True)
        set_spaces(self, self.env, self.env.num_agents)
        for name in BUFFER_NAMES + ('final_observations', 'agent_ids'):
            if hasattr(self.env, name):    # final_observations: only envs that record them
                setattr(self, name, getattr(self.env, name))
        self._check_values, self._check_finite = check_actions, check_finite
        self._state, self._error, self._infos, self._steps = NEW, None, [], 0

    def async_reset(self, seed=None):
        begin(self, 'async_reset')
        try:
            self._infos = check_infos(self.env.reset(seed)[1])
        except Exception as e:
            raise env_failure(self, error_report(e, 0, 'in reset()')) from e
        self._state, self._steps = RESET, 0

    def send(self, actions):
        begin(self, 'send')
        env = self.env
        actions = checked_actions(self, actions, env.actions)
        if actions is not env.actions:
            np.copyto(env.actions, actions, casting='same_kind')
        try:
            self._infos = check_infos(env.step(env.actions)[4])
        except Exception as e:
            raise env_failure(self, error_report(e, 0, 'in step()')) from e
        self._state = PENDING
        self._steps += 1

    def render(self):
        return self.env.render()

    def close(self):
        if self._state is not CLOSED:
            self._state = CLOSED
            self.env.close()


class Serial:
    """Env objects in this process, each on its slice of one set of buffers, stepped in a loop.
    `envs[k]` is env object k; `driver_env` is envs[0]."""
    reset, step, recv = reset, step, local_recv
    __enter__, __exit__ = PufferEnv.__enter__, PufferEnv.__exit__    # `with` closes it

    def __init__(self, creators, args, kwargs, num_envs, seed=0, check_actions=False,
                 check_finite=False):
        self.num_envs, self.num_workers = num_envs, 1
        probe = create_env(creators[0], args[0], kwargs[0], seed)
        ape = probe.num_agents
        self.buffers = allocate(vector_specs(probe, num_envs * ape))
        self._rows = EnvRows(0, self.buffers, ape)
        try:
            self._rows.build(creators, args, kwargs, seed, spaces_of(probe))
        except BaseException as e:
            close_quietly(self._rows)
            probe.close()
            if isinstance(e, Exception):
                raise report_error(self._rows.report(e, 'in its constructor')) from e
            raise
        probe.close()
        self.envs = self._rows.envs
        set_spaces(self, self.envs[0], num_envs * ape)
        for name, arr in self.buffers.items():
            setattr(self, name, arr)
        self.agent_ids = np.arange(self.num_agents)
        self._check_values, self._check_finite = check_actions, check_finite
        self._state, self._error, self._infos, self._steps = NEW, None, [], 0

    def async_reset(self, seed=None):
        begin(self, 'async_reset')
        try:
            self._infos = self._rows.reset(seed)
        except Exception as e:
            raise env_failure(self, self._rows.report(e, 'in reset()')) from e
        self._state, self._steps = RESET, 0

    def send(self, actions):
        begin(self, 'send')
        actions = checked_actions(self, actions, self.actions)
        if actions is not self.actions:
            np.copyto(self.actions, actions, casting='same_kind')
        try:
            self._infos = self._rows.step()
        except Exception as e:
            raise env_failure(self, self._rows.report(e, 'in step()')) from e
        self._state = PENDING
        self._steps += 1

    def render(self):
        return self.envs[0].render()

    def close(self):
        if self._state is CLOSED:
            return
        self._state = CLOSED
        self._rows.close()
