// Waiting between the main process and its workers through words in shared memory.
//
// Each worker owns one int32 state word. The main process writes a command into it (STEP, RESET,
// CLOSE, ...); the worker replaces the command with a result (DONE, INFO, ERROR) when it is done,
// then bumps a shared sequence word that the main process sleeps on. A waiter spins for a short
// time budget (the answer usually comes within microseconds), then yields, then sleeps in a Linux
// futex with a bounded timeout so that it can return to Python and check that the other side is
// still alive. A waker only makes the wake system call when the other side said it is asleep; the
// seq_cst store/load pairs on (state, asleep) make the "sleep, then re-check" handshake race-free.
#ifndef PUFFER_SYNC_H
#define PUFFER_SYNC_H
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// State words. Commands (written by the main process) are below RESULT_MIN, results at or above.
#define CMD_INIT 1      // build the envs
#define CMD_RESET 2
#define CMD_STEP 3
#define CMD_CLOSE 4
#define RESULT_MIN 8
#define RES_DONE 8      // results written in the shared buffers, no infos
#define RES_INFO 9      // ... and a pickled info list waits in the pipe
#define RES_ERROR 10    // an exception report waits in the pipe; the worker exits

// The control block: int32 words in shared memory. ctl[0] is the sequence word, ctl[1] says the main
// process sleeps on it; worker w owns the 64-byte line at SYNC_STRIDE * (w + 1): its state word,
// its asleep flag and the sequence number of its last finish (for first-come batching).
#define SYNC_STRIDE 16
#define SYNC_SEQ(ctl) (ctl)
#define SYNC_MAIN_ASLEEP(ctl) ((ctl) + 1)
#define SYNC_STATE(ctl, w) ((ctl) + SYNC_STRIDE * ((w) + 1))
#define SYNC_ASLEEP(ctl, w) ((ctl) + SYNC_STRIDE * ((w) + 1) + 1)
#define SYNC_ORDER(ctl, w) ((ctl) + SYNC_STRIDE * ((w) + 1) + 2)

// How a waiter spends its time before it returns empty-handed.
typedef struct {
    int64_t spin_ns;     // busy-wait with a pause instruction
    int64_t yield_ns;    // then busy-wait with sched_yield (gives the core to any runnable process)
    int64_t block_ns;    // then sleep in the futex, at most this long in all
} SyncBudget;

static inline int64_t sync_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void sync_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline int32_t sync_load(int32_t* word) {
    return __atomic_load_n(word, __ATOMIC_SEQ_CST);
}

static inline void sync_store(int32_t* word, int32_t value) {
    __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
}

// Sleep while *word == expected, at most timeout_ns. A shared (not PRIVATE) futex: the word lives in
// memory mapped by several processes.
static inline void sync_futex_wait(int32_t* word, int32_t expected, int64_t timeout_ns) {
    struct timespec t = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
    syscall(SYS_futex, word, FUTEX_WAIT, expected, &t, NULL, 0);
}

