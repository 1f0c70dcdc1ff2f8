// gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -I pufferlib/ocean pufferlib/ocean/connect4/connect4.c -o /tmp/connect4 && /tmp/connect4 check
// (for speed: gcc -O3 -I pufferlib/ocean pufferlib/ocean/connect4/connect4.c -o /tmp/connect4 && /tmp/connect4 [num_envs])
// No argument or a number: steps that many sub-envs (default 1024) with random actions and prints
// agent-steps/s, then times the opponent against a plain recursive negamax on random positions.
// "check": reset + 10^4 steps on random int32 actions (out-of-range ones included) + close, for the
// sanitizers, then compares the opponent's choices with the plain negamax on 20000 random positions
// (exit status 1 if any differ).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connect4.h"

typedef struct {
    Connect4* envs;
    float* observations;
    int* actions;
    float* rewards;
    unsigned char* terminals;
    unsigned char* truncations;
    int n;
} Vec;

static Vec vec_make(int n, uint64_t seed) {
    Vec v = {calloc(n, sizeof(Connect4)), calloc(n * 42, sizeof(float)), calloc(n, sizeof(int)),
             calloc(n, sizeof(float)), calloc(n, 1), calloc(n, 1), n};
    for (int i = 0; i < n; i++) {
        EnvHead* h = &v.envs[i].h;
        h->observations = v.observations + 42 * i;
        h->actions = v.actions + i;
        h->rewards = v.rewards + i;
        h->terminals = v.terminals + i;
        h->truncations = v.truncations + i;
        h->rng = splitmix64(seed + i);
        connect4_init(&v.envs[i]);
        connect4_reset(&v.envs[i]);
    }
    return v;
}

static void vec_free(Vec v) {
    for (int i = 0; i < v.n; i++) connect4_close(&v.envs[i]);
    free(v.envs); free(v.observations); free(v.actions);
    free(v.rewards); free(v.terminals); free(v.truncations);
}

// The plain search the definition describes (every move to depth 3, a win test at every node), as a
// cross-check of connect4_choices and a speed baseline for it. `other` has just moved.
static int plain_negamax(uint64_t me, uint64_t other, int depth) {
    if (c4_won(other)) return -1;
    uint64_t mask = me | other;
    if (mask == C4_BOARD || depth == 0) return 0;
    int best = -2;
    for (uint64_t moves = c4_playable(mask); moves; moves &= moves - 1) {
        int score = -plain_negamax(other, me | (moves & -moves), depth - 1);
        if (score > best) best = score;
    }
    return best;
}

static int plain_choices(uint64_t me, uint64_t other) {
    uint64_t moves = c4_playable(me | other);
    int wins = 0, best = -2, choices = 0;
    for (int c = 0; c < C4_COLS; c++) {
        uint64_t move = moves & c4_column_mask(c);
        if (move && c4_won(me | move)) wins |= 1 << c;
    }
    if (wins) return wins;
    for (int c = 0; c < C4_COLS; c++) {
        uint64_t move = moves & c4_column_mask(c);
        if (!move) continue;
        int score = -plain_negamax(other, me | move, 2);
        if (score > best) { best = score; choices = 0; }
        if (score == best) choices |= 1 << c;
    }
    return choices;
}

// n random positions with the opponent to move and no four in a row, from random play.
static int random_positions(uint64_t* rng, int n, uint64_t* me, uint64_t* other) {
    for (int k = 0; k < n; k++) {
        uint64_t side[2];
        int plies;
        do {
            side[0] = side[1] = 0;
            plies = 1 + 2 * rng_int(rng, 21);
            for (int p = 0; p < plies; p++) {
                uint64_t moves = c4_playable(side[0] | side[1]);
                int col = c4_pick(rng, c4_columns(moves));
                side[p & 1] |= moves & c4_column_mask(col);
                if (c4_won(side[p & 1])) { plies = -1; break; }
            }
        } while (plies < 0);
        other[k] = side[0];  // the agent moved first and last
        me[k] = side[1];
    }
    return n;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char** argv) {
    uint64_t rng = 12345;
    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        Vec v = vec_make(4, 1);
        v.envs[1].config.opponent_random_prob = 0.5f;
        float total = 0;
        for (int t = 0; t < 10000; t++) {
            for (int i = 0; i < v.n; i++) {
                // mostly legal columns; every 8th action any int32 at all
                v.actions[i] = t % 8 ? rng_int(&rng, 7) : (int)(uint32_t)rng_next(&rng);
                connect4_step(&v.envs[i]);
                total += v.rewards[i];
            }
        }
        printf("check: 4 x 10000 steps, reward sum %.0f, episodes %.0f\n", total,
               v.envs[0].h.log.n + v.envs[1].h.log.n + v.envs[2].h.log.n + v.envs[3].h.log.n);
        vec_free(v);
        enum { N = 20000 };
        static uint64_t me[N], other[N];
        random_positions(&rng, N, me, other);
        int differ = 0;
        for (int k = 0; k < N; k++) differ += connect4_choices(me[k], other[k]) != plain_choices(me[k], other[k]);
        printf("check: opponent choices differ from the plain search on %d of %d random positions\n",
               differ, N);
        return differ != 0;
    }
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    if (n < 1) n = 1;
    Vec v = vec_make(n, 1);
    long steps = 0;
    double start = now();
    while (now() - start < 2.0) {
        for (int rep = 0; rep < 100; rep++) {
            for (int i = 0; i < n; i++) v.actions[i] = rng_int(&rng, 7);
            for (int i = 0; i < n; i++) connect4_step(&v.envs[i]);
        }
        steps += 100L * n;
    }
    double elapsed = now() - start;
    float episodes = 0, wins = 0;
    for (int i = 0; i < n; i++) { episodes += v.envs[i].h.log.n; wins += v.envs[i].h.log.perf; }
    printf("connect4 %d envs: %.2f M agent-steps/s (random agent win rate %.3f over %.0f episodes)\n",
           n, steps / elapsed / 1e6, wins / episodes, episodes);
    vec_free(v);

    enum { M = 100000 };
    static uint64_t me[M], other[M];
    random_positions(&rng, M, me, other);
    volatile int sink = 0;
    double t0 = now();
    for (int k = 0; k < M; k++) sink += connect4_choices(me[k], other[k]);
    double fast = (now() - t0) / M;
    t0 = now();
    for (int k = 0; k < M; k++) sink += plain_choices(me[k], other[k]);
    double plain = (now() - t0) / M;
    printf("opponent on random positions: threat bitboards %.0f ns, plain bitboard negamax %.0f ns "
           "(%.1fx faster)\n", 1e9 * fast, 1e9 * plain, plain / fast);
    return 0;
}
