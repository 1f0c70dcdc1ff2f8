// Breakout: the rules of games.md. A 576x330 field, a wall of 6x18 bricks (32x12, from y=50), a
// 62x8 paddle 10 px above the bottom, a 32x32 ball, ticks of 1/60 s, `frameskip` ticks per step.
//
// Decisions games.md leaves open (ours):
// - Geometry: every object is an axis-aligned box; positions are top-left corners, y grows down.
//   The ball is a 32x32 box: touching is not overlapping, and the ball never overlaps a brick,
//   the paddle or the field's edges. Its motion in a tick is swept against walls, paddle and the
//   bricks its path can reach, earliest contact first; after a contact it goes on for the rest of
//   the tick. A contact reflects the velocity component along the face's normal (a corner hit
//   reflects the vertical one). Of several bricks met at the same instant, the one overlapping the
//   ball most along the face breaks; one brick per contact.
// - Serve: each ball starts at (272, 135), just below the wall, heading down at an angle drawn
//   uniformly from +-45 degrees off vertical, at 256 px/s, with the paddle re-centred; it launches
//   by itself in the step that serves it. Speed and the 4-hit count start over with each ball.
// - Paddle: a hit on its top face sends the ball up at (contact offset) * 45 degrees, the offset
//   being the distance between the centres over its largest possible value, in [-1, 1]. The 4th,
//   8th, 12th... such hit first adds 64 px/s (capped at 448), then sets the new direction. A hit
//   on a side face reflects vx (the ball is past saving). The paddle stops at the ball when the
//   ball is beside it, and the first top-wall hit of an episode shrinks it, about its centre, to 31
//   for the rest of the episode.
// - A brick in the top three rows sets the speed to 448 at once (the direction is kept).
// - Wall rebuild: once per episode, at the end of the first tick in which the score is at least 432
//   and the ball is clear of the brick rows (so it never appears inside a brick).
// - Lives: `balls_left` counts the ball in play; losing the 5th ends the episode (terminal). So
//   does reaching 864 points (both walls cleared). A ball kept bouncing forever without breaking
//   bricks is cut off by the truncation after `max_episode_steps` agent steps (0: never). The
//   default, 27000, is Atari's usual 108000 frames at frameskip 4; a ball-following paddle clears
//   both walls in about 3000-6000 steps.
// - Observation, 118 float32: paddle x/W, paddle y/H, ball x/W, ball y/H, vx/512, vy/512,
//   balls served this episode/5, score/864, balls left/5, paddle width/62, then 108 brick flags
//   (1 = standing) row by row from the top. Actions: 0 NOOP, 1 LEFT, 2 RIGHT (other values: NOOP);
//   continuous: paddle velocity in [-1, 1] x 620 px/s (clamped; NaN is NOOP).
#include <math.h>

#include "env_binding.h"

#define BREAKOUT_W 576.0f
#define BREAKOUT_H 330.0f
#define BREAKOUT_ROWS 6
#define BREAKOUT_COLS 18
#define BREAKOUT_BRICKS 108
#define BREAKOUT_BRICK_W 32.0f
#define BREAKOUT_BRICK_H 12.0f
#define BREAKOUT_WALL_TOP 50.0f
#define BREAKOUT_WALL_BOTTOM 122.0f        // 50 + 6 * 12
#define BREAKOUT_PADDLE_W 62.0f
#define BREAKOUT_PADDLE_H 8.0f
#define BREAKOUT_PADDLE_Y 312.0f           // its bottom is 10 px above the field's
#define BREAKOUT_PADDLE_SPEED 620.0f
#define BREAKOUT_BALL 32.0f
#define BREAKOUT_SERVE_X 272.0f
#define BREAKOUT_SERVE_Y 135.0f
#define BREAKOUT_DT (1.0f / 60.0f)
#define BREAKOUT_SPEED_START 256.0f
#define BREAKOUT_SPEED_STEP 64.0f
#define BREAKOUT_SPEED_MAX 448.0f
#define BREAKOUT_WALL_POINTS 432
#define BREAKOUT_MAX_SCORE 864
#define BREAKOUT_BALLS 5
#define BREAKOUT_OBS 118
#define BREAKOUT_MAX_CONTACTS 16           // per tick; see breakout_tick
#define BREAKOUT_HALF_PI 1.57079632679f

#define BREAKOUT_NOOP 0
#define BREAKOUT_LEFT 1
#define BREAKOUT_RIGHT 2
#define BREAKOUT_NUM_ACTIONS 3

