"""Fault matrix rows 1-9, 24, 25 (docs/fault-matrix.md) for the vector layer.

Each case runs in its own process (`python -m tests.fault_cases CASE`) tagged with a fresh
PUFFER_TEST_TAG in its environment, in its own session, under a timeout: a hang fails the test, and
afterwards no tagged process may be alive and /dev/shm must be as it was.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_METHODS = ['fork', 'spawn', 'forkserver']


def tagged_pids(tag):
    """Pids of live processes whose environment holds PUFFER_TEST_TAG=tag (orphans included)."""
    needle = f'PUFFER_TEST_TAG={tag}'.encode()
    pids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/environ', 'rb') as f:
                    if needle in f.read().split(b'\0'):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


class Case:
    """A running fault case: `proc`, its `tag`, and the /dev/shm baseline taken before it started."""

    def __init__(self, name, *opts):
        self.tag = uuid.uuid4().hex
        self.shm_names = set(os.listdir('/dev/shm'))
        self.shm_used = shutil.disk_usage('/dev/shm').used
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.fault_cases', name, *opts], cwd=ROOT,
            env={**os.environ, 'PUFFER_TEST_TAG': self.tag}, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, timeout):
        """Wait for the case (killing its whole session on timeout); returns (rc, stdout, stderr)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
            self.assert_clean()
            pytest.fail(f'case did not finish within {timeout} s\nstdout:\n{out}\nstderr:\n{err}')
        self.elapsed = time.monotonic() - self.start
        self.assert_clean()
        return self.proc.returncode, out, err

    def assert_clean(self):
        # Exiting workers (and spawn's resource tracker / fork server) may need a moment; the
        # bounds only guard against a hang (they hold on a loaded machine).
        assert wait_for(lambda: not tagged_pids(self.tag), 30.0), \
            f'processes outlived the case: {tagged_pids(self.tag)}'
        assert wait_for(lambda: not set(os.listdir('/dev/shm')) - self.shm_names, 20.0), \
            f'/dev/shm gained {set(os.listdir("/dev/shm")) - self.shm_names}'
        # On a machine shared with other jobs the usage can grow for reasons of theirs; then check
        # exactly that no process still maps or holds the case's (unlinked) shared-memory files.
        if not wait_for(lambda: shutil.disk_usage('/dev/shm').used <= self.shm_used, 2.0):
            holders = shm_holders(f'/dev/shm/pym-{self.proc.pid}-')
            assert not holders, f'/dev/shm usage did not return to its baseline; held by {holders}'


def shm_holders(prefix):
    """Pids of processes that map or hold open a file whose path starts with `prefix`."""
    pids = set()
    for entry in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{entry}/maps') as f:
                if prefix in f.read():
                    pids.add(int(entry))
            for fd in os.listdir(f'/proc/{entry}/fd'):
                if os.readlink(f'/proc/{entry}/fd/{fd}').startswith(prefix):
                    pids.add(int(entry))
        except OSError:
            pass
    return sorted(pids)


def run_case(name, *opts, timeout=15):
    """Run a case to the end; returns (its RESULT dict, rc, stderr, elapsed)."""
    case = Case(name, *opts)
    rc, out, err = case.finish(timeout)
    lines = [line for line in out.splitlines() if line.startswith('RESULT ')]
    assert lines, f'case {name} printed no RESULT (rc {rc})\nstdout:\n{out}\nstderr:\n{err}'
    return json.loads(lines[-1][len('RESULT '):]), rc, err, case.elapsed


def assert_closed_cleanly(result):
    assert result['close_error'] is None
    assert result['step_after_close'] == 'ClosedError'


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing'])
def test_env_raises_in_step(backend):
    """Row 1."""
    r, rc, _, elapsed = run_case('raise_step', f'backend={backend}')
    assert rc == 0
    assert r['error'] == 'EnvWorkerError'
    who = 'worker 1, env 1' if backend == 'Multiprocessing' else 'env 1'
    assert re.match(rf'{who} raised ValueError: boom \(in step\(\)\)', r['message']), r['message']
    assert "raise ValueError('boom')" in r['message'] and 'tests/helpers.py' in r['message']
    assert r['elapsed'] < 1.0
    assert r['again'] == 'EnvWorkerError'    # the vector env stays broken until closed
    assert_closed_cleanly(r)
    assert elapsed < 5


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing'])
def test_env_raises_in_reset(backend):
    """Row 2, reset."""
    r, rc, _, elapsed = run_case('raise_reset', f'backend={backend}')
    assert rc == 0 and r['error'] == 'EnvWorkerError'
    assert re.search(r'env 1 raised ValueError: boom in reset \(in reset\(\)\)', r['message'])
    assert_closed_cleanly(r)
    assert elapsed < 5


