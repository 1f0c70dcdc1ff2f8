// V-trace-clipped GAE over segment rows: the CPU kernel, its thread pool, and the one-row function
// that the CUDA kernel (advantage.cu) shares.
//
// values, rewards, terminals, truncations are (segments, horizon + 1) row-major: column `horizon` of
// a row is the first step of the agent's next segment. importance and advantages are
// (segments, horizon). For t = horizon-1 down to 0, with A[horizon] = 0:
//   d = terminals[t+1], tr = truncations[t+1]
//   next_v = 0 if d else (values[t] if tr else values[t+1])
//   delta = min(imp[t], rho_clip) * (rewards[t+1] + gamma * next_v - values[t])
//   A[t] = delta + gamma * lam * min(imp[t], c_clip) * (1 - d) * (1 - tr) * A[t+1]
#ifndef PUFFER_ADVANTAGE_H
#define PUFFER_ADVANTAGE_H

#include <stdint.h>

#ifdef __CUDACC__
#define ADVANTAGE_FN __host__ __device__ static inline
#else
#define ADVANTAGE_FN static inline
#endif

// One row, one fused backward pass. The step-to-step dependency bounds it on a CPU (it only runs
// there for the rows left over after the blocks); on a GPU each thread runs one row.
ADVANTAGE_FN void advantage_row(const float* values, const float* rewards, const float* terminals,
        const float* truncations, const float* importance, float* advantages, int64_t horizon,
        float gamma, float lam, float rho_clip, float c_clip) {
    float a = 0.0f;
    float v_next = values[horizon];
    for (int64_t t = horizon - 1; t >= 0; t--) {
        float v = values[t], d = terminals[t + 1], tr = truncations[t + 1], imp = importance[t];
        float next_v = d != 0.0f ? 0.0f : (tr != 0.0f ? v : v_next);
        float rho = imp < rho_clip ? imp : rho_clip;
        float c = imp < c_clip ? imp : c_clip;
        float delta = rho * (rewards[t + 1] + gamma * next_v - v);
        a = delta + gamma * lam * c * (1.0f - d) * (1.0f - tr) * a;
        advantages[t] = a;
        v_next = v;
    }
}

#ifndef __CUDACC__
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define ADVANTAGE_BLOCK_ROWS 8   // rows whose recurrences run interleaved
#define ADVANTAGE_CHUNK 64       // steps per row handled between the two passes (fits L1)
#define ADVANTAGE_MAX_THREADS 64

typedef struct {
    const float *values, *rewards, *terminals, *truncations, *importance;
    float* advantages;
    int64_t segments, horizon;
    float gamma, lam, rho_clip, c_clip;
} AdvantageArgs;

// Pass 1 over steps [t0, t0+n) of one row: everything that does not depend on A[t+1], with
// contiguous access and no branches so that the compiler vectorises it along t. delta goes
// straight into advantages; the coefficient of A[t+1] into coef[0..n).
static inline void advantage_terms(const float* restrict values, const float* restrict rewards,
        const float* restrict terminals, const float* restrict truncations,
        const float* restrict importance, float* restrict advantages, float* restrict coef,
        int64_t t0, int n, float gamma, float gamma_lam, float rho_clip, float c_clip) {
    for (int j = 0; j < n; j++) {
        int64_t t = t0 + j;
        float v = values[t], v1 = values[t + 1];   // both loaded: a conditional load blocks SIMD
        float d = terminals[t + 1], tr = truncations[t + 1], imp = importance[t];
        float next_v = tr != 0.0f ? v : v1;
        next_v = d != 0.0f ? 0.0f : next_v;
        float rho = imp < rho_clip ? imp : rho_clip;
        float c = imp < c_clip ? imp : c_clip;
        advantages[t] = rho * (rewards[t + 1] + gamma * next_v - v);
        coef[j] = gamma_lam * c * (1.0f - d) * (1.0f - tr);
    }
}

// ADVANTAGE_BLOCK_ROWS rows starting at `row`. Pass 2, A[t] = delta[t] + coef[t] * A[t+1], is one
// multiply-add per step but each depends on the previous one; running the block's rows side by
// side gives the CPU independent chains to overlap, which is what breaks the latency bound.
static void advantage_block(const AdvantageArgs* p, int64_t row) {
    enum { R = ADVANTAGE_BLOCK_ROWS, CH = ADVANTAGE_CHUNK };
    const int64_t H = p->horizon, W = H + 1;
    float coef[R][CH];
    float acc[R];
    float* adv[R];
    for (int q = 0; q < R; q++) {
        acc[q] = 0.0f;
        adv[q] = p->advantages + (row + q) * H;
    }
    for (int64_t end = H; end > 0; end -= CH) {
        int64_t t0 = end > CH ? end - CH : 0;
        int n = (int)(end - t0);
        for (int q = 0; q < R; q++) {
            int64_t r = row + q;
            advantage_terms(p->values + r * W, p->rewards + r * W, p->terminals + r * W,
                    p->truncations + r * W, p->importance + r * H, adv[q], coef[q], t0, n,
                    p->gamma, p->gamma * p->lam, p->rho_clip, p->c_clip);
        }
        for (int j = n - 1; j >= 0; j--) {
            for (int q = 0; q < R; q++) {
                acc[q] = adv[q][t0 + j] + coef[q][j] * acc[q];
                adv[q][t0 + j] = acc[q];
            }
        }
    }
}

