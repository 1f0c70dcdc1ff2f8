// Shared by every Ocean game: the episode log, the per-sub-env random generator, and the head that
// every game struct begins with, so that env_binding.pxi can wire buffers and logs for any game.
#ifndef PUFFER_ENV_BINDING_H
#define PUFFER_ENV_BINDING_H
#include <stdint.h>
#include <string.h>

// Sums over finished episodes; the binding adds them up across sub-envs and clears them when it
// reports. A game adds one episode to it exactly once, when that episode ends.
typedef struct {
    float episode_return;
    float episode_length;
    float score;
    float perf;
    float n;
} Log;

typedef struct {
    float* observations;        // this sub-env's row(s) of the shared observation buffer
    void* actions;              // int32 (discrete) or float32 (continuous); the game casts
    float* rewards;
    unsigned char* terminals;
    unsigned char* truncations;
    Log log;
    uint64_t rng;               // this sub-env's random state, seeded from (seed + sub-env index)
} EnvHead;

static inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t rng_next(uint64_t* state) {
    *state += 0x9E3779B97F4A7C15ull;
    return splitmix64(*state);
}

// Uniform integer in [0, n), n > 0 (multiply-shift: no modulo bias worth speaking of for small n).
static inline int rng_int(uint64_t* state, int n) {
    return (int)(((rng_next(state) >> 32) * (uint64_t)n) >> 32);
}

// Uniform float in [0, 1).
static inline float rng_float(uint64_t* state) {
    return (float)(rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

static inline void log_episode(Log* log, float episode_return, float episode_length, float score,
                               float perf) {
    log->episode_return += episode_return;
    log->episode_length += episode_length;
    log->score += score;
    log->perf += perf;
    log->n += 1.0f;
}
#endif
