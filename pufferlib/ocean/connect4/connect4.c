// gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -I pufferlib/ocean pufferlib/ocean/connect4/connect4.c -lm -o /tmp/connect4 && /tmp/connect4 fuzz
// Without an argument (build with -O3 instead): steps 1024 sub-envs (or the count given) with
// random actions and prints agent-steps/s, without and with the feature planes, then times the
// opponent against a plain recursive negamax on random positions. With `fuzz`: reset + 10^4 steps
// of random int32 actions (out-of-range ones included) + close, without and with the features, for
// the sanitizers, then compares the opponent's choices with the plain negamax on 20000 random
// positions (exit status 1 if any differ).
#include "env_demo.h"
#include "connect4/connect4.h"

typedef struct {
    Buffers b;
    Connect4* envs;
} Run;

static Run make_run(int n, uint64_t seed, int features) {
    int obs_size = C4_OBS_SIZE + (features ? C4_FEATURES_SIZE : 0);
    Run r = {buffers_make(n, obs_size, seed), calloc(n, sizeof(Connect4))};
    for (int i = 0; i < n; i++) {
        wire(&r.envs[i].h, &r.b, i);
        r.envs[i].config.features = features;
        connect4_init(&r.envs[i]);
        connect4_reset(&r.envs[i]);
    }
    return r;
}

static void free_run(Run* r) {
    for (int i = 0; i < r->b.n; i++) connect4_close(&r->envs[i]);
    free(r->envs);
    buffers_free(&r->b);
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

static int fuzz(void) {
    uint64_t rng = 12345;
    for (int features = 0; features < 2; features++) {
        Run r = make_run(4, 1, features);
        r.envs[1].config.opponent_random_prob = 0.5f;
        float total = 0, episodes = 0;
        for (int t = 0; t < 10000; t++) {
            for (int i = 0; i < r.b.n; i++) r.b.actions[i] = fuzz_action(&rng, C4_NUM_ACTIONS, 8);
            for (int i = 0; i < r.b.n; i++) {
                connect4_step(&r.envs[i]);
                total += r.b.rewards[i];
            }
            if (!observations_in_unit_range(&r.b)) return 1;
        }
        for (int i = 0; i < r.b.n; i++) episodes += r.envs[i].h.log.n;
        printf("fuzz, features %d: 10000 steps x %d sub-envs, reward sum %.0f, %.0f episodes\n",
               features, r.b.n, total, episodes);
        free_run(&r);
    }
    enum { N = 20000 };
    static uint64_t me[N], other[N];
    random_positions(&rng, N, me, other);
    int differ = 0;
    for (int k = 0; k < N; k++) differ += connect4_choices(me[k], other[k]) != plain_choices(me[k], other[k]);
    printf("fuzz: opponent choices differ from the plain search on %d of %d random positions\n",
           differ, N);
    return differ != 0;
}

static void step_all(void* envs, int n) {
    for (int i = 0; i < n; i++) connect4_step((Connect4*)envs + i);
}

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "fuzz") == 0) return fuzz();
    int n = argc > 1 ? atoi(argv[1]) : 1024;
    if (n < 1 || n > 65536) n = 1024;
    for (int features = 0; features < 2; features++) {
        Run r = make_run(n, 1, features);
        double sps = agent_steps_per_second(&r.b, r.envs, step_all, C4_NUM_ACTIONS, 2.0);
        float episodes = 0, wins = 0;
        for (int i = 0; i < n; i++) { episodes += r.envs[i].h.log.n; wins += r.envs[i].h.log.perf; }
        printf("connect4 %d envs, features %d: %.2f M agent-steps/s (random agent win rate %.3f over "
               "%.0f episodes)\n", n, features, sps / 1e6, wins / episodes, episodes);
        free_run(&r);
    }

    enum { M = 100000 };
    static uint64_t me[M], other[M];
    uint64_t rng = 12345;
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
