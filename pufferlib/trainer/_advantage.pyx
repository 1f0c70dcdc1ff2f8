# The CPU advantage kernel (advantage.h) for Python. The caller (advantage.py) has already checked
# dtypes, shapes and contiguity; this layer only hands the raw addresses to C without the GIL.
from libc.stdint cimport int64_t, uintptr_t

cdef extern from "advantage.h":
    ctypedef struct AdvantageArgs:
        const float* values
        const float* rewards
        const float* terminals
        const float* truncations
        const float* importance
        float* advantages
        int64_t segments, horizon
        float gamma, lam, rho_clip, c_clip
    void advantage_compute(const AdvantageArgs* p, int num_threads) nogil


def compute(uintptr_t values, uintptr_t rewards, uintptr_t terminals, uintptr_t truncations,
            uintptr_t importance, uintptr_t advantages, int64_t segments, int64_t horizon,
            float gamma, float lam, float rho_clip, float c_clip, int num_threads):
    """Addresses of C-contiguous float32 buffers: four (segments, horizon + 1), then importance
    and advantages (segments, horizon). Writes advantages."""
    cdef AdvantageArgs args
    args.values = <const float*>values
    args.rewards = <const float*>rewards
    args.terminals = <const float*>terminals
    args.truncations = <const float*>truncations
    args.importance = <const float*>importance
    args.advantages = <float*>advantages
    args.segments, args.horizon = segments, horizon
    args.gamma, args.lam, args.rho_clip, args.c_clip = gamma, lam, rho_clip, c_clip
    with nogil:
        advantage_compute(&args, num_threads)
