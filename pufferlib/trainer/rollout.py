"""What the trainer's rollout and evaluation share: one policy step for a batch of agents of a
vector env (`policy_step`), and the env's episode statistics averaged by episode count.

A batch is what one `vecenv.recv()` returns: observations, terminals, truncations, agent ids and
masks of some agents. Each agent of an LSTM policy carries its state (h, c) across steps in
per-agent tensors (`agent_states`); it starts from zero where an episode ended.
"""
import contextlib

import numpy as np
import torch
from gymnasium import spaces

from pufferlib.trainer.buffer import is_range
from pufferlib.trainer.policy import greedy_actions, sample_actions, state_size


def to_float(logits):
    """The policy's output (a tensor, or a (mean, logstd) pair) in float32 (after autocast)."""
    if isinstance(logits, tuple):
        return tuple(x.float() for x in logits)
    return logits.float()


def agent_states(policy, num_agents, device):
    """Zero (h, c) for every agent of an LSTM policy, carried across steps; None for a
    feed-forward one."""
    size = state_size(policy)
    if not size:
        return None
    return (torch.zeros(num_agents, size, device=device),
            torch.zeros(num_agents, size, device=device))


def agent_index(ids, device):
    """Index of a batch's agents into per-agent tensors: a slice for a contiguous range (views
    and plain copies), else an index tensor."""
    if is_range(ids):
        return slice(int(ids[0]), int(ids[-1]) + 1)
    return torch.as_tensor(ids).to(device)


@torch.inference_mode()
def policy_step(policy, states, batch, action_space, device, greedy=False,
                autocast=contextlib.nullcontext()):
    """One step of `policy` for the agents of `batch` (what one vecenv.recv() returned): the
    observations to `device`, each agent's state from `states` (zero where an episode ended
    with this observation), forward_step, actions sampled (greedy: the most likely ones), the
    new states written back into `states` (absent agents, mask False, keep theirs).
    Returns (record, state, env_actions): record holds the observations, actions, logprobs
    (None when greedy) and values as tensors; state is the step's input state (None for a
    feed-forward policy); env_actions the actions as the env takes them."""
    obs, _, terminals, truncations, _, ids, masks = batch
    obs_t = torch.as_tensor(obs).to(device, non_blocking=True)
    state = None
    if states is not None:
        rows = agent_index(ids, device)
        h, c = states[0][rows], states[1][rows]
        ended = np.flatnonzero(np.logical_or(terminals, truncations))
        if len(ended):  # a new episode starts from a zero state
            ended = torch.from_numpy(ended).to(device)
            state = (h.index_fill(0, ended, 0), c.index_fill(0, ended, 0))
        else:  # a copy: `states` is overwritten below and the caller keeps the input state
            state = (h.clone(), c.clone())
    with autocast:
        logits, values, new_state = policy.forward_step(obs_t, state)
    logits, values = to_float(logits), values.float()
    if greedy:
        actions, logprobs = greedy_actions(logits, action_space), None
    else:
        actions, logprobs = sample_actions(logits, action_space)
    if states is not None:
        h, c = new_state[0].float(), new_state[1].float()
        if masks is not None and not masks.all():  # absent agents keep their state
            present = torch.as_tensor(masks).to(device).unsqueeze(1)
            h, c = torch.where(present, h, state[0]), torch.where(present, c, state[1])
        states[0][rows], states[1][rows] = h, c
    record = {'observations': obs_t, 'actions': actions, 'logprobs': logprobs, 'values': values}
    return record, state, to_env_actions(actions, action_space)


def to_env_actions(actions, space):
    """Policy actions (a tensor) as the env takes them: Box actions clipped to the space's
    bounds in its dtype, discrete ones offset by the space's start, as int32."""
    actions = actions.cpu().numpy()
    if isinstance(space, spaces.Box):
        return np.clip(actions.reshape(-1, *space.shape), space.low, space.high).astype(space.dtype)
    start = np.asarray(space.start)
    actions = actions.reshape(-1, *space.shape)
    return (actions + start).astype(np.int32) if start.any() else actions.astype(np.int32)


# ---- episode statistics ------------------------------------------------------------------------

def add_episode_stats(infos, sums, counts):
    """Add the episode statistics of `infos` (a list of dicts, or one dict) into `sums` and
    `counts` (defaultdict(float)): every numeric value weighted by its info's episode count `n`
    (1 when absent), the count `n` itself summed. Bools and non-numbers are skipped."""
    if isinstance(infos, dict):
        infos = [infos]
    for info in infos:
        n = float(info.get('n', 1)) if isinstance(info, dict) else 0
        sums['n'] += n
        counts['n'] = 1.0  # n itself is a count: summed, not averaged
        for key, value in (info.items() if n else ()):
            if key != 'n' and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                sums[key] += float(value) * n
                counts[key] += n


def episode_means(sums, counts):
    """{key: mean weighted by episode count} of what add_episode_stats gathered (in one process,
    or summed over many); 'n' is the number of episodes."""
    return {k: v if k == 'n' else v / counts[k] for k, v in sums.items() if counts.get(k)}