enum { BREAKOUT_HIT_NONE, BREAKOUT_HIT_SIDE_WALL, BREAKOUT_HIT_TOP_WALL, BREAKOUT_HIT_FLOOR,
       BREAKOUT_HIT_BRICK, BREAKOUT_HIT_PADDLE };

typedef struct {
    float t;                   // when, as a fraction of the move
    int hit;                   // BREAKOUT_HIT_*
    int normal_y;              // the face met is horizontal
    int brick;                 // for BREAKOUT_HIT_BRICK
} BreakoutContact;

// Not fminf/fmaxf: without -ffast-math those are calls into libm. A NaN `a` gives `b`.
static inline float breakout_min(float a, float b) { return a < b ? a : b; }
static inline float breakout_max(float a, float b) { return a > b ? a : b; }
static inline float breakout_clamp(float v, float lo, float hi) {
    return breakout_min(breakout_max(v, lo), hi);
}

static const int BREAKOUT_ROW_POINTS[BREAKOUT_ROWS] = {7, 7, 4, 4, 1, 1};

typedef struct {
    int frameskip;             // ticks per agent step (>= 1)
    int continuous;            // 1: float action = paddle velocity / 620 px/s
    float reward_scale;        // reward = brick points * reward_scale
    int max_episode_steps;     // truncate after this many agent steps; 0: never
} BreakoutConfig;

typedef struct {
    float paddle_x;            // left edge
    float paddle_width;        // 62, or 31 after the first top-wall hit
    float ball_x, ball_y;      // top-left corner of the 32x32 ball
    float ball_vx, ball_vy;    // px/s
    float ball_speed;          // px/s: 256, +64 every 4 paddle hits, at most 448
    int paddle_hits;           // top-face paddle hits by the ball in play
    int balls_left;            // the ball in play included
    int balls_fired;           // balls served this episode
    int score;
    int wall_rebuilt;
    int steps;                 // agent steps in this episode
    float episode_return;
    // Row-major from the top row; 1 = standing. int, not char: Cython would turn a char array
    // into a (NUL-terminated) bytes object.
    int bricks[BREAKOUT_BRICKS];
} BreakoutState;

typedef struct {
    EnvHead h;
    BreakoutConfig config;
    BreakoutState state;
} Breakout;

static void breakout_observe(Breakout* env) {
    BreakoutState* s = &env->state;
    float* obs = env->h.observations;
    obs[0] = s->paddle_x / BREAKOUT_W;
    obs[1] = BREAKOUT_PADDLE_Y / BREAKOUT_H;
    obs[2] = s->ball_x / BREAKOUT_W;
    obs[3] = s->ball_y / BREAKOUT_H;
    obs[4] = s->ball_vx / 512.0f;
    obs[5] = s->ball_vy / 512.0f;
    obs[6] = s->balls_fired / (float)BREAKOUT_BALLS;
    obs[7] = s->score / (float)BREAKOUT_MAX_SCORE;
    obs[8] = s->balls_left / (float)BREAKOUT_BALLS;
    obs[9] = s->paddle_width / BREAKOUT_PADDLE_W;
    for (int i = 0; i < BREAKOUT_BRICKS; i++) obs[10 + i] = s->bricks[i];
}

static void breakout_build_wall(BreakoutState* s) {
    for (int i = 0; i < BREAKOUT_BRICKS; i++) s->bricks[i] = 1;
}

static void breakout_serve(Breakout* env) {
    BreakoutState* s = &env->state;
    s->paddle_x = 0.5f * (BREAKOUT_W - s->paddle_width);
    s->ball_x = BREAKOUT_SERVE_X;
    s->ball_y = BREAKOUT_SERVE_Y;
    s->ball_speed = BREAKOUT_SPEED_START;
    s->paddle_hits = 0;
    float angle = (rng_float(&env->h.rng) - 0.5f) * BREAKOUT_HALF_PI;
    s->ball_vx = s->ball_speed * sinf(angle);
    s->ball_vy = s->ball_speed * cosf(angle);
    s->balls_fired++;
}

static void breakout_init(Breakout* env) {
    if (env->config.frameskip < 1) env->config.frameskip = 1;
    if (env->config.max_episode_steps < 0) env->config.max_episode_steps = 0;
}

static void breakout_reset(Breakout* env) {
    BreakoutState* s = &env->state;
    memset(s, 0, sizeof(*s));
    breakout_build_wall(s);
    s->paddle_width = BREAKOUT_PADDLE_W;
    s->balls_left = BREAKOUT_BALLS;
    breakout_serve(env);
    breakout_observe(env);
}

