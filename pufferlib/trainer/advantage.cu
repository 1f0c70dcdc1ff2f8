// The CUDA advantage kernel and its torch binding, built at run time by advantage.py with
// torch.utils.cpp_extension.load. One thread per row runs advantage_row from advantage.h: the same
// function the CPU kernel runs for its leftover rows, so the CPU tests cover its arithmetic.
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include "advantage.h"

__global__ void advantage_kernel(const float* __restrict__ values, const float* __restrict__ rewards,
        const float* __restrict__ terminals, const float* __restrict__ truncations,
        const float* __restrict__ importance, float* __restrict__ advantages, int64_t segments,
        int64_t horizon, float gamma, float lam, float rho_clip, float c_clip) {
    int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= segments) return;
    int64_t width = horizon + 1;
    advantage_row(values + row * width, rewards + row * width, terminals + row * width,
            truncations + row * width, importance + row * horizon, advantages + row * horizon,
            horizon, gamma, lam, rho_clip, c_clip);
}

// advantage.py checks shapes and names the bad argument; these checks guard direct callers.
static void check(const torch::Tensor& x, const char* name, const torch::Tensor& values,
        int64_t columns) {
    TORCH_CHECK(x.is_cuda() && x.device() == values.device(), name, " must be on ", values.device());
    TORCH_CHECK(x.scalar_type() == torch::kFloat32, name, " must be float32");
    TORCH_CHECK(x.dim() == 2 && x.size(0) == values.size(0) && x.size(1) == columns,
            name, " has the wrong shape");
    TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
}

void compute(torch::Tensor values, torch::Tensor rewards, torch::Tensor terminals,
        torch::Tensor truncations, torch::Tensor importance, torch::Tensor advantages,
        double gamma, double lam, double rho_clip, double c_clip) {
    TORCH_CHECK(values.dim() == 2 && values.size(1) >= 1, "values must be (segments, horizon + 1)");
    int64_t segments = values.size(0), horizon = values.size(1) - 1;
    check(values, "values", values, horizon + 1);
    check(rewards, "rewards", values, horizon + 1);
    check(terminals, "terminals", values, horizon + 1);
    check(truncations, "truncations", values, horizon + 1);
    check(importance, "importance", values, horizon);
    check(advantages, "advantages", values, horizon);
    if (segments == 0 || horizon == 0) return;
    const c10::cuda::CUDAGuard guard(values.device());
    const int threads = 256;
    const int64_t blocks = (segments + threads - 1) / threads;
    advantage_kernel<<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            values.data_ptr<float>(), rewards.data_ptr<float>(), terminals.data_ptr<float>(),
            truncations.data_ptr<float>(), importance.data_ptr<float>(),
            advantages.data_ptr<float>(), segments, horizon, (float)gamma, (float)lam,
            (float)rho_clip, (float)c_clip);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("compute", &compute, "V-trace-clipped GAE over (segments, horizon) rows, in place");
}
