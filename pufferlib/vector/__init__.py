"""pufferlib.vector: step many PufferEnvs as one batch.

`make(creator, backend=..., num_envs=...)` returns a vector env with the same API on every backend:
`reset(seed=None) -> (obs, infos)`, `step(actions) -> (obs, rewards, terminals, truncations, infos)`,
`async_reset(seed=None)`, `send(actions)`, `recv(timeout=None) -> (obs, rewards, terminals,
truncations, infos, agent_ids, masks)` and `close()`.

* `Native`: one PufferEnv object (which may hold many sub-envs, as the C envs do) is the vector env.
* `Serial`: several PufferEnv objects in this process, each on its slice of one set of buffers.
* `Multiprocessing`: env objects in worker processes, every buffer in shared memory.
* `Ray`: env objects in Ray actors (optional extra `ray`, imported only when used).

Seeding: env object k gets `seed + k * agents_per_env`, and a native env seeds its sub-env i from
its own seed + i, so every sub-env's seed is its global index plus `seed`, whatever the backend.

The protocol every backend follows (call order, buffers, checks, the env objects on their rows that
Serial, a Multiprocessing worker and a Ray actor step, errors) is `pufferlib.vector.protocol`; the
backends are in `local` (Native, Serial), `processes` (Multiprocessing) and `ray`. See docs/vector.md.
"""
import os

from pufferlib import moved_names
from pufferlib.exceptions import (APIUsageError, ClosedError, EnvDataError, EnvTimeoutError,
                                  EnvWorkerError)
from pufferlib.vector.local import Native, Serial
from pufferlib.vector.processes import Multiprocessing
from pufferlib.vector.protocol import is_int, plan_workers
from pufferlib.vector.ray import Ray, cluster_cpus, cpus_per_worker

__all__ = ['make', 'Native', 'Serial', 'Multiprocessing', 'Ray', 'BACKENDS', 'APIUsageError',
           'ClosedError', 'EnvDataError', 'EnvTimeoutError', 'EnvWorkerError']

# backend= by name: any case ('serial', 'Multiprocessing', 'RAY').
BACKENDS = {'Native': Native, 'Serial': Serial, 'Multiprocessing': Multiprocessing, 'Ray': Ray}
MAKE_ARGS = ('env_args', 'env_kwargs', 'backend', 'num_envs', 'num_workers', 'batch_size',
             'zero_copy', 'seed', 'overwork', 'check_actions', 'check_finite', 'start_method',
             'ray_address')
START_METHODS = (None, 'fork', 'spawn', 'forkserver')

# Helpers the backends imported from here before they had their own modules: importable from here
# for one release, with a DeprecationWarning.
MOVED = {**{name: 'pufferlib.vector.protocol' for name in (
    'vector_specs', 'allocate', 'check_adopted', 'checked_actions', 'check_infos', 'check_finite',
    'set_spaces', 'begin', 'fail', 'reset', 'step')}, 'local_recv': 'pufferlib.vector.local'}
__getattr__ = moved_names(__name__, MOVED)


# ---- make ------------------------------------------------------------------------------------

def _per_env(name, value, num_envs, kind, per_env):
    """One value for every env, or (when per_env) a list of num_envs values."""
    if value is None or (per_env and kind is list and value == []):
        return [kind() for _ in range(num_envs)]
    if per_env and isinstance(value, (list, tuple)) and all(isinstance(v, kind) for v in value):
        if len(value) != num_envs:
            raise APIUsageError(f'{name} has {len(value)} entries for num_envs={num_envs}')
        return list(value)
    if isinstance(value, kind) and not (per_env and kind is list):
        return [value] * num_envs
    what = f'a list of num_envs={num_envs} {kind.__name__}s' if per_env else f'a {kind.__name__}'
    if per_env and kind is dict:
        what = f'a dict or {what}'
    raise APIUsageError(f'{name} must be {what}, got {value!r}')


