"""pufferlib.trainer.muon: torch.optim.Muon's update, with the Newton-Schulz iteration in float32."""
import pytest
import torch

from pufferlib.trainer.muon import Muon, orthogonalize


def two_steps(optimizer_class, weights, grads, **kwargs):
    """The parameter after two steps of the optimizer from `weights` with the given gradients."""
    p = torch.nn.Parameter(weights.clone())
    opt = optimizer_class([p], lr=0.01, momentum=0.9, adjust_lr_fn='match_rms_adamw', **kwargs)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach(), opt


@pytest.mark.parametrize('shape', [(48, 20), (20, 48)])
def test_bfloat16_update_is_torch_muons(shape):
    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(shape, generator=gen)
    grads = [torch.randn(shape, generator=gen) for _ in range(2)]
    ours, opt = two_steps(Muon, weights, grads, ns_dtype=torch.bfloat16)
    theirs, torch_opt = two_steps(torch.optim.Muon, weights, grads, weight_decay=0.0)
    assert torch.equal(ours, theirs)
    assert torch.equal(opt.state_dict()['state'][0]['momentum_buffer'],
                       torch_opt.state_dict()['state'][0]['momentum_buffer'])


def test_float32_iteration_is_float32():
    """In float32 the iteration matches float64 to float32 rounding; bfloat16 is 1e-2 away."""
    matrix = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    exact = orthogonalize(matrix.double(), torch.float64)
    assert orthogonalize(matrix, torch.float32).dtype == torch.float32
    assert (orthogonalize(matrix, torch.float32).double() - exact).abs().max() < 1e-5
    assert (orthogonalize(matrix, torch.bfloat16).double() - exact).abs().max() > 1e-3
    singular_values = torch.linalg.svdvals(exact)
    assert singular_values.min() > 0.6 and singular_values.max() < 1.3


def test_float32_step_moves_like_torch_muon():
    gen = torch.Generator().manual_seed(2)
    weights = torch.randn(30, 40, generator=gen)
    grads = [torch.randn(30, 40, generator=gen) for _ in range(2)]
    ours, _ = two_steps(Muon, weights, grads, ns_dtype=torch.float32)
    theirs, _ = two_steps(torch.optim.Muon, weights, grads, weight_decay=0.0)
    assert ours.dtype == torch.float32
    assert 0 < (ours - theirs).abs().max() < 1e-3


def test_rejects_parameters_that_are_not_matrices():
    with pytest.raises(ValueError, match='2-D parameters only'):
        Muon([torch.nn.Parameter(torch.zeros(3))], lr=0.1)


def test_trainer_picks_float32_muon_where_bfloat16_is_slow():
    from pufferlib.trainer.ppo import make_optimizers
    policy = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    cfg = {'optimizer': 'muon', 'learning_rate': 0.01, 'adam_beta1': 0.9, 'adam_beta2': 0.99,
           'adam_eps': 1e-8, 'muon_adjust_lr': 'match_rms_adamw'}
    muon, adam = make_optimizers(policy, cfg, 'float32')
    assert isinstance(muon, Muon) and muon.ns_dtype == torch.float32
    assert [p.shape for p in muon.param_groups[0]['params']] == [(8, 4), (2, 8)]
    assert make_optimizers(policy, cfg, 'bfloat16')[0].ns_dtype == torch.bfloat16
