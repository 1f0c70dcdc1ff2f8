# Included by every Ocean binding.pyx: buffer checks, sub-env allocation and wiring, the C loops
# over sub-envs (GIL released), log aggregation and close. A game's binding declares its struct and
# functions, then subclasses VecEnv and sets its config fields in __init__.
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free
import numpy as np

cdef extern from "env_binding.h":
    ctypedef struct Log:
        float episode_return
        float episode_length
        float score
        float perf
        float n
    ctypedef struct EnvHead:
        float* observations
        void* actions
        float* rewards
        unsigned char* terminals
        unsigned char* truncations
        Log log
        uint64_t rng
    uint64_t splitmix64(uint64_t x) nogil

ctypedef void (*env_fn)(void*) noexcept nogil


def check_buffer(name, arr, dtype, int rows, int row_size):
    """Raise ValueError naming `name` unless arr is a C-contiguous `dtype` array with at least
    `rows` rows of `row_size` values."""
    if not isinstance(arr, np.ndarray):
        raise ValueError(f'{name} must be a numpy array, got {type(arr).__name__}')
    if arr.dtype != np.dtype(dtype):
        raise ValueError(f'{name} has dtype {arr.dtype}, expected {np.dtype(dtype)}')
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise ValueError(f'{name} must be a writeable C-contiguous array')
    if arr.ndim == 0 or arr.shape[0] < rows:
        raise ValueError(f'{name} has {arr.shape[0] if arr.ndim else 0} rows, expected at least '
                         f'{rows} (one per sub-env)')
    if arr.size != arr.shape[0] * row_size:
        raise ValueError(f'{name} rows hold {arr.size // arr.shape[0]} values, expected {row_size}')


def merged_state(state, fields):
    """`state` (a game's state struct as a dict) updated with `fields`; unknown names raise KeyError."""
    unknown = set(fields) - set(state)
    if unknown:
        raise KeyError(f'unknown state fields {sorted(unknown)}; known: {sorted(state)}')
    state.update(fields)
    return state


