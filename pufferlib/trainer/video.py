"""Clips of a policy playing: `puffer eval ENV --record run.mp4` (or .gif), and a clip in the run
folder every `train.video_interval` epochs. Frames are what the env's render() returns in
render_mode 'rgb_array' (Ocean games: drawn off-screen; Gymnasium and PettingZoo envs: their own
rgb_array); imageio writes them (imageio-ffmpeg for mp4: the extra `video`)."""
import os

import numpy as np

from pufferlib.exceptions import APIUsageError

FORMATS = ('.mp4', '.gif')
CLIP_FRAMES = 200     # frames of a training clip
DEFAULT_FPS = 30      # when the env's metadata has no render_fps


def check_path(path):
    """`path` ends in a format we write, and its folder exists."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in FORMATS:
        raise APIUsageError(f'cannot record to {path}: the file must end in .mp4 or .gif')
    folder = os.path.dirname(os.path.abspath(str(path)))
    if not os.path.isdir(folder):
        raise APIUsageError(f'cannot record to {path}: the folder {folder} does not exist')


class Recorder:
    """Frames appended one by one to an mp4 or gif: `append(frame)`, `close()`; `frames` counts."""

    def __init__(self, path, fps=DEFAULT_FPS):
        check_path(path)
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise APIUsageError('recording needs imageio: pip install "pufferlib[video]"') from None
        self.path, self.frames = str(path), 0
        self.mp4 = self.path.lower().endswith('.mp4')
        if self.mp4:
            try:
                import imageio_ffmpeg  # noqa: F401
            except ImportError:
                raise APIUsageError('recording mp4 needs imageio-ffmpeg: pip install '
                                    '"pufferlib[video]" (or record a .gif)') from None
            # macro_block_size=1: frames keep their size (imageio would resize them to 16x16 blocks)
            self.writer = imageio.get_writer(self.path, fps=fps, macro_block_size=1)
        else:
            self.writer = imageio.get_writer(self.path, mode='I', duration=1000 / fps, loop=0)

    def append(self, frame):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise APIUsageError(f'render() returned {frame.dtype} {frame.shape}, not an '
                                '(height, width, 3) uint8 frame: does the env render rgb_array?')
        if self.mp4 and (frame.shape[0] % 2 or frame.shape[1] % 2):  # H.264 needs even sizes
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), 'edge')
        self.writer.append_data(frame)
        self.frames += 1

    def close(self):
        self.writer.close()


def render_fps(env):
    """The frame rate of a clip of `env`: the render_fps in the metadata of the env or of an env
    it wraps (`.env`: a Native vector env, an emulated Gymnasium env), else DEFAULT_FPS."""
    for _ in range(4):
        fps = (getattr(env, 'metadata', None) or {}).get('render_fps')
        if isinstance(fps, (int, float)) and fps > 0:
            return fps
        env = getattr(env, 'env', None)
    return DEFAULT_FPS


def record_clip(name, config, policy, path, frames=CLIP_FRAMES):
    """A clip of `policy` playing `name` (one env, rendered off-screen) written to `path`: the
    training hook (train.video_interval). Returns the number of frames written."""
    from pufferlib.trainer.cli import evaluate, recording_env
    with recording_env(name, config) as vecenv:
        recorder = Recorder(path, render_fps(vecenv))
        try:
            evaluate(vecenv, policy, config, episodes=float('inf'), record=recorder,
                     max_steps=frames)
        finally:
            recorder.close()
            policy.train()
    return recorder.frames
