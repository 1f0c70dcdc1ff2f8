"""Native C envs. `make(name, **kwargs)` builds one; `env_creator(name)` returns its class."""
import importlib

from pufferlib.exceptions import APIUsageError

ENVS = {
    'squared': 'pufferlib.ocean.squared.squared:Squared',
    'breakout': 'pufferlib.ocean.breakout.breakout:Breakout',
    'connect4': 'pufferlib.ocean.connect4.connect4:Connect4',
    'triple_triad': 'pufferlib.ocean.triple_triad.triple_triad:TripleTriad',
}


def env_creator(name):
    """The class of the Ocean env `name` (a callable taking the env's kwargs)."""
    if name not in ENVS:
        raise APIUsageError(f'unknown Ocean env {name!r}; available: {", ".join(sorted(ENVS))}')
    module, cls = ENVS[name].split(':')
    return getattr(importlib.import_module(module), cls)


def make(name, **kwargs):
    return env_creator(name)(**kwargs)


def play(name, **kwargs):
    """Let a person play the Ocean env `name` in a raylib window (each game module defines play)."""
    env_creator(name)
    module = importlib.import_module(ENVS[name].split(':')[0])
    module.play(**kwargs)
