"""The Ray backend: env objects in Ray actors, for runs that outgrow one machine.

Worker w is an actor holding env objects w * envs_per_worker, ... on buffers of its own (adopted
via `buf`, as in a Multiprocessing worker). A reset or step returns one tuple of NumPy arrays
(observations, rewards, terminals, truncations, masks, then final_observations when the envs record
them, then infos) through Ray's object store, and the driver writes it into its batch buffers with
one slice assignment per array; actions travel to the actor as one array. An env exception is
caught in the actor and returned as a report, so that the driver can name the worker, env, type and
message; a dead actor fails its pending call, which `ray.wait` sees at once.

`ray` is imported lazily: `import pufferlib.vector` works without it. With ray_address=None the
backend uses the Ray instance this process is already connected to, or starts a local one (bound
to 127.0.0.1, no dashboard, worker logs not forwarded) and shuts it down when the last Ray vector
env made on it closes. With an address it connects to that cluster and never shuts it down.
See docs/vector.md.
"""
import contextlib
import logging
import os
import re
import time
import weakref

import numpy as np

from pufferlib import PufferEnv
from pufferlib.exceptions import APIUsageError, ClosedError, EnvTimeoutError, EnvWorkerError
from pufferlib.vector.protocol import (CLOSED, CLOSED_WHILE_WAITING, PENDING, RESET, EnvRows,
                                       allocate, begin, checked_actions, close_quietly, deliver,
                                       envs_text, fail, gathered_batch, plan_pool, report_error,
                                       reset, spaces_of, step, vector_specs)

CLOSE_GRACE_S = 0.5           # close(): time for the actors to close their envs before ray.kill
DEATH_WAIT_S = 2.0            # close(): time for Ray to confirm that the killed actors are dead
SCHEDULE_TIMEOUT_S = 30.0     # an actor not placed by then (no free CPU) fails make()
MIN_OBJECT_STORE = 256 << 20  # object store of a local instance: this, or 4 x the buffers if more
INSTALL_HINT = 'the Ray backend needs ray: pip install "pufferlib[ray]"'
RESULT_NAMES = ('observations', 'rewards', 'terminals', 'truncations', 'masks')

# The local Ray instance this module started; `open` counts the Ray vector envs still using it.
_local = {'started': False, 'open': 0}


def import_ray():
    try:
        import ray
    except ImportError as e:
        raise APIUsageError(f'{INSTALL_HINT} ({e})') from e
    return ray


def cluster_cpus(ray_address):
    """CPUs of the Ray cluster the workers will run on: this process's cores if a local instance
    is to be started, else the cluster's total (connecting to `ray_address` first if this process
    is not connected yet). A missing ray is an APIUsageError, raised before anything starts."""
    ray = import_ray()
    if not ray.is_initialized():
        if ray_address is None:
            return len(os.sched_getaffinity(0))
        _connect(ray, ray_address)
    return int(ray.cluster_resources().get('CPU', 0))


def cpus_per_worker(num_workers, cpus):
    """The CPUs each actor reserves: 1, so that Ray spreads the workers over the cluster's CPUs, or
    none when there are more workers than CPUs (overwork=True): they then share what is there."""
    return 1.0 if num_workers <= cpus else 0.0


@contextlib.contextmanager
def _loopback_node():
    """On Linux, Ray (2.60) replaces a loopback node address by the host's public one, both when it
    starts an instance (whose servers then bind to that address) and when it connects to
    "127.0.0.1:port", unless its ENABLE_RAY_CLUSTER constant is off: turn it off for the call."""
    from ray._private import ray_constants
    saved = getattr(ray_constants, 'ENABLE_RAY_CLUSTER', None)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved is None:
            del ray_constants.ENABLE_RAY_CLUSTER
        else:
            ray_constants.ENABLE_RAY_CLUSTER = saved


def _connect(ray, address):
    host = address.rsplit(':', 1)[0].strip('[]')
    loopback = host in ('localhost', '::1') or host.startswith('127.')
    try:
        with _loopback_node() if loopback else contextlib.nullcontext():
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise APIUsageError(f'cannot connect to the Ray cluster at ray_address={address!r}: {e}') from e


def start_local(buffer_bytes=0):
    """Start the local Ray instance the backend starts when this process is not connected to one:
    this process's cores, bound to 127.0.0.1, no dashboard, worker output not forwarded, an object
    store of max(256 MiB, 4 x buffer_bytes). Call it yourself to keep one instance across several
    vector envs; the backend then leaves it running, and ray.shutdown() is yours to call. Ray turns
    on token auth for a new local instance and warns that it did: kept, not logged."""
    ray = import_ray()
    auth_log = logging.getLogger('ray._private.authentication.authentication_token_setup')
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    try:
        with _loopback_node():
            ray.init(address='local', num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False,
                     log_to_driver=False, logging_level=logging.WARNING, _node_ip_address='127.0.0.1',
                     object_store_memory=max(MIN_OBJECT_STORE, 4 * buffer_bytes))
    finally:
        auth_log.setLevel(level)


