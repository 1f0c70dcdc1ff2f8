"""The Multiprocessing backend: env objects in worker processes, every buffer in shared memory.

One block of shared memory (a multiprocessing RawArray: an unlinked tmpfs file, so nothing can leak
by name) holds the six env buffers and a control block of int32 words (see sync.h). Worker w's env
objects adopt their rows of the buffers and write results in place; the main process writes actions
and commands and never copies a batch unless zero_copy=False asks it to. Infos travel through the
worker's pipe only when a step produced some, flagged by the INFO result.

Waiting spins briefly, then sleeps in a futex with a bounded timeout, so that both sides keep
checking that the other is alive: workers die with their parent (a watchdog thread on a pidfd of
the main process, which also fires inside a long env step; PR_SET_PDEATHSIG; a getppid poll), and
the main process watches worker sentinels and turns any fault into an EnvWorkerError.
"""
import ctypes
import faulthandler
import multiprocessing
import os
import pickle
import select
import signal
import struct
import threading
import time
import weakref
from multiprocessing import connection

import numpy as np

from pufferlib import PufferEnv
from pufferlib.exceptions import APIUsageError, ClosedError, EnvTimeoutError, EnvWorkerError
from pufferlib.vector import _sync
from pufferlib.vector.protocol import (CLOSED, CLOSED_WHILE_WAITING, PENDING, RESET, EnvRows, begin,
                                       checked_actions, close_quietly, deliver, envs_text, fail,
                                       gathered_batch, plan_pool, report_error, reset, spaces_of,
                                       step, vector_specs)

# Wait budgets (spin us, yield us, block us); see benchmarks/vector_overhead.py for the figures.
MAIN_BUDGET = (0.0, 100.0, 20_000.0)
WORKER_BUDGET = (0.0, 500.0, 100_000.0)
LIVENESS_PERIOD_S = 0.05      # recv checks worker sentinels at least this often
CLOSE_GRACE_S = 0.5           # close(): time for workers to exit before terminate(), then kill()
WATCHDOG_PERIOD_S = 0.2      # a worker's poll of the main process where there is no pidfd
ALIGN = 64