@pytest.mark.parametrize('backend', ['Serial', 'Multiprocessing'])
def test_env_raises_in_constructor(backend):
    """Row 2, constructor: make() raises and no worker is left."""
    r, rc, _, elapsed = run_case('raise_init', f'backend={backend}')
    assert rc == 0 and r['error'] == 'EnvWorkerError'
    assert re.search(r'env 1 raised ValueError: boom in init \(in its constructor\)', r['message'])
    assert r['children'] == 0
    assert elapsed < 5


@pytest.mark.parametrize('start', START_METHODS)
def test_worker_sigkilled(start):
    """Rows 3 and 25."""
    r, rc, _, elapsed = run_case('sigkill', f'start={start}')
    assert rc == 0 and r['error'] == 'EnvWorkerError'
    assert re.match(r'worker 1 \(env 1\) died \(exitcode -9, SIGKILL\)', r['message']), r['message']
    assert r['worker'] == 1 and r['exitcode'] == -9
    assert r['elapsed'] < 1.0
    assert_closed_cleanly(r)
    assert elapsed < 5


def test_idle_worker_sigkilled_then_reset():
    """Row 3, variant: the death of an idle worker surfaces from reset(), not as a broken pipe."""
    r, rc, _, elapsed = run_case('sigkill_idle')
    assert rc == 0 and r['error'] == 'EnvWorkerError'
    assert re.match(r'worker 1 \(env 1\) died \(exitcode -9, SIGKILL\)', r['message']), r['message']
    assert_closed_cleanly(r)
    assert elapsed < 5


def test_python_env_segfaults():
    """Row 4, a Python env killed by SIGSEGV: faulthandler's traceback reaches stderr."""
    r, rc, err, elapsed = run_case('segv_python')
    assert rc == 0 and r['error'] == 'EnvWorkerError'
    assert re.match(r'worker 1 \(env 1\) died \(exitcode -11, SIGSEGV\)', r['message']), r['message']
    assert r['elapsed'] < 1.0
    assert 'Segmentation fault' in err and 'tests/helpers.py' in err
    assert_closed_cleanly(r)
    assert elapsed < 5


def test_c_env_segfaults():
    """Row 4, the squared C env writing through NULL at step 5."""
    r, rc, err, elapsed = run_case('segv_c')
    assert rc == 0 and r['error'] == 'EnvWorkerError'
    assert re.match(r'worker [01] \(env [01]\) died \(exitcode -11, SIGSEGV\)', r['message']), r['message']
    assert r['elapsed'] < 1.0
    assert 'Segmentation fault' in err
    assert_closed_cleanly(r)
    assert elapsed < 5


def test_hung_worker_times_out():
    """Row 5: recv(timeout=1) names the pending worker; close() escalates to terminate."""
    r, rc, _, elapsed = run_case('hang')
    assert rc == 0 and r['error'] == 'EnvTimeoutError'
    assert r['workers'] == [1] and 'workers [1]' in r['message']
    assert 1.0 <= r['elapsed'] < 2.0
    assert r['close_elapsed'] < 3.0
    assert_closed_cleanly(r)
    assert elapsed < 8


@pytest.mark.parametrize('start', START_METHODS)
def test_parent_sigkilled(start):
    """Row 6: kill -9 the main process only; its workers must exit within 2 s."""
    case = Case('parent_loop', f'start={start}')
    line = case.proc.stdout.readline()
    assert line.startswith('READY'), line + case.proc.stderr.read()
    workers = json.loads(line.split(' ', 1)[1])
    time.sleep(0.2)
    os.kill(case.proc.pid, signal.SIGKILL)
    case.proc.wait()
    killed = time.monotonic()
    assert wait_for(lambda: not any(os.path.exists(f'/proc/{pid}') and _alive(pid) for pid in workers), 2.0)
    assert time.monotonic() - killed < 2.0
    case.finish(5)


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[1][0] != 'Z'
    except OSError:
        return False


@pytest.mark.parametrize('start', START_METHODS)
def test_uncaught_exception_exits(start):
    """Rows 7 and 25: the script raises without close(); it exits with rc 1 within 3 s."""
    case = Case('uncaught', f'start={start}')
    rc, out, err = case.finish(10)
    raised_at = float(next(line for line in out.splitlines() if line.startswith('RAISING')).split()[1])
    assert rc == 1
    assert 'RuntimeError: the trainer crashed' in err
    assert time.time() - raised_at < 3.0


def test_recv_timeout_covers_a_worker_stopped_while_sending_infos():
    """Issue 12.9: the timeout bounds the whole receive; the vector env is then unusable."""
    r, rc, _, _ = run_case('info_stall', timeout=60)
    assert rc == 0 and r['error'] == 'EnvTimeoutError', r
    assert r['workers'] == [1]
    assert re.match(r'recv\(\) timed out while worker 1 was sending its infos after stepping \(it sent '
                    r'\d+ of \d+ bytes\)', r['message']), r['message']
    assert r['elapsed'] < 30    # 1 s asked: only a guard against a hang
    assert_closed_cleanly(r)


