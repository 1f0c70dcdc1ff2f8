// gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -I pufferlib/ocean pufferlib/ocean/squared/squared.c -lm -o /tmp/squared && /tmp/squared fuzz
// Without an argument (build with -O3 instead): steps 1024 sub-envs (or the count given) with random
// actions and prints agent-steps/s. With `fuzz`: reset + 10^4 steps of random int32 actions
// (out-of-range included) + close, for the sanitizers, checking that every observation row shows
// one agent and values in [-1, 1].
#include "env_demo.h"
#include "squared/squared.h"

enum { SIZE = 11, OBS = SIZE * SIZE };

static void step_all(void* envs, int n) {
    for (int i = 0; i < n; i++) squared_step((Squared*)envs + i);
}

static int one_agent_per_row(Buffers* b) {
    for (int i = 0; i < b->n; i++) {
        int agents = 0;
        for (int j = 0; j < OBS; j++) agents += b->observations[i * OBS + j] == 1.0f;
        if (agents != 1) return printf("sub-env %d shows %d agents\n", i, agents), 0;
    }
    return 1;
}

int main(int argc, char** argv) {
    int fuzz = argc > 1 && strcmp(argv[1], "fuzz") == 0;
    int n = fuzz ? 4 : argc > 1 ? atoi(argv[1]) : 1024;
    if (n < 1 || n > 65536) n = 1024;
    Buffers b = buffers_make(n, OBS, 1);
    Squared* envs = calloc(n, sizeof(Squared));
    for (int i = 0; i < n; i++) {
        wire(&envs[i].h, &b, i);
        envs[i].config = (SquaredConfig){.size = SIZE, .crash_at_step = -1};
        squared_init(&envs[i]);
        squared_reset(&envs[i]);
    }
    int ok = 1;
    uint64_t rng = 12345;
    for (int t = 0; fuzz && ok && t < 10000; t++) {
        for (int i = 0; i < n; i++) b.actions[i] = fuzz_action(&rng, SQUARED_NUM_ACTIONS, 2);
        step_all(envs, n);
        ok = observations_in_unit_range(&b) && one_agent_per_row(&b);
    }
    float episodes = 0;
    for (int i = 0; i < n; i++) episodes += envs[i].h.log.n;
    if (fuzz) printf("fuzz: 10000 steps x %d sub-envs, %.0f episodes, %s\n", n, episodes, ok ? "ok" : "FAILED");
    else printf("squared: %d sub-envs, %.2f M agent-steps/s\n", n,
                agent_steps_per_second(&b, envs, step_all, SQUARED_NUM_ACTIONS, 2.0) / 1e6);
    for (int i = 0; i < n; i++) squared_close(&envs[i]);
    free(envs);
    buffers_free(&b);
    return !ok;
}
