"""Running statistics for observation normalization and reward scaling.

`RunningNorm` is a module whose mean, variance and count are buffers, so they travel in the
state_dict of whatever holds them: the policy's (observations: saved in every checkpoint, restored
by `puffer eval` and `--resume`) or the trainer's checkpoint state (rewards). The statistics change
only between epochs (`Trainer.update_normalizers`), so a rollout and the update that trains on it
see the same normalization and the training forward replays the rollout's log-probs exactly.
"""
import torch
from torch import nn

CLIP = 10.0   # normalized observations are clipped to [-CLIP, CLIP]


class RunningNorm(nn.Module):
    """Mean and variance of the rows of everything passed to `update`, merged with Chan's parallel
    formula. `forward(x)` is (x - mean) / sqrt(var + eps), clipped; before any update it is x."""

    def __init__(self, size, eps=1e-8):
        super().__init__()
        self.eps = eps
        self.register_buffer('mean', torch.zeros(size))
        self.register_buffer('var', torch.ones(size))
        self.register_buffer('count', torch.zeros(()))

    @torch.no_grad()
    def update(self, x):
        x = x.reshape(-1, self.mean.numel()).double()
        n = x.shape[0]
        if n == 0:
            return
        mean, var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = mean - self.mean.double()
        new_mean = self.mean.double() + delta * n / total
        m2 = self.var.double() * self.count + var * n + delta ** 2 * self.count * n / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x):
        if not self.count:
            return x
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-CLIP, CLIP)

    def scale(self, x):
        """x / std (reward scaling: no centring, no clipping)."""
        if not self.count:
            return x
        return x / torch.sqrt(self.var + self.eps)


class ReturnScaler(nn.Module):
    """Reward scaling as in PPO implementations (Engstrom et al. 2020): rewards divided by the
    running standard deviation of each agent's discounted return. `returns` accumulates per agent
    and restarts where an episode ends."""

    def __init__(self, num_agents, gamma):
        super().__init__()
        self.gamma = gamma
        self.stats = RunningNorm(1)
        self.register_buffer('returns', torch.zeros(num_agents))
        self.pending = []    # this epoch's returns, added to stats between epochs

    @torch.no_grad()
    def observe(self, rewards, dones, rows):
        """Rewards of the agents `rows` (an index or a slice) that arrived with `dones`."""
        ret = self.returns[rows] * self.gamma + rewards
        self.pending.append(ret.clone())
        self.returns[rows] = ret * (1 - dones)

    @torch.no_grad()
    def update(self):
        if self.pending:
            self.stats.update(torch.cat(self.pending))
        self.pending = []

    def forward(self, rewards):
        return self.stats.scale(rewards)
