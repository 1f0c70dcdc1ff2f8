"""The vector protocol: what every backend of pufferlib.vector shares.

* Call order: `State`, `begin` (checked at the start of every call), `fail` (an env fault breaks the
  vector env for good), `reset` and `step` (the one-call forms over async_reset/send + recv).
* Buffers and checks: `vector_specs`, `allocate`, `set_spaces`, `checked_actions`, `check_infos`,
  `check_finite`, `check_env`, `check_adopted`.
* `EnvRows`: env objects on consecutive rows of one set of buffers, built, seeded, reset and stepped
  together. Serial runs one over all its envs, a Multiprocessing worker and a Ray actor one over
  theirs. An env that raises becomes an error report (`error_report`: a dict, so that it crosses a
  pipe or Ray) and the report an exception in the caller (`report_error`).
* The worker pool of Multiprocessing and Ray: `plan_workers` (the arithmetic make() checks),
  `plan_pool`, `gathered_batch`, `deliver`.
"""
import contextlib
import enum
import os
import traceback

import numpy as np
from gymnasium.spaces import Discrete, MultiDiscrete

from pufferlib import PufferEnv, buffer_specs, check_action_values, check_actions, joint_space
from pufferlib.exceptions import APIUsageError, ClosedError, EnvDataError, EnvWorkerError
from pufferlib.spaces import SMALL_BATCH, value_range


# ---- call order ------------------------------------------------------------------------------

class State(enum.Enum):
    """Where a vector env is in the call order async_reset -> recv -> send -> recv -> send ..."""
    NEW = 'new'            # made, never reset
    RESET = 'reset'        # after async_reset: recv is next
    PENDING = 'pending'    # after send: recv is next
    READY = 'ready'        # after recv: send (or async_reset) is next
    CLOSED = 'closed'


# The members as module names for the per-call paths: on Python 3.11, reading State.READY goes
# through a Python-level descriptor (about 0.2 us, ten times a global), several times per send/recv.
NEW, RESET, PENDING, READY, CLOSED = State

# What a recv() pending in one thread raises when close() runs in another.
CLOSED_WHILE_WAITING = 'recv(): the vector env was closed (close() from another thread) while recv waited'

SEND_OUT_OF_ORDER = {
    NEW: 'send() needs a batch: call reset() or async_reset() + recv() first',
    RESET: 'send() after async_reset(): call recv() first to get the batch',
    PENDING: 'send() twice: call recv() before send() again',
}


def begin(vec, call):
    """Check that `call` ('async_reset', 'send' or 'recv') may come now."""
    state = vec._state
    if state is CLOSED:
        raise ClosedError(f'{type(vec).__name__}.{call}() after close(): make a new vector env')
    error = vec._error
    if error is not None:
        raise EnvWorkerError(f'this vector env is broken by an earlier error; call close() and make '
                             f'a new one. The error was: {error}', worker=getattr(error, 'worker', None),
                             envs=getattr(error, 'envs', ()), exitcode=getattr(error, 'exitcode', None),
                             remote_traceback=getattr(error, 'remote_traceback', ''))
    if call == 'send' and state is not READY:
        raise APIUsageError(SEND_OUT_OF_ORDER[state])
    if call == 'recv' and state is not RESET and state is not PENDING:
        raise APIUsageError('recv() before any reset: call reset() or async_reset() first'
                            if state is NEW else
                            'recv() twice: call send(actions) before recv() again')


def fail(vec, error):
    """Remember `error` so that later calls repeat it, and return it for raising."""
    vec._error = error
    return error


def reset(vec, seed=None):
    vec.async_reset(seed)
    obs, _, _, _, infos, _, _ = vec.recv()
    return obs, infos


def step(vec, actions):
    vec.send(actions)
    obs, rewards, terminals, truncations, infos, _, _ = vec.recv()
    return obs, rewards, terminals, truncations, infos


# ---- buffers and checks ----------------------------------------------------------------------

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


def spaces_of(env):
    """(single_observation_space, single_action_space, num_agents): what every env of a vector env
    must share with env 0."""
    return env.single_observation_space, env.single_action_space, env.num_agents


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


def check_env(env, index, spaces=None):
    """Env `index` must be a PufferEnv, with `spaces` (spaces_of env 0) when given."""
    if not isinstance(env, PufferEnv):
        raise APIUsageError(f'env {index} is a {type(env).__name__}, not a PufferEnv: wrap it with '
                            'pufferlib.emulation (GymnasiumPufferEnv / PettingZooPufferEnv)')
    names = ('single_observation_space', 'single_action_space', 'num_agents')
    for name, own, expected in zip(names, spaces_of(env), spaces or ()):
        if own != expected:
            raise APIUsageError(f'env {index} has {name} {own} but env 0 has {expected}: all envs '
                                'of a vector env must match')


