import os

import pytest


def pytest_collection_modifyitems(config, items):
    """gpu tests need CUDA; render tests need a display (run them under xvfb-run)."""
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    for item in items:
        if 'gpu' in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason='no CUDA device'))
        if 'render' in item.keywords and not os.environ.get('DISPLAY'):
            item.add_marker(pytest.mark.skip(reason='no display: run under xvfb-run'))
