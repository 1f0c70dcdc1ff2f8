from libc.stdint cimport uint64_t

cdef extern from "connect4.h":
    int C4_OBS_SIZE, C4_FEATURES_SIZE, C4_NUM_ACTIONS
    ctypedef struct Connect4Config:
        float opponent_random_prob
        int features
    ctypedef struct Connect4State:
        uint64_t agent, opponent, last_agent, last_opponent
        int tick
    ctypedef struct Connect4:
        Connect4Config config
        Connect4State state
    uint64_t C4_BOARD, C4_BOTTOM
    void connect4_init(Connect4* env) nogil
    void connect4_reset(Connect4* env) nogil
    void connect4_step(Connect4* env) nogil
    void connect4_close(Connect4* env) nogil
    void connect4_observe(Connect4* env) nogil
    int connect4_choices(uint64_t me, uint64_t other) nogil
    uint64_t c4_playable(uint64_t mask) nogil
    uint64_t c4_column_mask(int col) nogil
    int c4_won(uint64_t p) nogil

include "../env_binding.pxi"


def check_position(uint64_t agent, uint64_t opponent):
    """ValueError unless the two bitboards are a physical position: no overlap, no bit outside the
    board, every column filled from the bottom without gaps."""
    cdef uint64_t mask = agent | opponent
    if agent & opponent or mask & ~C4_BOARD:
        raise ValueError('agent and opponent bitboards overlap or have bits outside the 6x7 board')
    for c in range(7):
        col = (mask & c4_column_mask(c)) >> (7 * c)
        if col & (col + 1):
            raise ValueError(f'column {c} has a gap under a piece')


NUM_ACTIONS = C4_NUM_ACTIONS


def obs_size(bint features=False):
    """Floats per observation row: the board, then the 5 feature planes with `features`."""
    return C4_OBS_SIZE + features * C4_FEATURES_SIZE


cdef class Binding(VecEnv):
    def __init__(self, buffers, int num_envs, seed=0, float opponent_random_prob=0.0,
                 bint features=False):
        self.setup(buffers, num_envs, seed, sizeof(Connect4), <env_fn>connect4_reset,
                   <env_fn>connect4_step, <env_fn>connect4_close, obs_size=obs_size(features),
                   num_actions=C4_NUM_ACTIONS)
        cdef Connect4* env
        for i in range(num_envs):
            env = <Connect4*>self.env(i)
            env.config.opponent_random_prob = opponent_random_prob
            env.config.features = features
            connect4_init(env)

    def get_state(self, int i):
        return (<Connect4*>self.env(i)).state

    def set_state(self, int i, **fields):
        """Test-only: overwrite state fields of sub-env i and rewrite its observation row."""
        cdef Connect4* env = <Connect4*>self.env(i)
        state = merged_state(env.state, fields)
        check_position(state['agent'], state['opponent'])
        env.state = state
        connect4_observe(env)

    def opponent_choices(self, int i, int action):
        """Test-only: the columns the opponent would choose among if the agent played `action` in
        sub-env i now; [] when that move is invalid or ends the game. Changes nothing."""
        cdef Connect4* env = <Connect4*>self.env(i)
        cdef uint64_t mask = env.state.agent | env.state.opponent
        cdef uint64_t move = c4_playable(mask) & c4_column_mask(action) if 0 <= action < 7 else 0
        if not move or c4_won(env.state.agent | move) or mask | move == C4_BOARD:
            return []
        cdef int cols = connect4_choices(env.state.opponent, env.state.agent | move)
        return [c for c in range(7) if cols >> c & 1]