static inline void sync_futex_wake(int32_t* word) {
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

// Spin, then yield, within the budget; 1 while the caller should keep polling, 0 when it should
// sleep. `i` counts the polls (the clock is read every 16th).
static inline int sync_keep_spinning(int i, int64_t begin, int64_t* now, SyncBudget b) {
    if ((i & 15) == 0) *now = sync_now_ns();
    if (*now - begin < b.spin_ns) sync_relax();
    else if (*now - begin < b.spin_ns + b.yield_ns) sched_yield();
    else return 0;
    return 1;
}

// ---- worker side ----------------------------------------------------------------------------

// Wait for a command in worker w's state word. Returns it, or 0 when nothing arrived within the
// budget (the caller checks that its parent is alive and calls again).
static int32_t sync_wait_command(int32_t* ctl, int w, SyncBudget b) {
    int32_t *state = SYNC_STATE(ctl, w), *asleep = SYNC_ASLEEP(ctl, w), v;
    int64_t begin = sync_now_ns(), now = begin;
    for (int i = 0;; i++) {
        v = sync_load(state);
        if (v < RESULT_MIN) return v;
        if (!sync_keep_spinning(i, begin, &now, b)) break;
    }
    int64_t deadline = now + b.block_ns;
    sync_store(asleep, 1);
    while ((v = sync_load(state)) >= RESULT_MIN && (now = sync_now_ns()) < deadline)
        sync_futex_wait(state, v, deadline - now);
    sync_store(asleep, 0);
    return v < RESULT_MIN ? v : 0;
}

// Replace `command` with `result` in worker w's state word and wake the main process. Returns 0 if
// the main process replaced the command with CMD_CLOSE meanwhile (the result is then dropped).
// The sequence word changes after the state word, so a sleeper that read it before polling the
// states cannot miss this finish.
static int sync_finish(int32_t* ctl, int w, int32_t command, int32_t result) {
    int32_t expected = command;
    sync_store(SYNC_ORDER(ctl, w), __atomic_fetch_add(SYNC_SEQ(ctl), 1, __ATOMIC_SEQ_CST));
    int ok = __atomic_compare_exchange_n(SYNC_STATE(ctl, w), &expected, result, 0,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(SYNC_SEQ(ctl), 1, __ATOMIC_SEQ_CST);
    if (sync_load(SYNC_MAIN_ASLEEP(ctl))) sync_futex_wake(SYNC_SEQ(ctl));
    return ok;
}

// Kill this process when the thread that started it exits (Linux); polling getppid() covers the
// window before this call.
static inline int sync_die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGKILL);
}

// ---- main-process side ----------------------------------------------------------------------

// Write `command` into the state words of workers [lo, hi) and wake those that sleep.
static void sync_command(int32_t* ctl, int lo, int hi, int32_t command) {
    for (int w = lo; w < hi; w++) sync_store(SYNC_STATE(ctl, w), command);
    for (int w = lo; w < hi; w++)
        if (sync_load(SYNC_ASLEEP(ctl, w))) sync_futex_wake(SYNC_STATE(ctl, w));
}

// Readiness of `num_workers` workers grouped in aligned blocks of `block`: the first block (from
// block `start`, wrapping) whose workers all hold a result; -2 if any worker reported an error;
// -1 if no block is ready. With count_mode: the number of ready workers if it is at least `block`.
static int sync_poll(int32_t* ctl, int num_workers, int block, int start, int count_mode) {
    int ready = 0;
    for (int w = 0; w < num_workers; w++) {
        int32_t v = sync_load(SYNC_STATE(ctl, w));
        if (v == RES_ERROR) return -2;
        ready += v >= RESULT_MIN;
    }
    if (count_mode) return ready >= block ? ready : -1;
    if (ready < block) return -1;
    int num_blocks = num_workers / block;
    for (int i = 0; i < num_blocks; i++) {
        int k = (start + i) % num_blocks, all = 1;
        for (int w = k * block; w < (k + 1) * block && all; w++)
            all = sync_load(SYNC_STATE(ctl, w)) >= RESULT_MIN;
        if (all) return k;
    }
    return -1;
}

// Wait until sync_poll gives >= 0 or -2, or until the budget is spent (then -1).
static int sync_wait_ready(int32_t* ctl, int num_workers, int block, int start, int count_mode,
                           SyncBudget b) {
    int32_t *seq = SYNC_SEQ(ctl), *main_asleep = SYNC_MAIN_ASLEEP(ctl);
    int64_t begin = sync_now_ns(), now = begin;
    int r;
    for (int i = 0;; i++) {
        r = sync_poll(ctl, num_workers, block, start, count_mode);
        if (r != -1) return r;
        if (!sync_keep_spinning(i, begin, &now, b)) break;
    }
    int64_t deadline = now + b.block_ns;
    sync_store(main_asleep, 1);
    for (;;) {
        int32_t s = sync_load(seq);   // read before polling: a finish after the poll changes it
        r = sync_poll(ctl, num_workers, block, start, count_mode);
        now = sync_now_ns();
        if (r != -1 || now >= deadline) break;
        sync_futex_wait(seq, s, deadline - now);
    }
    sync_store(main_asleep, 0);
    return r;
}
#endif
