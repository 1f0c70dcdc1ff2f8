"""The raylib window shared by every Ocean game's renderer (raylib-py, extra `render`)."""
import contextlib
import ctypes
import ctypes.util
import io
import os

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


def check_display():
    """raylib 5.0 segfaults when it cannot open the display: find out first."""
    display = os.environ.get('DISPLAY')
    if not display:
        raise APIUsageError('no display (DISPLAY is not set): rendering needs one; headless, run '
                            'under xvfb-run -a')
    libx11 = ctypes.util.find_library('X11')
    if libx11 is None:
        return
    x11 = ctypes.CDLL(libx11)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        raise APIUsageError(f'cannot open display {display!r}: is the X server (or Xvfb) running?')
    x11.XCloseDisplay(handle)


def has_display():
    """True when a window can open here: raylib-py imports and DISPLAY names a reachable X server."""
    try:
        raylib()
        check_display()
    except APIUsageError:
        return False
    return True


class Window:
    """A raylib window: `with window.frame(): draw...`, `screenshot()` for tests, `close()`."""

    def __init__(self, width, height, title, fps=60):
        rl = raylib()
        check_display()
        rl.set_trace_log_level(rl.LOG_WARNING)
        rl.init_window(width, height, title)
        if not rl.is_window_ready():
            raise APIUsageError('raylib could not open a window: is there a display? '
                                '(headless: run under xvfb-run -a)')
        rl.set_target_fps(fps)
        self.width, self.height, self.closed = width, height, False

    @contextlib.contextmanager
    def frame(self, background=(6, 24, 24)):
        rl = raylib()
        rl.begin_drawing()
        rl.clear_background(rl.Color(*background, 255))
        try:
            yield rl
        finally:
            rl.end_drawing()

    def should_close(self):
        return raylib().window_should_close()

    def screenshot(self):
        """The last drawn frame as a (height, width, 3) uint8 array."""
        rl = raylib()
        image = rl.load_image_from_screen()
        try:
            rl.image_format(ctypes.byref(image), rl.PIXELFORMAT_UNCOMPRESSED_R8G8B8A8)
            size = image.width * image.height * 4
            pixels = np.ctypeslib.as_array((ctypes.c_ubyte * size).from_address(image.data))
            return pixels.reshape(image.height, image.width, 4)[:, :, :3].copy()
        finally:
            rl.unload_image(image)

    def close(self):
        if not self.closed:
            raylib().close_window()
            self.closed = True
