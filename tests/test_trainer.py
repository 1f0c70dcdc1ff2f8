"""Trainer: prioritized sampling, importance weights, the PPO update, policies, config, checkpoints."""
import copy
import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pufferlib.examples import Match
from pufferlib.exceptions import APIUsageError, CheckpointError
from pufferlib.trainer import checkpoint, ppo
from pufferlib.trainer.config import load_config, parse_value
from pufferlib.trainer.policy import (Default, LSTMWrapper, logprob_entropy, make_policy,
                                      sample_actions)


# small tensors: one torch thread (conftest.py's one_thread)
pytestmark = pytest.mark.usefixtures('one_thread')


def small_config(**train):
    config = load_config('match')
    config['train'].update(bptt_horizon=4, batch_size=128, minibatch_size=64, total_timesteps=4096,
                           checkpoint_interval=2, optimizer='adam', learning_rate=0.003,
                           torch_threads=1, precision='float32')
    config['train'].update(train)
    config['policy'].update(hidden_size=16, lstm=False)
    return config


def make_trainer(config, num_envs=8, lstm=False):
    env = Match(num_envs=num_envs, seed=3)
    torch.manual_seed(0)
    policy = make_policy(env, config['policy']['hidden_size'], 1, lstm)
    return ppo.Trainer(config['train'], env, policy)


# ---- prioritized replay -----------------------------------------------------------------------

def test_alpha_zero_samples_uniformly_with_unit_weights():
    torch.manual_seed(0)
    advantages = torch.randn(8, 5) * torch.arange(1, 9).unsqueeze(1)  # very unequal rows
    counts = torch.zeros(8)
    draws = 8000
    for _ in range(draws):
        rows, weight = ppo.prioritized_sample(advantages, 2, alpha=0.0, beta=0.5)
        assert rows.unique().numel() == 2
        assert torch.allclose(weight, torch.ones(2))
        counts[rows] += 1
    freq = counts / draws
    sigma = (0.25 * 0.75 / draws) ** 0.5
    assert (freq - 0.25).abs().max() < 5 * sigma


def test_alpha_positive_follows_priorities():
    torch.manual_seed(1)
    advantages = torch.tensor([[1.0, -1.0], [2.0, 2.0], [0.0, 0.5], [-4.0, 0.0], [0.0, 0.0]])
    alpha = 0.8
    w = advantages.abs().sum(1) ** alpha
    p = w / w.sum()
    draws = 10000
    counts = torch.zeros(5)
    for _ in range(draws):
        rows, _ = ppo.prioritized_sample(advantages, 1, alpha, beta=0.3)
        counts[rows] += 1
    freq = counts / draws
    sigma = (p * (1 - p) / draws).sqrt()
    assert ((freq - p).abs() <= 5 * sigma + 1e-3).all(), (freq, p)
    assert counts[4] <= 5  # zero priority: only the 1e-6 floor


def test_importance_weights_match_formula():
    torch.manual_seed(2)
    advantages = torch.randn(16, 8)
    alpha, beta = 0.6, 0.4
    rows, weight = ppo.prioritized_sample(advantages, 6, alpha, beta)
    w = advantages.abs().sum(1) ** alpha
    w = w + w.sum() * 1e-6 / 16
    p = w / w.sum()
    expected = (16 * p[rows]) ** -beta
    assert torch.allclose(weight, expected / expected.max(), rtol=1e-5)
    assert weight.max() == 1


def test_drawing_every_row_gives_unit_weights():
    """A minibatch of the whole buffer has no sampling bias: the weights must not shrink the
    gradient (before the fix their mean was (S p) ** -beta / max, 0.28 at the end of training)."""
    torch.manual_seed(3)
    advantages = torch.randn(6, 4) * torch.arange(1, 7).unsqueeze(1)   # very unequal priorities
    rows, weight = ppo.prioritized_sample(advantages, 6, alpha=0.8, beta=1.0)
    assert sorted(rows.tolist()) == list(range(6))
    assert torch.equal(weight, torch.ones(6))


