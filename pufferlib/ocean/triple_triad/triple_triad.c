// gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -I pufferlib/ocean pufferlib/ocean/triple_triad/triple_triad.c -lm -o /tmp/triple_triad && /tmp/triple_triad fuzz
// Without an argument (build with -O3 instead): steps 1024 sub-envs (or the count given) with random
// actions and prints agent-steps/s, without and with the features. With `fuzz`: reset + 10^4 steps
// of random int32 actions (out-of-range included) + close, without and with the features, for the
// sanitizers, checking after every step that the incrementally updated observation equals a full
// rewrite; prints the episodes finished.
#include "env_demo.h"
#include "triple_triad/triple_triad.h"

typedef struct {
    Buffers b;
    TripleTriad* envs;
} Run;

static Run make_run(int n, uint64_t seed, int features) {
    int obs_size = TT_OBS_SIZE + (features ? TT_FEATURES_SIZE : 0);
    Run r = {buffers_make(n, obs_size, seed), calloc(n, sizeof(TripleTriad))};
    for (int i = 0; i < n; i++) {
        TripleTriad* env = &r.envs[i];
        wire(&env->h, &r.b, i);
        env->config.max_steps = 30;
        env->config.invalid_penalty = 0.1f;
        env->config.features = features;
        triple_triad_init(env);
        triple_triad_reset(env);
    }
    return r;
}

static void free_run(Run* r) {
    for (int i = 0; i < r->b.n; i++) triple_triad_close(&r->envs[i]);
    free(r->envs);
    buffers_free(&r->b);
}

static int fuzz_run(int features) {
    Run r = make_run(4, 1, features);
    uint64_t rng = 12345;
    size_t row_bytes = r.b.obs_size * sizeof(float);
    float written[TT_OBS_SIZE + TT_FEATURES_SIZE];
    for (int t = 0; t < 10000; t++) {
        for (int i = 0; i < r.b.n; i++) r.b.actions[i] = fuzz_action(&rng, TT_NUM_ACTIONS, 2);
        for (int i = 0; i < r.b.n; i++) triple_triad_step(&r.envs[i]);
        for (int i = 0; i < r.b.n; i++) {
            float* row = r.b.observations + (size_t)i * r.b.obs_size;
            memcpy(written, row, row_bytes);
            triple_triad_observe(&r.envs[i]);
            if (memcmp(written, row, row_bytes) != 0) {
                printf("step %d, sub-env %d: the observation differs from a full rewrite\n", t, i);
                return 1;
            }
        }
        if (!observations_in_unit_range(&r.b)) return 1;
    }
    float episodes = 0;
    for (int i = 0; i < r.b.n; i++) episodes += r.envs[i].h.log.n;
    printf("fuzz, features %d: 10000 steps x %d sub-envs, %.0f episodes, ok\n", features, r.b.n,
           episodes);
    free_run(&r);
    return 0;
}

static int fuzz(void) {
    return fuzz_run(0) || fuzz_run(1);
}

static void step_all(void* envs, int n) {
    for (int i = 0; i < n; i++) triple_triad_step((TripleTriad*)envs + i);
}

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "fuzz") == 0) return fuzz();
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    if (n < 1 || n > 65536) n = 1024;
    for (int features = 0; features < 2; features++) {
        Run r = make_run(n, 0, features);
        double sps = agent_steps_per_second(&r.b, r.envs, step_all, TT_NUM_ACTIONS, 3.0);
        printf("triple_triad: %d sub-envs, features %d: %.2f M agent-steps/s\n", n, features,
               sps / 1e6);
        free_run(&r);
    }
    return 0;
}