def _layout(specs, num_workers):
    """{name: (byte offset, shape, dtype str)} for the buffers and the control block, and the size."""
    layout, size = {}, 0
    items = list(specs.items()) + [('ctl', ((_sync.control_words(num_workers),), np.dtype(np.int32)))]
    for name, (shape, dtype) in items:
        size = -(-size // ALIGN) * ALIGN
        layout[name] = (size, tuple(shape), np.dtype(dtype).str)
        size += int(np.prod(shape)) * np.dtype(dtype).itemsize
    return layout, size


def _views(raw, pad, layout):
    data = np.frombuffer(raw, dtype=np.uint8)
    views = {}
    for name, (offset, shape, dtype) in layout.items():
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        views[name] = data[pad + offset:pad + offset + nbytes].view(dtype).reshape(shape)
    return views


def _describe_exit(code):
    if code is not None and code < 0:
        try:
            return f'exitcode {code}, {signal.Signals(-code).name}'
        except ValueError:
            pass
    return f'exitcode {code}'


class Multiprocessing:
    """Env objects in `num_workers` worker processes, `num_envs // num_workers` per worker. With
    batch_size < num_envs, recv() returns the first workers that are ready (an aligned block of
    workers with zero_copy=True, any workers gathered by copy otherwise); send() acts on the workers
    of the last batch received. Make it with pufferlib.vector.make, which checks the arguments."""
    reset, step = reset, step
    __enter__, __exit__ = PufferEnv.__enter__, PufferEnv.__exit__    # `with` closes it

    def __init__(self, creators, args, kwargs, num_envs, num_workers, batch_size, zero_copy=True,
                 seed=0, check_actions=False, check_finite=False, start_method=None):
        self.processes = []
        driver = plan_pool(self, creators, args, kwargs, num_envs, num_workers, batch_size, zero_copy,
                           seed, check_actions, check_finite)
        apw = self.agents_per_worker
        layout, size = _layout(vector_specs(driver, self.num_agents), num_workers)
        raw = multiprocessing.RawArray(ctypes.c_uint8, size + ALIGN)
        pad = -ctypes.addressof(raw) % ALIGN
        views = _views(raw, pad, layout)
        ctl_words = views.pop('ctl')
        ctl_words[_sync.STRIDE::_sync.STRIDE] = _sync.INIT    # every worker starts by building its envs
        views['masks'][:] = True
        for name, arr in views.items():
            setattr(self, name, arr)
        self._ctl = _sync.Control(ctl_words, num_workers, *MAIN_BUDGET)

        # Per-worker views (num_workers, agents_per_worker, ...) and what a batch returns.
        self._by_worker = {name: arr.reshape(num_workers, apw, *arr.shape[1:])
                           for name, arr in views.items()}
        wpb, apb = self.workers_per_batch, self.agents_per_batch
        self._num_blocks = num_workers // wpb
        self._next_block, self._block, self._batch = 0, 0, (0, wpb)
        if self.zero_copy:    # what recv returns for each aligned block of workers: views
            rows = [slice(b * apb, (b + 1) * apb) for b in range(self._num_blocks)]
            self._block_results = [tuple(views[name][r] for name in ('observations', 'rewards',
                                   'terminals', 'truncations')) + (self.agent_ids[r], views['masks'][r])
                                   for r in rows]
            self._block_actions = [views['actions'][r] for r in rows]
            self._block_finals = ([views['final_observations'][r] for r in rows]
                                  if 'final_observations' in views and self._num_blocks > 1 else None)
        else:
            self._gathered = {name: np.zeros((wpb, *arr.shape[1:]), arr.dtype)
                              for name, arr in self._by_worker.items() if name != 'actions'}
            self._order = np.zeros(num_workers, np.int64)
            if 'final_observations' in views:    # gathered with the rest of the batch
                self.final_observations = self._gathered['final_observations'].reshape(
                    apb, *self.single_observation_space.shape)
        self._action_template = views['actions'][:apb]    # the shape and dtype send() expects
        self._next_liveness = 0.0

        ctx = multiprocessing.get_context(start_method)
        self.start_method = ctx.get_start_method()
        conns = []
        spaces = spaces_of(driver)
        die_with_parent = threading.current_thread() is threading.main_thread()
        try:
            for w in range(num_workers):
                lo, hi = w * self.envs_per_worker, (w + 1) * self.envs_per_worker
                parent_conn, child_conn = ctx.Pipe()
                p = ctx.Process(target=_worker_main, name=f'puffer-worker-{w}', daemon=True, args=(
                    w, lo, creators[lo:hi], args[lo:hi], kwargs[lo:hi], seed, spaces, raw, pad,
                    layout, num_workers, child_conn, WORKER_BUDGET, die_with_parent, os.getpid()))
                try:
                    p.start()
                except (pickle.PicklingError, AttributeError, TypeError) as e:
                    parent_conn.close()
                    child_conn.close()
                    raise APIUsageError(
                        f'start_method={self.start_method!r} pickles the env creators and env_args/'
                        f'env_kwargs to send them to the workers, and that failed: {e}. Define the '
                        "creator at module level (not a lambda or local function) or use "
                        "start_method='fork'") from e
                child_conn.close()
                self.processes.append(p)
                conns.append(parent_conn)
        except BaseException:
            _shutdown(self.processes, conns, self._ctl, CLOSE_GRACE_S)
            driver.close()
            raise
        self._conns = conns
        self._sentinels = {p.sentinel: w for w, p in enumerate(self.processes)}
        self._finalizer = weakref.finalize(self, _shutdown, self.processes, conns, self._ctl,
                                           CLOSE_GRACE_S)
        try:
            self._wait(num_workers, 0, False, None, 'building its envs')
        except BaseException:
            self.close()
            raise

    # ---- the protocol ----

    def async_reset(self, seed=None):
        begin(self, 'async_reset')
        self._drain()
        self._check_alive('resetting')
        for conn, p in zip(self._conns, self.processes):
            try:
                conn.send(seed)
            except OSError:    # the worker died just now: report it as such
                connection.wait([p.sentinel], 1.0)
                self._check_alive('resetting')
                raise
        self._ctl.command(0, self.num_workers, _sync.RESET)
        self._worker_steps[:] = 0
        self._next_block, self._state = 0, RESET

    def send(self, actions):
        begin(self, 'send')
        actions = checked_actions(self, actions, self._action_template)
        if self.zero_copy:
            lo, hi = self._batch
            target = self._block_actions[self._block]
            if actions is not target:
                np.copyto(target, actions, casting='same_kind')
            self._ctl.command(lo, hi, _sync.STEP)
            if self._check_finite:
                self._worker_steps[lo:hi] += 1
        else:
            chosen = self._batch
            self._by_worker['actions'][chosen] = actions.reshape(len(chosen), self.agents_per_worker,
                                                                  *actions.shape[1:])
            for w in chosen:
                self._ctl.command(w, w + 1, _sync.STEP)
            self._worker_steps[chosen] += 1
        self._state = PENDING

    def recv(self, timeout=None):
        """The next batch. `timeout` (seconds) bounds the whole call, infos included."""
        begin(self, 'recv')
        deadline = None if timeout is None else time.monotonic() + timeout
        doing = 'resetting' if self._state is RESET else 'stepping'
        wpb = self.workers_per_batch
        try:
            if self.zero_copy:
                b = self._block = self._wait(wpb, self._next_block, False, deadline, doing)
                lo, hi = self._batch = (b * wpb, (b + 1) * wpb)
                self._next_block = (b + 1) % self._num_blocks
                infos = (self._collect_infos(range(lo, hi), deadline, doing)
                         if self._ctl.count(lo, hi, _sync.INFO) else [])
                batch = self._block_results[b]
                if self._block_finals:
                    self.final_observations = self._block_finals[b]
            else:
                self._wait(wpb, 0, True, deadline, doing)
                self._ctl.first_ready(self._order)
                chosen = self._batch = np.argsort(self._order, kind='stable')[:wpb]
                infos = self._collect_infos(chosen, deadline, doing)
                for name, arr in self._gathered.items():
                    np.take(self._by_worker[name], chosen, axis=0, out=arr)
                batch = gathered_batch(self, self._gathered, chosen)
        except Exception:
            if self._state is CLOSED:    # close() from another thread stopped the workers
                raise ClosedError(CLOSED_WHILE_WAITING) from None
            raise
        return deliver(self, batch, infos)

    def close(self):
        """Idempotent. Asks every worker to close its envs and exit, terminates (then kills) any
        that has not after CLOSE_GRACE_S, and joins them all."""
        if self._state is CLOSED:
            return
        self._state = CLOSED
        self._finalizer()
        self.driver_env.close()

    # ---- waiting and faults ----

    def _wait(self, block, start, count_mode, deadline, doing):
        """Wait on the control block, checking worker liveness between bounded sleeps."""
        now = time.monotonic()
        if now >= self._next_liveness:
            self._check_alive(doing)
            self._next_liveness = now + LIVENESS_PERIOD_S
        while True:
            r = self._ctl.wait_ready(block, start, count_mode)
            if r >= 0:
                return r
            if r == -2:
                raise fail(self, self._worker_error(doing))
            self._check_alive(doing)
            if deadline is not None and time.monotonic() >= deadline:
                pending = [w for w in range(self.num_workers) if self._ctl.state(w) < _sync.DONE]
                raise EnvTimeoutError(f'recv() timed out while workers {pending} were still '
                                      f'{doing}', workers=pending)

    def _check_alive(self, doing):
        dead = connection.wait(list(self._sentinels), timeout=0)
        if not dead:
            return
        w = min(self._sentinels[s] for s in dead)
        if self._ctl.state(w) == _sync.ERROR:
            raise fail(self, self._worker_error(doing))
        p = self.processes[w]
        p.join(1.0)
        lo, hi = w * self.envs_per_worker, (w + 1) * self.envs_per_worker
        raise fail(self, EnvWorkerError(
            f'worker {w} ({envs_text(lo, hi)}) died ({_describe_exit(p.exitcode)}) while {doing}; '
            'its stderr may hold a faulthandler traceback', worker=w, envs=range(lo, hi),
            exitcode=p.exitcode))

    def _worker_error(self, doing):
        w = next(w for w in range(self.num_workers) if self._ctl.state(w) == _sync.ERROR)
        lo, hi = w * self.envs_per_worker, (w + 1) * self.envs_per_worker
        conn, p = self._conns[w], self.processes[w]
        deadline = time.monotonic() + 5.0
        while not conn.poll(0.05):
            if time.monotonic() > deadline or (p.exitcode is not None and not conn.poll(0)):
                return EnvWorkerError(f'worker {w} ({envs_text(lo, hi)}) failed while {doing} and '
                                      f'exited ({_describe_exit(p.exitcode)}) without a report',
                                      worker=w, envs=range(lo, hi), exitcode=p.exitcode)
        return report_error(conn.recv(), w, range(lo, hi))

    def _collect_infos(self, workers, deadline, doing):
        infos = []
        for w in workers:
            if self._ctl.state(w) == _sync.INFO:
                data = self._read_message(w, deadline, f'sending its infos after {doing}')
                self._ctl.set_state(w, _sync.DONE)    # an INFO state always means unread infos
                try:
                    infos.extend(pickle.loads(data))
                except Exception as e:
                    lo, hi = w * self.envs_per_worker, (w + 1) * self.envs_per_worker
                    raise fail(self, EnvWorkerError(
                        f'worker {w} ({envs_text(lo, hi)}) sent infos that this process cannot '
                        f'unpickle ({type(e).__name__}: {e}): infos must hold values whose modules '
                        'the main process can import (plain numbers, strings, lists, dicts, arrays '
                        'are safe)', worker=w, envs=range(lo, hi))) from e
        return infos

    def _read_message(self, w, deadline, doing):
        """One message from worker w's pipe (multiprocessing's framing: a 4-byte big-endian length,
        or -1 and an 8-byte one), read as it arrives, so that `deadline` bounds it even when the
        worker stops halfway; a worker found dead meanwhile is reported as such."""
        fd = self._conns[w].fileno()
        size, = struct.unpack('!i', self._read_exactly(w, fd, 4, deadline, doing))
        if size == -1:
            size, = struct.unpack('!Q', self._read_exactly(w, fd, 8, deadline, doing))
        return self._read_exactly(w, fd, size, deadline, doing)

    def _read_exactly(self, w, fd, n, deadline, doing):
        data = bytearray()
        while len(data) < n:
            wait = LIVENESS_PERIOD_S
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            if select.select([fd], [], [], wait)[0]:
                chunk = os.read(fd, n - len(data))
                if not chunk:    # the worker closed its pipe: it is exiting
                    connection.wait([self.processes[w].sentinel], 1.0)
                    self._check_alive(doing)
                    raise fail(self, EnvWorkerError(f'worker {w} closed its pipe while {doing}',
                                                    worker=w))
                data += chunk
                continue
            self._check_alive(doing)
            if deadline is not None and time.monotonic() >= deadline:
                # The pipe is now mid-message: the vector env cannot go on.
                raise fail(self, EnvTimeoutError(
                    f'recv() timed out while worker {w} was {doing} (it sent {len(data)} of {n} '
                    'bytes); this vector env is unusable now: close() it', workers=[w]))
        return bytes(data)

    def _drain(self):
        """Let every worker finish what it was asked, and drop the infos nobody will read."""
        self._wait(self.num_workers, 0, False, None, 'finishing before a reset')
        self._collect_infos(range(self.num_workers), None, 'finishing before a reset')


def _shutdown(processes, conns, ctl, grace):
    """Close workers: CLOSE command, `grace` seconds to exit (reading their pipes meanwhile, so that
    none stays blocked writing infos), then terminate, kill, join."""
    ctl.command(0, ctl.num_workers, _sync.CLOSE)
    deadline = time.monotonic() + grace
    alive = [p for p in processes if p.exitcode is None]
    readable = list(conns)
    while alive and time.monotonic() < deadline:
        ready = connection.wait([p.sentinel for p in alive] + readable,
                                timeout=max(0.0, deadline - time.monotonic()))
        for conn in set(ready) & set(readable):
            try:
                conn.recv_bytes()
            except (EOFError, OSError):
                readable.remove(conn)
        alive = [p for p in alive if p.exitcode is None]
    for p in alive:
        p.terminate()
    for p in alive:
        p.join(0.5)
        if p.exitcode is None:
            p.kill()
    for p in processes:
        p.join()
        p.close()
    for conn in conns:
        conn.close()


# ---- the worker process ----------------------------------------------------------------------

def _worker_main(w, first_env, creators, args, kwargs, seed, spaces, raw, pad, layout, num_workers,
                 conn, budget, die_with_parent, main_pid):
    """Build this worker's envs on their rows of the shared buffers, then serve commands until
    CLOSE, an error (reported, then the worker exits) or the death of the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C belongs to the main process
    faulthandler.enable()
    if die_with_parent:
        _sync.die_with_parent()
    main_alive = _watch(main_pid)
    if not main_alive():
        return    # the main process died before PR_SET_PDEATHSIG took effect
    threading.Thread(target=_exit_with_main, args=(main_pid, main_alive), name='puffer-watchdog',
                     daemon=True).start()
    views = _views(raw, pad, layout)
    ctl = _sync.Control(views.pop('ctl'), num_workers, *budget)
    ape = spaces[2]
    mine = slice(first_env * ape, (first_env + len(creators)) * ape)
    rows = EnvRows(first_env, {name: arr[mine] for name, arr in views.items()}, ape)
    where = ''
    while True:
        command = ctl.wait_command(w)
        if command == 0:
            if not main_alive():
                break
            continue
        if command == _sync.CLOSE:
            break
        try:
            infos = []
            if command == _sync.INIT:
                where = 'in its constructor'
                rows.build(creators, args, kwargs, seed, spaces)
            elif command == _sync.RESET:
                where = 'in reset()'
                infos = rows.reset(conn.recv())
            elif command == _sync.STEP:
                where = 'in step()'
                infos = rows.step()
            payload = pickle.dumps(infos, pickle.HIGHEST_PROTOCOL) if infos else None
        except BaseException as e:
            if ctl.finish(w, command, _sync.ERROR):
                try:
                    conn.send(rows.report(e, where))
                except OSError:
                    pass
            break
        if not ctl.finish(w, command, _sync.INFO if payload else _sync.DONE):
            break    # the main process asked to close meanwhile
        if payload:
            conn.send_bytes(payload)
    close_quietly(rows)


def _exit_with_main(main_pid, main_alive):
    """The worker's watchdog thread: end the worker as soon as the main process is gone, even while
    its main thread is inside a long (or hung) env step, whatever thread made the vector env and
    whatever the start method (PR_SET_PDEATHSIG covers only the first case and only with fork)."""
    try:
        pidfd = os.pidfd_open(main_pid)
        select.select([pidfd], [], [])    # readable once the main process has exited
    except (AttributeError, OSError):
        while main_alive():
            time.sleep(WATCHDOG_PERIOD_S)
    os._exit(1)


def _watch(main_pid):
    """A function telling whether the main process is alive. A pidfd becomes readable when the
    process exits; it is needed under forkserver, where the worker's parent is the fork server,
    which outlives main as long as any worker holds its liveness pipe."""
    parent = os.getppid()
    try:
        pidfd = os.pidfd_open(main_pid)
    except (AttributeError, OSError):
        if parent == main_pid:
            return lambda: os.getppid() == parent
        return lambda: _pid_exists(main_pid)
    return lambda: not select.select([pidfd], [], [], 0)[0]


def _pid_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