def test_nan_and_zero_priorities_are_guarded():
    advantages = torch.zeros(4, 3)
    rows, weight = ppo.prioritized_sample(advantages, 4, 0.8, 0.5)
    assert sorted(rows.tolist()) == [0, 1, 2, 3] and torch.allclose(weight, torch.ones(4))
    advantages[0, 0] = float('nan')
    advantages[1, 0] = 3.0
    rows, weight = ppo.prioritized_sample(advantages, 3, 0.8, 0.5)
    assert len(set(rows.tolist())) == 3 and torch.isfinite(weight).all()


# ---- the update --------------------------------------------------------------------------------

def snapshot_loss(trainer, snap):
    """The PPO loss of the whole snapshot buffer with the trainer's current policy."""
    cfg, H = trainer.cfg, cfg_h(trainer)
    adv = snap['advantages']
    norm = ((adv - adv.mean()) / (adv.std() + 1e-8)).reshape(-1)
    with torch.no_grad():
        logits, values = trainer.policy(snap['observations'], None)
        loss, _, _ = ppo.ppo_loss(cfg, trainer.action_space, logits, values,
                                  snap['actions'].reshape(-1), snap['logprobs'].reshape(-1), norm,
                                  snap['values'][:, :H].reshape(-1),
                                  (adv + snap['values'][:, :H]).reshape(-1))
    return loss.item()


def cfg_h(trainer):
    return trainer.cfg['bptt_horizon']


def test_one_update_decreases_the_loss():
    config = small_config(prio_alpha=0.0, minibatch_size=128, update_epochs=1, learning_rate=0.01)
    trainer = make_trainer(config, num_envs=32)
    trainer.rollout()
    buf = trainer.buffer
    ppo.compute_advantage(buf.values, buf.rewards, buf.terminals, buf.truncations, buf.ratio,
                          buf.advantages, trainer.cfg['gamma'], trainer.cfg['gae_lambda'], 1.0, 1.0)
    snap = {k: getattr(buf, k).clone() for k in
            ('observations', 'actions', 'logprobs', 'values', 'advantages')}
    before = snapshot_loss(trainer, snap)
    trainer.update()
    after = snapshot_loss(trainer, snap)
    assert after < before - 1e-4, (before, after)


def test_update_writes_back_ratios_and_values():
    config = small_config(prio_alpha=0.0, minibatch_size=64, update_epochs=1)
    trainer = make_trainer(config, num_envs=32)
    trainer.rollout()
    values = trainer.buffer.values.clone()
    trainer.update()
    assert not torch.equal(trainer.buffer.ratio, torch.ones_like(trainer.buffer.ratio))
    assert not torch.equal(trainer.buffer.values[:, :4], values[:, :4])
    assert torch.equal(trainer.buffer.values[:, 4], values[:, 4])  # column H is never written back
    assert trainer.epoch == 1 and set(ppo_loss_keys()) <= set(trainer.losses)


def ppo_loss_keys():
    return ('policy_loss', 'value_loss', 'entropy', 'approx_kl', 'clipfrac', 'importance',
            'explained_variance', 'learning_rate')


def test_gradient_accumulation_matches_one_big_minibatch():
    """With max_minibatch_size below minibatch_size the same gradient is accumulated in pieces."""
    grads = []
    for max_mb in (128, 32):
        config = small_config(prio_alpha=0.0, minibatch_size=128, max_minibatch_size=max_mb,
                              max_grad_norm=1e9, learning_rate=0.0)
        trainer = make_trainer(config, num_envs=32)
        trainer.rollout()
        torch.manual_seed(5)
        trainer.update()
        # with lr 0 Adam leaves the weights alone; compare the last accumulated gradients instead
        grads.append(trainer.optimizers[0].state[trainer.policy.actor.weight]['exp_avg'].clone())
    assert trainer.accumulate == 4
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_non_finite_loss_names_the_epoch():
    class NaNMatch(Match):
        def step(self, actions):
            out = super().step(actions)
            if self.steps >= 20:
                self.rewards[:] = np.nan
            return out
    config = small_config()
    env = NaNMatch(num_envs=8)
    trainer = ppo.Trainer(config['train'], env, make_policy(env, 16, 1, False))
    with pytest.raises(FloatingPointError, match='non-finite loss at epoch [0-9]+'):
        for _ in range(10):
            trainer.rollout()
            trainer.update()


