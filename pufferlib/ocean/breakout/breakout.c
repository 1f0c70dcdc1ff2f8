// gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -I pufferlib/ocean pufferlib/ocean/breakout/breakout.c -lm -o /tmp/breakout && /tmp/breakout fuzz
// Without an argument (build with -O3 -march=native... or plain -O3): steps 1, 64 and 1024 sub-envs
// (or the count given) with random actions and prints agent-steps/s. With `fuzz`: reset + 10^4 steps
// of random int32 actions (out-of-range included) and 10^4 continuous steps of random float bit
// patterns (NaN and infinities included) + close, checking after every step that the ball is inside
// the field and overlaps no standing brick and not the paddle.
#include "env_demo.h"
#include "breakout/breakout.h"

typedef struct {
    Buffers b;
    Breakout* envs;
} Run;

static Run make_run(int n, uint64_t seed, int continuous) {
    Run r = {buffers_make(n, BREAKOUT_OBS, seed), calloc(n, sizeof(Breakout))};
    for (int i = 0; i < n; i++) {
        Breakout* env = &r.envs[i];
        wire(&env->h, &r.b, i);
        env->config = (BreakoutConfig){.frameskip = 4, .continuous = continuous,
                                       .reward_scale = 1.0f, .max_episode_steps = 27000};
        breakout_init(env);
        breakout_reset(env);
    }
    return r;
}

static void free_run(Run* r) {
    for (int i = 0; i < r->b.n; i++) breakout_close(&r->envs[i]);
    free(r->envs);
    buffers_free(&r->b);
}

static int overlaps(float x, float y, float x0, float y0, float x1, float y1) {
    return x + BREAKOUT_BALL > x0 && x < x1 && y + BREAKOUT_BALL > y0 && y < y1;
}

static int check(Breakout* env, int t) {
    BreakoutState* s = &env->state;
    const char* problem = NULL;
    if (!(s->ball_x >= 0 && s->ball_x <= BREAKOUT_W - BREAKOUT_BALL && s->ball_y >= 0 &&
          s->ball_y <= BREAKOUT_H - BREAKOUT_BALL))
        problem = "ball outside the field";
    if (!(s->paddle_x >= 0 && s->paddle_x + s->paddle_width <= BREAKOUT_W))
        problem = "paddle outside the field";
    if (overlaps(s->ball_x, s->ball_y, s->paddle_x, BREAKOUT_PADDLE_Y, s->paddle_x + s->paddle_width,
                 BREAKOUT_PADDLE_Y + BREAKOUT_PADDLE_H))
        problem = "ball inside the paddle";
    for (int i = 0; i < BREAKOUT_BRICKS; i++) {
        float x = (i % BREAKOUT_COLS) * BREAKOUT_BRICK_W;
        float y = BREAKOUT_WALL_TOP + (i / BREAKOUT_COLS) * BREAKOUT_BRICK_H;
        if (s->bricks[i] && overlaps(s->ball_x, s->ball_y, x, y, x + BREAKOUT_BRICK_W, y + BREAKOUT_BRICK_H))
            problem = "ball inside a brick";
    }
    if (problem) printf("step %d: %s (ball %f %f, paddle %f)\n", t, problem, s->ball_x, s->ball_y, s->paddle_x);
    return problem != NULL;
}

static int fuzz(int continuous) {
    Run r = make_run(4, 1, continuous);
    uint64_t rng = 12345;
    for (int t = 0; t < 10000; t++) {
        for (int i = 0; i < r.b.n; i++) {
            // continuous: half the time a velocity in [-1, 1], else any float bit pattern
            if (continuous && (rng_next(&rng) & 1)) ((float*)r.b.actions)[i] = 2.0f * rng_float(&rng) - 1.0f;
            else r.b.actions[i] = fuzz_action(&rng, BREAKOUT_NUM_ACTIONS, 2);
        }
        for (int i = 0; i < r.b.n; i++) {
            breakout_step(&r.envs[i]);
            if (check(&r.envs[i], t)) return 1;
        }
        if (!observations_in_unit_range(&r.b)) return 1;
    }
    float episodes = 0;
    for (int i = 0; i < r.b.n; i++) episodes += r.envs[i].h.log.n;
    printf("fuzz (%s): 10000 steps x %d sub-envs, %.0f episodes, ok\n",
           continuous ? "continuous" : "discrete", r.b.n, episodes);
    free_run(&r);
    return 0;
}

static void step_all(void* envs, int n) {
    for (int i = 0; i < n; i++) breakout_step((Breakout*)envs + i);
}

static void bench(int n) {
    Run r = make_run(n, 0, 0);
    double sps = agent_steps_per_second(&r.b, r.envs, step_all, BREAKOUT_NUM_ACTIONS, 2.0);
    printf("breakout: %d sub-envs, frameskip 4, %.2f M agent-steps/s\n", n, sps / 1e6);
    free_run(&r);
}

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "fuzz") == 0) return fuzz(0) || fuzz(1);
    if (argc > 1) {
        int n = atoi(argv[1]);
        bench(n >= 1 && n <= 65536 ? n : 1024);
    } else {
        bench(1);
        bench(64);
        bench(1024);
    }
    return 0;
}
