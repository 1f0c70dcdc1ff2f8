"""Rendering of the Ocean games (marker `render`): windows that open and close many times in one
process, off-screen frames (render_mode='rgb_array'), and what raylib allows (one window)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pufferlib import ocean
from pufferlib.exceptions import APIUsageError

RENDERED = ['breakout', 'connect4', 'triple_triad']   # squared draws nothing

CYCLES = """
import sys
from pufferlib import ocean
for name in {names!r}:
    for cycle in range({cycles}):
        env = ocean.make(name, render_mode='human' if cycle % 2 else 'rgb_array')
        env.reset()
        for _ in range(2):
            env.step(env.actions)
            env.render()
        env.close()
    print(name, 'cycles done', flush=True)
"""


@pytest.mark.render
@pytest.mark.skipif(not shutil.which('xvfb-run'), reason='xvfb-run is not installed')
def test_windows_open_and_close_20_times_per_game():
    """20 open/render/close cycles of each game (visible and off-screen windows in turn) in one
    process on xvfb-run's Xvfb, which resets when its last client leaves: a window opened during
    that reset used to segfault the process (2 in 3 runs of 10 cycles). A subprocess, so that a
    segfault fails this test instead of killing pytest."""
    script = CYCLES.format(names=RENDERED, cycles=20)
    env = {k: v for k, v in os.environ.items() if k != 'DISPLAY'}
    result = subprocess.run(['xvfb-run', '-a', sys.executable, '-c', script], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split('\n')[:-1] == [f'{name} cycles done' for name in RENDERED]


@pytest.mark.render
@pytest.mark.parametrize('name', RENDERED)
def test_rgb_array_returns_the_frame_off_screen(name):
    """render_mode='rgb_array': render() returns (height, width, 3) uint8 frames, the same as
    the visible window draws for the same state, and frames change as the game goes on."""
    frames = {}
    for mode in ('rgb_array', 'human'):
        with ocean.make(name, render_mode=mode, seed=3) as env:
            env.reset(seed=3)
            shots = []
            for step in range(12):
                env.actions[:] = step % env.single_action_space.n
                env.step(env.actions)
                frame = env.render()
                shots.append(frame if mode == 'rgb_array' else env.window.screenshot())
            frames[mode] = shots
    rgb = frames['rgb_array']
    assert frame is None                                    # human mode returns nothing
    assert rgb[0].dtype == np.uint8 and rgb[0].ndim == 3 and rgb[0].shape[2] == 3
    assert rgb[0].shape == frames['human'][0].shape
    np.testing.assert_array_equal(rgb[-1], frames['human'][-1])
    assert any((a != b).any() for a, b in zip(rgb, rgb[1:]))


@pytest.mark.render
def test_a_second_window_is_a_usage_error():
    """raylib has one window per process: a second env rendering while the first is open gets an
    APIUsageError that names the fix (a second InitWindow would corrupt raylib's state)."""
    with ocean.make('breakout', render_mode='rgb_array') as first:
        first.reset()
        first.render()
        with ocean.make('connect4', render_mode='rgb_array') as second:
            second.reset()
            with pytest.raises(APIUsageError, match=r'already open in this process.*close that env'):
                second.render()
    with ocean.make('connect4', render_mode='rgb_array') as third:   # after close: fine
        third.reset()
        assert third.render().shape == (6 * 96 + 40, 7 * 96, 3)


def test_unknown_render_mode_is_a_usage_error():
    with pytest.raises(APIUsageError, match="render_mode is 'rgb': it must be None, 'human' or "
                                            "'rgb_array'"):
        ocean.make('breakout', render_mode='rgb')