def test_batch_size_errors_show_the_arithmetic():
    with pytest.raises(APIUsageError, match='not a multiple of train.bptt_horizon 4'):
        ppo.derived_sizes({**small_config()['train'], 'batch_size': 130}, 8)
    with pytest.raises(APIUsageError, match='fewer than the 64 agents'):
        ppo.derived_sizes({**small_config()['train'], 'batch_size': 128}, 64)


def test_learns_match_quickly():
    config = small_config(batch_size=512, minibatch_size=128, total_timesteps=40000,
                          learning_rate=0.01, ent_coef=0.0)
    trainer = make_trainer(config, num_envs=32)
    while not trainer.done:
        trainer.rollout()
        trainer.update()
    assert trainer.buffer.rewards[:, 1:].mean() > 0.8  # random play scores 0.25


# ---- policies ----------------------------------------------------------------------------------

def test_lstm_wrapper_keeps_the_inner_initialisation():
    torch.manual_seed(0)
    inner = Default(spaces.Box(0, 1, (6,)), spaces.Discrete(3), hidden_size=8)
    before = copy.deepcopy(inner.state_dict())
    wrapped = LSTMWrapper(inner)
    for key, value in before.items():
        assert torch.equal(wrapped.policy.state_dict()[key], value), key
    assert inner.actor.weight.abs().max() < 0.05  # the 0.01-std head survives


def test_lstm_cell_matches_lstm_and_shares_weights():
    torch.manual_seed(0)
    policy = LSTMWrapper(Default(spaces.Box(0, 1, (6,)), spaces.Discrete(3), hidden_size=8))
    assert policy.cell.weight_ih is policy.lstm.weight_ih_l0
    assert policy.cell.weight_hh is policy.lstm.weight_hh_l0
    B, T = 5, 7
    obs = torch.rand(B, T, 6)
    h0, c0 = torch.randn(B, 8), torch.randn(B, 8)
    logits, values = policy(obs, (h0, c0))
    state, step_logits, step_values = (h0, c0), [], []
    for t in range(T):
        lg, v, state = policy.forward_step(obs[:, t], state)
        step_logits.append(lg)
        step_values.append(v)
    assert torch.allclose(logits.view(B, T, 3), torch.stack(step_logits, 1), atol=1e-5)
    assert torch.allclose(values.view(B, T), torch.stack(step_values, 1), atol=1e-5)
    with torch.no_grad():
        policy.lstm.weight_hh_l0.mul_(0.5)  # one update reaches both
    assert torch.equal(policy.cell.weight_hh, policy.lstm.weight_hh_l0)


@pytest.mark.parametrize('space', [spaces.Discrete(4), spaces.MultiDiscrete([3, 2, 5]),
                                   spaces.Box(-1, 1, (2,), np.float32)])
def test_action_distributions(space):
    torch.manual_seed(0)
    policy = Default(spaces.Box(0, 1, (6,)), space, hidden_size=8)
    logits, _, _ = policy.forward_step(torch.rand(64, 6))
    actions, logprob = sample_actions(logits, space)
    again, entropy = logprob_entropy(logits, actions, space)
    assert torch.allclose(logprob, again, atol=1e-5)
    assert (entropy > 0).all()
    if isinstance(space, spaces.Discrete):
        assert actions.min() >= 0 and actions.max() < 4
        ref = torch.distributions.Categorical(logits=logits)
        assert torch.allclose(logprob, ref.log_prob(actions), atol=1e-5)
        assert torch.allclose(entropy, ref.entropy(), atol=1e-5)
    elif isinstance(space, spaces.MultiDiscrete):
        assert actions.shape == (64, 3) and (actions < torch.tensor([3, 2, 5])).all()
    else:
        ref = torch.distributions.Normal(logits[0], logits[1].exp())
        assert torch.allclose(logprob, ref.log_prob(actions).sum(-1), atol=1e-5)
        assert torch.allclose(entropy, ref.entropy().sum(-1), atol=1e-5)


def parity_mask(observations):
    """A stand-in env rule: action a is allowed iff observation feature a is positive."""
    return observations[..., :4] > 0