// Rows [begin, end): whole blocks, then the leftover rows one at a time.
static void advantage_rows(const AdvantageArgs* p, int64_t begin, int64_t end) {
    const int64_t H = p->horizon, W = H + 1;
    int64_t row = begin;
    for (; row + ADVANTAGE_BLOCK_ROWS <= end; row += ADVANTAGE_BLOCK_ROWS) {
        advantage_block(p, row);
    }
    for (; row < end; row++) {
        advantage_row(p->values + row * W, p->rewards + row * W, p->terminals + row * W,
                p->truncations + row * W, p->importance + row * H, p->advantages + row * H, H,
                p->gamma, p->lam, p->rho_clip, p->c_clip);
    }
}

// A small persistent pool. The caller posts a job of `chunks` row ranges and works on them too;
// sleeping workers wake and claim ranges until none is left, so a worker that wakes late costs
// nothing but its share of the speed-up. One threaded call at a time: a concurrent caller (another
// Python thread) runs single-threaded instead of waiting. After a fork the child has none of the
// parent's threads, so the pool notices the new pid and starts over.
static struct {
    pthread_mutex_t call;      // held for a whole threaded call
    pthread_mutex_t lock;      // guards everything below
    pthread_cond_t work, done;
    pid_t pid;
    int workers;
    const AdvantageArgs* job;
    int64_t chunks, next, finished;
} advantage_pool = {.call = PTHREAD_MUTEX_INITIALIZER};   // the rest is set up on first use

static void advantage_chunk(const AdvantageArgs* p, int64_t i, int64_t chunks) {
    int64_t blocks = (p->segments + ADVANTAGE_BLOCK_ROWS - 1) / ADVANTAGE_BLOCK_ROWS;
    int64_t begin = blocks * i / chunks * ADVANTAGE_BLOCK_ROWS;
    int64_t end = blocks * (i + 1) / chunks * ADVANTAGE_BLOCK_ROWS;
    advantage_rows(p, begin, end < p->segments ? end : p->segments);
}

// Claims and runs chunks of the posted job; called and returns with `lock` held.
static void advantage_drain(void) {
    while (advantage_pool.next < advantage_pool.chunks) {
        const AdvantageArgs* job = advantage_pool.job;
        int64_t i = advantage_pool.next++, chunks = advantage_pool.chunks;
        pthread_mutex_unlock(&advantage_pool.lock);
        advantage_chunk(job, i, chunks);
        pthread_mutex_lock(&advantage_pool.lock);
        if (++advantage_pool.finished == advantage_pool.chunks) {
            pthread_cond_signal(&advantage_pool.done);
        }
    }
}

static void* advantage_worker(void* unused) {
    (void)unused;
    pthread_mutex_lock(&advantage_pool.lock);
    for (;;) {
        while (advantage_pool.next >= advantage_pool.chunks) {
            pthread_cond_wait(&advantage_pool.work, &advantage_pool.lock);
        }
        advantage_drain();
    }
    return NULL;
}

// Called with `call` held. Returns how many workers exist (fewer than asked if creation fails).
static int advantage_pool_grow(int workers) {
    if (advantage_pool.pid != getpid()) {   // first use, or a forked child: start from nothing
        pthread_mutex_init(&advantage_pool.lock, NULL);
        pthread_cond_init(&advantage_pool.work, NULL);
        pthread_cond_init(&advantage_pool.done, NULL);
        advantage_pool.pid = getpid();
        advantage_pool.workers = 0;
        advantage_pool.chunks = advantage_pool.next = advantage_pool.finished = 0;
    }
    while (advantage_pool.workers < workers) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 1 << 18);
        int failed = pthread_create(&thread, &attr, advantage_worker, NULL);
        pthread_attr_destroy(&attr);
        if (failed) break;
        advantage_pool.workers++;
    }
    return advantage_pool.workers;
}

// The entry point. num_threads <= 1 runs on the calling thread only.
static void advantage_compute(const AdvantageArgs* p, int num_threads) {
    if (p->segments <= 0 || p->horizon <= 0) return;
    int64_t blocks = (p->segments + ADVANTAGE_BLOCK_ROWS - 1) / ADVANTAGE_BLOCK_ROWS;
    if (num_threads > ADVANTAGE_MAX_THREADS) num_threads = ADVANTAGE_MAX_THREADS;
    if (num_threads > blocks) num_threads = (int)blocks;
    if (num_threads <= 1 || pthread_mutex_trylock(&advantage_pool.call) != 0) {
        advantage_rows(p, 0, p->segments);
        return;
    }
    // In a forked child `call` may have been copied locked by a parent thread mid-call; trylock
    // then fails and the child runs single-threaded, which is correct, only slower.
    int workers = advantage_pool_grow(num_threads - 1);
    pthread_mutex_lock(&advantage_pool.lock);
    advantage_pool.job = p;
    advantage_pool.chunks = 2 * (int64_t)(workers + 1) < blocks ? 2 * (int64_t)(workers + 1) : blocks;
    advantage_pool.next = advantage_pool.finished = 0;
    pthread_cond_broadcast(&advantage_pool.work);
    advantage_drain();
    while (advantage_pool.finished < advantage_pool.chunks) {
        pthread_cond_wait(&advantage_pool.done, &advantage_pool.lock);
    }
    advantage_pool.job = NULL;
    pthread_mutex_unlock(&advantage_pool.lock);
    pthread_mutex_unlock(&advantage_pool.call);
}
#endif  // __CUDACC__
#endif  // PUFFER_ADVANTAGE_H
