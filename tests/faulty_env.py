"""FaultyEnv: a small PufferEnv that misbehaves on request, for the vector-layer fault tests.

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
"""
import os
import signal
import time

import gymnasium
import numpy as np

from pufferlib import PufferEnv

FAULTS = (None, 'raise', 'raise_reset', 'raise_init', 'hang', 'segv', 'nan', 'slow', 'big_info')


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
        self.rewards[:] = 1
        self.terminals[:] = self.ticks >= self.episode_length
        if self.ticks >= self.episode_length:
            self.ticks = 0
        self._observe()
        if self.fault == 'nan' and fire:
            self.observations[0, 0] = np.nan
        return self.observations, self.rewards, self.terminals, self.truncations, infos
