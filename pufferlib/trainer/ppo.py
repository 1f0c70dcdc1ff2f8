"""PPO with prioritized segment replay.

`Trainer(config, vecenv, policy)` alternates `rollout()` (fill the segment buffer from the vector
env) and `update()` (PPO minibatches drawn by priority). `train(...)` runs that loop with the
dashboard, the JSON log and the checkpoints. The algorithm is in docs/training.md; names follow
the papers: `mb_` is a minibatch, `S` segments (rows), `H` the bptt horizon (columns).

Under torchrun (`init_distributed`) every rank runs this same loop on its own vector env and
buffer; DistributedDataParallel averages the gradients, `epoch_summary` merges the ranks'
statistics, and only rank 0 writes logs and checkpoints (docs/training.md, "Many processes").
"""
import contextlib
import datetime
import json
import math
import os
import random
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces

from pufferlib.exceptions import APIUsageError, CheckpointError
from pufferlib.trainer.advantage import compute_advantage
from pufferlib.trainer.buffer import SegmentBuffer
from pufferlib.trainer.policy import logprob_entropy, sample_actions


def derived_sizes(cfg, num_agents, world_size=1):
    """(batch_size, segments, minibatch_segments, accumulation steps, total epochs), checked.
    batch_size is per rank: `world_size` ranks make world_size * batch_size steps per epoch."""
    H = cfg['bptt_horizon']
    batch = cfg['batch_size']
    if batch in (None, 'auto'):
        batch = num_agents * H
    mb, max_mb = cfg['minibatch_size'], cfg['max_minibatch_size']
    if batch % H:
        raise APIUsageError(f'train.batch_size {batch} is not a multiple of train.bptt_horizon {H}')
    if batch // H < num_agents:
        raise APIUsageError(f'train.batch_size {batch} // bptt_horizon {H} = {batch // H} rows, '
                            f'fewer than the {num_agents} agents: raise batch_size to at least '
                            f'{num_agents * H}')
    mb = min(mb, batch)
    if mb % H:
        raise APIUsageError(f'train.minibatch_size {mb} is not a multiple of bptt_horizon {H}')
    accumulate = 1
    if mb > max_mb:
        if mb % max_mb or max_mb % H:
            raise APIUsageError(f'train.minibatch_size {mb} must be a multiple of '
                                f'max_minibatch_size {max_mb}, itself a multiple of bptt_horizon {H}')
        accumulate = mb // max_mb
    epochs = max(1, cfg['total_timesteps'] // (batch * world_size))
    return batch, batch // H, mb // H, accumulate, epochs


def make_optimizers(policy, cfg):
    """Adam, or Muon for the 2-D weight matrices plus Adam for everything else."""
    params = [p for p in policy.parameters() if p.requires_grad]
    adam_kw = dict(lr=cfg['learning_rate'], betas=(cfg['adam_beta1'], cfg['adam_beta2']),
                   eps=cfg['adam_eps'])
    if cfg['optimizer'] == 'adam':
        return [torch.optim.Adam(params, **adam_kw)]
    if cfg['optimizer'] != 'muon':
        raise APIUsageError(f"train.optimizer is {cfg['optimizer']!r}: use 'muon' or 'adam'")
    matrices = [p for p in params if p.ndim == 2]
    others = [p for p in params if p.ndim != 2]
    optimizers = [torch.optim.Muon(matrices, lr=cfg['learning_rate'], weight_decay=0.0,
                                   momentum=cfg['adam_beta1'],
                                   adjust_lr_fn=cfg['muon_adjust_lr'])]
    if others:
        optimizers.append(torch.optim.Adam(others, **adam_kw))
    return optimizers


def cosine_lr(cfg, epoch, total_epochs):
    lr, low = cfg['learning_rate'], cfg['min_learning_rate']
    if not cfg['anneal_lr']:
        return lr
    return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * min(epoch / total_epochs, 1.0)))