def test_an_info_that_cannot_be_unpickled_names_the_worker():
    """Issue 12.9: was a bare ModuleNotFoundError."""
    r, rc, _, _ = run_case('info_alien', timeout=60)
    assert rc == 0 and r['error'] == 'EnvWorkerError', r
    assert r['worker'] == 1 and r['cause'] == 'ModuleNotFoundError'
    assert re.match(r"worker 1 \(env 1\) sent infos that this process cannot unpickle "
                    r"\(ModuleNotFoundError: No module named 'no_such_module_of_the_worker'\)",
                    r['message']), r['message']
    assert_closed_cleanly(r)


@pytest.mark.parametrize('opts', [('thread=1',), ('thread=1', 'start=spawn'), ('start=forkserver',)],
                         ids=['made-off-main-thread', 'off-main-thread-spawn', 'forkserver'])
def test_parent_sigkilled_while_a_worker_hangs_in_step(opts):
    """Issue 12.10: the worker's watchdog ends it although its main thread sleeps in the env."""
    case = Case('parent_hung', *opts)
    try:
        line = case.proc.stdout.readline()
        assert line.startswith('READY'), line + case.proc.stderr.read()
        workers = json.loads(line.split(' ', 1)[1])
        os.kill(case.proc.pid, signal.SIGKILL)
        case.proc.wait()
        # the bound only guards against a hang: the watchdog reacts at once
        assert wait_for(lambda: not any(_alive(pid) for pid in workers), 30.0), \
            f'workers outlived their SIGKILLed parent: {[p for p in workers if _alive(p)]}'
        case.finish(30)
    finally:
        for pid in tagged_pids(case.tag):
            os.kill(pid, signal.SIGKILL)


def test_close_from_another_thread_says_closed():
    """Issue 12.13: was "worker 0 died" (the workers exit because close() stopped them)."""
    r, rc, _, _ = run_case('close_from_thread', timeout=60)
    assert rc == 0 and r['error'] == 'ClosedError', r
    assert r['message'] == ('recv(): the vector env was closed (close() from another thread) while '
                            'recv waited')


def test_a_worker_dying_in_reset_is_reported_while_resetting():
    """Issue 12.13: was reported as dying "while stepping"."""
    r, rc, _, _ = run_case('die_in_reset', timeout=60)
    assert rc == 0 and r['error'] == 'EnvWorkerError', r
    assert re.match(r'worker 1 \(env 1\) died \(exitcode -9, SIGKILL\) while resetting;',
                    r['message']), r['message']
    assert_closed_cleanly(r)


def test_ctrl_c_during_recv():
    """Row 8: SIGINT to the whole process group while recv() waits on a slow env."""
    case = Case('ctrl_c')
    line = case.proc.stdout.readline()    # printed once the case's main thread waits in recv()
    assert line.startswith('READY'), line + case.proc.stderr.read()
    os.killpg(case.proc.pid, signal.SIGINT)
    rc, out, err = case.finish(60)    # a bound that only guards against a hang
    assert rc in (1, 130, -signal.SIGINT)
    assert err.count('KeyboardInterrupt') == 1, err


def test_close_twice_pending_and_after():
    """Row 9."""
    r, rc, _, elapsed = run_case('close_cases')
    assert rc == 0
    assert r['second_close'] is None and r['pending_close'] is None
    assert r['pending_elapsed'] < 3.0
    assert set(r['after_close'].values()) == {'ClosedError'}
    assert r['children'] == []    # nothing left, zombies included
    assert elapsed < 5


def test_large_infos_do_not_deadlock():
    """Row 24: 200 steps, each with a 1 MB info from env 0."""
    r, rc, _, _ = run_case('big_infos')
    assert rc == 0
    assert r['bytes'] == 200 * (1 << 20)    # env 0 sends 1 MB per step
    assert r['elapsed'] < 10


@pytest.mark.parametrize('start', ['spawn', 'forkserver'])
def test_unpicklable_creator(start):
    """Row 25: a lambda creator under spawn/forkserver is a clear APIUsageError."""
    r, rc, _, _ = run_case('unpicklable', f'start={start}')
    assert rc == 0 and r['error'] == 'APIUsageError'
    assert f"start_method='{start}'" in r['message'] and 'module level' in r['message']
    assert r['children'] == 0


@pytest.mark.parametrize('start', ['spawn', 'forkserver'])
def test_env_raises_under_start_method(start):
    """Row 25: row 1 again under spawn and forkserver."""
    r, rc, _, _ = run_case('raise_step', f'start={start}')
    assert rc == 0 and r['error'] == 'EnvWorkerError'
    assert r['message'].startswith('worker 1, env 1 raised ValueError: boom')
    assert_closed_cleanly(r)
