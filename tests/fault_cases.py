"""Fault cases for tests/test_faults.py, one per process:

    python -m tests.fault_cases CASE [backend=Multiprocessing] [start=fork]

A case injects one fault of docs/fault-matrix.md into a vector env and prints a
line `RESULT {json}` saying what happened (error type, message, elapsed seconds, ...); the test
asserts on it, on the exit code and stderr, and on what the process left behind.
"""
import json
import os
import signal
import sys
import time

import numpy as np

import pufferlib.vector
from pufferlib import ocean
from tests.helpers import FaultyEnv

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def report(**result):
    print('RESULT ' + json.dumps(result), flush=True)


def make(opts, fault=None, num_envs=2, **kwargs):
    backend = opts.get('backend', 'Multiprocessing')
    extra = {} if backend == 'Serial' else dict(num_workers=2, start_method=opts.get('start'))
    env_kwargs = dict(fault=fault, **kwargs)
    return pufferlib.vector.make(FaultyEnv, env_kwargs=env_kwargs, backend=backend,
                                 num_envs=num_envs, **extra)


def attempt(fn):
    """(exception or None, elapsed seconds) of fn()."""
    start = time.monotonic()
    try:
        fn()
    except BaseException as e:
        return e, time.monotonic() - start
    return None, time.monotonic() - start


def describe(error, elapsed):
    return {'error': type(error).__name__ if error else None, 'message': str(error) if error else '',
            'elapsed': elapsed, 'worker': getattr(error, 'worker', None),
            'exitcode': getattr(error, 'exitcode', None)}


def after_failure(vec):
    """close() must work after a fault, be idempotent, and leave ClosedError behind."""
    close_error, close_elapsed = attempt(vec.close)
    vec.close()
    step_error, _ = attempt(lambda: vec.step(np.zeros(vec.agents_per_batch, np.int32)))
    return {'close_error': repr(close_error) if close_error else None, 'close_elapsed': close_elapsed,
            'step_after_close': type(step_error).__name__ if step_error else None}


@case
def raise_step(opts):
    """Row 1: an env raises ValueError('boom') at its 5th step."""
    vec = make(opts, 'raise', at_step=5, env_idx=1)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    for _ in range(4):
        vec.step(actions)
    error, elapsed = attempt(lambda: vec.step(actions))
    again, _ = attempt(lambda: vec.step(actions))
    report(**describe(error, elapsed), again=type(again).__name__ if again else None,
           **after_failure(vec))


@case
def raise_reset(opts):
    """Row 2: an env raises in reset."""
    vec = make(opts, 'raise_reset', env_idx=1)
    error, elapsed = attempt(vec.reset)
    report(**describe(error, elapsed), **after_failure(vec))


@case
def raise_init(opts):
    """Row 2: an env raises in its constructor: make() raises and leaves no worker."""
    error, elapsed = attempt(lambda: make(opts, 'raise_init', env_idx=1))
    import multiprocessing
    report(**describe(error, elapsed), children=len(multiprocessing.active_children()))


@case
def sigkill(opts):
    """Row 3: a worker is SIGKILLed after 10 steps."""
    vec = make(opts)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    for _ in range(10):
        vec.step(actions)
    os.kill(vec.processes[1].pid, signal.SIGKILL)
    error, elapsed = attempt(lambda: [vec.step(actions) for _ in range(100000)])
    report(**describe(error, elapsed), **after_failure(vec))