cdef class VecEnv:
    cdef char* envs
    cdef size_t env_size
    cdef readonly int num_envs
    cdef int obs_size, action_size, num_actions
    cdef env_fn c_reset, c_step, c_close
    cdef int* int_actions
    cdef object buffers

    cdef void setup(self, buffers, int num_envs, seed, size_t env_size, env_fn c_reset,
                    env_fn c_step, env_fn c_close, int obs_size, int num_actions,
                    int action_size=1) except *:
        """Wire `num_envs` sub-envs of `env_size` bytes to rows of `buffers` (a dict of arrays by
        name, NativeEnv.buffers()) and seed them. num_actions > 0: int32 actions checked against
        [0, num_actions) on every step; num_actions == 0: float32 actions, which the game must
        clamp (NaN included)."""
        if num_envs < 1:
            raise ValueError(f'num_envs is {num_envs}: it must be at least 1')
        dtypes = {'observations': np.float32, 'actions': np.int32 if num_actions else np.float32,
                  'rewards': np.float32, 'terminals': np.bool_, 'truncations': np.bool_}
        if not isinstance(buffers, dict) or any(name not in buffers for name in dtypes):
            got = sorted(buffers) if isinstance(buffers, dict) else type(buffers).__name__
            raise ValueError(f'buffers must be a dict with the arrays {", ".join(dtypes)}; got {got}')
        row_sizes = {'observations': obs_size, 'actions': action_size}
        for name in dtypes:
            check_buffer(name, buffers[name], dtypes[name], num_envs, row_sizes.get(name, 1))
        self.envs = <char*>calloc(num_envs, env_size)
        if self.envs == NULL:
            raise MemoryError(f'cannot allocate {num_envs} sub-envs')
        self.buffers = {name: buffers[name] for name in dtypes}   # kept alive while wired
        self.env_size, self.num_envs = env_size, num_envs
        self.obs_size, self.action_size, self.num_actions = obs_size, action_size, num_actions
        self.c_reset, self.c_step, self.c_close = c_reset, c_step, c_close
        self.int_actions = <int*><size_t>buffers['actions'].ctypes.data
        cdef int i
        cdef size_t obs = buffers['observations'].ctypes.data, act = buffers['actions'].ctypes.data
        cdef size_t rew = buffers['rewards'].ctypes.data, term = buffers['terminals'].ctypes.data
        cdef size_t trunc = buffers['truncations'].ctypes.data
        cdef EnvHead* h
        for i in range(num_envs):
            h = self.head(i)
            h.observations = <float*>obs + i * obs_size
            h.actions = <void*>(act + 4 * i * action_size)
            h.rewards = <float*>rew + i
            h.terminals = <unsigned char*>term + i
            h.truncations = <unsigned char*>trunc + i
            h.rng = splitmix64(<uint64_t>((seed + i) & 0xFFFFFFFFFFFFFFFF))

    cdef inline EnvHead* head(self, int i) noexcept nogil:
        return <EnvHead*>(self.envs + i * self.env_size)

    cdef void* env(self, int i) except NULL:
        """Sub-env i, for a game's own accessors: IndexError when out of range, ValueError when closed."""
        self.check_open()
        if i < 0 or i >= self.num_envs:
            raise IndexError(f'env_id {i} is out of range for {self.num_envs} sub-envs')
        return self.envs + i * self.env_size

    cdef check_open(self):
        if self.envs == NULL:
            raise ValueError('closed')

    def reset(self, seed=None):
        """Reset every sub-env; with a seed, sub-env i is reseeded from seed + i."""
        self.check_open()
        cdef int i
        if seed is not None:
            for i in range(self.num_envs):
                self.head(i).rng = splitmix64(<uint64_t>((seed + i) & 0xFFFFFFFFFFFFFFFF))
        with nogil:
            for i in range(self.num_envs):
                self.c_reset(self.head(i))

    def step(self):
        """Step every sub-env on the actions in the shared buffer. Out-of-range discrete actions
        raise ValueError naming the sub-env and value, before any sub-env steps."""
        self.check_open()
        cdef int i, n = self.num_envs * self.action_size, bad = -1
        if self.num_actions:
            for i in range(n):
                if self.int_actions[i] < 0 or self.int_actions[i] >= self.num_actions:
                    bad = i
                    break
            if bad >= 0:
                raise ValueError(f'action {self.int_actions[bad]} of sub-env {bad // self.action_size} '
                                 f'is outside 0..{self.num_actions - 1}')
        with nogil:
            for i in range(self.num_envs):
                self.c_step(self.head(i))

    def log(self):
        """Means over the episodes finished since the last call (each counted once), plus `n`;
        {} when none finished. Clears the sums."""
        self.check_open()
        cdef Log total
        cdef Log* log
        total.episode_return = total.episode_length = total.score = total.perf = total.n = 0
        for i in range(self.num_envs):
            log = &self.head(i).log
            total.episode_return += log.episode_return
            total.episode_length += log.episode_length
            total.score += log.score
            total.perf += log.perf
            total.n += log.n
            log.episode_return = log.episode_length = log.score = log.perf = log.n = 0
        if total.n == 0:
            return {}
        return {'episode_return': total.episode_return / total.n,
                'episode_length': total.episode_length / total.n,
                'score': total.score / total.n, 'perf': total.perf / total.n, 'n': int(total.n)}

    @property
    def closed(self):
        return self.envs == NULL

    def close(self):
        """Idempotent: a second close is a no-op; any other call after close raises ValueError."""
        if self.envs == NULL:
            return
        for i in range(self.num_envs):
            self.c_close(self.head(i))
        free(self.envs)
        self.envs = NULL
        self.buffers = None

    def __dealloc__(self):
        self.close()
