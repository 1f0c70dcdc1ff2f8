import ctypes
import os
import shutil
import signal
import subprocess
import time

import pytest


def _die_with_parent():
    """In the child: get SIGTERM when pytest dies, so a crashed run leaves no Xvfb behind."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start_xvfb():
    """Start a private Xvfb for render tests when there is no display; returns the process.
    -noreset: otherwise Xvfb resets when its last client leaves, and raylib 5.0 segfaults when the
    next window cannot open the display."""
    if os.environ.get('DISPLAY') or not shutil.which('Xvfb'):
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
                return proc
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    return None


def pytest_collection_modifyitems(config, items):
    """gpu tests need CUDA; render tests need a display (a private Xvfb is started if possible)."""
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if any('render' in item.keywords for item in items):
        config._puffer_xvfb = _start_xvfb()
    for item in items:
        if 'gpu' in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason='no CUDA device'))
        if 'render' in item.keywords and not os.environ.get('DISPLAY'):
            item.add_marker(pytest.mark.skip(reason='no display and no Xvfb (apt-get install xvfb)'))


def pytest_unconfigure(config):
    proc = getattr(config, '_puffer_xvfb', None)
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=5)
