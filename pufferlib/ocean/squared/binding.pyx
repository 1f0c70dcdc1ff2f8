cdef extern from "squared.h":
    int SQUARED_NUM_ACTIONS
    int squared_side(int size) nogil
    ctypedef struct SquaredConfig:
        int size
        int crash_at_step
    ctypedef struct SquaredState:
        int agent_row, agent_col, target_row, target_col, tick, total_steps
        float episode_return
    ctypedef struct Squared:
        SquaredConfig config
        SquaredState state
    void squared_init(Squared* env) nogil
    void squared_reset(Squared* env) nogil
    void squared_step(Squared* env) nogil
    void squared_close(Squared* env) nogil

include "../env_binding.pxi"


NUM_ACTIONS = SQUARED_NUM_ACTIONS


def obs_size(int size=11):
    """Floats per observation row: one per grid cell."""
    return squared_side(size) ** 2


cdef class Binding(VecEnv):
    def __init__(self, buffers, int num_envs, seed=0, int size=11, int crash_at_step=-1):
        self.setup(buffers, num_envs, seed, sizeof(Squared), <env_fn>squared_reset,
                   <env_fn>squared_step, <env_fn>squared_close, obs_size=obs_size(size),
                   num_actions=SQUARED_NUM_ACTIONS)
        cdef Squared* env
        for i in range(num_envs):
            env = <Squared*>self.env(i)
            env.config.size = size
            env.config.crash_at_step = crash_at_step
            squared_init(env)

    def get_state(self, int i):
        return (<Squared*>self.env(i)).state

    def set_state(self, int i, **fields):
        cdef Squared* env = <Squared*>self.env(i)
        env.state = merged_state(env.state, fields)
