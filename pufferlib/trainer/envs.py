"""The env that `puffer ENV` names: `env_creator(name) -> (creator, kind)`.

NAME is one of
* an Ocean game (breakout, connect4, ...) or `match` (the NumPy example env);
* a Gymnasium id, registered by Gymnasium itself (CartPole-v1) or by a package that `REGISTERS`
  names from the id's prefix (ALE/Pong-v5: ale_py, MinAtar/Breakout-v1: minatar, MiniGrid-*:
  minigrid), imported on demand;
* `module:EnvId`, Gymnasium's own form: `module` is imported (it registers EnvId with
  `gymnasium.register`), then EnvId is made. This is how a user trains their own env;
* a dotted module with `parallel_env` or `env` (PettingZoo's convention), such as
  pettingzoo.classic.connect_four_v3 or mpe2.simple_spread_v3. AEC envs are converted to parallel
  ones by the emulation.

Emulated envs whose observation is a dict with an 'action_mask' entry (PettingZoo's classic
games) get an `action_mask(observations)` that reads it, so the policy never picks an illegal move.
"""
import importlib
import importlib.util

import numpy as np

from pufferlib.exceptions import APIUsageError

# Id prefix -> (module to import, pip package that provides it).
REGISTERS = {
    'ALE/': ('ale_py', 'ale-py'),
    'MinAtar/': ('minatar.gym', 'minatar'),
    'MiniGrid-': ('minigrid', 'minigrid'),
    'BabyAI-': ('minigrid', 'minigrid'),
}

ATARI_FRAME_STACK = 4   # [env] frame_stack default for ALE ids (84x84 grayscale, frame skip 4)


def env_creator(name):
    """(creator, kind): a callable taking the [env] kwargs (and buf, seed), and 'ocean', 'match',
    'gymnasium' or 'pettingzoo'. An unknown or unimportable env is an APIUsageError that says
    what to install."""
    from pufferlib import ocean
    if name in ocean.ENVS:
        return ocean.env_creator(name), 'ocean'
    if name == 'match':
        from pufferlib.examples import Match
        return Match, 'match'
    module_name, colon, _ = name.rpartition(':')
    if colon:
        import gymnasium
        import_module(module_name, name)
        if name.rpartition(':')[2] not in gymnasium.registry:
            raise APIUsageError(f'unknown env {name!r}: importing {module_name} did not register '
                                f'{name.rpartition(":")[2]} (gymnasium.register in that module does)')
        return gymnasium_creator(name), 'gymnasium'
    for prefix, (module_name, package) in REGISTERS.items():
        if name.startswith(prefix):
            module = import_module(module_name, name, package)
            register_from(module, name)
            return gymnasium_creator(name), 'gymnasium'
    import gymnasium
    if name in gymnasium.registry:
        return gymnasium_creator(name), 'gymnasium'
    if '.' in name:
        return pettingzoo_creator(import_module(name, name), name), 'pettingzoo'
    raise APIUsageError(
        f'unknown env {name!r}: use an Ocean game ({", ".join(sorted(ocean.ENVS))}), match, a '
        'Gymnasium id such as CartPole-v1 or ALE/Pong-v5, module:EnvId for an env that module '
        'registers, or a PettingZoo module such as pettingzoo.classic.connect_four_v3')


def import_module(module_name, name, package=None):
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        top = (e.name or module_name).split('.')[0]
        if package is None and importlib.util.find_spec(top) is not None:   # a submodule is missing
            raise APIUsageError(f'unknown env {name!r}: {e}') from None
        package = package or top.replace('_', '-')
        raise APIUsageError(f'{name} needs {package}: pip install {package} '
                            f'(import {module_name} failed: {e})') from None


