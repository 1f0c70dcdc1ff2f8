"""The raylib window shared by every Ocean game's renderer (raylib-py, extra `render`)."""
import atexit
import contextlib
import ctypes
import ctypes.util
import io
import os
import shutil
import signal
import subprocess
import time

import numpy as np

from pufferlib.exceptions import APIUsageError

_rl = None


def raylib():
    """The raylibpy module, imported on first use (its import prints a banner: swallowed)."""
    global _rl
    if _rl is None:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                import raylibpy
        except (ImportError, OSError) as e:
            raise APIUsageError('rendering needs raylib-py: pip install "pufferlib[render]" '
                                f'(and a display; headless, run under xvfb-run): {e}') from e
        _rl = raylibpy
    return _rl


_display = None   # the X connection held open for the life of the process (see check_display)


def check_display():
    """raylib 5.0 segfaults when it cannot open the display: find out first. The connection made to
    find out stays open: an X server started without -noreset (xvfb-run's Xvfb) resets when its last
    client leaves, and a window opened during that reset fails to find the display and segfaults.
    Closing a window, or this check's own connection, was such a last client (2 in 3 runs of 10
    open/close cycles crashed); with this connection held, the server never resets under us."""
    global _display
    display = os.environ.get('DISPLAY')
    if not display:
        raise APIUsageError('no display (DISPLAY is not set): rendering needs one; headless, run '
                            'under xvfb-run -a, or install Xvfb (apt-get install xvfb) for '
                            "render_mode='rgb_array'")
    if _display is not None and _display[0] == display:
        return
    libx11 = ctypes.util.find_library('X11')
    if libx11 is None:
        return
    x11 = ctypes.CDLL(libx11)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        raise APIUsageError(f'cannot open display {display!r}: is the X server (or Xvfb) running?')
    _display = (display, handle)


def _die_with_parent():
    """In the child: get SIGTERM when the parent dies, so that no Xvfb outlives it."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_xvfb():
    """Start a private Xvfb and point DISPLAY at it; returns the process (None: no Xvfb installed,
    or none would start). It is terminated at exit, and dies with this process. -noreset: see
    check_display."""
    if not shutil.which('Xvfb'):
        return None
    for display in range(90, 120):
        if os.path.exists(f'/tmp/.X11-unix/X{display}') or os.path.exists(f'/tmp/.X{display}-lock'):
            continue
        proc = subprocess.Popen(['Xvfb', f':{display}', '-noreset', '-screen', '0', '1280x1024x24',
                                 '-nolisten', 'tcp'], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        for _ in range(100):
            if os.path.exists(f'/tmp/.X11-unix/X{display}'):
                os.environ['DISPLAY'] = f':{display}'
                atexit.register(_stop, proc)
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    return None


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=5)


def ensure_display():
    """For off-screen frames (render_mode='rgb_array'): with no DISPLAY, start a private Xvfb
    (raylib-py's raylib needs an X server even for a hidden window)."""
    if not os.environ.get('DISPLAY') and start_xvfb() is None:
        raise APIUsageError("render_mode='rgb_array' needs an X server, even off-screen (raylib-py's "
                            'raylib is built for X11): install Xvfb (apt-get install xvfb) and it '
                            'is started for you, or run under xvfb-run -a')
    check_display()


def has_display():
    """True when a window can open here: raylib-py imports and DISPLAY names a reachable X server."""
    try:
        raylib()
        check_display()
    except APIUsageError:
        return False
    return True


_open_window = None   # raylib holds one window per process


class Window:
    """A raylib window: `with window.frame(): draw...`, `screenshot()` (the last frame), `close()`.
    `hidden=True` draws off-screen, into a texture, as fast as it can: render_mode='rgb_array'."""

    def __init__(self, width, height, title, fps=60, hidden=False):
        global _open_window
        rl = raylib()
        if _open_window is not None:
            raise APIUsageError(f'a raylib window ({_open_window}) is already open in this process, '
                                'and raylib has one: close that env (env.close()) first')
        ensure_display() if hidden else check_display()
        rl.set_trace_log_level(rl.LOG_WARNING)
        rl.set_config_flags(rl.FLAG_WINDOW_HIDDEN if hidden else 0)
        rl.init_window(width, height, title)
        if not rl.is_window_ready():
            raise APIUsageError('raylib could not open a window: is there a display? '
                                '(headless: run under xvfb-run -a)')
        rl.set_target_fps(0 if hidden else fps)
        self.target = rl.load_render_texture(width, height) if hidden else None
        self.width, self.height, self.closed = width, height, False
        _open_window = title

    @contextlib.contextmanager
    def frame(self, background=(6, 24, 24)):
        rl = raylib()
        rl.begin_drawing()
        if self.target is not None:
            rl.begin_texture_mode(self.target)
        rl.clear_background(rl.Color(*background, 255))
        try:
            yield rl
        finally:
            if self.target is not None:
                rl.end_texture_mode()
            rl.end_drawing()

    def should_close(self):
        return raylib().window_should_close()

    def screenshot(self):
        """The last drawn frame as a (height, width, 3) uint8 array."""
        rl = raylib()
        if self.target is None:
            image = rl.load_image_from_screen()
        else:
            image = rl.load_image_from_texture(self.target.texture)
            rl.image_flip_vertical(ctypes.byref(image))   # OpenGL textures are stored bottom-up
        try:
            rl.image_format(ctypes.byref(image), rl.PIXELFORMAT_UNCOMPRESSED_R8G8B8A8)
            size = image.width * image.height * 4
            pixels = np.ctypeslib.as_array((ctypes.c_ubyte * size).from_address(image.data))
            return pixels.reshape(image.height, image.width, 4)[:, :, :3].copy()
        finally:
            rl.unload_image(image)

    def close(self):
        """GPU resources go before the window: its GL context is what holds them."""
        global _open_window
        if not self.closed:
            rl = raylib()
            if self.target is not None:
                rl.unload_render_texture(self.target)
                self.target = None
            rl.close_window()
            self.closed, _open_window = True, None
