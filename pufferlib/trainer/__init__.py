"""PPO with prioritized segment replay, advantage kernels (C and CUDA), policies, CLI."""