@pytest.mark.parametrize('lstm', [False, True])
def test_action_mask_keeps_disallowed_actions_out_of_sampling_training_and_entropy(lstm):
    torch.manual_seed(0)
    space = spaces.Discrete(4)
    policy = Default(spaces.Box(-1, 1, (6,)), space, hidden_size=8, action_mask=parity_mask)
    policy = LSTMWrapper(policy) if lstm else policy
    obs = torch.rand(4096, 6) * 2 - 1
    obs[:, 0] = obs[:, 0].abs() + 0.1             # one action always allowed
    allowed = parity_mask(obs)
    state = (torch.zeros(4096, 8), torch.zeros(4096, 8)) if lstm else None
    logits, _, _ = policy.forward_step(obs, state)
    actions, logprob = sample_actions(logits, space)
    assert allowed[torch.arange(4096), actions].all()
    # training recomputes the mask from the stored observations: the same log-probabilities
    train_logits, _ = policy.forward(obs.reshape(64, 64, 6), (state[0][:64], state[1][:64])
                                     if lstm else None)
    if not lstm:
        assert torch.allclose(train_logits, logits)
    again, entropy = logprob_entropy(train_logits, actions, space)
    ref = torch.distributions.Categorical(logits=train_logits.masked_fill(~allowed, -float('inf')))
    assert torch.allclose(entropy, ref.entropy(), atol=1e-5)
    probs = torch.softmax(train_logits, -1)
    assert (probs[~allowed] == 0).all()
    (again.mean() + entropy.mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in policy.parameters() if p.grad is not None)


def test_make_policy_takes_the_envs_action_mask():
    from pufferlib.ocean.connect4.connect4 import Connect4
    env = Connect4(num_envs=2)
    assert make_policy(env, 8, 1, lstm=False).action_mask is Connect4.action_mask
    assert make_policy(env, 8, 1, lstm=True).policy.action_mask is Connect4.action_mask
    assert make_policy(env, 8, 1, lstm=False, action_mask=False).action_mask is None
    obs = torch.rand(5, 6)
    for bad, what in ((lambda o: o[..., :3] > 0, 'bool of shape \\(5, 4\\)'),
                      (lambda o: o[..., :4], 'returned torch.float32')):
        policy = Default(spaces.Box(0, 1, (6,)), spaces.Discrete(4), 8, action_mask=bad)
        with pytest.raises(APIUsageError, match=what):
            policy.forward_step(obs)
    with pytest.raises(TypeError, match='action mask needs Discrete'):
        Default(spaces.Box(0, 1, (6,)), spaces.Box(-1, 1, (2,)), 8, action_mask=parity_mask)


def test_gumbel_sampling_follows_the_distribution():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.7]])).expand(30000, 3)
    actions, _ = sample_actions(logits, spaces.Discrete(3))
    freq = torch.bincount(actions, minlength=3) / 30000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.7]), atol=0.015)


def test_emulated_dict_observations_are_restored():
    from pufferlib.emulation import GymnasiumPufferEnv
    import gymnasium

    class DictEnv(gymnasium.Env):
        observation_space = spaces.Dict({'pos': spaces.Box(-1, 1, (2,), np.float32),
                                         'cell': spaces.Box(0, 255, (3,), np.uint8)})
        action_space = spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            return {'pos': np.array([0.5, -0.5], np.float32),
                    'cell': np.array([1, 2, 3], np.uint8)}, {}

        def step(self, action):
            return self.reset()[0], 0.0, False, False, {}

    env = GymnasiumPufferEnv(DictEnv())
    obs, _ = env.reset()
    policy = Default(env.single_observation_space, env.single_action_space, 8,
                     emulated=env.emulated)
    assert policy.obs_size == 5  # 2 floats + 3 bytes, not the row's raw byte count
    restored = policy.restore(torch.as_tensor(obs))
    assert restored['pos'].tolist() == [[0.5, -0.5]]
    assert restored['cell'].tolist() == [[1, 2, 3]]


# ---- config ------------------------------------------------------------------------------------

def test_config_overrides_and_types():
    config = load_config('squared', ['--train.learning_rate', '3e-4', '--vec.num_envs=2',
                                     '--env.size', '7', '--policy.lstm', 'true'])
    assert config['train']['learning_rate'] == 3e-4
    assert config['vec']['num_envs'] == 2
    assert config['env']['size'] == 7
    assert config['policy']['lstm'] is True
    assert config['train']['gamma'] == 0.99          # squared.ini over default.ini
    assert config['train']['optimizer'] == 'muon'    # default.ini
    assert parse_value('None') is None and parse_value('abc') == 'abc'