class Ray:
    """Env objects in `num_workers` Ray actors, `num_envs // num_workers` per actor. Batches are
    those of Multiprocessing: sync, or with batch_size < num_envs the first ready workers (aligned
    blocks of workers with zero_copy=True, any workers otherwise); send() acts on the workers of the
    last batch received. `actors[w]` is worker w's actor handle, `worker_pids[w]` its process id.
    Make it with pufferlib.vector.make, which checks the arguments (and that ray is installed)."""
    reset, step = reset, step
    __enter__, __exit__ = PufferEnv.__enter__, PufferEnv.__exit__    # `with` closes it

    def __init__(self, creators, args, kwargs, num_envs, num_workers, batch_size, zero_copy=True,
                 seed=0, check_actions=False, check_finite=False, ray_address=None, cpus=1.0):
        ray = self._ray = import_ray()
        self.actors, self.worker_pids = [], []
        driver = plan_pool(self, creators, args, kwargs, num_envs, num_workers, batch_size, zero_copy,
                           seed, check_actions, check_finite)
        apw = self.agents_per_worker
        buffers = allocate(vector_specs(driver, self.num_agents))
        self._final = buffers.get('final_observations')
        self._result_names = RESULT_NAMES + (() if self._final is None else ('final_observations',))
        for name, arr in buffers.items():
            setattr(self, name, arr)
        self._by_worker = {name: arr.reshape(num_workers, apw, *arr.shape[1:])
                           for name, arr in buffers.items()}
        wpb = self.workers_per_batch
        self._num_blocks = num_workers // wpb
        self._next_block, self._batch = 0, np.arange(wpb)
        if not self.zero_copy:
            self._gathered = {name: np.zeros((wpb, *self._by_worker[name].shape[1:]),
                                             self._by_worker[name].dtype)
                              for name in self._result_names}
            if self._final is not None:    # gathered with the rest of the batch
                self.final_observations = self._gathered['final_observations'].reshape(
                    self.agents_per_batch, *self.single_observation_space.shape)
        self._action_template = buffers['actions'][:self.agents_per_batch]
        self._pending = {}    # worker -> (submission number, ObjectRef of its unreceived result)
        self._submitted = 0

        self._uses_local = False
        try:
            if not ray.is_initialized():
                if ray_address is None:
                    start_local(sum(arr.nbytes for arr in buffers.values()))
                    _local['started'], _local['open'] = True, 0
                else:
                    _connect(ray, ray_address)
            if _local['started']:
                self._uses_local = True
                _local['open'] += 1
            remote = ray.remote(RayWorker).options(num_cpus=cpus, max_restarts=0)
            spaces = spaces_of(driver)
            specs = vector_specs(driver, apw)    # of each actor's own buffers
            for w in range(num_workers):
                lo, hi = w * self.envs_per_worker, (w + 1) * self.envs_per_worker
                try:
                    self.actors.append(remote.remote(lo, creators[lo:hi], args[lo:hi], kwargs[lo:hi],
                                                     seed, spaces, specs))
                except TypeError as e:
                    raise APIUsageError(f'Ray pickles the env creators and env_args/env_kwargs to '
                                        f'send them to the actors, and that failed: {e}') from e
            self._finalizer = weakref.finalize(self, _shutdown, ray, list(self.actors), 0.0,
                                               self._uses_local)
        except BaseException:
            driver.close()
            _shutdown(ray, self.actors, 0.0, self._uses_local)
            raise
        try:
            self._wait_scheduled(cpus)
            builds = [actor.build.remote() for actor in self.actors]
            self.worker_pids = [self._result(w, ref, 'building its envs')
                                for w, ref in enumerate(builds)]
        except BaseException:
            self.close()
            raise

    # ---- the protocol ----

    def async_reset(self, seed=None):
        begin(self, 'async_reset')
        self._drain()
        for w in range(self.num_workers):
            self._submit(w, self.actors[w].reset.remote(seed))
        self._worker_steps[:] = 0
        self._next_block, self._state = 0, RESET

    def send(self, actions):
        begin(self, 'send')
        actions = checked_actions(self, actions, self._action_template)
        chosen, by_worker = self._batch, self._by_worker['actions']
        by_worker[chosen] = actions.reshape(len(chosen), self.agents_per_worker, *actions.shape[1:])
        for w in chosen:
            self._submit(w, self.actors[w].step.remote(by_worker[w]))
        self._worker_steps[chosen] += 1
        self._state = PENDING

    def recv(self, timeout=None):
        begin(self, 'recv')
        deadline = None if timeout is None else time.monotonic() + timeout
        doing = 'resetting' if self._state is RESET else 'stepping'
        try:
            chosen = self._batch = self._wait_batch(deadline, doing)
            results = self._results(chosen, [self._pending.pop(w)[1] for w in chosen], doing)
        except Exception:
            if self._state is CLOSED:    # close() from another thread killed the actors
                raise ClosedError(CLOSED_WHILE_WAITING) from None
            raise
        infos = []
        # One slice assignment per array and worker: into the worker's rows of the buffers (an
        # aligned block is then returned as views), or into row i of the gathered batch.
        target = self._by_worker if self.zero_copy else self._gathered
        for i, (w, result) in enumerate(zip(chosen, results)):
            for name, arr in zip(self._result_names, result):
                target[name][w if self.zero_copy else i] = arr
            infos.extend(result[-1])
        if self.zero_copy:
            apw = self.agents_per_worker
            rows = slice(chosen[0] * apw, (chosen[-1] + 1) * apw)
            batch = (self.observations[rows], self.rewards[rows], self.terminals[rows],
                     self.truncations[rows], self.agent_ids[rows], self.masks[rows])
            if self._final is not None:
                self.final_observations = self._final[rows]
        else:
            batch = gathered_batch(self, self._gathered, chosen)
        return deliver(self, batch, infos)

    def close(self):
        """Idempotent. Asks every actor to close its envs, gives them CLOSE_GRACE_S, kills them all
        with ray.kill and waits (up to DEATH_WAIT_S) until Ray reports them dead; then shuts down
        the local Ray instance if this was the last vector env on it."""
        if self._state is CLOSED:
            return
        self._state = CLOSED
        self._pending.clear()
        if hasattr(self, '_finalizer'):
            self._finalizer.detach()
            _shutdown(self._ray, self.actors, CLOSE_GRACE_S, self._uses_local)
        self.driver_env.close()

    # ---- waiting and faults ----

    def _submit(self, w, ref):
        self._submitted += 1
        self._pending[int(w)] = (self._submitted, ref)

    def _wait_batch(self, deadline, doing):
        """The workers of the next batch, once all their results are ready: with zero_copy the
        first ready block, scanning from the block after the last one received; otherwise the
        workers_per_batch ready workers that were sent work longest ago."""
        ray, pending, wpb = self._ray, self._pending, self.workers_per_batch
        need = wpb
        while True:
            refs = [ref for _, ref in pending.values()]
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done = ray.wait(refs, num_returns=need, timeout=timeout)[0]
            if len(done) == need < len(refs):    # ray.wait stops at `need`: see all that are ready
                done = ray.wait(refs, num_returns=len(refs), timeout=0)[0]
            done = set(done)
            ready = {w for w, (_, ref) in pending.items() if ref in done}
            if self.zero_copy:
                for i in range(self._num_blocks):
                    b = (self._next_block + i) % self._num_blocks
                    if ready.issuperset(range(b * wpb, (b + 1) * wpb)):
                        self._next_block = (b + 1) % self._num_blocks
                        return np.arange(b * wpb, (b + 1) * wpb)
            elif len(ready) >= wpb:
                return np.array(sorted(sorted(ready, key=lambda w: pending[w][0])[:wpb]))
            if deadline is not None and time.monotonic() >= deadline:
                waiting = sorted(set(pending) - ready)
                raise EnvTimeoutError(f'recv() timed out while workers {waiting} were still '
                                      f'{doing}', workers=waiting)
            need = len(done) + 1

    def _wait_scheduled(self, cpus):
        """Raise, instead of waiting forever, if Ray cannot place every actor because others hold
        the CPUs; actors that could be placed but are slow to start are waited for."""
        ray = self._ray
        refs = [actor.__ray_ready__.remote() for actor in self.actors]
        while True:
            done = ray.wait(refs, num_returns=len(refs), timeout=SCHEDULE_TIMEOUT_S)[0]
            if len(done) == len(refs):
                break
            free = ray.available_resources().get('CPU', 0)
            if cpus == 0 or free >= cpus:    # placeable: only slow to start
                continue
            total = ray.cluster_resources().get('CPU', 0)
            raise APIUsageError(
                f'Ray could not start {len(refs) - len(done)} of the {len(refs)} workers within '
                f'{SCHEDULE_TIMEOUT_S:g} s: each reserves {cpus:g} CPU and the cluster has {free:g} '
                f'of {total:g} CPUs free. Close other Ray vector envs or actors, or use fewer workers '
                '(with more workers than CPUs and overwork=True, workers reserve no CPU)')
        for w, ref in enumerate(refs):
            self._result(w, ref, 'starting')

    def _results(self, workers, refs, doing):
        """The results of `workers` for `refs`, fetched in one call; a fault is found per worker."""
        try:
            results = self._ray.get(refs)
        except self._ray.exceptions.RayError:
            results = None
        if results is None or any(isinstance(r, dict) for r in results):
            return [self._result(w, ref, doing) for w, ref in zip(workers, refs)]
        return results

    def _result(self, w, ref, doing):
        """Worker w's result for `ref`, or the error that replaces it (remembered by fail)."""
        ray = self._ray
        lo, hi = w * self.envs_per_worker, (w + 1) * self.envs_per_worker
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            pid = f', pid {self.worker_pids[w]}' if len(self.worker_pids) > w else ''
            raise fail(self, EnvWorkerError(
                f'worker {w} ({envs_text(lo, hi)}{pid}) died while {doing}: its Ray actor is gone. '
                f'Ray says: {_death_cause(e)}', worker=w, envs=range(lo, hi),
                remote_traceback=str(e))) from e
        except ray.exceptions.RayError as e:
            raise fail(self, EnvWorkerError(
                f'worker {w} ({envs_text(lo, hi)}) failed in Ray while {doing}: '
                f'{type(e).__name__}: {str(e)[:500]}', worker=w, envs=range(lo, hi),
                remote_traceback=str(e))) from e
        if isinstance(result, dict):    # an error report from the actor
            raise fail(self, report_error(result, w, range(lo, hi)))
        return result

    def _drain(self):
        """Wait for every unreceived result (raising a fault found in one) and drop it."""
        workers = sorted(self._pending)
        self._results(workers, [self._pending[w][1] for w in workers], 'finishing before a reset')
        self._pending.clear()


