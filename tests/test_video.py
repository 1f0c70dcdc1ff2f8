"""Video: `puffer eval ENV --record PATH` (mp4 or gif, off-screen) and the training clips of
`train.video_interval`; each file is decoded and checked frame by frame."""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('imageio_ffmpeg', reason='recording needs pip install "pufferlib[video]"')
import imageio.v3 as iio  # noqa: E402
from PIL import Image  # noqa: E402

from pufferlib.trainer import cli, video  # noqa: E402

SMALL = ['--train.batch_size', '256', '--train.minibatch_size', '128', '--train.bptt_horizon', '16',
         '--train.torch_threads', '1']


def recorded(out):
    """The frame count `puffer eval --record` printed, and its steps line."""
    frames = int(out.split('recorded ')[1].split(' frames')[0])
    steps = int(out.split('steps: ')[1].split()[0])
    return frames, steps


def changing(frames):
    """Fraction of consecutive frame pairs that differ by more than codec noise somewhere."""
    frames = frames.astype(np.int16)
    return np.mean([np.abs(a - b).max() > 40 for a, b in zip(frames, frames[1:])])


@pytest.mark.render
def test_record_an_ocean_game_with_no_display(tmp_path):
    """Breakout recorded with DISPLAY unset: raylib draws off-screen on a private Xvfb (started and
    stopped by the CLI); one frame per step, 576x330, the ball moving in nearly every frame."""
    path = tmp_path / 'breakout.mp4'
    env = {k: v for k, v in os.environ.items() if k != 'DISPLAY'}
    result = subprocess.run([sys.executable, '-m', 'pufferlib.trainer', 'eval', 'breakout',
                             '--episodes', '1', '--record', str(path), '--train.torch_threads', '1'],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    frames, steps = recorded(result.stdout)
    assert frames == steps and frames > 20
    clip = iio.imread(path)
    assert clip.shape == (frames, 330, 576, 3) and clip.dtype == np.uint8
    assert changing(clip) > 0.9
    assert iio.immeta(path)['fps'] == 30


def test_record_a_gymnasium_env_mp4(tmp_path, capsys):
    """CartPole through its own rgb_array: every step a 600x400 frame, at its render_fps (50)."""
    path = tmp_path / 'cartpole.mp4'
    assert cli.main(['eval', 'CartPole-v1', '--episodes', '2', '--record', str(path)]) == 0
    frames, steps = recorded(capsys.readouterr().out)
    assert frames == steps > 10
    clip = iio.imread(path)
    assert clip.shape == (frames, 400, 600, 3)
    assert changing(clip) > 0.5
    assert iio.immeta(path)['fps'] == 50


def test_record_a_gymnasium_env_gif(tmp_path, capsys):
    """A gif holds every frame at 20 ms (50 fps); Pillow merges a frame identical to the one before
    into it (a longer duration), so the durations add up to one frame's time per step."""
    path = tmp_path / 'cartpole.gif'
    assert cli.main(['eval', 'CartPole-v1', '--episodes', '1', '--record', str(path)]) == 0
    frames, steps = recorded(capsys.readouterr().out)
    assert frames == steps > 5
    gif = Image.open(path)
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info['duration'])
    assert sum(durations) == 20 * frames
    assert gif.size == (600, 400) and gif.n_frames > frames // 2
    decoded = iio.imread(path)
    assert all((a != b).any() for a, b in zip(decoded, decoded[1:]))


def test_training_writes_a_clip_every_video_interval_epochs(tmp_path):
    """train.video_interval = 2 over 4 epochs: clips of epochs 2 and 4 in the run folder, each
    CLIP_FRAMES frames of the env; 0 (the default) writes none."""
    clips = {}
    for interval in (2, 0):
        data_dir = tmp_path / str(interval)
        assert cli.main(['train', 'CartPole-v1', '--vec.num_envs', '16', '--train.total_timesteps',
                         '1024', '--train.data_dir', str(data_dir), '--train.video_interval',
                         str(interval), *SMALL]) == 0
        run, = data_dir.iterdir()
        clips[interval] = sorted(run.glob('video_*.mp4'))
    assert [p.name for p in clips[2]] == ['video_000002.mp4', 'video_000004.mp4']
    assert clips[0] == []
    for path in clips[2]:
        clip = iio.imread(path)
        assert clip.shape == (video.CLIP_FRAMES, 400, 600, 3)
        assert changing(clip) > 0.5


def test_record_errors_are_one_line(tmp_path, capsys):
    assert cli.main(['eval', 'CartPole-v1', '--record', str(tmp_path / 'clip.avi')]) == 2
    assert capsys.readouterr().err == (f'puffer eval: error: cannot record to {tmp_path}/clip.avi: '
                                       'the file must end in .mp4 or .gif\n')
    assert cli.main(['eval', 'CartPole-v1', '--record', str(tmp_path / 'no' / 'clip.mp4')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert cli.main(['eval', 'match', '--record', str(tmp_path / 'clip.mp4')]) == 2
    assert capsys.readouterr().err == ('puffer eval: error: match does not render (its constructor '
                                       'takes no render_mode): nothing to record\n')
