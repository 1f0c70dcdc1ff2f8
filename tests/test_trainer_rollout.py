"""The policy step shared by the trainer's rollout and `puffer eval` (per-agent LSTM state, masks,
sampled or greedy env actions), the episode-statistics weighting, and the old import paths of the
names that moved out of ppo.py and cli.py."""
from collections import defaultdict

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pufferlib.examples import Match
from pufferlib.trainer import checkpoint, cli, distributed, ppo, rollout
from pufferlib.trainer.buffer import is_range
from pufferlib.trainer.config import load_config
from pufferlib.trainer.policy import Default, LSTMWrapper, make_policy, state_size
from pufferlib.trainer.rollout import (add_episode_stats, agent_states, episode_means,
                                       policy_step)


def lstm_policy(action_space=spaces.Discrete(3)):
    torch.manual_seed(0)
    return LSTMWrapper(Default(spaces.Box(-1, 1, (6,)), action_space, hidden_size=8))


def batch(obs, ids, terminals=None, masks=None):
    n = len(ids)
    terminals = np.zeros(n, bool) if terminals is None else np.asarray(terminals)
    return (obs, np.zeros(n, np.float32), terminals, np.zeros(n, bool), [], np.asarray(ids),
            None if masks is None else np.asarray(masks))


@pytest.mark.parametrize('ids', [[0, 1, 2, 3], [3, 1]])   # a slice (views) and an index tensor
def test_policy_step_resets_the_lstm_state_at_episode_ends_and_keeps_absent_agents_state(ids):
    policy = lstm_policy()
    states = agent_states(policy, 4, 'cpu')
    states[0][:] = torch.randn(4, 8)
    states[1][:] = torch.randn(4, 8)
    before = (states[0].clone(), states[1].clone())
    n = len(ids)
    obs = np.random.default_rng(0).uniform(-1, 1, (n, 6)).astype(np.float32)
    terminals = [True] + [False] * (n - 1)
    masks = [True] * (n - 1) + [False]                     # the last agent of the batch is absent
    record, state, actions = policy_step(policy, states, batch(obs, ids, terminals, masks),
                                         spaces.Discrete(3), 'cpu')
    # the reference: the input state is the stored one, zero where the episode ended
    h0, c0 = before[0][ids].clone(), before[1][ids].clone()
    h0[0], c0[0] = 0, 0
    assert torch.equal(state[0], h0) and torch.equal(state[1], c0)   # not the new state
    with torch.no_grad():
        logits, values, (h1, c1) = policy.forward_step(torch.as_tensor(obs), (h0, c0))
    assert torch.allclose(record['values'], values)
    assert record['observations'].shape == (n, 6) and record['logprobs'].shape == (n,)
    for k, agent in enumerate(ids):
        expect = (h1[k], c1[k]) if masks[k] else (h0[k], c0[k])   # absent: keeps its input state
        assert torch.allclose(states[0][agent], expect[0]) and torch.allclose(states[1][agent], expect[1])
    for agent in set(range(4)) - set(ids):                 # agents not in the batch: untouched
        assert torch.equal(states[0][agent], before[0][agent])
    assert actions.dtype == np.int32 and actions.shape == (n,)
    assert np.array_equal(actions, record['actions'].numpy())


def test_greedy_policy_step_takes_the_most_likely_action_in_the_envs_range():
    space = spaces.MultiDiscrete([3, 4], start=[1, -2])
    torch.manual_seed(0)
    policy = Default(spaces.Box(-1, 1, (6,)), space, hidden_size=8)
    obs = np.random.default_rng(1).uniform(-1, 1, (5, 6)).astype(np.float32)
    record, state, actions = policy_step(policy, None, batch(obs, range(5)), space, 'cpu',
                                         greedy=True)
    with torch.no_grad():
        logits, _, _ = policy.forward_step(torch.as_tensor(obs))
    expect = np.stack([logits[:, :3].argmax(1).numpy() + 1, logits[:, 3:].argmax(1).numpy() - 2], 1)
    assert state is None and record['logprobs'] is None
    assert actions.dtype == np.int32 and np.array_equal(actions, expect)


def test_box_actions_are_clipped_to_the_space():
    space = spaces.Box(-0.5, 0.5, (2,), np.float32)
    out = rollout.to_env_actions(torch.tensor([[2.0, -0.25], [-3.0, 0.1]]), space)
    assert out.dtype == np.float32 and np.array_equal(out, np.float32([[0.5, -0.25], [-0.5, 0.1]]))


def test_episode_stats_are_weighted_by_episode_count():
    sums, counts = defaultdict(float), defaultdict(float)
    add_episode_stats([{'n': 3, 'score': 10.0, 'win': True}, {'score': 30.0, 'perf': 0.5},
                       'not a dict', {'n': 0, 'score': 1e9}], sums, counts)
    add_episode_stats({'n': 2, 'score': np.float32(5.0)}, sums, counts)   # a dict: one report
    # score: (3 * 10 + 1 * 30 + 2 * 5) / 6; perf from the one report that has it; bools left out
    assert episode_means(sums, counts) == pytest.approx({'n': 6.0, 'score': 70 / 6, 'perf': 0.5})
    assert episode_means(defaultdict(float), defaultdict(float)) == {}


def test_trainer_and_eval_report_the_same_episode_means():
    """Both go through policy_step and add_episode_stats: the same seeds and a greedy policy give
    the same episodes, so the trainer's first epoch of stats equals what evaluate() reports."""
    config = load_config('match')
    config['train'].update(bptt_horizon=4, batch_size=8 * 32, minibatch_size=64, seed=5)
    env = Match(num_envs=8, report_interval=32)
    policy = make_policy(env, 16, 1, lstm=False)
    stats = cli.evaluate(Match(num_envs=8, report_interval=32), policy, config, episodes=32)
    trainer = ppo.Trainer(config['train'], env, policy)
    trainer.rollout()
    trainer.epoch_summary()
    assert stats['episodes'] == trainer.env_stats['n'] == 8 * 32 // 8
    assert stats['episode_length'] == trainer.env_stats['episode_length'] == 8


def test_lstm_detection_and_range_test_have_one_home():
    policy = lstm_policy()
    assert state_size(policy) == 8 and state_size(policy.policy) == 0
    assert agent_states(policy.policy, 4, 'cpu') is None
    assert is_range(np.array([2, 3, 4])) and not is_range(np.array([2, 4])) and not is_range([])
    assert rollout.agent_index(np.array([2, 3]), 'cpu') == slice(2, 4)
    assert torch.equal(rollout.agent_index(np.array([3, 2]), 'cpu'), torch.tensor([3, 2]))


def test_moved_names_still_import_from_ppo():
    """Moved to checkpoint.py, distributed.py and rollout.py: importable from ppo for a release."""
    for module, names in ((checkpoint, ('load_checkpoint', 'load_model', 'save_checkpoint',
                                        'rng_state', 'set_rng_state', 'make_loggers')),
                          (distributed, ('init_distributed', 'close_distributed', 'rank_and_world',
                                         'all_gather', 'merge_epoch_stats', 'wrap_ddp', 'agree',
                                         'catch_stop_signals')),
                          (rollout, ('agent_index',))):
        for name in names:
            assert getattr(ppo, name) is getattr(module, name), name