// Whether the ball at (x, y), moving by (dx, dy), starts to overlap the box [x0, x1) x [y0, y1)
// during the move; if so, *t_hit is when (a fraction of the move, in [0, 1]) and *normal_y says
// whether the face met is horizontal.
static inline int breakout_sweep(float x, float y, float dx, float dy, float x0, float y0,
                                 float x1, float y1, float* t_hit, int* normal_y) {
    // The ball's corner against the box grown by the ball's size (the Minkowski sum).
    float lo_x = x0 - BREAKOUT_BALL, lo_y = y0 - BREAKOUT_BALL;
    float tx_in, tx_out, ty_in, ty_out;
    if (dx > 0) { tx_in = (lo_x - x) / dx; tx_out = (x1 - x) / dx; }
    else if (dx < 0) { tx_in = (x1 - x) / dx; tx_out = (lo_x - x) / dx; }
    else if (x > lo_x && x < x1) { tx_in = -INFINITY; tx_out = INFINITY; }
    else return 0;
    if (dy > 0) { ty_in = (lo_y - y) / dy; ty_out = (y1 - y) / dy; }
    else if (dy < 0) { ty_in = (y1 - y) / dy; ty_out = (lo_y - y) / dy; }
    else if (y > lo_y && y < y1) { ty_in = -INFINITY; ty_out = INFINITY; }
    else return 0;
    float t_in = breakout_max(tx_in, ty_in), t_out = breakout_min(tx_out, ty_out);
    // A contact computed a hair (float rounding) after the ball started touching counts at 0; one
    // whose overlap would already be over (t_out <= 0) is a ball leaving that box.
    if (t_in >= t_out || t_out <= 0.0f || t_in > 1.0f || t_in < -1e-4f) return 0;
    *t_hit = breakout_max(t_in, 0.0f);
    *normal_y = ty_in >= tx_in;
    return 1;
}

// Halve the paddle about its centre, once.
static inline void breakout_shrink_paddle(BreakoutState* s) {
    if (s->paddle_width > 0.5f * BREAKOUT_PADDLE_W) {
        s->paddle_x += 0.25f * BREAKOUT_PADDLE_W;
        s->paddle_width = 0.5f * BREAKOUT_PADDLE_W;
    }
}

static inline void breakout_paddle_bounce(BreakoutState* s) {
    s->paddle_hits++;
    if (s->paddle_hits % 4 == 0)
        s->ball_speed = breakout_min(s->ball_speed + BREAKOUT_SPEED_STEP, BREAKOUT_SPEED_MAX);
    float half = 0.5f * (s->paddle_width + BREAKOUT_BALL);
    float offset = (s->ball_x + 0.5f * BREAKOUT_BALL - s->paddle_x - 0.5f * s->paddle_width) / half;
    float angle = breakout_clamp(offset, -1.0f, 1.0f) * (0.5f * BREAKOUT_HALF_PI);
    s->ball_vx = s->ball_speed * sinf(angle);
    s->ball_vy = -s->ball_speed * cosf(angle);
}

// Earliest brick the move (dx, dy) of the ball at (x, y) meets no later than c->t, written into c.
// Only bricks inside the box swept by the ball are tried (at most 3 columns x 5 rows at 448 px/s).
// Bricks met at the same instant: the one overlapping the ball most along the contact face wins.
static void breakout_brick_contact(const BreakoutState* s, float x, float y, float dx, float dy,
                                   BreakoutContact* c) {
    float y_min = breakout_min(y, y + dy), y_max = breakout_max(y, y + dy) + BREAKOUT_BALL;
    if (y_max < BREAKOUT_WALL_TOP || y_min > BREAKOUT_WALL_BOTTOM) return;
    float x_min = breakout_min(x, x + dx), x_max = breakout_max(x, x + dx) + BREAKOUT_BALL;
    // Clamped while still floats: converting an out-of-range float to int is undefined.
    float top = BREAKOUT_WALL_TOP, bottom = BREAKOUT_WALL_BOTTOM - 1.0f, right = BREAKOUT_W - 1.0f;
    int c0 = (int)(breakout_clamp(x_min, 0.0f, right) / BREAKOUT_BRICK_W);
    int c1 = (int)(breakout_clamp(x_max, 0.0f, right) / BREAKOUT_BRICK_W);
    int r0 = (int)((breakout_clamp(y_min, top, bottom) - top) / BREAKOUT_BRICK_H);
    int r1 = (int)((breakout_clamp(y_max, top, bottom) - top) / BREAKOUT_BRICK_H);
    float best_overlap = -1.0f, t;
    int normal_y;
    for (int r = r0; r <= r1; r++) {
        for (int col = c0; col <= c1; col++) {
            int i = r * BREAKOUT_COLS + col;
            float bx = col * BREAKOUT_BRICK_W, by = BREAKOUT_WALL_TOP + r * BREAKOUT_BRICK_H;
            if (!s->bricks[i] || !breakout_sweep(x, y, dx, dy, bx, by, bx + BREAKOUT_BRICK_W,
                                                 by + BREAKOUT_BRICK_H, &t, &normal_y))
                continue;
            if (t > c->t + 1e-6f) continue;
            float at = normal_y ? x + dx * t : y + dy * t;     // the ball along the face
            float lo = normal_y ? bx : by;
            float hi = lo + (normal_y ? BREAKOUT_BRICK_W : BREAKOUT_BRICK_H);
            float overlap = breakout_min(at + BREAKOUT_BALL, hi) - breakout_max(at, lo);
            int tied = c->hit == BREAKOUT_HIT_BRICK && t >= c->t - 1e-6f;
            if (tied && overlap <= best_overlap) continue;
            c->t = breakout_min(c->t, t);
            c->hit = BREAKOUT_HIT_BRICK, c->brick = i, c->normal_y = normal_y;
            best_overlap = overlap;
        }
    }
}