# ---- prioritized segment replay -------------------------------------------------------------------
def prioritized_sample(advantages, n, alpha, beta):
    """Draw `n` of the S rows without replacement with probability p_i = w_i / sum(w), where
    w_i = (sum_t |A_it|) ** alpha, and return (rows, importance weights (S p_i) ** -beta divided by
    their max). alpha = 0 is uniform sampling. NaN/inf priorities count as 0; a tiny relative floor
    keeps n rows drawable when fewer carry all the priority; all-zero priorities sample uniformly."""
    S = advantages.shape[0]
    priority = torch.nan_to_num(advantages.abs().sum(dim=1).pow(alpha), nan=0.0, posinf=0.0)
    total = priority.sum()
    if total > 0:
        priority = priority + total * 1e-6 / S
        prob = priority / priority.sum()
    else:
        prob = torch.full_like(priority, 1.0 / S)
    rows = torch.multinomial(prob, n, replacement=False)
    weight = (S * prob[rows]).pow(-beta)
    return rows, weight / weight.max()
# -------------------------------------------------------------------------------------------------


def agent_index(ids, device):
    """Index of a batch's agents into per-agent tensors: a slice for a contiguous range (views
    and plain copies), else an index tensor."""
    n = len(ids)
    if n and ids[-1] - ids[0] == n - 1 and (n == 1 or bool((np.diff(ids) == 1).all())):
        return slice(int(ids[0]), int(ids[0]) + n)
    return torch.as_tensor(ids).to(device)


def resolve_precision(precision, device):
    """'float32' or 'bfloat16'. auto: bfloat16 where matrix units make it fast (CUDA, or a CPU
    with AMX tiles: about 7x float32 on the LSTM's matrix products), else float32."""
    if precision in ('float32', 'bfloat16'):
        return precision
    if precision != 'auto':
        raise APIUsageError(f"train.precision is {precision!r}: use auto, float32 or bfloat16")
    if torch.device(device).type == 'cuda':
        return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float32'
    try:
        with open('/proc/cpuinfo') as f:
            return 'bfloat16' if ' amx_bf16' in f.read() else 'float32'
    except OSError:
        return 'float32'


def to_float(logits):
    if isinstance(logits, tuple):
        return tuple(x.float() for x in logits)
    return logits.float()


# ---- many processes (torchrun) ------------------------------------------------------------------
def init_distributed(cfg):
    """Join torchrun's process group when this process was started by torchrun (WORLD_SIZE set):
    nccl with one GPU per local rank when train.device is CUDA (cfg['device'] becomes
    'cuda:<local rank>'), else gloo. Collectives time out after train.dist_timeout seconds.
    Returns (rank, world_size); (0, 1) for a plain process, which is left untouched."""
    import torch.distributed as dist
    if int(os.environ.get('WORLD_SIZE', 1)) <= 1:
        return 0, 1
    if dist.is_initialized():
        return rank_and_world()
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    if torch.device(cfg['device']).type == 'cuda':
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise APIUsageError(f'local rank {local_rank} has no GPU of its own ({count} visible): '
                                f'start at most {count} processes per node (--nproc-per-node)')
        torch.cuda.set_device(local_rank)
        cfg['device'] = f'cuda:{local_rank}'
        backend = 'nccl'
    else:
        backend = 'gloo'
    timeout = datetime.timedelta(seconds=float(cfg.get('dist_timeout') or 300))
    dist.init_process_group(backend, timeout=timeout)
    return dist.get_rank(), dist.get_world_size()