def _death_cause(error):
    """Ray's reason for an actor's death, cut before its list of common causes, plus the last line
    of the text when that is an exception (e.g. the ModuleNotFoundError that failed the actor's
    creation); ANSI colours removed."""
    lines = [re.sub(r'\x1b\[[0-9;]*m', '', l).rstrip() for l in str(error).strip().splitlines()]
    lines = [l for l in lines if l] or [type(error).__name__]
    reason = next((l for l in lines if ' because ' in l), lines[0])
    reason = reason.split(' Some common causes')[0].strip()
    if re.match(r'\w+(Error|Exception|Interrupt)\b.*:', lines[-1]) and lines[-1] not in reason:
        reason += f' ... {lines[-1]}'
    return reason


def _shutdown(ray, actors, grace, uses_local):
    """Let the actors close their envs (up to `grace` s), kill them all, wait until Ray reports
    them dead, and shut down the local instance after its last vector env."""
    try:
        if actors and ray.is_initialized():
            if grace > 0:
                closing = [actor.close.remote() for actor in actors]
                ray.wait(closing, num_returns=len(closing), timeout=grace)
            for actor in actors:
                ray.kill(actor, no_restart=True)
            # A call to a dead actor fails as soon as Ray has marked it dead.
            gone = [actor.__ray_ready__.remote() for actor in actors]
            ray.wait(gone, num_returns=len(gone), timeout=DEATH_WAIT_S)
    finally:
        if uses_local and _local['started']:
            _local['open'] -= 1
            if _local['open'] <= 0:
                _local['started'] = False
                ray.shutdown()


