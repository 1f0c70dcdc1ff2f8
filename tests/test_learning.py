"""Defaults that learn (issue 10): the profile chosen by an env's traits, running normalization,
and the learning targets on the standard tasks (the long ones marked slow)."""
import numpy as np
import pytest
import torch
from gymnasium import spaces

from pufferlib.examples import Match
from pufferlib.trainer import checkpoint, cli, ppo
from pufferlib.trainer.config import load_config
from pufferlib.trainer.defaults import defaults_for
from pufferlib.trainer.normalize import ReturnScaler, RunningNorm
from pufferlib.trainer.policy import logprob_entropy, make_policy


# small tensors: one torch thread (conftest.py's one_thread)
pytestmark = pytest.mark.usefixtures('one_thread')


def test_running_norm_matches_the_statistics_of_everything_seen():
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0, 2.0, (n, 3)) for n in (5, 40, 1, 17)]
    norm = RunningNorm(3)
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(norm(x), x)          # no statistics yet: the identity
    for part in parts:
        norm.update(torch.tensor(part, dtype=torch.float32))
    seen = np.concatenate(parts)
    assert norm.count.item() == 63
    assert np.allclose(norm.mean.numpy(), seen.mean(0), atol=1e-5)
    assert np.allclose(norm.var.numpy(), seen.var(0), atol=1e-4)
    expected = np.clip((1e3 - seen.mean(0)) / np.sqrt(seen.var(0) + 1e-8), -10, 10)
    assert np.allclose(norm(torch.full((1, 3), 1e3)).numpy(), expected)


def test_return_scaler_restarts_returns_at_episode_ends():
    scaler = ReturnScaler(2, gamma=0.5)
    scaler.observe(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]), slice(0, 2))
    scaler.observe(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), slice(0, 2))
    # agent 0: 1, then 0.5 + 1; agent 1: 2 (episode ends), then 2 from a fresh start
    assert torch.equal(torch.cat(scaler.pending), torch.tensor([1.0, 2.0, 1.5, 2.0]))
    scaler.update()
    std = np.std([1.0, 2.0, 1.5, 2.0])
    assert torch.allclose(scaler(torch.tensor([1.0])), torch.tensor([1.0 / std], dtype=torch.float32))


def test_profile_is_chosen_by_traits_and_only_for_envs_without_an_ini():
    box = spaces.Box(-1, 1, (4,), np.float32)
    discrete = defaults_for(box, spaces.Discrete(2), 500)
    continuous = defaults_for(box, spaces.Box(-2, 2, (1,), np.float32), 200)
    assert discrete['train']['update_epochs'] > 1 and discrete['policy']['normalize_observations']
    assert not discrete['train']['normalize_rewards']
    assert continuous['train']['normalize_rewards'] and continuous['policy']['separate_critic']
    image = defaults_for(spaces.Box(0, 255, (84, 84, 3), np.uint8), spaces.Discrete(6))
    assert image['policy'] == {'hidden_size': 128} and image['train']['ent_coef'] == 0.01
    assert 'normalize_observations' not in image['policy']   # the CNN scales uint8 by 1/255
    # an env with its own ini keeps it; the command line wins over the profile
    assert load_config('breakout', profile=discrete)['train']['update_epochs'] == \
        load_config('breakout')['train']['update_epochs']
    config = cli.load('CartPole-v1', ['--train.update_epochs', '2'])
    assert config['train']['update_epochs'] == 2 and config['policy']['normalize_observations']


def small_trainer(tmp_path, lstm=False, **train):
    config = load_config('match')
    config['train'].update(bptt_horizon=8, batch_size=64, minibatch_size=32, total_timesteps=64 * 4,
                           optimizer='adam', learning_rate=0.003, precision='float32',
                           data_dir=str(tmp_path), checkpoint_interval=100, normalize_rewards=True)
    config['train'].update(train)
    config['policy'].update(hidden_size=16, lstm=lstm, normalize_observations=True)
    env = Match(num_envs=8, episode_length=3, seed=2)
    torch.manual_seed(0)
    policy = make_policy(env, 16, 1, lstm, normalize_observations=True)
    return config, env, policy


