// Shared by the standalone <game>.c demos: the buffers of n sub-envs, wired to each game struct's
// EnvHead the way env_binding.pxi wires them; a monotonic clock for speed tests; and the random
// actions of a fuzz run.
#ifndef PUFFER_ENV_DEMO_H
#define PUFFER_ENV_DEMO_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env_binding.h"

typedef struct {
    int n;                      // sub-envs
    int obs_size;               // floats per observation row
    uint64_t seed;
    float* observations;
    int* actions;               // continuous games read them as float
    float* rewards;
    unsigned char* terminals;
    unsigned char* truncations;
} Buffers;

static Buffers buffers_make(int n, int obs_size, uint64_t seed) {
    Buffers b = {n, obs_size, seed, calloc((size_t)n * obs_size, sizeof(float)),
                 calloc(n, sizeof(int)), calloc(n, sizeof(float)), calloc(n, 1), calloc(n, 1)};
    return b;
}

static void buffers_free(Buffers* b) {
    free(b->observations);
    free(b->actions);
    free(b->rewards);
    free(b->terminals);
    free(b->truncations);
}

// Points sub-env i at its rows of b and seeds its generator with splitmix64(seed + i).
static void wire(EnvHead* h, Buffers* b, int i) {
    h->observations = b->observations + (size_t)i * b->obs_size;
    h->actions = b->actions + i;
    h->rewards = b->rewards + i;
    h->terminals = b->terminals + i;
    h->truncations = b->truncations + i;
    h->rng = splitmix64(b->seed + i);
}

// Seconds on a monotonic clock.
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// Agent-steps per second of `step_all(envs, n)`, which steps the n sub-envs of b once, timed for
// `seconds` on uniform random actions in [0, num_actions) drawn before timing.
static double agent_steps_per_second(Buffers* b, void* envs, void (*step_all)(void* envs, int n),
                                     int num_actions, double seconds) {
    int n = b->n, size = n > (1 << 16) ? n : (1 << 16), offset = 0;
    int* table = malloc((size_t)size * sizeof(int));
    uint64_t rng = 7;
    for (int j = 0; j < size; j++) table[j] = rng_int(&rng, num_actions);
    long steps = 0;
    double start = now(), elapsed;
    while ((elapsed = now() - start) < seconds) {
        for (int repeat = 0; repeat < 1 + 100000 / n; repeat++) {
            if (offset + n > size) offset = 0;
            memcpy(b->actions, table + offset, n * sizeof(int));
            offset += n;
            step_all(envs, n);
            steps += n;
        }
    }
    free(table);
    return steps / elapsed;
}

// A fuzz action: one time in `wild` any int32 at all (negative, INT_MIN, huge), else uniform in
// [0, n). As float bits (continuous games) the wild ones include NaN and the infinities.
static int fuzz_action(uint64_t* rng, int n, int wild) {
    if (rng_int(rng, wild) == 0) return (int)(int32_t)rng_next(rng);
    return rng_int(rng, n);
}

// Every observation value in [-1, 1] (NaN fails too); prints the first that is not.
static int observations_in_unit_range(Buffers* b) {
    for (size_t j = 0; j < (size_t)b->n * b->obs_size; j++) {
        if (!(b->observations[j] >= -1.0f && b->observations[j] <= 1.0f)) {
            printf("observation %zu out of [-1, 1]: %f\n", j, b->observations[j]);
            return 0;
        }
    }
    return 1;
}
#endif
