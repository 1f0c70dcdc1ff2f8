"""The Python side shared by every Ocean env: a PufferEnv over a Cython `Binding` that steps all
sub-envs in one C loop and keeps per-sub-env episode logs."""
import numpy as np

from pufferlib import BUFFER_NAMES, PufferEnv, check_actions


class NativeEnv(PufferEnv):
    """Subclasses set their spaces (sized by their binding's `obs_size(...)` and `NUM_ACTIONS`),
    `num_agents`, then call `super().__init__(buf)` and create `self.c =
    binding.Binding(self.buffers(), num_envs, seed, **config)`. Episode stats are reported as one
    info dict every `report_interval` steps (means over the episodes finished since the last
    report)."""

    report_interval = 128

    def buffers(self):
        """This env's arrays by name, as a binding takes them (it ignores `masks`)."""
        return {name: getattr(self, name) for name in BUFFER_NAMES}

    def reset(self, seed=None):
        self.c.reset(seed)
        self.rewards[:] = 0
        self.terminals[:] = False
        self.truncations[:] = False
        self.tick = 0
        return self.observations, []

    def step(self, actions):
        if actions is not self.actions:
            np.copyto(self.actions, check_actions(actions, self.actions), casting='same_kind')
        self.c.step()
        self.tick = getattr(self, 'tick', 0) + 1
        infos = []
        if self.tick % self.report_interval == 0:
            log = self.c.log()
            if log:
                infos.append(log)
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def close(self):
        self.c.close()