def check_adopted(env, buf, index):
    """An env that ignores `buf` would step on arrays nobody reads: refuse it."""
    for name, arr in buf.items():
        own = getattr(env, name, None)
        if not isinstance(own, np.ndarray) or not np.shares_memory(own, arr):
            raise APIUsageError(f'env {index} ({type(env).__name__}) did not adopt buf[{name!r}]: its '
                                'constructor must pass buf to PufferEnv.__init__(buf)')


def checked_actions(vec, actions, expected):
    """`actions` checked against the action buffer `expected` (shape and dtype, O(1)); discrete
    actions always against the action space (one pass over the batch), so that an out-of-range
    action is the caller's APIUsageError and the vector env stays usable; every action space
    (Box bounds and NaN included) when the vector env was made with check_actions=True."""
    space = vec.single_action_space
    discrete = isinstance(space, Discrete)    # its range check covers the int32 fit check
    actions = check_actions(actions, expected, fit=not discrete)
    if vec._check_values or isinstance(space, MultiDiscrete):
        check_action_values(actions, space)
    elif discrete and actions.size and _outside(actions, space):
        check_actions(actions, expected)    # a value int32 cannot hold is named as such
        check_action_values(actions, space)    # raises, naming the first bad agent and value
    return actions


UNSIGNED = {size: np.dtype(f'u{size}') for size in (1, 2, 4, 8)}


def _outside(actions, space):
    """Whether any integer action is outside the Discrete `space`, in one pass: Python's min/max
    for a small batch, else with start 0 one max over the actions read as unsigned (a negative
    action reads as a huge one)."""
    start = int(space.start)
    if start == 0 and actions.size > SMALL_BATCH and actions.dtype.kind in 'iu':
        return actions.view(UNSIGNED[actions.dtype.itemsize]).max() >= space.n
    low, high = value_range(actions)
    return low < start or high >= start + space.n


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


# ---- env errors ------------------------------------------------------------------------------

BUF_SEED_HINT = (' (vector backends call creator(*env_args, **env_kwargs, buf=..., seed=...): the env '
                 'must accept buf=None and seed=0)')


def error_report(exc, index, where):
    """What `exc`, raised by env `index` `where` ('in its constructor', 'in reset()', 'in step()'),
    tells the caller: a dict of strings, so that it crosses a pipe or Ray."""
    hint = ''
    if where == 'in its constructor' and isinstance(exc, TypeError) and (
            'buf' in str(exc) or 'seed' in str(exc)):
        hint = BUF_SEED_HINT
    return {'env': index, 'type': type(exc).__name__, 'message': str(exc), 'where': where,
            'hint': hint, 'traceback': ''.join(traceback.format_exception(type(exc), exc,
                                                                          exc.__traceback__))}


def _who(index, worker):
    return f'env {index}' if worker is None else f'worker {worker}, env {index}'


def worker_error(report, worker=None, envs=()):
    """The EnvWorkerError for an env's error report (from `worker`, holding `envs`, if any)."""
    tb = report['traceback']
    return EnvWorkerError(f"{_who(report['env'], worker)} raised {report['type']}: "
                          f"{report['message']} ({report['where']}){report['hint']}\n\n"
                          f'Traceback of the env:\n{tb}', worker=worker,
                          envs=envs or (report['env'],), remote_traceback=tb)


def report_error(report, worker=None, envs=()):
    """The exception for an env's error report: misuse (an APIUsageError, such as a bad observation
    from an emulated env, or an env that did not adopt its buffers) stays an APIUsageError naming the
    env; anything else is an EnvWorkerError with the env's traceback."""
    if report['type'] == 'APIUsageError':
        return APIUsageError(f"{_who(report['env'], worker)}: {report['message']} "
                             f"({report['where']})")
    return worker_error(report, worker, envs)


def envs_text(lo, hi):
    return f'env {lo}' if hi == lo + 1 else f'envs {lo}..{hi - 1}'


def create_env(creator, args, kwargs, seed, native=False):
    """Env 0 made in this process on buffers of its own: the driver env of Serial, Multiprocessing
    and Ray (for spaces, metadata and rendering), or Native's env. A constructor error is an
    EnvWorkerError naming env 0 (an APIUsageError stays one: report_error), with the original as
    __cause__; the result must be a PufferEnv."""
    try:
        env = creator(*args, **kwargs, buf=None, seed=seed)
    except Exception as e:
        raise report_error(error_report(e, 0, 'in its constructor')) from e
    if not isinstance(env, PufferEnv):
        if hasattr(env, 'close'):
            env.close()
        if native:
            raise APIUsageError(f'Native needs a PufferEnv that steps its own sub-envs, got a '
                                f'{type(env).__name__}: use Serial or Multiprocessing with the env '
                                'wrapped by pufferlib.emulation (GymnasiumPufferEnv / '
                                'PettingZooPufferEnv)')
        check_env(env, 0)
    return env


# ---- env objects on their rows ---------------------------------------------------------------