@case
def sigkill_idle(opts):
    """Row 3, variant: a worker is SIGKILLed while idle; the next reset() reports it."""
    vec = make(opts)
    vec.reset()
    victim = vec.processes[1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(2)
    error, elapsed = attempt(vec.reset)
    report(**describe(error, elapsed), **after_failure(vec))


@case
def segv_python(opts):
    """Row 4: a Python env sends itself SIGSEGV at its 5th step."""
    vec = make(opts, 'segv', at_step=5, env_idx=1)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    error, elapsed = attempt(lambda: [vec.step(actions) for _ in range(10)])
    report(**describe(error, elapsed), **after_failure(vec))


@case
def segv_c(opts):
    """Row 4: the squared C env writes through NULL at step 5 (in both workers)."""
    vec = pufferlib.vector.make(ocean.env_creator('squared'), env_kwargs={'num_envs': 4, 'crash_at_step': 5},
                                backend='Multiprocessing', num_envs=2, num_workers=2,
                                start_method=opts.get('start'))
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    error, elapsed = attempt(lambda: [vec.step(actions) for _ in range(10)])
    report(**describe(error, elapsed), **after_failure(vec))


@case
def hang(opts):
    """Row 5: an env sleeps for an hour at its 3rd step; recv(timeout=1) must give up."""
    vec = make(opts, 'hang', at_step=3, env_idx=1)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    for _ in range(2):
        vec.step(actions)
    vec.send(actions)
    error, elapsed = attempt(lambda: vec.recv(timeout=1.0))
    workers = list(getattr(error, 'workers', ()))
    report(**describe(error, elapsed), workers=workers, **after_failure(vec))


@case
def parent_loop(opts):
    """Row 6: step forever; the test SIGKILLs this process (only)."""
    vec = make(opts)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    print('READY', json.dumps([p.pid for p in vec.processes]), flush=True)
    while True:
        vec.step(actions)


@case
def uncaught(opts):
    """Row 7: the main script raises after 5 steps and never closes the vector env."""
    vec = make(opts)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    for _ in range(5):
        vec.step(actions)
    print('RAISING', time.time(), flush=True)
    raise RuntimeError('the trainer crashed')


@case
def ctrl_c(opts):
    """Row 8: block in recv() on a slow env; the test sends SIGINT to the process group."""
    import threading
    vec = make(opts, 'slow', delay=30.0, env_idx=1)
    vec.reset()
    vec.send(np.zeros(vec.agents_per_batch, np.int32))
    threading.Thread(target=lambda: (wait_for(main_thread_in('_wait')), print('READY', flush=True)),
                     daemon=True).start()
    vec.recv()


@case
def close_cases(opts):
    """Row 9: close twice; close while a recv is pending; use after close."""
    import psutil
    me = psutil.Process()
    vec = make(opts)
    vec.reset()
    vec.close()
    second, _ = attempt(vec.close)
    pending = make(opts, 'slow', delay=0.2, env_idx=0)
    pending.reset()
    pending.send(np.zeros(pending.agents_per_batch, np.int32))
    pending_error, pending_elapsed = attempt(pending.close)
    errors = {}
    for name, call in (('step', lambda: vec.step(np.zeros(2, np.int32))), ('recv', vec.recv),
                       ('send', lambda: vec.send(np.zeros(2, np.int32))), ('reset', vec.reset),
                       ('async_reset', vec.async_reset)):
        error, _ = attempt(call)
        errors[name] = type(error).__name__ if error else None
    children = [c.status() for c in me.children(recursive=True)]
    report(second_close=repr(second) if second else None, pending_close=repr(pending_error) if pending_error else None,
           pending_elapsed=pending_elapsed, after_close=errors, children=children)


@case
def big_infos(opts):
    """Row 24: every step returns a 1 MB info dict from each env."""
    vec = make(opts, 'big_info', env_idx=0, num_envs=2)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    start, sizes = time.monotonic(), 0
    for _ in range(200):
        infos = vec.step(actions)[4]
        sizes += sum(len(i['blob']) for i in infos)
    report(elapsed=time.monotonic() - start, bytes=sizes)
    vec.close()


def wait_for(condition, seconds=60.0):
    """Poll `condition` until it holds (a generous deadline that only guards against a hang)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f'condition not met within {seconds} s')
        time.sleep(0.01)


def main_thread_in(function):
    """A condition: the main thread is inside a call of `function` (a function name)."""
    import threading
    main = threading.main_thread().ident

    def inside():
        frame = sys._current_frames().get(main)
        while frame is not None and frame.f_code.co_name != function:
            frame = frame.f_back
        return frame is not None
    return inside


@case
def info_stall(opts):
    """Issue 12.9: worker 1 is stopped (SIGSTOP) while it writes a 1 MB info into its pipe;
    recv(timeout=1) must still return within its timeout, naming the worker."""
    from pufferlib.vector import _sync
    vec = make(opts, 'big_info', env_idx=1)
    vec.reset()
    vec.send(np.zeros(vec.agents_per_batch, np.int32))
    wait_for(lambda: vec._ctl.state(1) == _sync.INFO)    # it is sending (more than a pipe holds)
    os.kill(vec.processes[1].pid, signal.SIGSTOP)
    error, elapsed = attempt(lambda: vec.recv(timeout=1.0))
    report(**describe(error, elapsed), workers=list(getattr(error, 'workers', ())),
           **after_failure(vec))


@case
def info_alien(opts):
    """Issue 12.9: an info the main process cannot unpickle names the worker."""
    vec = make(opts, 'alien_info', at_step=3, env_idx=1)
    vec.reset()
    actions = np.zeros(vec.agents_per_batch, np.int32)
    for _ in range(2):
        vec.step(actions)
    vec.send(actions)
    error, elapsed = attempt(lambda: vec.recv(timeout=5.0))
    report(**describe(error, elapsed), cause=type(error.__cause__).__name__ if error else None,
           **after_failure(vec))


@case
def parent_hung(opts):
    """Issue 12.10: worker 1 hangs in step; the vector env was made off the main thread
    (thread=1) or under forkserver. The test SIGKILLs this process (only)."""
    import threading
    made = []
    maker = threading.Thread(target=lambda: made.append(make(opts, 'hang', at_step=1, env_idx=1)))
    if opts.get('thread') == '1':
        maker.start()
        maker.join()
    else:
        maker.run()
    vec, = made
    vec.reset()
    vec.send(np.zeros(vec.agents_per_batch, np.int32))
    error, _ = attempt(lambda: vec.recv(timeout=0.5))    # proves worker 1 is inside its step
    assert type(error).__name__ == 'EnvTimeoutError', error
    print('READY', json.dumps([p.pid for p in vec.processes]), flush=True)
    time.sleep(3600)


@case
def close_from_thread(opts):
    """Issue 12.13: close() from another thread while recv() waits on a slow env."""
    import threading
    vec = make(opts, 'slow', delay=30.0, env_idx=1)
    vec.reset()
    vec.send(np.zeros(vec.agents_per_batch, np.int32))

    def close_once_recv_waits():
        wait_for(main_thread_in('_wait'))
        vec.close()
    closer = threading.Thread(target=close_once_recv_waits)
    closer.start()
    error, elapsed = attempt(vec.recv)
    closer.join()
    report(**describe(error, elapsed))


@case
def die_in_reset(opts):
    """Issue 12.13: a worker that dies in reset is reported as dying while resetting."""
    vec = make(opts, 'kill_reset', env_idx=1)
    error, elapsed = attempt(vec.reset)
    report(**describe(error, elapsed), **after_failure(vec))


def _local_creator():
    return lambda buf=None, seed=0: FaultyEnv(buf=buf, seed=seed)


@case
def unpicklable(opts):
    """Row 25: a lambda creator cannot reach spawn/forkserver workers: a clear error."""
    error, elapsed = attempt(lambda: pufferlib.vector.make(
        _local_creator(), backend='Multiprocessing', num_envs=2, num_workers=2,
        start_method=opts.get('start')))
    import multiprocessing
    report(**describe(error, elapsed), children=len(multiprocessing.active_children()))


def main(argv):
    name, opts = argv[0], dict(arg.split('=', 1) for arg in argv[1:])
    CASES[name](opts)


if __name__ == '__main__':
    main(sys.argv[1:])
