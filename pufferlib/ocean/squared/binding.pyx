cdef extern from "squared.h":
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


cdef class Binding(VecEnv):
    def __init__(self, observations, actions, rewards, terminals, truncations, int num_envs,
                 seed=0, int size=11, int crash_at_step=-1):
        self.setup(sizeof(Squared), <env_fn>squared_reset, <env_fn>squared_step,
                   <env_fn>squared_close, observations, actions, rewards, terminals, truncations,
                   num_envs, size * size, 1, 5, seed)
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
