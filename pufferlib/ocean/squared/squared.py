"""Squared: the template Ocean env (see docs/writing_envs.md)."""
import gymnasium
import numpy as np

from pufferlib.ocean.native import NativeEnv, check_int
from pufferlib.ocean.squared import binding

MAX_SIZE = 1023


class Squared(NativeEnv):
    def __init__(self, num_envs=1, size=11, report_interval=128, render_mode=None, buf=None,
                 seed=0, crash_at_step=-1):
        seed = self.check_common(num_envs, seed, report_interval, render_mode)
        size = check_int('Squared', 'size', size, 3, MAX_SIZE)    # the grid side
        crash_at_step = check_int('Squared', 'crash_at_step', crash_at_step, -1)
        self.single_observation_space = gymnasium.spaces.Box(-1, 1, (binding.obs_size(size),),
                                                             np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(binding.NUM_ACTIONS)
        self.num_agents = self.num_envs = num_envs
        self.report_interval, self.render_mode = report_interval, render_mode
        super().__init__(buf)
        self.c = binding.Binding(self.buffers(), num_envs, seed, size=size,
                                 crash_at_step=crash_at_step)
