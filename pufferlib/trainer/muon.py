"""Muon whose Newton-Schulz iteration runs in a chosen dtype.

torch.optim.Muon always orthogonalizes in bfloat16 (torch/optim/_muon.py), fast on GPUs and on CPUs
with AMX tiles and emulated slowly elsewhere (Connect4's 2x384 MLP on an AMD EPYC without AMX:
3.7k agent-steps/s with it, 16.7k with Adam). This is the same update (Nesterov momentum, torch's
quintic iteration and coefficients, no weight decay) with `ns_dtype` float32 where bfloat16 is
slow. The state ('momentum_buffer') and param-group keys are those of torch.optim.Muon, so
checkpoints of either load into the other.
"""
import math

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)   # torch.optim.Muon's defaults
NS_STEPS = 5
EPS = 1e-7


def orthogonalize(matrix, dtype, steps=NS_STEPS):
    """About U V^T of matrix = U S V^T (singular values pushed to roughly 0.7-1.2), in `dtype`."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=EPS)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def lr_scale(shape, adjust_lr_fn):
    rows, cols = shape
    if adjust_lr_fn == 'match_rms_adamw':
        return 0.2 * math.sqrt(max(rows, cols))
    return math.sqrt(max(1, rows / cols))   # 'original'


class Muon(torch.optim.Optimizer):
    """Muon for 2-D parameters: p -= lr * lr_scale * orthogonalize(nesterov momentum of grad)."""

    def __init__(self, params, lr, momentum=0.95, adjust_lr_fn='match_rms_adamw',
                 ns_dtype=torch.float32):
        super().__init__(params, dict(lr=lr, momentum=momentum, adjust_lr_fn=adjust_lr_fn))
        if any(p.ndim != 2 for group in self.param_groups for p in group['params']):
            raise ValueError('Muon updates 2-D parameters only')
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                state = self.state[p]
                if 'momentum_buffer' not in state:
                    state['momentum_buffer'] = torch.zeros_like(p, memory_format=torch.preserve_format)
                buf = state['momentum_buffer']
                buf.lerp_(p.grad, 1 - group['momentum'])
                update = orthogonalize(p.grad.lerp(buf, group['momentum']), self.ns_dtype)
                p.add_(update.to(p.dtype), alpha=-group['lr'] * lr_scale(p.shape, group['adjust_lr_fn']))
