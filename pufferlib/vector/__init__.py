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
See docs/vector.md.
"""
import os
import traceback

import numpy as np

from pufferlib import (BUFFER_NAMES, PufferEnv, buffer_specs, check_action_values, check_actions,
                       joint_space)
from pufferlib.exceptions import (APIUsageError, ClosedError, EnvDataError, EnvTimeoutError,
                                  EnvWorkerError)

__all__ = ['make', 'Native', 'Serial', 'Multiprocessing', 'Ray', 'APIUsageError', 'ClosedError',
           'EnvDataError', 'EnvTimeoutError', 'EnvWorkerError']

MAKE_ARGS = ('env_args', 'env_kwargs', 'backend', 'num_envs', 'num_workers', 'batch_size',
             'zero_copy', 'seed', 'overwork', 'check_actions', 'check_finite', 'start_method',
             'ray_address')
START_METHODS = (None, 'fork', 'spawn', 'forkserver')


# ---- helpers shared by the backends ----------------------------------------------------------

def create_env(creator, args, kwargs, buf, seed, index, native=False):
    """creator(*args, **kwargs, buf=buf, seed=seed); any error becomes an EnvWorkerError naming
    env `index` (with the original as __cause__). The result must be a PufferEnv."""
    try:
        env = creator(*args, **kwargs, buf=buf, seed=seed)
    except Exception as e:
        hint = ''
        if isinstance(e, TypeError) and ('buf' in str(e) or 'seed' in str(e)):
            hint = (' (vector backends call creator(*env_args, **env_kwargs, buf=..., seed=...): '
                    'the env must accept buf=None and seed=0)')
        raise local_env_error(index, e, 'in its constructor', hint=hint) from e
    if not isinstance(env, PufferEnv):
        if hasattr(env, 'close'):
            env.close()
        if native:
            raise APIUsageError(f'Native needs a PufferEnv that steps its own sub-envs, got a '
                                f'{type(env).__name__}: use Serial or Multiprocessing with the env '
                                'wrapped by pufferlib.emulation (GymnasiumPufferEnv / '
                                'PettingZooPufferEnv)')
        raise APIUsageError(f'env {index} is a {type(env).__name__}, not a PufferEnv: wrap it with '
                            'pufferlib.emulation (GymnasiumPufferEnv / PettingZooPufferEnv)')
    return env


def env_error(index, type_name, message, where, tb, worker=None, envs=(), hint=''):
    """The EnvWorkerError for an exception raised by env `index` (in `worker`, if any)."""
    who = f'env {index}' if worker is None else f'worker {worker}, env {index}'
    return EnvWorkerError(f'{who} raised {type_name}: {message} ({where}){hint}\n\n'
                          f'Traceback of the env:\n{tb}', worker=worker, envs=envs or (index,),
                          remote_traceback=tb)


def local_env_error(index, exc, where, hint=''):
    """env_error for an exception raised in this process."""
    return env_error(index, type(exc).__name__, str(exc), where,
                     ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__)), hint=hint)


def env_failure(vec, index, exc, where):
    """The error to raise for `exc`, raised by env `index` in this process: misuse (an
    APIUsageError, such as a bad observation from an emulated env) stays an APIUsageError, naming
    the env as Multiprocessing names worker and env; anything else breaks `vec` with an
    EnvWorkerError."""
    if isinstance(exc, APIUsageError):
        return APIUsageError(f'env {index}: {exc}')
    return fail(vec, local_env_error(index, exc, where))


def vector_specs(driver, num_agents):
    """buffer_specs of `num_agents` agents of the driver env's spaces, plus `final_observations`
    (shaped like observations) when the driver records the last observation of each episode there,
    as the emulated envs do: every env then adopts its rows of buf['final_observations']."""
    specs = buffer_specs(driver.single_observation_space, driver.single_action_space, num_agents)
    if hasattr(driver, 'final_observations'):
        specs['final_observations'] = specs['observations']
    return specs


def allocate(specs):
    """Zeroed arrays of `specs` ({name: (shape, dtype)}), masks set."""
    buffers = {name: np.zeros(shape, dtype) for name, (shape, dtype) in specs.items()}
    buffers['masks'][:] = True
    return buffers


def check_same_spaces(env, driver, index):
    for name in ('single_observation_space', 'single_action_space', 'num_agents'):
        if getattr(env, name) != getattr(driver, name):
            raise APIUsageError(f'env {index} has {name} {getattr(env, name)} but env 0 has '
                                f'{getattr(driver, name)}: all envs of a vector env must match')


def check_adopted(env, buf, index):
    """An env that ignores `buf` would step on arrays nobody reads: refuse it."""
    for name, arr in buf.items():
        own = getattr(env, name, None)
        if not isinstance(own, np.ndarray) or not np.shares_memory(own, arr):
            raise APIUsageError(f'env {index} ({type(env).__name__}) did not adopt buf[{name!r}]: its '
                                'constructor must pass buf to PufferEnv.__init__(buf)')


def checked_actions(vec, actions, expected):
    """`actions` checked against the action buffer `expected` (shape and dtype, O(1)), and against
    the action space when the vector env was made with check_actions=True."""
    actions = check_actions(actions, expected)
    if vec._check_values:
        check_action_values(actions, vec.single_action_space)
    return actions


def check_infos(infos):
    """`infos` if it is a list. Called inside the try around the env's call, whose handler names
    the env."""
    if not isinstance(infos, list):
        raise APIUsageError(f'returned infos of type {type(infos).__name__}: infos must be a list '
                            'of dicts')
    return infos


def check_finite(vec, obs, rewards, agent_ids, steps_of_agent):
    """EnvDataError naming env index, step and field at the first non-finite value."""
    for field, arr in (('observations', obs), ('rewards', rewards)):
        if arr.dtype.kind != 'f':
            continue
        flat = arr.reshape(len(arr), -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            agent = int(agent_ids[row])
            env = agent // vec.agents_per_env
            raise EnvDataError(f'env {env} (agent {agent}) produced a non-finite value in '
                               f'{field} at step {steps_of_agent(row)} after reset: '
                               f'{flat[row][~np.isfinite(flat[row])][0]}')


def set_spaces(vec, driver, agents_per_batch):
    vec.driver_env = driver
    vec.single_observation_space = driver.single_observation_space
    vec.single_action_space = driver.single_action_space
    vec.agents_per_env = driver.num_agents
    vec.num_agents = vec.num_envs * driver.num_agents
    vec.agents_per_batch = agents_per_batch
    vec.observation_space = joint_space(vec.single_observation_space, agents_per_batch)
    vec.action_space = joint_space(vec.single_action_space, agents_per_batch)
    vec.emulated = getattr(driver, 'emulated', None)


# Call order: async_reset -> recv -> send -> recv -> send ... The states: 'new', 'reset' (after
# async_reset), 'pending' (after send), 'ready' (after recv), 'closed'.
def begin(vec, call):
    state = vec._state
    if state == 'closed':
        raise ClosedError(f'{type(vec).__name__}.{call}() after close(): make a new vector env')
    error = vec._error
    if error is not None:
        raise EnvWorkerError(f'this vector env is broken by an earlier error; call close() and make '
                             f'a new one. The error was: {error}', worker=getattr(error, 'worker', None),
                             envs=getattr(error, 'envs', ()), exitcode=getattr(error, 'exitcode', None),
                             remote_traceback=getattr(error, 'remote_traceback', ''))
    if call == 'send' and state != 'ready':
        raise APIUsageError({
            'new': 'send() needs a batch: call reset() or async_reset() + recv() first',
            'reset': 'send() after async_reset(): call recv() first to get the batch',
            'pending': 'send() twice: call recv() before send() again'}[state])
    if call == 'recv' and state not in ('reset', 'pending'):
        raise APIUsageError('recv() before any reset: call reset() or async_reset() first'
                            if state == 'new' else
                            'recv() twice: call send(actions) before recv() again')


def fail(vec, error):
    """Remember `error` so that later calls repeat it, and return it for raising."""
    vec._error = error
    return error


def local_recv(vec, timeout=None):
    """recv of Native and Serial: the batch is every agent, stepped by the last send."""
    begin(vec, 'recv')
    if vec._check_finite:
        check_finite(vec, vec.observations, vec.rewards, vec.agent_ids, lambda row: vec._steps)
    vec._state = 'ready'
    return (vec.observations, vec.rewards, vec.terminals, vec.truncations, vec._infos,
            vec.agent_ids, vec.masks)


def reset(vec, seed=None):
    vec.async_reset(seed)
    obs, _, _, _, infos, _, _ = vec.recv()
    return obs, infos


def step(vec, actions):
    vec.send(actions)
    obs, rewards, terminals, truncations, infos, _, _ = vec.recv()
    return obs, rewards, terminals, truncations, infos


# ---- Native ----------------------------------------------------------------------------------

class Native:
    """One PufferEnv object as the vector env: `env` (also `driver_env`) holds all the sub-envs and
    steps them itself. This class only adds the vector API's checks around it."""
    reset, step, recv = reset, step, local_recv

    def __init__(self, creator, args, kwargs, seed=0, check_actions=False, check_finite=False):
        self.num_envs, self.num_workers = 1, 1
        self.env = create_env(creator, args, kwargs, None, seed, 0, native=True)
        set_spaces(self, self.env, self.env.num_agents)
        for name in BUFFER_NAMES + ('final_observations', 'agent_ids'):
            if hasattr(self.env, name):    # final_observations: only envs that record them
                setattr(self, name, getattr(self.env, name))
        self._check_values, self._check_finite = check_actions, check_finite
        self._state, self._error, self._infos, self._steps = 'new', None, [], 0

    def async_reset(self, seed=None):
        begin(self, 'async_reset')
        try:
            self._infos = check_infos(self.env.reset(seed)[1])
        except Exception as e:
            raise env_failure(self, 0, e, 'in reset()') from e
        self._state, self._steps = 'reset', 0

    def send(self, actions):
        begin(self, 'send')
        env = self.env
        actions = checked_actions(self, actions, env.actions)
        if actions is not env.actions:
            np.copyto(env.actions, actions, casting='same_kind')
        try:
            self._infos = check_infos(env.step(env.actions)[4])
        except Exception as e:
            raise env_failure(self, 0, e, 'in step()') from e
        self._state = 'pending'
        self._steps += 1

    def render(self):
        return self.env.render()

    def close(self):
        if self._state != 'closed':
            self._state = 'closed'
            self.env.close()


