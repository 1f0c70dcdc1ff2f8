// Triple Triad: a 3x3 card game against a random bot. The rules, as implemented:
//
// Each side gets 5 cards; a card has four values N, E, S, W drawn from 1..7. Cards 0-4 are the
// agent's, 5-9 the bot's. Both scores start at 5 (a side's score counts the cards it owns, in hand
// or on the board, so the two always sum to 10). The agent (+1) places a card, then the bot (-1)
// places a random unused card of its hand on a random empty cell; the agent places 5 cards, the bot
// 4, and the game ends when the board is full: reward +1 if the agent's score is higher, -1 if lower,
// 0 for a tie. perf = 1 for a win, else 0 (so its mean is the win rate); score = the agent's score.
//
// Capture: a card placed on a cell flips each orthogonally adjacent ENEMY card whose facing value is
// lower than the placed card's value on that side (placed N vs the neighbour's S above it, E vs W to
// its right, S vs N below, W vs E to its left); equal values do not flip; each flip moves one point
// from the loser to the placer. Flipped cards are never re-checked (no chain captures).
//
// Actions, Discrete(14): 0-4 select one of the agent's cards, 5-13 place the selected card on cell
// 0-8 (cell = row * 3 + col, row 0 at the top). Selecting a card already on the board, placing with
// no card selected, placing on an occupied cell, and (never reached through the binding, which
// rejects them) values outside 0..13 are no-ops with reward -invalid_penalty (0.1). Placing clears
// the selection. Selecting is free, and reselecting is allowed.
// Step limit (ours, from "an episode that exceeds 30 agent steps ends with -1"): the agent step
// numbered max_steps + 1 (31 by default) ignores its action and ends the episode with reward -1,
// terminal, perf 0. The step that ends an episode (either way) logs it and writes the first
// observation of the next one.
//
// Observation, 114 float32 values in [-1, 1]:
//   0..8      owner of each cell: +1 agent, -1 bot, 0 empty
//   9..13     1 if the agent's card k is on the board (selecting it is a no-op), else 0
//   14..22    1 if cell c is occupied (placing there is a no-op), else 0
//   23        1 if no card is selected (every placement is a no-op), else 0
//             (9..23 are the 15 action-mask values: action a < 5 is a no-op iff obs[9 + a];
//              action 5 + c iff obs[14 + c] or obs[23])
//   24, 25    selected card per side as (k + 1) / 5, 0 for none; the bot's is the card it played last
//   26, 27    scores / 10: agent, bot
//   28..63    the card on each cell: N, E, S, W / 7 (all 0 when the cell is empty)
//   64..103   every card's N, E, S, W / 7: the agent's cards 0-4, then the bot's 0-4
//   104..113  every card's location (cell + 1) / 9, 0 while in hand: the agent's 0-4, the bot's 0-4
// For speed, reset writes the whole row and a step rewrites only the entries that changed (about 3x
// faster than rewriting 114 values): like every PufferEnv buffer, the row belongs to the env, and a
// reader must copy it rather than modify it in place.
//
// With config.features, 131 values follow, rewritten whole by every step (a 2-layer MLP learns much
// faster from them than from the values above, where it must pair each card with each cell itself).
// "Flips" of card k on cell c: the adjacent bot cards that placing k there would flip; "exposure":
// the sides of k on c that face an empty cell, each weighted by the fraction of the bot's cards in
// hand whose facing value beats it. Flips and exposure count sides, divided by 4; all are computed
// for every card and cell, played or occupied ones included.
//   114..118  the agent's selected card, one-hot (all 0 for none)
//   119..122  the selected card's N, E, S, W / 7 (0 for none)
//   123..167  flips of agent card k on cell c, at 123 + 9 * k + c
//   168..212  exposure of agent card k on cell c, at 168 + 9 * k + c
//   213..221  exposure of the card on each cell owned by the agent (0 for other cells)
//   222..230  flips of the selected card per cell (0 for none)
//   231..239  exposure of the selected card per cell (0 for none)
//   240..244  per agent card in hand, the best flips - exposure over the empty cells, at least -1
//             (0 for a played card)
#include "env_binding.h"

#define TT_OBS_SIZE 114
#define TT_FEATURES_SIZE 131
#define TT_NUM_ACTIONS 14
#define TT_SELECT 0        // actions 0..4
#define TT_PLACE 5         // actions 5..13
#define TT_AGENT 1
#define TT_BOT (-1)

typedef struct {
    int max_steps;              // agent steps allowed per episode; the next one ends it with -1
    float invalid_penalty;      // subtracted for a no-op action (0.1)
    int features;               // 1: the observation also holds the 131 features
} TripleTriadConfig;

