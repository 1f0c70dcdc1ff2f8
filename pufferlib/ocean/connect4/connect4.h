// Connect4 against a built-in depth-3 opponent. 6 rows x 7 columns; the agent (+1) drops a piece in
// a column (action 0..6), then the opponent (-1) replies. Rewards: win +1, loss -1, draw 0; a move
// into a full column (or any action outside 0..6, which only C callers can send: the binding rejects
// it) ends the episode with -1. perf = 1 for a win, else 0; score = the final reward. A new episode
// starts in the same step.
//
// Observation: 42 floats, row-major with row 0 at the top (what a person reads): obs[7 * row + col]
// is +1 for an agent piece, -1 for an opponent piece, 0 for empty. With config.features, 5 planes of
// 42 more follow in the same layout, 0 or 1 per cell (a small MLP learns much faster from them than
// from the board alone): the agent's pieces, the opponent's, the cells where a piece can be dropped
// now, and the empty cells that would complete a four for the agent and for the opponent (threats,
// playable now or not).
//
// Bitboards: bit 7 * col + height (height 0 = bottom row) of `agent` / `opponent` holds a piece; bit
// 6 of every column is a sentinel that stays 0, so shifting a line across a column edge always lands
// on a 0 bit and four-in-a-row tests are a few shifts and ands.
//
// The opponent, exactly (with probability config.opponent_random_prob, 0 by default, it instead plays
// a uniformly random legal column):
// 1. If a column wins immediately for the opponent, play one of those (uniformly at random).
// 2. Otherwise play uniformly at random among the columns c maximising -negamax(position after c, 2),
//    where negamax(p, d) for the side to move in p is: -1 if the previous move won; 0 if the board is
//    full; 0 if d == 0; else max over legal moves m of -negamax(p after m, d - 1).
// Worked out, step 2 scores a column c (after which the agent is to move) as: 0 if c fills the board;
// -1 if the agent then has an immediate win; +1 if every agent reply leaves the opponent an immediate
// win; else 0. connect4_choices computes that with threat bitboards (cells that would complete a
// four), at most 7 x 7 bit operations, and returns the whole set of maximising columns.
#include "env_binding.h"

#define C4_ROWS 6
#define C4_COLS 7
#define C4_BOTTOM 0x0040810204081ull        // bit 7 * col for every column
#define C4_BOARD (C4_BOTTOM * 0x3Full)       // the 42 playable bits (no sentinels)
#define C4_OBS_SIZE (C4_ROWS * C4_COLS)
#define C4_FEATURES_SIZE (5 * C4_OBS_SIZE)
#define C4_NUM_ACTIONS C4_COLS

typedef struct {
    float opponent_random_prob;  // probability that the opponent plays a random legal column instead
    int features;                // 1: the observation also holds the 5 feature planes
} Connect4Config;

typedef struct {
    uint64_t agent;              // bitboard of the agent's pieces
    uint64_t opponent;           // bitboard of the opponent's pieces
    uint64_t last_agent;         // final position of the previous episode (for showing a finished game)
    uint64_t last_opponent;
    int tick;                    // agent moves this episode
} Connect4State;

typedef struct {
    EnvHead h;
    Connect4Config config;
    Connect4State state;
} Connect4;

static inline uint64_t c4_column_mask(int col) {
    return 0x3Full << (7 * col);
}

// The lowest empty cell of every column that is not full.
static inline uint64_t c4_playable(uint64_t mask) {
    return (mask + C4_BOTTOM) & C4_BOARD;
}

static inline int c4_won(uint64_t p) {
    uint64_t m;
    m = p & (p >> 1); if (m & (m >> 2)) return 1;   // vertical
    m = p & (p >> 7); if (m & (m >> 14)) return 1;  // horizontal
    m = p & (p >> 6); if (m & (m >> 12)) return 1;  // diagonal, up to the left
    m = p & (p >> 8); if (m & (m >> 16)) return 1;  // diagonal, up to the right
    return 0;
}

// Empty cells where a piece of `p` would complete four in a row (playable now or not).
static inline uint64_t c4_threats(uint64_t p, uint64_t mask) {
    uint64_t r = (p << 1) & (p << 2) & (p << 3);    // three stacked below
    static const int shifts[3] = {7, 6, 8};
    for (int i = 0; i < 3; i++) {
        int s = shifts[i];
        uint64_t t = (p << s) & (p << 2 * s);
        r |= t & (p << 3 * s);
        r |= t & (p >> s);
        t = (p >> s) & (p >> 2 * s);
        r |= t & (p << s);
        r |= t & (p >> 3 * s);
    }
    return r & (C4_BOARD ^ mask);
}

// Bit c set for every column c that holds a bit of `cells`.
static inline int c4_columns(uint64_t cells) {
    int cols = 0;
    for (int c = 0; c < C4_COLS; c++) {
        if (cells & c4_column_mask(c)) cols |= 1 << c;
    }
    return cols;
}