def close_distributed():
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world():
    """(rank, world_size) of this process: (0, 1) unless a process group is initialised."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather(obj, world_size):
    """[obj of rank 0, obj of rank 1, ...] (pickled through the process group)."""
    if world_size == 1:
        return [obj]
    import torch.distributed as dist
    out = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


def merge_epoch_stats(per_rank):
    """One epoch's statistics of all ranks as one: agent steps summed, losses averaged over the
    ranks, episode statistics averaged weighted by episode count (so a rank that finished no
    episode counts for nothing), the episode count `n` summed, stop requested if any rank asks."""
    losses = defaultdict(float)
    for stats in per_rank:
        for key, value in stats['losses'].items():
            losses[key] += value / len(per_rank)
    sums, counts = defaultdict(float), defaultdict(float)
    for stats in per_rank:
        for key, value in stats['episode_sums'].items():
            sums[key] += value
        for key, value in stats['episode_counts'].items():
            counts[key] += value
    env_stats = {k: sums[k] if k == 'n' else sums[k] / counts[k] for k in sums if counts[k]}
    return {'steps': sum(s['steps'] for s in per_rank), 'losses': dict(losses),
            'env_stats': env_stats, 'stop': any(s['stop'] for s in per_rank)}


def wrap_ddp(policy, device):
    """DistributedDataParallel around `policy`: it broadcasts rank 0's weights now and averages
    the gradients of every backward pass. The rollout keeps calling the plain module."""
    from torch.nn.parallel import DistributedDataParallel
    device = torch.device(device)
    return DistributedDataParallel(policy, device_ids=[device] if device.type == 'cuda' else None,
                                   gradient_as_bucket_view=True)


def rng_state():
    return {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(),
            'python': random.getstate()}


def set_rng_state(state):
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])
# -------------------------------------------------------------------------------------------------


class Trainer:
    """Holds the vector env, the policy, the optimizers, the segment buffer and the counters."""

    def __init__(self, cfg, vecenv, policy):
        self.cfg, self.vecenv, self.policy = cfg, vecenv, policy
        self.device = cfg['device']
        self.num_agents = N = vecenv.num_agents
        self.rank, self.world_size = rank_and_world()
        (self.batch_size, self.segments, self.minibatch_segments, self.accumulate,
         self.total_epochs) = derived_sizes(cfg, N, self.world_size)
        self.num_minibatches = max(1, cfg['update_epochs'] * self.segments // self.minibatch_segments)
        # Rank r's sub-envs take seeds seed + r*N ... seed + (r+1)*N - 1: never shared, and the
        # same seeds one process with world_size * N agents would use.
        self.env_seed = cfg['seed'] + self.rank * N
        self.model = policy     # what the update calls: DDP around the policy under torchrun
        if self.world_size > 1:
            self.model = wrap_ddp(policy, self.device)
            sizes = all_gather((N, self.batch_size, self.minibatch_segments, self.accumulate,
                                self.num_minibatches), self.world_size)
            if len(set(sizes)) > 1:
                raise APIUsageError(
                    'the ranks disagree on (agents, batch_size, minibatch segments, accumulation, '
                    f'minibatches) {sizes}: every rank needs the same env and [train] sizes, since '
                    'DistributedDataParallel averages one backward pass of each rank at a time')
        obs_space, self.action_space = vecenv.single_observation_space, vecenv.single_action_space
        act_shape, act_dtype = (), torch.int64
        if isinstance(self.action_space, spaces.MultiDiscrete):
            act_shape = (int(self.action_space.nvec.size),)
        elif isinstance(self.action_space, spaces.Box):
            act_shape, act_dtype = (int(np.prod(self.action_space.shape)),), torch.float32
        self.state_size = getattr(policy, 'hidden_size', 0) if hasattr(policy, 'lstm') else 0
        self.buffer = SegmentBuffer(self.segments, cfg['bptt_horizon'], N, obs_space.shape,
                                    torch.from_numpy(np.zeros(0, obs_space.dtype)).dtype,
                                    act_shape, act_dtype, self.state_size, self.device)
        if self.state_size:  # LSTM state per agent, carried across rows and rollouts
            self.h = torch.zeros(N, self.state_size, device=self.device)
            self.c = torch.zeros(N, self.state_size, device=self.device)
        self.optimizers = make_optimizers(policy, cfg)
        self.precision = resolve_precision(cfg['precision'], self.device)
        self.autocast = torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                                       enabled=self.precision == 'bfloat16')
        self.global_step = self.epoch = 0
        self.start_time = time.time()
        self.uptime_before = 0.0       # uptime of earlier sessions of a resumed run
        self.times = defaultdict(float)
        self.losses, self.env_stats = {}, {}
        self.episode_sums, self.episode_counts = defaultdict(float), defaultdict(float)
        self.sps, self.last_log = 0.0, (time.time(), 0)
        self.epoch_start_step = 0
        self.started = False
        self.stop_requested = False    # this rank got Ctrl-C (under torchrun) ...
        self.stop_agreed = False       # ... and the ranks have agreed to stop after this epoch

    @property
    def uptime(self):
        return self.uptime_before + time.time() - self.start_time

    @property
    def done(self):
        return self.global_step >= self.cfg['total_timesteps']

    def to_env_actions(self, actions):
        space = self.action_space
        actions = actions.cpu().numpy()
        if isinstance(space, spaces.Box):
            return np.clip(actions.reshape(-1, *space.shape), space.low, space.high).astype(space.dtype)
        start = np.asarray(space.start)
        actions = actions.reshape(-1, *space.shape)
        return (actions + start).astype(np.int32) if start.any() else actions.astype(np.int32)

    def rollout(self):
        """Step the env until every row of the buffer is complete (see buffer.py)."""
        cfg, buf, dev = self.cfg, self.buffer, self.device
        if not self.started:
            self.vecenv.async_reset(self.env_seed)
            self.started = True
        buf.start_rollout()
        clamp = cfg['reward_clamp']
        while not buf.full:
            t0 = time.perf_counter()
            obs, rewards, terminals, truncations, infos, ids, masks = self.vecenv.recv()
            t1 = time.perf_counter()
            self.times['env'] += t1 - t0
            if infos:
                self.collect(infos)
            with torch.inference_mode():
                obs_t = torch.as_tensor(obs).to(dev, non_blocking=True)
                state = None
                if self.state_size:
                    rows = agent_index(ids, dev)
                    state = (self.h[rows], self.c[rows])
                    done = np.flatnonzero(np.logical_or(terminals, truncations))
                    if len(done):  # a new episode starts from a zero state
                        done = torch.from_numpy(done).to(dev)
                        state = (state[0].index_fill(0, done, 0), state[1].index_fill(0, done, 0))
                with self.autocast:
                    logits, values, new_state = self.policy.forward_step(obs_t, state)
                logits, values = to_float(logits), values.float()
                actions, logprobs = sample_actions(logits, self.action_space)
                t2 = time.perf_counter()
                self.times['forward'] += t2 - t1
                rewards_t = torch.as_tensor(rewards).to(dev)
                if clamp is not None:
                    rewards_t = rewards_t.clamp(-clamp, clamp)
                record = {'observations': obs_t, 'actions': actions, 'logprobs': logprobs,
                          'values': values, 'rewards': rewards_t,
                          'terminals': torch.as_tensor(terminals).to(dev, torch.float32),
                          'truncations': torch.as_tensor(truncations).to(dev, torch.float32)}
                buf.add(ids, masks, record, state)
                if self.state_size:  # after buf.add: it stores the input state of new rows
                    h, c = new_state[0].float(), new_state[1].float()
                    if masks is not None and not masks.all():  # absent agents keep their state
                        present = torch.as_tensor(masks).to(dev).unsqueeze(1)
                        h, c = torch.where(present, h, state[0]), torch.where(present, c, state[1])
                    self.h[rows], self.c[rows] = h, c
                env_actions = self.to_env_actions(actions)
            t3 = time.perf_counter()
            self.times['copy'] += t3 - t2
            self.vecenv.send(env_actions)
            self.times['env'] += time.perf_counter() - t3
            self.global_step += len(ids) if masks is None else int(np.count_nonzero(masks))

    def collect(self, infos):
        """Accumulate the env's episode statistics (means weighted by their episode count n)."""
        if isinstance(infos, dict):
            infos = [infos]
        for info in infos:
            n = float(info.get('n', 1)) if isinstance(info, dict) else 0
            self.episode_sums['n'] += n
            self.episode_counts['n'] = 1.0  # n itself is a count: summed, not averaged
            for key, value in (info.items() if n else ()):
                if key != 'n' and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                    self.episode_sums[key] += float(value) * n
                    self.episode_counts[key] += n

    def update(self):
        """PPO over `update_epochs * segments / minibatch_segments` minibatches of segments."""
        cfg, buf, H, S = self.cfg, self.buffer, self.cfg['bptt_horizon'], self.segments
        t0 = time.perf_counter()
        lr = cosine_lr(cfg, self.epoch, self.total_epochs)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group['lr'] = lr
        n = self.minibatch_segments
        chunk = n // self.accumulate
        num_minibatches = self.num_minibatches
        beta = cfg['prio_beta0'] + (1 - cfg['prio_beta0']) * min(self.epoch / self.total_epochs, 1.0)
        sums = defaultdict(float)
        for mb in range(num_minibatches):
            with torch.no_grad():
                compute_advantage(buf.values, buf.rewards, buf.terminals, buf.truncations,
                                  buf.ratio, buf.advantages, cfg['gamma'], cfg['gae_lambda'],
                                  cfg['vtrace_rho_clip'], cfg['vtrace_c_clip'])
                if mb == 0:
                    explained = explained_variance(buf.values[:, :H],
                                                   buf.advantages + buf.values[:, :H])
                idx, weight = prioritized_sample(buf.advantages, n, cfg['prio_alpha'], beta)
                mb_advantages = buf.advantages[idx]
                mb_values = buf.values[idx, :H]
                mb_returns = mb_advantages + mb_values
                mb_adv = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                mb_adv = mb_adv * weight.unsqueeze(1)
            for j in range(self.accumulate):
                part = slice(j * chunk, (j + 1) * chunk)
                # DDP: average the gradients across ranks once per minibatch, at its last piece
                sync = j == self.accumulate - 1 or self.model is self.policy
                with contextlib.nullcontext() if sync else self.model.no_sync():
                    stats = self.minibatch_loss(idx[part], mb_adv[part], mb_values[part],
                                                mb_returns[part], mb)
                for key, value in stats.items():
                    sums[key] = sums[key] + value.detach() / self.accumulate
            params = [p for opt in self.optimizers for g in opt.param_groups for p in g['params']]
            torch.nn.utils.clip_grad_norm_(params, cfg['max_grad_norm'])
            for opt in self.optimizers:
                opt.step()
                opt.zero_grad(set_to_none=True)
        self.losses = {k: float(v) / num_minibatches for k, v in sums.items()}
        self.losses['explained_variance'] = explained
        self.losses['learning_rate'] = lr
        self.times['learn'] += time.perf_counter() - t0
        self.epoch += 1

    def minibatch_loss(self, idx, mb_adv, mb_values, mb_returns, mb):
        """Forward the rows `idx`, backpropagate the PPO loss, write ratios and values back."""
        buf, H = self.buffer, self.cfg['bptt_horizon']
        state = (buf.start_h[idx], buf.start_c[idx]) if self.state_size else None
        with self.autocast:
            logits, values = self.model(buf.observations[idx], state)
        logits, values = to_float(logits), values.float()
        actions = buf.actions[idx].reshape(-1, *buf.actions.shape[2:])
        loss, ratio, stats = ppo_loss(self.cfg, self.action_space, logits, values, actions,
                                      buf.logprobs[idx].reshape(-1), mb_adv.reshape(-1),
                                      mb_values.reshape(-1), mb_returns.reshape(-1))
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f'non-finite loss at epoch {self.epoch} (minibatch {mb}): ' +
                ', '.join(f'{k} {v.item():.4g}' for k, v in stats.items()) +
                '; check the env for NaN/Inf observations or rewards, or lower train.learning_rate')
        (loss / self.accumulate).backward()
        with torch.no_grad():
            buf.ratio[idx] = ratio.detach().view(-1, H)
            buf.values[idx, :H] = values.detach().view(-1, H)
        return stats

    def epoch_summary(self):
        """Close the epoch's statistics: SPS, episode means, times, merged over the ranks under
        torchrun (global_step becomes the sum of all ranks' steps). Returns the log record."""
        if self.world_size > 1:
            merged = merge_epoch_stats(all_gather(
                {'steps': self.global_step - self.epoch_start_step, 'losses': self.losses,
                 'episode_sums': dict(self.episode_sums),
                 'episode_counts': dict(self.episode_counts), 'stop': self.stop_requested},
                self.world_size))
            self.global_step = self.epoch_start_step + merged['steps']
            self.losses, self.stop_agreed = merged['losses'], merged['stop']
            if merged['env_stats']:
                self.env_stats = merged['env_stats']
        elif self.episode_counts:
            self.env_stats = {k: self.episode_sums[k] / self.episode_counts[k]
                              for k in self.episode_sums}
        self.episode_sums.clear()
        self.episode_counts.clear()
        self.epoch_start_step = self.global_step
        now, (then, step) = time.time(), self.last_log
        if now > then:
            self.sps = (self.global_step - step) / (now - then)
        self.last_log = (now, self.global_step)
        record = {'agent_steps': self.global_step, 'epoch': self.epoch, 'SPS': self.sps,
                  'uptime': self.uptime}
        record.update({f'losses/{k}': v for k, v in self.losses.items()})
        record.update({f'environment/{k}': v for k, v in self.env_stats.items()})
        record.update({f'performance/{k}': v for k, v in self.times.items()})
        return record

    # ---- checkpoints --------------------------------------------------------------------------

    def state_dict(self, gather=True):
        """The trainer's part of a checkpoint. Under torchrun, with `gather` (every rank calls
        it at the same point), it holds every rank's RNG state under 'rank_rng'."""
        state = {'optimizers': [opt.state_dict() for opt in self.optimizers],
                 'global_step': self.global_step, 'epoch': self.epoch, 'uptime': self.uptime,
                 'world_size': self.world_size, 'rng': rng_state()}
        if self.world_size > 1 and gather:
            state['rank_rng'] = all_gather(state['rng'], self.world_size)
        return state

    def load_state_dict(self, state, path='checkpoint'):
        saved_world = state.get('world_size', 1)
        if saved_world != self.world_size:
            raise CheckpointError(
                f'{path} was saved by a run of {saved_world} process(es), this one has '
                f'{self.world_size}: resume with the same number (torchrun --nproc-per-node '
                f'{saved_world} ... for more than one), since batch, seeds and schedule are per rank')
        try:
            for opt, opt_state in zip(self.optimizers, state['optimizers'], strict=True):
                opt.load_state_dict(opt_state)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f'{path}: its optimizer state does not match train.optimizer '
                                  f'{self.cfg["optimizer"]!r} ({e})') from None
        self.global_step, self.epoch = state['global_step'], state['epoch']
        self.epoch_start_step = self.global_step
        self.uptime_before = state.get('uptime', 0.0)
        self.last_log = (time.time(), self.global_step)
        if 'rank_rng' in state:
            set_rng_state(state['rank_rng'][self.rank])
        elif self.rank == 0:
            set_rng_state(state['rng'])
        else:  # a checkpoint written on a hard stop holds rank 0's state only
            seed = self.cfg['seed'] + self.rank + 100_003 * self.epoch
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)


