# The wait/wake primitive of the Multiprocessing backend (see sync.h), over a control block of int32
# words in shared memory. Every wait releases the GIL and returns within its budget's block time, so
# that the caller can check liveness (and Ctrl-C) in Python.
from libc.stdint cimport int32_t, int64_t
import numpy as np

cdef extern from "sync.h":
    int CMD_INIT, CMD_RESET, CMD_STEP, CMD_CLOSE, RESULT_MIN, RES_DONE, RES_INFO, RES_ERROR
    int SYNC_STRIDE
    ctypedef struct SyncBudget:
        int64_t spin_ns
        int64_t yield_ns
        int64_t block_ns
    int32_t sync_wait_command(int32_t* ctl, int w, SyncBudget b) nogil
    int sync_finish(int32_t* ctl, int w, int32_t command, int32_t result) nogil
    int sync_die_with_parent() nogil
    void sync_command(int32_t* ctl, int lo, int hi, int32_t command) nogil
    int sync_poll(int32_t* ctl, int num_workers, int block, int start, int count_mode) nogil
    int sync_wait_ready(int32_t* ctl, int num_workers, int block, int start, int count_mode,
                        SyncBudget b) nogil
    int64_t sync_now_ns() nogil
    int32_t sync_load(int32_t* word) nogil
    void sync_store(int32_t* word, int32_t value) nogil
    int32_t* SYNC_STATE(int32_t* ctl, int w) nogil
    int32_t* SYNC_ORDER(int32_t* ctl, int w) nogil

INIT, RESET, STEP, CLOSE = CMD_INIT, CMD_RESET, CMD_STEP, CMD_CLOSE
DONE, INFO, ERROR = RES_DONE, RES_INFO, RES_ERROR
STRIDE = SYNC_STRIDE


def control_words(int num_workers):
    """Number of int32 words the control block of `num_workers` workers needs."""
    return SYNC_STRIDE * (num_workers + 1)


def die_with_parent():
    """Ask Linux to SIGKILL this process when the thread that started it exits."""
    return sync_die_with_parent()


cdef class Control:
    """Wait and wake on a control block. `ctl` is an int32 numpy view of shared memory (at least
    control_words(num_workers) words); the budget is in microseconds.

    The yield phase adapts: after a wait that the full yield budget would have covered, the next
    wait yields for the full budget; after a longer wait, for half as long as the last one (down to
    none). So a fast partner gets microsecond answers, and a waiter whose partner takes
    milliseconds (a heavy env step, a slow policy) sleeps at once instead of burning CPU."""
    cdef int32_t* ctl
    cdef readonly int num_workers
    cdef SyncBudget budget
    cdef int64_t max_yield_ns
    cdef object keep

    def __init__(self, ctl, int num_workers, double spin_us, double yield_us, double block_us):
        if ctl.dtype != np.int32 or not ctl.flags.c_contiguous or ctl.size < control_words(num_workers):
            raise ValueError('ctl must be a C-contiguous int32 array of control_words(num_workers)')
        self.keep = ctl
        self.ctl = <int32_t*><size_t>ctl.ctypes.data
        self.num_workers = num_workers
        self.set_budget(spin_us, yield_us, block_us)

    def set_budget(self, double spin_us, double yield_us, double block_us):
        self.budget.spin_ns = <int64_t>(spin_us * 1000)
        self.budget.yield_ns = self.max_yield_ns = <int64_t>(yield_us * 1000)
        self.budget.block_ns = <int64_t>(block_us * 1000)

    @property
    def yield_us(self):
        """The yield budget of the next wait (adapted)."""
        return self.budget.yield_ns / 1000.0

    cdef inline void adapt(self, int64_t waited_ns) noexcept nogil:
        if waited_ns <= self.max_yield_ns:
            self.budget.yield_ns = self.max_yield_ns
        elif self.budget.yield_ns > 1000:
            self.budget.yield_ns //= 2
        else:
            self.budget.yield_ns = 0

    # worker side
    def wait_command(self, int w):
        """The command for worker w, or 0 if none came within the budget."""
        cdef int32_t v
        cdef int64_t start
        with nogil:
            start = sync_now_ns()
            v = sync_wait_command(self.ctl, w, self.budget)
            self.adapt(sync_now_ns() - start)
        return v

    def finish(self, int w, int command, int result):
        """Publish `result` for `command`; False if the main process asked to close meanwhile."""
        cdef int ok
        with nogil:
            ok = sync_finish(self.ctl, w, command, result)
        return bool(ok)

    # main-process side
    def command(self, int lo, int hi, int command):
        """Give `command` to workers lo..hi-1."""
        with nogil:
            sync_command(self.ctl, lo, hi, command)

    def wait_ready(self, int block, int start=0, bint count_mode=False):
        """Block index (count mode: number of ready workers) >= 0 when ready, -2 if a worker
        reported an error, -1 if the budget ran out first."""
        cdef int r
        cdef int64_t begin
        with nogil:
            begin = sync_now_ns()
            r = sync_wait_ready(self.ctl, self.num_workers, block, start, count_mode, self.budget)
            self.adapt(sync_now_ns() - begin)
        return r

    def poll(self, int block, int start=0, bint count_mode=False):
        return sync_poll(self.ctl, self.num_workers, block, start, count_mode)

    def count(self, int lo, int hi, int value):
        """How many of workers lo..hi-1 hold `value`."""
        cdef int w, n = 0
        for w in range(lo, hi):
            n += sync_load(SYNC_STATE(self.ctl, w)) == value
        return n

    def set_state(self, int w, int value):
        """Overwrite worker w's result (the main process owns the word while it holds a result)."""
        sync_store(SYNC_STATE(self.ctl, w), value)

    def first_ready(self, long long[:] out):
        """For each worker: its finish order if it holds a result, else a huge number (so that an
        argsort lists the ready workers first, first-finished first)."""
        cdef int w
        for w in range(self.num_workers):
            if sync_load(SYNC_STATE(self.ctl, w)) >= RESULT_MIN:
                out[w] = sync_load(SYNC_ORDER(self.ctl, w))
            else:
                out[w] = 1 << 62

    def state(self, int w):
        return sync_load(SYNC_STATE(self.ctl, w))

    def order(self, int w):
        return sync_load(SYNC_ORDER(self.ctl, w))
