// Squared: the template Ocean env. An agent starts in the centre of a size x size grid and must
// reach a target on the border. Reward +1 on reaching it (terminal); after 3 * size ticks the
// episode is truncated with reward 0. A new episode starts in the same step.
#include "env_binding.h"

#define SQUARED_NOOP 0
#define SQUARED_UP 1
#define SQUARED_DOWN 2
#define SQUARED_LEFT 3
#define SQUARED_RIGHT 4
#define SQUARED_NUM_ACTIONS 5

typedef struct {
    int size;                // config: grid side (odd)
    int crash_at_step;       // config, tests only: write through NULL at this step (-1: never)
} SquaredConfig;

typedef struct {
    int agent_row, agent_col;
    int target_row, target_col;
    int tick;                // steps in this episode
    int total_steps;         // steps since init
    float episode_return;
} SquaredState;

typedef struct {
    EnvHead h;
    SquaredConfig config;
    SquaredState state;
} Squared;

static void squared_observe(Squared* env) {
    int n = env->config.size;
    float* obs = env->h.observations;
    memset(obs, 0, n * n * sizeof(float));
    obs[env->state.target_row * n + env->state.target_col] = -1.0f;
    obs[env->state.agent_row * n + env->state.agent_col] = 1.0f;
}

// The grid side a configured size gives (at least 3); the observation is side * side floats.
static inline int squared_side(int size) {
    return size < 3 ? 3 : size;
}

static void squared_init(Squared* env) {
    env->config.size = squared_side(env->config.size);
}

static void squared_reset(Squared* env) {
    SquaredState* s = &env->state;
    int n = env->config.size;
    s->agent_row = s->agent_col = n / 2;
    int cell = rng_int(&env->h.rng, 4 * (n - 1));    // a border cell, walked clockwise
    int side = cell / (n - 1), offset = cell % (n - 1);
    int rows[4] = {0, offset, n - 1, n - 1 - offset};
    int cols[4] = {offset, n - 1, n - 1 - offset, 0};
    s->target_row = rows[side];
    s->target_col = cols[side];
    s->tick = 0;
    s->episode_return = 0;
    squared_observe(env);
}

static void squared_step(Squared* env) {
    SquaredState* s = &env->state;
    int n = env->config.size;
    s->total_steps++;
    if (env->config.crash_at_step >= 0 && s->total_steps >= env->config.crash_at_step) {
        volatile int* null = 0;
        *null = 1;
    }
    int action = ((int*)env->h.actions)[0];
    if (action == SQUARED_UP && s->agent_row > 0) s->agent_row--;
    else if (action == SQUARED_DOWN && s->agent_row < n - 1) s->agent_row++;
    else if (action == SQUARED_LEFT && s->agent_col > 0) s->agent_col--;
    else if (action == SQUARED_RIGHT && s->agent_col < n - 1) s->agent_col++;
    // any other value, out-of-range ones included, is a no-op
    s->tick++;
    int reached = s->agent_row == s->target_row && s->agent_col == s->target_col;
    int timeout = !reached && s->tick >= 3 * n;
    env->h.rewards[0] = reached ? 1.0f : 0.0f;
    env->h.terminals[0] = (unsigned char)reached;
    env->h.truncations[0] = (unsigned char)timeout;
    s->episode_return += env->h.rewards[0];
    if (reached || timeout) {
        log_episode(&env->h.log, s->episode_return, (float)s->tick, s->episode_return,
                    (float)reached);
        squared_reset(env);
    } else {
        squared_observe(env);
    }
}

static void squared_close(Squared* env) {
    (void)env;
}