def ppo_loss(cfg, action_space, logits, values, actions, old_logprobs, adv, old_values, returns):
    """Clipped policy loss + vf_coef * clipped value loss - ent_coef * entropy, on flat rows.
    `adv` is already normalised and importance-weighted. Returns (loss, ratio, stats)."""
    logprob, entropy = logprob_entropy(logits, actions, action_space)
    logratio = logprob - old_logprobs
    ratio = logratio.exp()
    clip = cfg['clip_coef']
    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
    v_clipped = old_values + (values - old_values).clamp(-cfg['vf_clip_coef'], cfg['vf_clip_coef'])
    v_loss = 0.5 * torch.max((values - returns) ** 2, (v_clipped - returns) ** 2).mean()
    entropy = entropy.mean()
    loss = pg_loss + cfg['vf_coef'] * v_loss - cfg['ent_coef'] * entropy
    with torch.no_grad():
        stats = {'policy_loss': pg_loss, 'value_loss': v_loss, 'entropy': entropy,
                 'approx_kl': ((ratio - 1) - logratio).mean(),
                 'clipfrac': ((ratio - 1).abs() > clip).float().mean(),
                 'importance': ratio.mean()}
    return loss, ratio, stats


def explained_variance(y_pred, y_true):
    var = y_true.var()
    return float('nan') if var == 0 else (1 - (y_true - y_pred).var() / var).item()


