"""Deprecated alias of `pufferlib.spaces_torch` (its old name), kept for one release."""
from pufferlib import moved_names

__getattr__ = moved_names(__name__, {'nativize': 'pufferlib.spaces_torch',
                                     'nativize_layout': 'pufferlib.spaces_torch'})