def test_unknown_keys_list_close_matches():
    with pytest.raises(APIUsageError, match='--train.learnig_rate.*did you mean --train.learning_rate'):
        load_config('squared', ['--train.learnig_rate', '1'])
    with pytest.raises(APIUsageError, match='unknown option --trian.gamma.*--train.gamma'):
        load_config('squared', ['--trian.gamma', '1'])
    with pytest.raises(APIUsageError, match='has no value'):
        load_config('squared', ['--train.gamma'])
    with pytest.raises(APIUsageError, match='unexpected argument'):
        load_config('squared', ['gamma'])


def test_env_keys_come_from_the_constructor():
    from pufferlib.ocean import env_creator
    config = load_config('squared', ['--env.report_interval', '7'], env_creator('squared'))
    assert config['env']['report_interval'] == 7
    with pytest.raises(APIUsageError, match='did you mean --env.report_interval'):
        load_config('squared', ['--env.report_intervl', '7'], env_creator('squared'))


def test_every_shipped_config_loads():
    from pufferlib.trainer.config import CONFIG_DIR, SECTIONS
    for path in CONFIG_DIR.glob('*.ini'):
        config = load_config(path.stem)
        assert set(config) == set(SECTIONS) >= {'env', 'vec', 'train', 'policy'}


# ---- checkpoints -------------------------------------------------------------------------------

def run(config, tmp_path, resume=None, num_envs=8):
    config = copy.deepcopy(config)
    config['train']['data_dir'] = str(tmp_path)
    env = Match(num_envs=num_envs, seed=1)
    policy = make_policy(env, config['policy']['hidden_size'], 1, config['policy']['lstm'])
    return ppo.train('match', config, env, policy, resume=resume), policy


def test_checkpoint_round_trip_and_resume(tmp_path):
    config = small_config(total_timesteps=128 * 4)
    config['policy']['lstm'] = True
    trainer, policy = run(config, tmp_path)
    run_dir = trainer.run_dir
    files = sorted(p.name for p in run_dir.glob('checkpoint_*.pt'))
    assert files == ['checkpoint_000002.pt', 'checkpoint_000004.pt']
    assert not list(run_dir.glob('*.tmp*'))
    lines = [json.loads(line) for line in open(run_dir / 'log.jsonl')]
    assert [r['epoch'] for r in lines] == [1, 2, 3, 4]
    payload = checkpoint.load_checkpoint(run_dir)
    # the first rollout takes one step more: the column H of the last rows
    assert payload['trainer']['global_step'] == 512 + 8 and payload['trainer']['epoch'] == 4
    for key, value in policy.state_dict().items():
        assert torch.equal(payload['model'][key], value)

    config['train']['total_timesteps'] = 128 * 6
    resumed, resumed_policy = run(config, tmp_path, resume=run_dir / 'checkpoint_000004.pt')
    assert resumed.run_dir == run_dir
    assert resumed.epoch == 6 and resumed.global_step == 520 + 256 + 8  # a fresh env: +1 step again
    lines = [json.loads(line) for line in open(run_dir / 'log.jsonl')]
    assert [r['epoch'] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[4]['agent_steps'] == 520 + 128 + 8


def test_resume_restores_optimizer_and_rng(tmp_path):
    config = small_config(total_timesteps=128 * 2)
    trainer, policy = run(config, tmp_path)
    payload = checkpoint.load_checkpoint(trainer.run_dir)
    state = payload['trainer']
    env = Match(num_envs=8)
    fresh = ppo.Trainer(config['train'], env, make_policy(env, 16, 1, False))
    checkpoint.load_model(fresh.policy, payload)
    fresh.load_state_dict(state)
    exp_avg = trainer.optimizers[0].state_dict()['state'][0]['exp_avg']
    assert torch.equal(fresh.optimizers[0].state_dict()['state'][0]['exp_avg'], exp_avg)
    assert fresh.global_step == 256 + 8 and fresh.epoch == 2
    assert torch.equal(torch.get_rng_state(), state['rng']['torch'])


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    config = small_config(total_timesteps=256)
    trainer, _ = run(config, tmp_path)
    path = sorted(trainer.run_dir.glob('checkpoint_*.pt'))[-1]
    data = path.read_bytes()
    bad = tmp_path / 'checkpoint_999999.pt'
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='corrupt'):
        checkpoint.load_checkpoint(bad)
    bad.write_text('hello')
    with pytest.raises(CheckpointError, match='corrupt'):
        checkpoint.load_checkpoint(bad)
    with pytest.raises(CheckpointError, match='does not exist'):
        checkpoint.load_checkpoint(tmp_path / 'nope.pt')
    other = copy.deepcopy(config)
    other['policy']['hidden_size'] = 32
    with pytest.raises(CheckpointError, match='different policy.*32'):
        run(other, tmp_path, resume=path)
    payload = checkpoint.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="saved by a 'match' run, not 'squared'"):
        env = Match(num_envs=8)
        ppo.train('squared', config, env, make_policy(env, 16, 1, False), resume=path)