def save_checkpoint(path, payload):
    """Write `payload` to `path` atomically: a crash leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path):
    """The checkpoint dict at `path` (a file, or a run folder: its newest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob('checkpoint_*.pt'))
        if not found:
            raise CheckpointError(f'{path} holds no checkpoint_*.pt file')
        path = found[-1]
    if not path.exists():
        raise CheckpointError(f'checkpoint {path} does not exist')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=False)
    except Exception as e:  # a truncated or foreign file fails in many ways: name it
        raise CheckpointError(f'checkpoint {path} is corrupt or not a pufferlib checkpoint '
                              f'({type(e).__name__}: {e})') from None
    if not isinstance(payload, dict) or 'model' not in payload or 'trainer' not in payload:
        raise CheckpointError(f'checkpoint {path} is not a pufferlib checkpoint '
                              '(no model/trainer state)')
    payload['path'] = str(path)
    return payload


def load_model(policy, state, path='checkpoint'):
    """Load `state['model']` into `policy`, with an error naming what does not match."""
    model = state['model']
    own = policy.state_dict()
    missing = sorted(set(own) - set(model))
    unexpected = sorted(set(model) - set(own))
    shapes = [f'{k}: checkpoint {tuple(model[k].shape)} vs policy {tuple(v.shape)}'
              for k, v in own.items() if k in model and model[k].shape != v.shape]
    if missing or unexpected or shapes:
        details = '; '.join(filter(None, [
            f'missing {missing[:4]}' if missing else '',
            f'unexpected {unexpected[:4]}' if unexpected else '', '; '.join(shapes[:4])]))
        raise CheckpointError(f'{path} was saved for a different policy or env ({details}); '
                              'use the same [policy] and [env] settings as the run that saved it')
    policy.load_state_dict(model)


