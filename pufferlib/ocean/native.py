"""The Python side shared by every Ocean env: a PufferEnv over a Cython `Binding` that steps all
sub-envs in one C loop and keeps per-sub-env episode logs."""
import numpy as np

from pufferlib import BUFFER_NAMES, PufferEnv, check_actions
from pufferlib.exceptions import APIUsageError

RENDER_MODES = (None, 'human', 'rgb_array')


class NativeEnv(PufferEnv):
    """Subclasses set their spaces (sized by their binding's `obs_size(...)` and `NUM_ACTIONS`),
    `num_agents`, then call `super().__init__(buf)` and create `self.c =
    binding.Binding(self.buffers(), num_envs, seed, **config)`. Episode stats are reported as one
    info dict every `report_interval` steps (means over the episodes finished since the last
    report)."""

    report_interval = 128
    render_mode, window = None, None

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

    def open_window(self, width, height, title, fps=60):
        """The window render() draws into, opened on the first call: visible for render_mode
        'human', off-screen for 'rgb_array'; None when render_mode is None."""
        if self.render_mode not in RENDER_MODES:
            raise APIUsageError(f'{type(self).__name__}: render_mode is {self.render_mode!r}; use one '
                                "of None, 'human', 'rgb_array'")
        if self.render_mode is not None and self.window is None:
            from pufferlib.ocean.render import Window
            self.window = Window(width, height, title, fps, hidden=self.render_mode == 'rgb_array')
        return self.window

    def rendered(self):
        """What render() returns: the frame drawn ((height, width, 3) uint8) for 'rgb_array'."""
        return self.window.screenshot() if self.render_mode == 'rgb_array' else None

    def close(self):
        if self.window is not None:
            self.window.close()
            self.window = None
        self.c.close()
