// gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -I pufferlib/ocean pufferlib/ocean/triple_triad/triple_triad.c -o /tmp/triple_triad && /tmp/triple_triad fuzz
// Without an argument (build with -O3 instead): steps 1024 sub-envs with random actions and prints
// agent-steps/s. With `fuzz`: reset + 10^4 steps of random int32 actions (out-of-range included) +
// close, for the sanitizers, checking after every step that the incrementally updated observation
// equals a full rewrite; prints the episodes finished.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "triple_triad/triple_triad.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef struct {
    int n;
    TripleTriad* envs;
    float* observations;
    int* actions;
    float* rewards;
    unsigned char* terminals;
    unsigned char* truncations;
} Run;

static Run make_run(int n, uint64_t seed) {
    Run r = {n, calloc(n, sizeof(TripleTriad)), calloc((size_t)n * TT_OBS_SIZE, sizeof(float)),
             calloc(n, sizeof(int)), calloc(n, sizeof(float)), calloc(n, 1), calloc(n, 1)};
    for (int i = 0; i < n; i++) {
        TripleTriad* env = &r.envs[i];
        env->h.observations = r.observations + (size_t)i * TT_OBS_SIZE;
        env->h.actions = r.actions + i;
        env->h.rewards = r.rewards + i;
        env->h.terminals = r.terminals + i;
        env->h.truncations = r.truncations + i;
        env->h.rng = splitmix64(seed + i);
        env->config.max_steps = 30;
        env->config.invalid_penalty = 0.1f;
        triple_triad_init(env);
        triple_triad_reset(env);
    }
    return r;
}

static void free_run(Run* r) {
    for (int i = 0; i < r->n; i++) triple_triad_close(&r->envs[i]);
    free(r->envs);
    free(r->observations);
    free(r->actions);
    free(r->rewards);
    free(r->terminals);
    free(r->truncations);
}

static int fuzz(void) {
    Run r = make_run(4, 1);
    uint64_t rng = 12345;
    for (int t = 0; t < 10000; t++) {
        for (int i = 0; i < r.n; i++) {
            uint32_t bits = (uint32_t)rng_next(&rng);
            // half the time an in-range action, else any int32 (INT_MIN, negatives, huge values)
            r.actions[i] = (bits & 1) ? rng_int(&rng, TT_NUM_ACTIONS) : (int)(int32_t)rng_next(&rng);
        }
        for (int i = 0; i < r.n; i++) triple_triad_step(&r.envs[i]);
        for (int i = 0; i < r.n; i++) {
            float* row = r.observations + (size_t)i * TT_OBS_SIZE;
            float written[TT_OBS_SIZE];
            memcpy(written, row, sizeof(written));
            triple_triad_observe(&r.envs[i]);
            if (memcmp(written, row, sizeof(written)) != 0) {
                printf("step %d, sub-env %d: the observation differs from a full rewrite\n", t, i);
                return 1;
            }
        }
        for (int j = 0; j < r.n * TT_OBS_SIZE; j++) {
            if (!(r.observations[j] >= -1.0f && r.observations[j] <= 1.0f)) {
                printf("observation %d out of [-1, 1]: %f\n", j, r.observations[j]);
                return 1;
            }
        }
    }
    float episodes = 0;
    for (int i = 0; i < r.n; i++) episodes += r.envs[i].h.log.n;
    printf("fuzz: 10000 steps x %d sub-envs, %.0f episodes, ok\n", r.n, episodes);
    free_run(&r);
    return 0;
}

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "fuzz") == 0) return fuzz();
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    if (n < 1 || n > 65536) n = 1024;
    Run r = make_run(n, 0);
    enum { TABLE = 1 << 16 };      // random actions, generated before timing
    int* table = malloc(TABLE * sizeof(int));
    uint64_t rng = 7;
    for (int j = 0; j < TABLE; j++) table[j] = rng_int(&rng, TT_NUM_ACTIONS);
    long steps = 0;
    int offset = 0;
    double start = now();
    while (now() - start < 3.0) {
        for (int repeat = 0; repeat < 100; repeat++) {
            if (offset + n > TABLE) offset = 0;
            memcpy(r.actions, table + offset, n * sizeof(int));
            offset += n;
            for (int i = 0; i < n; i++) triple_triad_step(&r.envs[i]);
            steps += n;
        }
    }
    double elapsed = now() - start;
    printf("triple_triad: %d sub-envs, %.2f M agent-steps/s\n", n, steps / elapsed / 1e6);
    free(table);
    free_run(&r);
    return 0;
}