typedef struct {
    int owner[9];               // per cell: +1 agent, -1 bot, 0 empty
    int card[9];                // per cell: the card on it (0-9), -1 when empty
    int values[10][4];          // per card: N, E, S, W in 1..7; 0-4 the agent's, 5-9 the bot's
    int location[10];           // per card: 0 in hand, else cell + 1
    int selected[2];            // agent's selected card 0-4 / bot's last played card 0-4; -1 none
    int score[2];               // agent, bot
    int tick;                   // agent steps in this episode
    float episode_return;
} TripleTriadState;

typedef struct {
    EnvHead h;
    TripleTriadConfig config;
    TripleTriadState state;
} TripleTriad;

// For each cell, the neighbouring cell to the N, E, S, W (-1 off the board).
static const int TT_NEIGHBOUR[9][4] = {
    {-1, 1, 3, -1}, {-1, 2, 4, 0}, {-1, -1, 5, 1},
    {0, 4, 6, -1},  {1, 5, 7, 3},  {2, -1, 8, 4},
    {3, 7, -1, -1}, {4, 8, -1, 6}, {5, -1, -1, 7},
};

// The features (observation values 114..244, see the top) from the state.
static void triple_triad_features(TripleTriad* env) {
    TripleTriadState* s = &env->state;
    float* f = env->h.observations + TT_OBS_SIZE;
    // beaten[k][side]: the bot's cards in hand whose value facing `side` of card k is higher
    int beaten[10][4] = {{0}}, bot_cards = 0;
    for (int b = 5; b < 10; b++) {
        if (s->location[b]) continue;
        bot_cards++;
        for (int k = 0; k < 10; k++) {
            for (int side = 0; side < 4; side++)
                beaten[k][side] += s->values[b][(side + 2) % 4] > s->values[k][side];
        }
    }
    float per_beat = bot_cards ? 1.0f / (4 * bot_cards) : 0.0f;
    float best[5] = {-1.0f, -1.0f, -1.0f, -1.0f, -1.0f};
    int sel = s->selected[0];
    for (int k = 0; k < 5; k++) f[k] = k == sel;
    for (int side = 0; side < 4; side++) f[5 + side] = sel >= 0 ? s->values[sel][side] * (1.0f / 7) : 0.0f;
    for (int c = 0; c < 9; c++) {
        int open[4], facing[4];     // per side: faces an empty cell; the adjacent bot card's value
        for (int side = 0; side < 4; side++) {
            int n = TT_NEIGHBOUR[c][side];
            open[side] = n >= 0 && s->owner[n] == 0;
            facing[side] = n >= 0 && s->owner[n] == TT_BOT ? s->values[s->card[n]][(side + 2) % 4]
                                                           : 1 << 30;   // nothing to flip
        }
        for (int k = 0; k < 5; k++) {
            int flips = 0, exposed = 0;
            for (int side = 0; side < 4; side++) {
                flips += s->values[k][side] > facing[side];
                exposed += open[side] * beaten[k][side];
            }
            float flip = flips * 0.25f, exposure = exposed * per_beat;
            f[9 + 9 * k + c] = flip;
            f[54 + 9 * k + c] = exposure;
            if (s->owner[c] == 0 && flip - exposure > best[k]) best[k] = flip - exposure;
        }
        int exposed = 0;
        if (s->owner[c] == TT_AGENT) {
            for (int side = 0; side < 4; side++) exposed += open[side] * beaten[s->card[c]][side];
        }
        f[99 + c] = exposed * per_beat;
    }
    for (int c = 0; c < 9; c++) {
        f[108 + c] = sel >= 0 ? f[9 + 9 * sel + c] : 0.0f;
        f[117 + c] = sel >= 0 ? f[54 + 9 * sel + c] : 0.0f;
    }
    for (int k = 0; k < 5; k++) f[126 + k] = s->location[k] ? 0.0f : best[k];
}

static void triple_triad_observe(TripleTriad* env) {
    TripleTriadState* s = &env->state;
    float* obs = env->h.observations;
    for (int c = 0; c < 9; c++) {
        obs[c] = (float)s->owner[c];
        obs[14 + c] = s->owner[c] != 0;
        int k = s->card[c];
        for (int side = 0; side < 4; side++)
            obs[28 + 4 * c + side] = k >= 0 ? s->values[k][side] * (1.0f / 7) : 0.0f;
    }
    for (int k = 0; k < 5; k++) obs[9 + k] = s->location[k] != 0;
    obs[23] = s->selected[0] < 0;
    obs[24] = (s->selected[0] + 1) * (1.0f / 5);
    obs[25] = (s->selected[1] + 1) * (1.0f / 5);
    obs[26] = s->score[0] * (1.0f / 10);
    obs[27] = s->score[1] * (1.0f / 10);
    for (int k = 0; k < 10; k++) {
        for (int side = 0; side < 4; side++) obs[64 + 4 * k + side] = s->values[k][side] * (1.0f / 7);
        obs[104 + k] = s->location[k] * (1.0f / 9);
    }
    if (env->config.features) triple_triad_features(env);
}

