cdef extern from "breakout.h":
    int BREAKOUT_OBS, BREAKOUT_NUM_ACTIONS
    ctypedef struct BreakoutConfig:
        int frameskip
        int continuous
        float reward_scale
        int max_episode_steps
    ctypedef struct BreakoutState:
        float paddle_x, paddle_width, ball_x, ball_y, ball_vx, ball_vy, ball_speed
        int paddle_hits, balls_left, balls_fired, score, wall_rebuilt, steps
        float episode_return
        int bricks[108]
    ctypedef struct Breakout:
        BreakoutConfig config
        BreakoutState state
    void breakout_init(Breakout* env) nogil
    void breakout_reset(Breakout* env) nogil
    void breakout_step(Breakout* env) nogil
    void breakout_close(Breakout* env) nogil
    void breakout_observe(Breakout* env) nogil

include "../env_binding.pxi"


NUM_ACTIONS = BREAKOUT_NUM_ACTIONS


def obs_size():
    """Floats per observation row (the header's BREAKOUT_OBS)."""
    return BREAKOUT_OBS


cdef class Binding(VecEnv):
    def __init__(self, buffers, int num_envs, seed=0, int frameskip=4, bint continuous=False,
                 float reward_scale=1.0, int max_episode_steps=27000):
        # continuous: one float32 paddle velocity per sub-env (num_actions 0)
        self.setup(buffers, num_envs, seed, sizeof(Breakout), <env_fn>breakout_reset,
                   <env_fn>breakout_step, <env_fn>breakout_close, obs_size=BREAKOUT_OBS,
                   num_actions=0 if continuous else BREAKOUT_NUM_ACTIONS)
        cdef Breakout* env
        for i in range(num_envs):
            env = <Breakout*>self.env(i)
            env.config.frameskip = frameskip
            env.config.continuous = continuous
            env.config.reward_scale = reward_scale
            env.config.max_episode_steps = max_episode_steps
            breakout_init(env)

    def get_state(self, int i):
        return (<Breakout*>self.env(i)).state

    def set_state(self, int i, **fields):
        """Test-only: overwrite state fields of sub-env i; its observation row is rewritten."""
        cdef Breakout* env = <Breakout*>self.env(i)
        env.state = merged_state(env.state, fields)
        breakout_observe(env)
