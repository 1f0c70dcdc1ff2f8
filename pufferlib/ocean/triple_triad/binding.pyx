cdef extern from "triple_triad.h":
    int TT_OBS_SIZE, TT_FEATURES_SIZE, TT_NUM_ACTIONS
    ctypedef struct TripleTriadConfig:
        int max_steps
        float invalid_penalty
        int features
    ctypedef struct TripleTriadState:
        int owner[9]
        int card[9]
        int values[10][4]
        int location[10]
        int selected[2]
        int score[2]
        int tick
        float episode_return
    ctypedef struct TripleTriad:
        TripleTriadConfig config
        TripleTriadState state
    void triple_triad_init(TripleTriad* env) nogil
    void triple_triad_reset(TripleTriad* env) nogil
    void triple_triad_step(TripleTriad* env) nogil
    void triple_triad_close(TripleTriad* env) nogil
    void triple_triad_observe(TripleTriad* env) nogil

include "../env_binding.pxi"

NUM_ACTIONS = TT_NUM_ACTIONS


def obs_size(bint features=False):
    """Floats per observation row: 114, then the 131 features with `features`."""
    return TT_OBS_SIZE + features * TT_FEATURES_SIZE


cdef class Binding(VecEnv):
    def __init__(self, buffers, int num_envs, seed=0, int max_steps=30, float invalid_penalty=0.1,
                 bint features=False):
        self.setup(buffers, num_envs, seed, sizeof(TripleTriad), <env_fn>triple_triad_reset,
                   <env_fn>triple_triad_step, <env_fn>triple_triad_close,
                   obs_size=obs_size(features), num_actions=TT_NUM_ACTIONS)
        cdef TripleTriad* env
        for i in range(num_envs):
            env = <TripleTriad*>self.env(i)
            env.config.max_steps = max_steps
            env.config.invalid_penalty = invalid_penalty
            env.config.features = features
            triple_triad_init(env)

    def get_state(self, int i):
        """Sub-env i's state as a dict (tests and the renderer)."""
        return (<TripleTriad*>self.env(i)).state

    def set_state(self, int i, **fields):
        """Tests only: overwrite state fields of sub-env i (a consistent state is the caller's job),
        then rewrite its observation row."""
        cdef TripleTriad* env = <TripleTriad*>self.env(i)
        env.state = merged_state(env.state, fields)
        triple_triad_observe(env)