static void triple_triad_init(TripleTriad* env) {
    if (env->config.max_steps < 1) env->config.max_steps = 1;
}

static void triple_triad_reset(TripleTriad* env) {
    TripleTriadState* s = &env->state;
    for (int c = 0; c < 9; c++) {
        s->owner[c] = 0;
        s->card[c] = -1;
    }
    for (int k = 0; k < 10; k++) {
        s->location[k] = 0;
        for (int side = 0; side < 4; side++) s->values[k][side] = 1 + rng_int(&env->h.rng, 7);
    }
    s->selected[0] = s->selected[1] = -1;
    s->score[0] = s->score[1] = 5;
    s->tick = 0;
    s->episode_return = 0;
    triple_triad_observe(env);
}

// Put `card` on the empty `cell` for `player` (+1/-1) and flip the weaker adjacent enemy cards.
// Updates the observation entries that change (triple_triad_observe writes the same values).
static void triple_triad_place(TripleTriad* env, int card, int cell, int player) {
    TripleTriadState* s = &env->state;
    float* obs = env->h.observations;
    s->owner[cell] = player;
    s->card[cell] = card;
    s->location[card] = cell + 1;
    obs[cell] = (float)player;
    obs[14 + cell] = 1.0f;
    if (card < 5) obs[9 + card] = 1.0f;
    obs[104 + card] = s->location[card] * (1.0f / 9);
    for (int side = 0; side < 4; side++) obs[28 + 4 * cell + side] = s->values[card][side] * (1.0f / 7);
    int me = player == TT_AGENT ? 0 : 1;
    for (int side = 0; side < 4; side++) {
        int n = TT_NEIGHBOUR[cell][side];
        if (n < 0 || s->owner[n] != -player) continue;
        if (s->values[s->card[n]][(side + 2) % 4] < s->values[card][side]) {
            s->owner[n] = player;
            obs[n] = (float)player;
            s->score[me]++;
            s->score[1 - me]--;
        }
    }
    obs[26] = s->score[0] * (1.0f / 10);
    obs[27] = s->score[1] * (1.0f / 10);
}

// The bot plays a uniformly random card of its hand on a uniformly random empty cell.
static void triple_triad_bot_move(TripleTriad* env) {
    TripleTriadState* s = &env->state;
    int cards[5], cells[9], num_cards = 0, num_cells = 0;
    for (int k = 0; k < 5; k++)
        if (s->location[5 + k] == 0) cards[num_cards++] = k;
    for (int c = 0; c < 9; c++)
        if (s->owner[c] == 0) cells[num_cells++] = c;
    if (num_cards == 0 || num_cells == 0) return;    // unreachable in play; set_state may do it
    int k = cards[rng_int(&env->h.rng, num_cards)];
    int c = cells[rng_int(&env->h.rng, num_cells)];
    s->selected[1] = k;
    env->h.observations[25] = (k + 1) * (1.0f / 5);
    triple_triad_place(env, 5 + k, c, TT_BOT);
}

static void triple_triad_step(TripleTriad* env) {
    TripleTriadState* s = &env->state;
    int action = ((int*)env->h.actions)[0];
    float reward = 0.0f;
    int done = 0, won = 0;
    s->tick++;
    if (s->tick > env->config.max_steps) {
        reward = -1.0f;
        done = 1;
    } else if (action >= TT_SELECT && action < TT_PLACE) {
        if (s->location[action]) {
            reward = -env->config.invalid_penalty;
        } else {
            s->selected[0] = action;
            env->h.observations[23] = 0.0f;
            env->h.observations[24] = (action + 1) * (1.0f / 5);
        }
    } else if (action >= TT_PLACE && action < TT_NUM_ACTIONS) {
        int cell = action - TT_PLACE;
        if (s->selected[0] < 0 || s->owner[cell] != 0) {
            reward = -env->config.invalid_penalty;
        } else {
            triple_triad_place(env, s->selected[0], cell, TT_AGENT);
            s->selected[0] = -1;
            env->h.observations[23] = 1.0f;
            env->h.observations[24] = 0.0f;
            int empty = 0;
            for (int c = 0; c < 9; c++) empty += s->owner[c] == 0;
            if (empty == 0) {
                done = 1;
                won = s->score[0] > s->score[1];
                reward = won ? 1.0f : (s->score[0] < s->score[1] ? -1.0f : 0.0f);
            } else {
                triple_triad_bot_move(env);
            }
        }
    } else {
        reward = -env->config.invalid_penalty;
    }
    s->episode_return += reward;
    env->h.rewards[0] = reward;
    env->h.terminals[0] = (unsigned char)done;
    env->h.truncations[0] = 0;
    if (done) {
        log_episode(&env->h.log, s->episode_return, (float)s->tick, (float)s->score[0], (float)won);
        triple_triad_reset(env);
    } else if (env->config.features) {
        triple_triad_features(env);
    }
}

static void triple_triad_close(TripleTriad* env) {
    (void)env;
}
