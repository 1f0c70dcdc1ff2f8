"""Float32Muon: torch's Muon with its Newton-Schulz iteration in float32."""
import torch

from pufferlib.trainer import ppo
from pufferlib.trainer.muon import Float32Muon, newton_schulz_float32

COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz_float64(update, steps=5, eps=1e-7):
    a, b, c = COEFFICIENTS
    x = update.double()
    tall = x.size(0) > x.size(1)
    x = x.T if tall else x
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def one_step(optimizer_class, weight, grad, steps=1, **kwargs):
    p = torch.nn.Parameter(weight.clone())
    opt = optimizer_class([p], lr=0.01, weight_decay=0.0, momentum=0.9, **kwargs)
    for _ in range(steps):
        p.grad = grad.clone()
        opt.step()
    return p.detach(), opt


def test_newton_schulz_float32_matches_a_float64_reference_wide_and_tall():
    g = torch.Generator().manual_seed(0)
    for shape in ((16, 48), (48, 16), (32, 32)):
        update = torch.randn(*shape, generator=g)
        ours = newton_schulz_float32(update, COEFFICIENTS, 5, 1e-7)
        assert ours.dtype == torch.float32 and ours.shape == shape
        torch.testing.assert_close(ours.double(), newton_schulz_float64(update), atol=1e-5, rtol=0)


def test_float32_muon_steps_like_torch_muon_within_bfloat16_error():
    g = torch.Generator().manual_seed(1)
    weight, grad = torch.randn(24, 40, generator=g), torch.randn(24, 40, generator=g)
    for adjust in ('original', 'match_rms_adamw'):
        ours, _ = one_step(Float32Muon, weight, grad, steps=3, adjust_lr_fn=adjust)
        theirs, _ = one_step(torch.optim.Muon, weight, grad, steps=3, adjust_lr_fn=adjust)
        moved = (theirs - weight).abs().max()
        assert moved > 0.01
        # bfloat16 keeps 8 bits of mantissa: the two differ by ~1% of the step, not more
        assert (ours - theirs).abs().max() < 0.05 * moved
        assert not torch.equal(ours, theirs)


def test_float32_muon_state_loads_into_torch_muon_and_back():
    weight, grad = torch.randn(8, 8), torch.randn(8, 8)
    _, ours = one_step(Float32Muon, weight, grad)
    p = torch.nn.Parameter(weight.clone())
    theirs = torch.optim.Muon([p], lr=0.01, weight_decay=0.0, momentum=0.9)
    theirs.load_state_dict(ours.state_dict())
    buffer = theirs.state[p]['momentum_buffer']
    torch.testing.assert_close(buffer, 0.1 * grad)


def test_make_optimizers_picks_float32_newton_schulz_for_float32_training():
    policy = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    cfg = dict(optimizer='muon', learning_rate=0.01, adam_beta1=0.9, adam_beta2=0.999,
               adam_eps=1e-8, muon_adjust_lr='match_rms_adamw', device='cpu')
    muon, adam = ppo.make_optimizers(policy, dict(cfg, precision='float32'))
    assert type(muon) is Float32Muon and type(adam) is torch.optim.Adam
    assert [p.shape for p in muon.param_groups[0]['params']] == [(8, 4), (2, 8)]
    muon, _ = ppo.make_optimizers(policy, dict(cfg, precision='bfloat16'))
    assert type(muon) is torch.optim.Muon