// One tick: move the paddle by paddle_dx px, then sweep the ball. Returns the points scored; sets
// *lost when the ball reached the floor (it is left resting there).
static int breakout_tick(Breakout* env, float paddle_dx, int* lost) {
    BreakoutState* s = &env->state;
    float lo = 0.0f, hi = BREAKOUT_W - s->paddle_width;
    if (s->ball_y + BREAKOUT_BALL > BREAKOUT_PADDLE_Y &&
        s->ball_y < BREAKOUT_PADDLE_Y + BREAKOUT_PADDLE_H) {    // beside the paddle: it blocks it
        if (s->ball_x >= s->paddle_x + s->paddle_width)
            hi = breakout_min(hi, s->ball_x - s->paddle_width);
        else
            lo = breakout_max(lo, s->ball_x + BREAKOUT_BALL);
    }
    s->paddle_x = breakout_clamp(s->paddle_x + paddle_dx, lo, hi);

    int points = 0;
    float left = 1.0f;       // fraction of the tick still to move
    for (int contacts = 0; left > 0.0f; contacts++) {
        if (contacts == BREAKOUT_MAX_CONTACTS) {
            // Only a ball squeezed between the paddle's side and a wall gets here (every other
            // zero-time bounce loop breaks a brick): let it drop straight down.
            s->ball_vx = 0.0f;
            break;
        }
        float x = s->ball_x, y = s->ball_y;
        float dx = s->ball_vx * (BREAKOUT_DT * left), dy = s->ball_vy * (BREAKOUT_DT * left);
        BreakoutContact c = {1.0f, BREAKOUT_HIT_NONE, 0, -1};
        // Walls: signed distances over the move towards them.
        float to_left = -x, to_right = BREAKOUT_W - BREAKOUT_BALL - x;
        float to_top = -y, to_floor = BREAKOUT_H - BREAKOUT_BALL - y;
        if (dx < 0.0f && to_left / dx < c.t) c.t = to_left / dx, c.hit = BREAKOUT_HIT_SIDE_WALL;
        if (dx > 0.0f && to_right / dx < c.t) c.t = to_right / dx, c.hit = BREAKOUT_HIT_SIDE_WALL;
        if (dy < 0.0f && to_top / dy < c.t) c.t = to_top / dy, c.hit = BREAKOUT_HIT_TOP_WALL;
        if (dy > 0.0f && to_floor / dy < c.t) c.t = to_floor / dy, c.hit = BREAKOUT_HIT_FLOOR;
        c.t = breakout_max(c.t, 0.0f);
        breakout_brick_contact(s, x, y, dx, dy, &c);
        float t;
        int normal_y;
        float px = s->paddle_x, py = BREAKOUT_PADDLE_Y;
        if (y + breakout_max(dy, 0.0f) + BREAKOUT_BALL > py &&
            breakout_sweep(x, y, dx, dy, px, py, px + s->paddle_width, py + BREAKOUT_PADDLE_H, &t,
                           &normal_y) && t < c.t)
            c.t = t, c.hit = BREAKOUT_HIT_PADDLE, c.normal_y = normal_y;

        s->ball_x = x + dx * c.t;
        s->ball_y = y + dy * c.t;
        left *= 1.0f - c.t;
        // Each contact puts the ball exactly against the face (no rounding drift into it), then
        // reflects it.
        if (c.hit == BREAKOUT_HIT_NONE) {
            break;
        } else if (c.hit == BREAKOUT_HIT_SIDE_WALL) {
            s->ball_x = dx < 0.0f ? 0.0f : BREAKOUT_W - BREAKOUT_BALL;
            s->ball_vx = -s->ball_vx;
        } else if (c.hit == BREAKOUT_HIT_TOP_WALL) {
            s->ball_y = 0.0f;
            s->ball_vy = -s->ball_vy;
            breakout_shrink_paddle(s);
        } else if (c.hit == BREAKOUT_HIT_FLOOR) {
            s->ball_y = BREAKOUT_H - BREAKOUT_BALL;
            *lost = 1;
            break;
        } else if (c.hit == BREAKOUT_HIT_BRICK) {
            int row = c.brick / BREAKOUT_COLS;
            float bx = (c.brick % BREAKOUT_COLS) * BREAKOUT_BRICK_W;
            float by = BREAKOUT_WALL_TOP + row * BREAKOUT_BRICK_H;
            if (c.normal_y) {
                s->ball_y = dy > 0.0f ? by - BREAKOUT_BALL : by + BREAKOUT_BRICK_H;
                s->ball_vy = -s->ball_vy;
            } else {
                s->ball_x = dx > 0.0f ? bx - BREAKOUT_BALL : bx + BREAKOUT_BRICK_W;
                s->ball_vx = -s->ball_vx;
            }
            s->bricks[c.brick] = 0;
            points += BREAKOUT_ROW_POINTS[row];
            s->score += BREAKOUT_ROW_POINTS[row];
            if (row < 3 && s->ball_speed < BREAKOUT_SPEED_MAX) {
                float scale = BREAKOUT_SPEED_MAX / s->ball_speed;
                s->ball_vx *= scale;
                s->ball_vy *= scale;
                s->ball_speed = BREAKOUT_SPEED_MAX;
            }
        } else if (c.normal_y && dy > 0.0f) {   // the paddle's top face
            s->ball_y = BREAKOUT_PADDLE_Y - BREAKOUT_BALL;
            breakout_paddle_bounce(s);
        } else {   // a paddle side: the ball is below the top face already (and lost)
            s->ball_x = dx > 0.0f ? s->paddle_x - BREAKOUT_BALL : s->paddle_x + s->paddle_width;
            s->ball_vx = -s->ball_vx;
        }
    }
    return points;
}