def test_normalized_rollout_is_replayed_exactly_by_the_update(tmp_path):
    """The statistics change between epochs only: the update's forward gives the rollout's
    log-probs although observations are normalized and rewards scaled."""
    config, env, policy = small_trainer(tmp_path, update_epochs=1, minibatch_size=64)
    trainer = ppo.Trainer(config['train'], env, policy)
    for _ in range(3):
        trainer.rollout()
        trainer.update()
        # one minibatch of the whole buffer: its ratios were computed before the optimizer step.
        # Column 0 is the record carried over from the previous rollout (its policy and stats).
        ratio = trainer.buffer.ratio[:, 1:]
        assert torch.allclose(ratio, torch.ones_like(ratio), atol=1e-4)
    inner = getattr(policy, 'policy', policy)
    assert inner.obs_norm.count.item() == 3 * 64
    assert trainer.reward_scaler.stats.count.item() > 0


def test_normalization_statistics_are_saved_and_restored(tmp_path):
    config, env, policy = small_trainer(tmp_path)
    trainer = ppo.train('match', config, env, policy)
    payload = checkpoint.load_checkpoint(trainer.run_dir)
    assert torch.equal(payload['model']['obs_norm.mean'], policy.obs_norm.mean)
    assert payload['model']['obs_norm.count'].item() == 4 * 64
    fresh = make_policy(env, 16, 1, False, normalize_observations=True)
    checkpoint.load_model(fresh, payload)        # what puffer eval does
    assert torch.equal(fresh.obs_norm.var, policy.obs_norm.var)
    config['train']['total_timesteps'] = 64 * 6
    resumed = ppo.train('match', config, env, make_policy(env, 16, 1, False,
                                                           normalize_observations=True),
                        resume=trainer.run_dir)
    assert resumed.reward_scaler.stats.count.item() > trainer.reward_scaler.stats.count.item()
    saved = payload['trainer']['reward_scaler']['stats.count'].item()
    assert saved == trainer.reward_scaler.stats.count.item()


# ---- learning with the committed defaults ------------------------------------------------------

def train_until(env_id, steps, target, tmp_path, *overrides):
    """Train `env_id` with the committed defaults for at most `steps`, stopping once the mean
    return of the last 100 episodes reaches `target`. Returns (that mean, steps taken)."""
    config = cli.load(env_id, ['--train.total_timesteps', str(steps), '--train.data_dir',
                               str(tmp_path), '--train.checkpoint_interval', str(10**9),
                               *overrides])
    cli.setup_torch(config['train'])
    torch.set_num_threads(1)
    episodes = []      # (mean return, count) per report, the newest last

    def last100():
        window, count = [], 0
        for mean, n in reversed(episodes):
            window.append((mean, n))
            count += n
            if count >= 100:
                break
        return sum(m * n for m, n in window) / count if count >= 100 else float('-inf')

    def on_epoch(trainer, record):
        if 'environment/episode_return' in record:
            episodes.append((record['environment/episode_return'], record['environment/n']))
        return last100() >= target

    with cli.make_vecenv(env_id, config) as vecenv:
        trainer = ppo.train(env_id, config, vecenv, cli.build_policy(vecenv, config),
                            on_epoch=on_epoch)
    return last100(), trainer.global_step


def test_cartpole_learns_quickly_with_the_committed_defaults(tmp_path):
    """The smoke variant of the test below: a random policy averages about 22."""
    mean, steps = train_until('CartPole-v1', 25_000, 150, tmp_path)
    assert mean >= 150, (mean, steps)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cartpole_is_solved_with_the_committed_defaults(tmp_path):
    """CartPole-v1 to a mean of 475 over the last 100 episodes within 100k steps."""
    mean, steps = train_until('CartPole-v1', 100_000, 475, tmp_path)
    assert mean >= 475 and steps <= 100_000, (mean, steps)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize('env_id, steps, target', [
    pytest.param('Acrobot-v1', 300_000, -100, marks=pytest.mark.xfail(
        reason='issue 10: entropy collapses before the goal is found (-500 at 300k)')),
    ('Pendulum-v1', 500_000, -200),
    pytest.param('LunarLander-v3', 1_000_000, 200, marks=pytest.mark.xfail(
        reason='issue 10: below 200 at 1M steps with the vector profile (open)')),
])
def test_standard_tasks_reach_their_targets(tmp_path, env_id, steps, target):
    mean, taken = train_until(env_id, steps, target, tmp_path)
    assert mean >= target, (env_id, mean, taken)