def train(env_name, config, vecenv, policy, resume=None, dashboard=None, on_epoch=None):
    """The training loop: rollout, update, log, dashboard, checkpoints. `resume` is a checkpoint
    file or run folder whose model, optimizers, counters and RNG state are restored. Ctrl-C saves
    a final checkpoint; the vector env is closed however the loop ends. `on_epoch(trainer,
    record)` is called after every epoch; a true result ends training. Returns the Trainer.
    Under torchrun every rank calls this; rank 0 alone writes the run folder (log, config,
    checkpoints) and draws `dashboard` (pass None on the others)."""
    cfg = config['train']
    try:
        trainer = Trainer(cfg, vecenv, policy)
        writer = trainer.rank == 0
        if resume is not None:
            payload = load_checkpoint(resume)
            if payload.get('env_name') != env_name:
                raise CheckpointError(f"{payload['path']} was saved by a "
                                      f"{payload.get('env_name')!r} run, not {env_name!r}")
            load_model(policy, payload, payload['path'])
            trainer.load_state_dict(payload['trainer'], payload['path'])
            run_dir = Path(payload['path']).parent
        elif writer:
            run_id = f'{env_name}_{time.strftime("%Y%m%d_%H%M%S")}_{os.getpid()}'
            run_dir = Path(cfg['data_dir']) / run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            with open(run_dir / 'config.json', 'w') as f:
                json.dump(config, f, indent=2)
        else:
            run_dir = None
        trainer.run_dir = run_dir
        loggers = make_loggers(cfg, config, run_dir) if writer else []
    except BaseException:
        vecenv.close()
        if dashboard is not None:
            dashboard.close(None)
        raise

    def checkpoint(gather=True):
        state = trainer.state_dict(gather)   # every rank: it may gather the ranks' RNG states
        if not writer:
            return None
        payload = {'env_name': env_name, 'config': config, 'model': policy.state_dict(),
                   'trainer': state}
        return save_checkpoint(run_dir / f'checkpoint_{trainer.epoch:06d}.pt', payload)

    log = open(run_dir / 'log.jsonl', 'a') if writer else None
    trainer.interrupted = False
    trainer.last_checkpoint = None
    restore_signals = catch_stop_signals(trainer) if trainer.world_size > 1 else None
    try:
        while not trainer.done:
            trainer.rollout()
            trainer.update()
            record = trainer.epoch_summary()
            if writer:
                log.write(json.dumps({k: None if isinstance(v, float) and not math.isfinite(v)
                                      else v for k, v in record.items()}) + '\n')
                log.flush()
            for logger in loggers:
                logger(record, trainer.global_step)
            if dashboard is not None:
                dashboard.update(trainer, record)
            if trainer.epoch % cfg['checkpoint_interval'] == 0:
                trainer.last_checkpoint = checkpoint()
            if trainer.stop_agreed:     # Ctrl-C under torchrun, agreed on by every rank
                trainer.interrupted = True
                break
            if on_epoch is not None and agree(on_epoch(trainer, record), trainer.world_size):
                break
        trainer.last_checkpoint = checkpoint()
    except KeyboardInterrupt:   # no collective here: the other ranks may be gone already
        trainer.interrupted = True
        trainer.last_checkpoint = checkpoint(gather=False)
    finally:
        if restore_signals is not None:
            restore_signals()
        if log is not None:
            log.close()
        if dashboard is not None:
            dashboard.close(trainer)
        vecenv.close()
    return trainer