// The set (bit c = column c) of columns the opponent chooses among, for the side owning `me` to
// move against `other` (see the definition at the top). 0 only when the board is full.
static int connect4_choices(uint64_t me, uint64_t other) {
    uint64_t mask = me | other;
    uint64_t moves = c4_playable(mask);
    uint64_t wins = c4_threats(me, mask) & moves;
    if (wins) return c4_columns(wins);
    int best = -2, choices = 0;
    for (int c = 0; c < C4_COLS; c++) {
        uint64_t move = moves & c4_column_mask(c);
        if (!move) continue;
        uint64_t mask2 = mask | move, replies = c4_playable(mask2);
        int score;
        if (mask2 == C4_BOARD) {
            score = 0;
        } else if (c4_threats(other, mask2) & replies) {
            score = -1;
        } else {
            // +1 if every reply r leaves us a playable winning cell: one of the other playable
            // cells, or the cell that r itself makes playable (above r).
            uint64_t threats = c4_threats(me | move, mask2);
            score = 1;
            for (uint64_t rest = replies; rest; rest &= rest - 1) {
                uint64_t r = rest & -rest;
                if (!(threats & ((replies ^ r) | (r << 1)))) {
                    score = 0;
                    break;
                }
            }
        }
        if (score > best) {
            best = score;
            choices = 0;
        }
        if (score == best) choices |= 1 << c;
    }
    return choices;
}

// A uniformly random member of the nonempty column set `cols`.
static int c4_pick(uint64_t* rng, int cols) {
    int k = rng_int(rng, __builtin_popcount((unsigned)cols));
    for (int c = 0; c < C4_COLS; c++) {
        if ((cols >> c & 1) && k-- == 0) return c;
    }
    return 0;  // only for an empty set, which connect4_step never passes
}

// 42 floats, row-major with row 0 at the top: 1 where `cells` has a bit, else 0.
static void c4_plane(float* out, uint64_t cells) {
    for (int row = 0; row < C4_ROWS; row++) {
        for (int col = 0; col < C4_COLS; col++)
            out[C4_COLS * row + col] = (float)(cells >> (7 * col + C4_ROWS - 1 - row) & 1);
    }
}

static void connect4_observe(Connect4* env) {
    float* obs = env->h.observations;
    uint64_t a = env->state.agent, o = env->state.opponent, mask = a | o;
    for (int row = 0; row < C4_ROWS; row++) {
        for (int col = 0; col < C4_COLS; col++) {
            int bit = 7 * col + (C4_ROWS - 1 - row);
            obs[7 * row + col] = (float)((int)(a >> bit & 1) - (int)(o >> bit & 1));
        }
    }
    if (!env->config.features) return;
    float* planes = obs + C4_OBS_SIZE;
    c4_plane(planes, a);
    c4_plane(planes + C4_OBS_SIZE, o);
    c4_plane(planes + 2 * C4_OBS_SIZE, c4_playable(mask));
    c4_plane(planes + 3 * C4_OBS_SIZE, c4_threats(a, mask));
    c4_plane(planes + 4 * C4_OBS_SIZE, c4_threats(o, mask));
}

static void connect4_init(Connect4* env) {
    (void)env;
}

static void connect4_reset(Connect4* env) {
    env->state.agent = env->state.opponent = 0;
    env->state.tick = 0;
    connect4_observe(env);
}

static void connect4_end(Connect4* env, float reward) {
    Connect4State* s = &env->state;
    env->h.rewards[0] = reward;
    env->h.terminals[0] = 1;
    log_episode(&env->h.log, reward, (float)s->tick, reward, reward > 0 ? 1.0f : 0.0f);
    s->last_agent = s->agent;
    s->last_opponent = s->opponent;
    connect4_reset(env);
}

static void connect4_step(Connect4* env) {
    Connect4State* s = &env->state;
    int action = ((int*)env->h.actions)[0];
    env->h.rewards[0] = 0;
    env->h.terminals[0] = 0;
    env->h.truncations[0] = 0;
    s->tick++;
    uint64_t mask = s->agent | s->opponent;
    uint64_t move = (action >= 0 && action < C4_COLS) ? c4_playable(mask) & c4_column_mask(action) : 0;
    if (!move) { connect4_end(env, -1.0f); return; }
    s->agent |= move;
    mask |= move;
    if (c4_won(s->agent)) { connect4_end(env, 1.0f); return; }
    if (mask == C4_BOARD) { connect4_end(env, 0.0f); return; }

    int cols;
    if (env->config.opponent_random_prob > 0 && rng_float(&env->h.rng) < env->config.opponent_random_prob) {
        cols = c4_columns(c4_playable(mask));
    } else {
        cols = connect4_choices(s->opponent, s->agent);
    }
    s->opponent |= c4_playable(mask) & c4_column_mask(c4_pick(&env->h.rng, cols));
    mask = s->agent | s->opponent;
    if (c4_won(s->opponent)) { connect4_end(env, -1.0f); return; }
    if (mask == C4_BOARD) { connect4_end(env, 0.0f); return; }
    connect4_observe(env);
}

static void connect4_close(Connect4* env) {
    (void)env;
}