# ---- Serial ----------------------------------------------------------------------------------

class Serial:
    """Env objects in this process, each on its slice of one set of buffers, stepped in a loop.
    `envs[k]` is env object k; `driver_env` is envs[0]."""
    reset, step, recv = reset, step, local_recv

    def __init__(self, creators, args, kwargs, num_envs, seed=0, check_actions=False,
                 check_finite=False):
        self.num_envs, self.num_workers = num_envs, 1
        probe = create_env(creators[0], args[0], kwargs[0], None, seed, 0)
        try:
            ape = probe.num_agents
            self.buffers = allocate(vector_specs(probe, num_envs * ape))
            self.envs = []
            for k in range(num_envs):
                buf = {name: arr[k * ape:(k + 1) * ape] for name, arr in self.buffers.items()}
                env = create_env(creators[k], args[k], kwargs[k], buf, seed + k * ape, k)
                self.envs.append(env)
                check_same_spaces(env, probe, k)
                check_adopted(env, buf, k)
        except BaseException:
            for env in [probe] + getattr(self, 'envs', []):
                env.close()
            raise
        probe.close()
        set_spaces(self, self.envs[0], num_envs * ape)
        for name, arr in self.buffers.items():
            setattr(self, name, arr)
        self.agent_ids = np.arange(self.num_agents)
        self._check_values, self._check_finite = check_actions, check_finite
        self._state, self._error, self._infos, self._steps = 'new', None, [], 0

    def async_reset(self, seed=None):
        begin(self, 'async_reset')
        infos, k = [], 0
        try:
            for k, env in enumerate(self.envs):
                env_seed = None if seed is None else seed + k * self.agents_per_env
                infos.extend(check_infos(env.reset(env_seed)[1]))
        except Exception as e:
            raise env_failure(self, k, e, 'in reset()') from e
        self._infos, self._state, self._steps = infos, 'reset', 0

    def send(self, actions):
        begin(self, 'send')
        actions = checked_actions(self, actions, self.actions)
        if actions is not self.actions:
            np.copyto(self.actions, actions, casting='same_kind')
        infos, k = [], 0
        try:    # one try for the loop: Serial's cost per env object is the env's own
            for k, env in enumerate(self.envs):
                infos.extend(check_infos(env.step(env.actions)[4]))
        except Exception as e:
            raise env_failure(self, k, e, 'in step()') from e
        self._infos, self._state = infos, 'pending'
        self._steps += 1

    def render(self):
        return self.envs[0].render()

    def close(self):
        if self._state == 'closed':
            return
        self._state = 'closed'
        for env in self.envs:
            env.close()


