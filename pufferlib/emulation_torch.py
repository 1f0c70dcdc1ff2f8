"""Deprecated alias of `pufferlib.spaces_torch` (its old name), kept for one release."""
import warnings

from pufferlib import spaces_torch

NAMES = ('nativize', 'nativize_layout')


def __getattr__(name):
    if name not in NAMES:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    warnings.warn(f'pufferlib.emulation_torch.{name} moved to pufferlib.spaces_torch.{name}',
                  DeprecationWarning, stacklevel=2)
    return getattr(spaces_torch, name)