def register_from(module, name):
    """Packages that register their ids only when asked (ale_py, minatar.gym)."""
    import gymnasium
    prefix = name.split('/')[0] + '/' if '/' in name else name.split('-')[0] + '-'
    if not any(key.startswith(prefix) for key in gymnasium.registry):
        if hasattr(module, 'register_envs'):
            module.register_envs()
        else:
            gymnasium.register_envs(module)
    if name not in gymnasium.registry:
        known = sorted(key for key in gymnasium.registry if key.startswith(prefix))[:6]
        raise APIUsageError(f'unknown env {name!r}; {module.__name__} registers '
                            f'{", ".join(known) or "no such ids"}')


def gymnasium_creator(name):
    """A creator for a Gymnasium id: ALE ids observe grayscale 84x84 frames (ALE's own frame skip,
    4 in v5), `frame_stack` of them stacked; MiniGrid ids observe their image only."""
    import gymnasium
    env_id = name.rpartition(':')[2]
    atari = env_id.startswith('ALE/')

    def make_env(buf=None, seed=0, report_interval=128,
                 frame_stack=ATARI_FRAME_STACK if atari else 1, **kwargs):
        from pufferlib.emulation import GymnasiumPufferEnv
        if not isinstance(frame_stack, int) or frame_stack < 1:
            raise APIUsageError(f'env.frame_stack = {frame_stack!r}: use an integer >= 1')
        if atari:
            kwargs.setdefault('obs_type', 'grayscale')   # ALE's frameskip: 4 in v5
        try:
            env = gymnasium.make(name, **kwargs)
        except gymnasium.error.Error as e:
            raise APIUsageError(f'{name}: {e}') from None
        if atari:
            env = shrink_frames(env, 84)
        if env_id.startswith(('MiniGrid-', 'BabyAI-')):
            from minigrid.wrappers import ImgObsWrapper
            env = ImgObsWrapper(env)
        if frame_stack > 1:
            env = gymnasium.wrappers.FrameStackObservation(env, frame_stack)
        return with_dict_action_mask(GymnasiumPufferEnv(env, buf=buf, seed=seed,
                                                       report_interval=report_interval))
    return make_env


def shrink_frames(env, size):
    """Grayscale (H, W) frames resized to (size, size) by nearest-neighbour sampling: objects of
    2 pixels or more (Pong's ball) stay visible, and it needs no OpenCV (gymnasium's
    AtariPreprocessing does)."""
    import gymnasium
    height, width = env.observation_space.shape[:2]
    rows = (np.arange(size) * height // size)[:, None]
    cols = np.arange(size) * width // size
    space = gymnasium.spaces.Box(0, 255, (size, size), np.uint8)
    return gymnasium.wrappers.TransformObservation(env, lambda frame: frame[rows, cols], space)


def pettingzoo_creator(module, name):
    make = getattr(module, 'parallel_env', None) or getattr(module, 'env', None)
    if make is None:
        raise APIUsageError(f'{name} is a module without parallel_env or env: it is not a '
                            'PettingZoo env module')

    def make_env(buf=None, seed=0, report_interval=128, **kwargs):
        from pufferlib.emulation import PettingZooPufferEnv
        return with_dict_action_mask(PettingZooPufferEnv(make(**kwargs), buf=buf, seed=seed,
                                                         report_interval=report_interval))
    return make_env


def with_dict_action_mask(env):
    """`env` (an emulated PufferEnv) with `action_mask(observations)` when its native observation
    is a dict holding 'action_mask' (one 0/1 entry per action): the mask is a slice of the flat
    observation row, read with operations that work on NumPy arrays and torch tensors alike."""
    from gymnasium import spaces as gym_spaces
    from pufferlib.spaces import nativize
    space = env.emulated['observation_space']
    if not isinstance(space, gym_spaces.Dict) or 'action_mask' not in space.spaces:
        return env
    row = np.zeros((1, *env.single_observation_space.shape), env.observations.dtype)
    leaf = nativize(row, space)['action_mask']
    if leaf.itemsize != row.itemsize:   # a mask in a wider dtype than the row: not a flat slice
        return env
    start = (leaf.__array_interface__['data'][0] - row.__array_interface__['data'][0]) // row.itemsize
    stop = start + leaf.size
    env.action_mask = lambda observations: observations[..., start:stop] != 0
    return env