# ---- the actor -------------------------------------------------------------------------------

class RayWorker:
    """Env objects first_env, first_env + 1, ... on this actor's own buffers (of `specs`). reset and
    step return (observations, rewards, terminals, truncations, masks[, final_observations], infos),
    final_observations when the envs record them; an env error returns a report dict instead (the
    actor stays alive, so the driver can read it), and so does every later call."""

    def __init__(self, first_env, creators, args, kwargs, seed, spaces, specs):
        self.rows = EnvRows(first_env, allocate(specs), spaces[2])
        self._build_args = (creators, args, kwargs, seed, spaces)
        names = RESULT_NAMES + (('final_observations',) if 'final_observations' in specs else ())
        self.results = tuple(self.rows.buffers[name] for name in names)
        self.report = None

    def build(self):
        return self._run('in its constructor', self._build)

    def reset(self, seed):
        return self._run('in reset()', self._results, self.rows.reset, seed)

    def step(self, actions):
        self.rows.buffers['actions'][:] = actions
        return self._run('in step()', self._results, self.rows.step)

    def close(self):
        close_quietly(self.rows)

    def _build(self):
        self.rows.build(*self._build_args)
        return os.getpid()

    def _results(self, method, *args):
        return self.results + (method(*args),)

    def _run(self, where, method, *args):
        if self.report is None:
            try:
                return method(*args)
            except Exception as e:
                self.report = self.rows.report(e, where)
        return self.report