def make(env_creator_or_creators, env_args=None, env_kwargs=None, backend=Serial, num_envs=1,
         num_workers=None, batch_size=None, zero_copy=True, seed=0, overwork=False,
         check_actions=False, check_finite=False, start_method=None, ray_address=None, **unknown):
    """A vector env over `num_envs` env objects, each made by `creator(*env_args, **env_kwargs,
    buf=..., seed=...)`. See the module docstring and docs/vector.md. Every argument is checked
    before any env or process is created."""
    if unknown:
        raise APIUsageError(f'make() got unknown argument(s) {", ".join(sorted(unknown))}; '
                            f'accepted: env_creator_or_creators, {", ".join(MAKE_ARGS)}')
    if isinstance(backend, str):
        by_name = {name.lower(): cls for name, cls in BACKENDS.items()}
        if backend.lower() not in by_name:
            raise APIUsageError(f'unknown backend {backend!r}; use one of {", ".join(BACKENDS)} '
                                '(any case)')
        backend = by_name[backend.lower()]
    if backend not in BACKENDS.values():
        raise APIUsageError(f'backend={backend!r}: use pufferlib.vector.Native, Serial, '
                            'Multiprocessing or Ray (or their names)')
    if not is_int(num_envs) or num_envs < 1:
        raise APIUsageError(f'num_envs={num_envs!r}: it must be a positive integer (the number of '
                            'env objects)')
    if not is_int(seed):
        raise APIUsageError(f'seed={seed!r}: it must be an integer')
    if start_method not in START_METHODS:
        raise APIUsageError(f'start_method={start_method!r}: use one of {START_METHODS}')
    if ray_address is not None and (backend is not Ray or not isinstance(ray_address, str)):
        raise APIUsageError(f'ray_address={ray_address!r}: it must be a string such as "auto" or '
                            '"10.0.0.1:6379", and only backend=Ray uses it')
    if backend is Ray and start_method is not None:
        raise APIUsageError('start_method is for Multiprocessing: Ray starts its own worker processes')
    creators = env_creator_or_creators
    per_env = isinstance(creators, (list, tuple))
    if per_env and len(creators) != num_envs:
        raise APIUsageError(f'got {len(creators)} env creators for num_envs={num_envs}: pass one '
                            'creator or a list of num_envs creators')
    if isinstance(env_args, tuple):
        env_args = list(env_args)
    creators = list(creators) if per_env else [creators] * num_envs
    args = _per_env('env_args', env_args, num_envs, list, per_env)
    kwargs = _per_env('env_kwargs', env_kwargs, num_envs, dict, per_env)
    for k, creator in enumerate(creators):
        if not callable(creator):
            raise APIUsageError(f'env creator {k} is {creator!r}, not callable: pass a class or a '
                                'function that returns a PufferEnv')
    for kw in kwargs:
        taken = {'buf', 'seed'} & set(kw)
        if taken:
            raise APIUsageError(f'env_kwargs must not contain {sorted(taken)}: the backend passes buf, '
                                'and seed= goes to make()')

    if backend is Native:
        if num_envs != 1:
            raise APIUsageError(f'Native runs one env object, got num_envs={num_envs}: set the number '
                                "of sub-envs with env_kwargs={'num_envs': N}, or use Serial or "
                                'Multiprocessing for several env objects')
        return Native(creators[0], args[0], kwargs[0], seed, check_actions, check_finite)
    if backend is Serial:
        return Serial(creators, args, kwargs, num_envs, seed, check_actions, check_finite)
    if backend is Ray:
        ray_address = ray_address or os.environ.get('RAY_ADDRESS') or None    # Ray's own default
        cpus = cluster_cpus(ray_address)    # APIUsageError if ray is missing
        num_workers, batch_size = plan_workers(num_envs, num_workers, batch_size, zero_copy, overwork,
                                               max(cpus, 1), 'CPUs of the Ray cluster')
        return Ray(creators, args, kwargs, num_envs, num_workers, batch_size, zero_copy, seed,
                   check_actions, check_finite, ray_address, cpus_per_worker(num_workers, cpus))
    num_workers, batch_size = plan_workers(num_envs, num_workers, batch_size, zero_copy, overwork)
    return Multiprocessing(creators, args, kwargs, num_envs, num_workers, batch_size, zero_copy,
                           seed, check_actions, check_finite, start_method)