from pufferlib.vector.processes import Multiprocessing  # noqa: E402  (uses the helpers above)
from pufferlib.vector.ray import Ray, cluster_cpus, cpus_per_worker  # noqa: E402  (ray: lazily)

BACKENDS = {'Native': Native, 'Serial': Serial, 'Multiprocessing': Multiprocessing, 'Ray': Ray}


# ---- make ------------------------------------------------------------------------------------

def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


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


def plan_workers(num_envs, num_workers, batch_size, zero_copy, overwork, cores=None,
                 cores_text='cores this process may use (os.sched_getaffinity)'):
    """Validated (num_workers, batch_size) for Multiprocessing and Ray; the errors show the
    arithmetic. `cores` (default: this process's) bounds num_workers unless overwork."""
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
        raise APIUsageError(f'batch_size={batch_size!r}: it must be a positive integer or None '
                            '(= num_envs)')
    if batch_size is not None and batch_size > num_envs:
        raise APIUsageError(f'batch_size={batch_size} is more than num_envs={num_envs}')
    batch = num_envs if batch_size is None else batch_size

    def problems(workers):
        per_worker = num_envs // workers
        if batch % per_worker:
            return (f'batch_size={batch} is not a multiple of the envs per worker: num_envs / '
                    f'num_workers = {num_envs} / {workers} = {per_worker}')
        if zero_copy and workers % (batch // per_worker):
            return (f'with zero_copy=True, batches are aligned blocks of workers: num_envs={num_envs} '
                    f'must be divisible by batch_size={batch} (or pass zero_copy=False)')
        return None

    if num_workers is None or num_workers == 'auto':
        fits = [w for w in range(min(cores, num_envs), 0, -1)
                if num_envs % w == 0 and problems(w) is None]
        if not fits:
            raise APIUsageError(f'no num_workers fits: {problems(1)}')
        return fits[0], batch
    if not _is_int(num_workers) or num_workers < 1:
        raise APIUsageError(f'num_workers={num_workers!r}: it must be a positive integer or "auto"')
    if num_workers > num_envs:
        raise APIUsageError(f'num_workers={num_workers} is more than num_envs={num_envs}: each '
                            'worker needs at least one env')
    if num_envs % num_workers:
        raise APIUsageError(f'num_envs={num_envs} is not divisible by num_workers={num_workers} '
                            f'({num_envs} % {num_workers} = {num_envs % num_workers})')
    if num_workers > cores and not overwork:
        raise APIUsageError(f'num_workers={num_workers} is more than the {cores} {cores_text}; pass '
                            'overwork=True to allow it, or num_workers="auto"')
    problem = problems(num_workers)
    if problem:
        raise APIUsageError(problem)
    return num_workers, batch


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
        if backend not in BACKENDS:
            raise APIUsageError(f'unknown backend {backend!r}; use one of {", ".join(BACKENDS)}')
        backend = BACKENDS[backend]
    if backend not in BACKENDS.values():
        raise APIUsageError(f'backend={backend!r}: use pufferlib.vector.Native, Serial, '
                            'Multiprocessing or Ray (or their names)')
    if not _is_int(num_envs) or num_envs < 1:
        raise APIUsageError(f'num_envs={num_envs!r}: it must be a positive integer (the number of '
                            'env objects)')
    if not _is_int(seed):
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