@pytest.mark.slow
def test_solves_squared_with_its_config():
    """The committed squared.ini reaches the target in most episodes (random play: ~10%)."""
    from pufferlib.trainer import cli
    config = cli.load('squared', ['--train.torch_threads', '1'])
    vecenv = cli.make_vecenv('squared', config)
    torch.manual_seed(0)
    trainer = ppo.Trainer(config['train'], vecenv, cli.build_policy(vecenv, config))
    try:
        while not trainer.done:
            trainer.rollout()
            trainer.update()
            trainer.epoch_summary()
    finally:
        vecenv.close()
    assert trainer.env_stats['perf'] > 0.8, trainer.env_stats


def test_log_counts_every_episode_once(tmp_path):
    """4 sub-envs, 8-step episodes, stats reported every 16 env steps, 4 env steps per epoch (5 in
    the first: the column H of the last rows): epochs 4, 8, 12, 16 report 8 episodes each and the
    other epochs none (before the fix they repeated the previous report, count included)."""
    config = small_config(total_timesteps=16 * 16, batch_size=16, minibatch_size=16)
    config['train']['data_dir'] = str(tmp_path)
    env = Match(num_envs=4, episode_length=8, report_interval=16, seed=1)
    trainer = ppo.train('match', config, env, make_policy(env, 16, 1, lstm=False))
    lines = [json.loads(line) for line in open(trainer.run_dir / 'log.jsonl')]
    assert [r['epoch'] for r in lines] == list(range(1, 17))
    counts = {r['epoch']: r['environment/n'] for r in lines if 'environment/n' in r}
    assert counts == {4: 8, 8: 8, 12: 8, 16: 8}
    assert all(not any(k.startswith('environment/') for k in r) for r in lines
               if r['epoch'] % 4)
    assert trainer.env_stats['episode_length'] == 8    # the dashboard keeps the latest episodes


def test_lstm_training_forward_replays_the_rollout_across_episode_ends():
    """Rows with episode ends inside them (3-step episodes, 8-step rows): the training forward
    must restart the LSTM where the rollout did, so it gives the rollout's log-probs and values
    (before the fix those rows differed by up to ~0.5 in log-prob)."""
    config = small_config(bptt_horizon=8, batch_size=8 * 8)
    env = Match(num_envs=8, episode_length=3, seed=3)
    torch.manual_seed(0)
    policy = make_policy(env, 16, 1, lstm=True)
    trainer = ppo.Trainer(config['train'], env, policy)
    for _ in range(2):        # the second rollout starts from states carried across rollouts
        trainer.rollout()
    buf, H = trainer.buffer, 8
    starts = (buf.terminals[:, :H] + buf.truncations[:, :H]) > 0
    assert starts[:, 1:].any(1).all()     # every row has an episode start inside it
    with torch.no_grad():
        logits, values = policy(buf.observations, (buf.start_h, buf.start_c), starts)
        logprob, _ = logprob_entropy(logits, buf.actions.reshape(-1), env.single_action_space)
    assert torch.allclose(logprob.view(-1, H), buf.logprobs, atol=1e-5)
    assert torch.allclose(values.view(-1, H), buf.values[:, :H], atol=1e-5)
    trainer.update()          # the update goes through the same path
    assert torch.allclose(trainer.buffer.ratio, torch.ones_like(trainer.buffer.ratio), atol=1e-4)