class EnvRows:
    """Env objects `first`, `first + 1`, ... each on its `agents_per_env` rows of `buffers` (a dict of
    arrays whose first axis is these envs' agents, in order). `index` is the global index of the env
    called last, so that `report` names the env that raised."""

    def __init__(self, first, buffers, agents_per_env):
        self.first, self.buffers, self.agents_per_env = first, buffers, agents_per_env
        self.envs, self.index = [], first

    def build(self, creators, args, kwargs, seed, spaces):
        """Env k is creators[k](*args[k], **kwargs[k], buf=its rows, seed=seed + index *
        agents_per_env), checked to be a PufferEnv with `spaces` that adopted its rows."""
        ape = self.agents_per_env
        for k, creator in enumerate(creators):
            index = self.index = self.first + k
            buf = {name: arr[k * ape:(k + 1) * ape] for name, arr in self.buffers.items()}
            env = creator(*args[k], **kwargs[k], buf=buf, seed=seed + index * ape)
            self.envs.append(env)
            check_env(env, index, spaces)
            check_adopted(env, buf, index)

    def reset(self, seed):
        """Reset env `index` with seed + index * agents_per_env (seed None: no reseeding); returns
        the envs' infos in one list."""
        infos, ape = [], self.agents_per_env
        for self.index, env in enumerate(self.envs, self.first):
            infos += check_infos(env.reset(None if seed is None else seed + self.index * ape)[1])
        return infos

    def step(self):
        """Step every env on the actions in its rows; returns the envs' infos in one list."""
        infos = []
        for self.index, env in enumerate(self.envs, self.first):
            infos += check_infos(env.step(env.actions)[4])
        return infos

    def report(self, exc, where):
        """The error report of `exc`, raised by the env called last."""
        return error_report(exc, self.index, where)

    def close(self):
        """Close every env; the first error, if any, is raised once all are closed."""
        envs, self.envs, first_error = self.envs, [], None
        for env in envs:
            try:
                env.close()
            except Exception as e:
                first_error = first_error or e
        if first_error is not None:
            raise first_error


def close_quietly(rows):
    """rows.close() where nobody could act on its error (a worker exiting, a failed build)."""
    with contextlib.suppress(Exception):
        rows.close()


# ---- the worker pool of Multiprocessing and Ray ----------------------------------------------

def is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def plan_workers(num_envs, num_workers, batch_size, zero_copy, overwork, cores=None,
                 cores_text='cores this process may use (os.sched_getaffinity)'):
    """Validated (num_workers, batch_size) for Multiprocessing and Ray; the errors show the
    arithmetic. `cores` (default: this process's) bounds num_workers unless overwork."""
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
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
    if not is_int(num_workers) or num_workers < 1:
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


def plan_pool(vec, creators, args, kwargs, num_envs, num_workers, batch_size, zero_copy, seed,
              check_actions, check_finite):
    """Set the pool's batch arithmetic and flags on `vec`, and make the driver env (env 0's twin,
    in this process, for spaces and metadata); returns the driver."""
    vec.num_envs, vec.num_workers, vec.batch_size = num_envs, num_workers, batch_size
    vec.envs_per_worker = num_envs // num_workers
    vec.workers_per_batch = batch_size // vec.envs_per_worker
    vec.zero_copy = zero_copy or vec.workers_per_batch == num_workers
    vec._check_values, vec._check_finite = check_actions, check_finite
    vec._state, vec._error = NEW, None
    vec._worker_steps = np.zeros(num_workers, np.int64)
    driver = create_env(creators[0], args[0], kwargs[0], seed)
    set_spaces(vec, driver, batch_size * driver.num_agents)
    vec.agents_per_worker = vec.agents_per_env * vec.envs_per_worker
    vec.agent_ids = np.arange(vec.num_agents)
    vec._ids_by_worker = vec.agent_ids.reshape(num_workers, vec.agents_per_worker)
    return driver


def gathered_batch(vec, gathered, chosen):
    """(obs, rewards, terminals, truncations, ids, masks) of workers `chosen`, whose rows were
    gathered into the arrays `gathered` ({name: (workers, agents_per_worker, ...)})."""
    g, n = gathered, vec.agents_per_batch
    return (g['observations'].reshape(n, *vec.single_observation_space.shape),
            g['rewards'].reshape(n), g['terminals'].reshape(n), g['truncations'].reshape(n),
            vec._ids_by_worker[chosen].reshape(n), g['masks'].reshape(n))


def deliver(vec, batch, infos):
    """The end of recv: the finite check (steps counted per worker), then recv's tuple."""
    obs, rewards, terminals, truncations, ids, masks = batch
    if vec._check_finite:
        steps = vec._worker_steps
        apw = vec.agents_per_worker
        check_finite(vec, obs, rewards, ids, lambda row: int(steps[ids[row] // apw]))
    vec._state = READY
    return obs, rewards, terminals, truncations, infos, ids, masks