def agree(flag, world_size):
    """True on every rank when `flag` is true on any rank."""
    return any(all_gather(bool(flag), world_size))


def catch_stop_signals(trainer):
    """Under torchrun: a first SIGINT asks every rank to stop at the end of the current epoch
    (the ranks agree in epoch_summary, rank 0 saves, all exit 130); a second one stops at once.
    SIGTERM (torchrun stopping the ranks after another one failed) raises SystemExit so that the
    vector env is closed. Returns a function restoring the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_sigint(signum, frame):
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True

    def on_sigterm(signum, frame):
        raise SystemExit(f'rank {trainer.rank}: stopped by SIGTERM (torchrun stops every rank '
                         'when one fails)')

    previous = {sig: signal.signal(sig, handler) for sig, handler in
                ((signal.SIGINT, on_sigint), (signal.SIGTERM, on_sigterm))}
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def make_loggers(cfg, config, run_dir):
    """Weights & Biases and TensorBoard writers, when asked for (an error if not installed)."""
    loggers = []
    if cfg.get('wandb'):
        try:
            import wandb
        except ImportError:
            raise APIUsageError('train.wandb is set but wandb is not installed: pip install wandb') from None
        wandb.init(project=cfg.get('wandb_project', 'pufferlib'), config=config, dir=str(run_dir))
        loggers.append(lambda record, step: wandb.log(record, step=step))
    if cfg.get('tensorboard'):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise APIUsageError('train.tensorboard is set but tensorboard is not installed: '
                                'pip install tensorboard') from None
        writer = SummaryWriter(str(run_dir))
        loggers.append(lambda record, step: [writer.add_scalar(k, v, step) for k, v in record.items()
                                             if isinstance(v, (int, float))])
    return loggers
