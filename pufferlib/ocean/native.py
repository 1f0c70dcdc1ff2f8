"""The Python side shared by every Ocean env: a PufferEnv over a Cython `Binding` that steps all
sub-envs in one C loop and keeps per-sub-env episode logs."""
import math

import numpy as np

from pufferlib import BUFFER_NAMES, PufferEnv, check_actions
from pufferlib.exceptions import APIUsageError

INT32_MAX = 2**31 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_SUB_ENVS = 2**24


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(owner, name, value, low, high=INT32_MAX):
    """`value` as an int, or an APIUsageError naming `owner` and the argument `name` unless it is an
    integer in [low, high] (the C side stores it in an int)."""
    if not _is_int(value) or not low <= value <= high:
        raise APIUsageError(f'{owner}: {name} is {value!r}: it must be an integer in [{low}, {high}]')
    return int(value)


def check_real(owner, name, value, low=-FLOAT32_MAX, high=FLOAT32_MAX):
    """`value` as a float, or an APIUsageError unless it is a finite number in [low, high]."""
    if (not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool)
            or not math.isfinite(value) or not low <= value <= high):
        raise APIUsageError(f'{owner}: {name} is {value!r}: it must be a finite number in '
                            f'[{low:g}, {high:g}]')
    return float(value)


def check_bool(owner, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise APIUsageError(f'{owner}: {name} is {value!r}: it must be True or False')
    return bool(value)
RENDER_MODES = (None, 'human', 'rgb_array')


class NativeEnv(PufferEnv):
    """Subclasses set their spaces (sized by their binding's `obs_size(...)` and `NUM_ACTIONS`),
    `num_agents`, then call `super().__init__(buf)` and create `self.c =
    binding.Binding(self.buffers(), num_envs, seed, **config)`. Episode stats are reported as one
    info dict every `report_interval` steps (means over the episodes finished since the last
    report)."""

    report_interval = 128
    render_mode, window = None, None

    def check_common(self, num_envs, seed, report_interval, render_mode):
        """Check the arguments every Ocean env takes, before its spaces are sized or C sees them;
        returns the seed as a Python int (the binding masks it to 64 bits)."""
        owner = type(self).__name__
        check_int(owner, 'num_envs', num_envs, 1, MAX_SUB_ENVS)
        seed = check_int(owner, 'seed', seed, -2**63, 2**64 - 1)    # sub-env i: (seed + i) mod 2**64
        check_int(owner, 'report_interval', report_interval, 1)
        if render_mode not in RENDER_MODES:
            raise APIUsageError(f"{owner}: render_mode is {render_mode!r}: it must be None, 'human' "
                                "or 'rgb_array'")
        return seed

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