static void breakout_step(Breakout* env) {
    BreakoutState* s = &env->state;
    float velocity;                          // paddle velocity, in units of 620 px/s
    if (env->config.continuous) {
        velocity = ((float*)env->h.actions)[0];
        velocity = velocity != velocity ? 0.0f : breakout_clamp(velocity, -1.0f, 1.0f);
    } else {
        int action = ((int*)env->h.actions)[0];
        velocity = action == BREAKOUT_LEFT ? -1.0f : action == BREAKOUT_RIGHT ? 1.0f : 0.0f;
    }
    float paddle_dx = velocity * (BREAKOUT_PADDLE_SPEED * BREAKOUT_DT);

    int points = 0, over = 0;
    for (int f = 0; f < env->config.frameskip && !over; f++) {
        int lost = 0;
        points += breakout_tick(env, paddle_dx, &lost);
        if (lost) {
            s->balls_left--;
            if (s->balls_left <= 0) over = 1;
            else breakout_serve(env);
        }
        if (s->score >= BREAKOUT_MAX_SCORE) over = 1;
        if (!s->wall_rebuilt && s->score >= BREAKOUT_WALL_POINTS &&
            (s->ball_y >= BREAKOUT_WALL_BOTTOM || s->ball_y + BREAKOUT_BALL <= BREAKOUT_WALL_TOP)) {
            breakout_build_wall(s);
            s->wall_rebuilt = 1;
        }
    }
    s->steps++;
    float reward = points * env->config.reward_scale;
    s->episode_return += reward;
    int truncated = !over && env->config.max_episode_steps > 0 &&
                    s->steps >= env->config.max_episode_steps;
    env->h.rewards[0] = reward;
    env->h.terminals[0] = (unsigned char)over;
    env->h.truncations[0] = (unsigned char)truncated;
    if (over || truncated) {
        log_episode(&env->h.log, s->episode_return, (float)s->steps, (float)s->score,
                    s->score / (float)BREAKOUT_MAX_SCORE);
        breakout_reset(env);
    } else {
        breakout_observe(env);
    }
}

static void breakout_close(Breakout* env) {
    (void)env;
}
