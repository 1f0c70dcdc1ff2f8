import os

import psutil
import pytest

from tests.helpers import BACKENDS, alive_actors, our_processes


def _start_xvfb():
    """A private Xvfb for render tests when there is no display (pufferlib.ocean.render.start_xvfb:
    it sets DISPLAY for the session); returns the process, or None."""
    if os.environ.get('DISPLAY'):
        return None
    try:
        from pufferlib.ocean.render import start_xvfb
    except ImportError:
        return None
    return start_xvfb()


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


# ---- vector envs -------------------------------------------------------------------------------

@pytest.fixture(scope='session')
def ray_session():
    """One local Ray instance for the whole session, started by the first test that needs it (so the
    Ray backend leaves it running) and shut down at the end; the test is skipped without ray."""
    ray = pytest.importorskip('ray', reason='ray is not installed (pip install "pufferlib[ray]")')
    from pufferlib.vector import ray as ray_backend
    started = not ray.is_initialized()
    if started:
        ray_backend.start_local()
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(params=list(BACKENDS))
def backend(request):
    """The name of each vector backend in turn (a key of tests.helpers.BACKENDS), Ray included."""
    if request.param == 'Ray':
        request.getfixturevalue('ray_session')
    return request.param


@pytest.fixture
def vecs():
    """Collects vector envs (see tests.helpers.make); closes them after the test and checks that no
    process it started (processes that were there before, such as the session's Xvfb, do not count)
    and no Ray actor is left."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    actors = alive_actors()
    made = []
    yield made
    for vec in made:
        vec.close()
    left = psutil.wait_procs([p for p in our_processes() if p.pid not in before], timeout=2)[1]
    assert not left, f'processes left behind: {left}'
    assert alive_actors() <= actors, 'Ray actors left behind'


@pytest.fixture
def one_thread():
    """One torch thread for the test: small tensors run fastest so and do not fight other
    processes for the cores."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
