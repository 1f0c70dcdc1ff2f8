"""PPO with prioritized segment replay.

`Trainer(config, vecenv, policy)` alternates `rollout()` (fill the segment buffer from the vector
env) and `update()` (PPO minibatches drawn by priority). `train(...)` runs that loop with the
dashboard, the JSON log and the checkpoints. The algorithm is in docs/training.md; names follow
the papers: `mb_` is a minibatch, `S` segments (rows), `H` the bptt horizon (columns).

Beside it: rollout.py (one policy step over a batch of agents, shared with `puffer eval`),
buffer.py (the segment buffer), advantage.py (the advantage kernels), policy.py (policies, action
distributions), checkpoint.py (checkpoints, the run folder and its logs), distributed.py (torchrun:
every rank runs this same loop; DDP averages the gradients and only rank 0 writes).
"""
import contextlib
import math
import signal
import threading
import time
from collections import defaultdict

import numpy as np
import torch
from gymnasium import spaces

from pufferlib.exceptions import APIUsageError, EnvDataError, EnvTimeoutError, EnvWorkerError
from pufferlib.trainer import checkpoint, distributed, video
from pufferlib.trainer.advantage import compute_advantage
from pufferlib.trainer.buffer import SegmentBuffer
from pufferlib.trainer.config import validate
from pufferlib.trainer.muon import Muon
from pufferlib.trainer.normalize import ReturnScaler
from pufferlib.trainer.policy import logprob_entropy, state_size
from pufferlib.trainer.rollout import (add_episode_stats, agent_states, episode_means, policy_step,
                                       to_float)
# Moved to checkpoint.py, distributed.py and rollout.py; importable from here for one release.
from pufferlib.trainer.rollout import agent_index  # noqa: F401
from pufferlib.trainer.checkpoint import (load_checkpoint, load_model, make_loggers,  # noqa: F401
                                          rng_state, save_checkpoint, set_rng_state)
from pufferlib.trainer.distributed import (agree, all_gather, catch_stop_signals,  # noqa: F401
                                           close_distributed, init_distributed, merge_epoch_stats,
                                           rank_and_world, wrap_ddp)


# ---- config: sizes, optimizers, precision, learning-rate schedule --------------------------------

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


def make_optimizers(policy, cfg, precision='bfloat16'):
    """Adam, or Muon for the 2-D weight matrices plus Adam for everything else. Muon's
    Newton-Schulz iteration runs in `precision` (float32 where bfloat16 is emulated slowly)."""
    params = [p for p in policy.parameters() if p.requires_grad]
    adam_kw = dict(lr=cfg['learning_rate'], betas=(cfg['adam_beta1'], cfg['adam_beta2']),
                   eps=cfg['adam_eps'])
    if cfg['optimizer'] == 'adam':
        return [torch.optim.Adam(params, **adam_kw)]
    if cfg['optimizer'] != 'muon':
        raise APIUsageError(f"train.optimizer is {cfg['optimizer']!r}: use 'muon' or 'adam'")
    matrices = [p for p in params if p.ndim == 2]
    others = [p for p in params if p.ndim != 2]
    optimizers = [Muon(matrices, lr=cfg['learning_rate'], momentum=cfg['adam_beta1'],
                       adjust_lr_fn=cfg['muon_adjust_lr'], ns_dtype=getattr(torch, precision))]
    if others:
        optimizers.append(torch.optim.Adam(others, **adam_kw))
    return optimizers


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


def cosine_lr(cfg, epoch, total_epochs):
    lr, low = cfg['learning_rate'], cfg['min_learning_rate']
    if not cfg['anneal_lr']:
        return lr
    return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * min(epoch / total_epochs, 1.0)))


# ---- the trainer: rollout, then advantages, prioritized minibatches and the loss -----------------

class Trainer:
    """Holds the vector env, the policy, the optimizers, the segment buffer and the counters."""

    def __init__(self, cfg, vecenv, policy):
        self.cfg, self.vecenv, self.policy = cfg, vecenv, policy
        self.device = cfg['device']
        self.num_agents = N = vecenv.num_agents
        self.rank, self.world_size = distributed.rank_and_world()
        (self.batch_size, self.segments, self.minibatch_segments, self.accumulate,
         self.total_epochs) = derived_sizes(cfg, N, self.world_size)
        self.num_minibatches = max(1, cfg['update_epochs'] * self.segments // self.minibatch_segments)
        # Rank r's sub-envs take seeds seed + r*N ... seed + (r+1)*N - 1: never shared, and the
        # same seeds one process with world_size * N agents would use.
        self.env_seed = cfg['seed'] + self.rank * N
        self.model = policy     # what the update calls: DDP around the policy under torchrun
        if self.world_size > 1:
            self.model = distributed.wrap_ddp(policy, self.device)
            distributed.check_same_sizes((N, self.batch_size, self.minibatch_segments,
                                          self.accumulate, self.num_minibatches), self.world_size)
        obs_space, self.action_space = vecenv.single_observation_space, vecenv.single_action_space
        act_shape, act_dtype = (), torch.int64
        if isinstance(self.action_space, spaces.MultiDiscrete):
            act_shape = (int(self.action_space.nvec.size),)
        elif isinstance(self.action_space, spaces.Box):
            act_shape, act_dtype = (int(np.prod(self.action_space.shape)),), torch.float32
        self.state_size = state_size(policy)
        self.buffer = SegmentBuffer(self.segments, cfg['bptt_horizon'], N, obs_space.shape,
                                    torch.from_numpy(np.zeros(0, obs_space.dtype)).dtype,
                                    act_shape, act_dtype, self.state_size, self.device)
        # LSTM state per agent, carried across rows and rollouts (None without an LSTM)
        self.agent_states = agent_states(policy, N, self.device)
        # train.normalize_rewards: rewards divided by the running std of the discounted return
        self.reward_scaler = (ReturnScaler(N, cfg['gamma']).to(self.device)
                              if cfg['normalize_rewards'] else None)
        self.precision = resolve_precision(cfg['precision'], self.device)
        self.optimizers = make_optimizers(policy, cfg, self.precision)
        self.autocast = torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16,
                                       enabled=self.precision == 'bfloat16')
        self.global_step = self.epoch = 0
        self.start_time = time.time()
        self.uptime_before = 0.0       # uptime of earlier sessions of a resumed run
        self.times = defaultdict(float)
        self.losses, self.env_stats = {}, {}
        self.epoch_stats = {}          # episode stats of the last epoch only: {} when none ended
        self.episode_sums, self.episode_counts = defaultdict(float), defaultdict(float)
        self.sps, self.last_log = 0.0, (time.time(), 0)
        self.epoch_start_step = 0
        self.started = False
        self.stop_requested = False    # this rank got Ctrl-C (under torchrun) ...
        self.stop_agreed = False       # ... and the ranks have agreed to stop after this epoch
        self.checkpoint_scores = {}    # epoch -> score of its checkpoint (checkpoint_keep keeps the best)

    @property
    def uptime(self):
        return self.uptime_before + time.time() - self.start_time

    @property
    def done(self):
        return self.global_step >= self.cfg['total_timesteps']

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
            batch = self.vecenv.recv()
            obs, rewards, terminals, truncations, infos, ids, masks = batch
            t1 = time.perf_counter()
            self.times['env'] += t1 - t0
            if infos:
                add_episode_stats(infos, self.episode_sums, self.episode_counts)
            record, state, env_actions = policy_step(self.policy, self.agent_states, batch,
                                                     self.action_space, dev,
                                                     autocast=self.autocast)
            t2 = time.perf_counter()
            self.times['forward'] += t2 - t1
            with torch.inference_mode():
                rewards_t = torch.as_tensor(rewards).to(dev)
                if clamp is not None:
                    rewards_t = rewards_t.clamp(-clamp, clamp)
                terminals_t = torch.as_tensor(terminals).to(dev, torch.float32)
                truncations_t = torch.as_tensor(truncations).to(dev, torch.float32)
                if self.reward_scaler is not None:
                    self.reward_scaler.observe(rewards_t, torch.maximum(terminals_t, truncations_t),
                                               agent_index(ids, dev))
                    rewards_t = self.reward_scaler(rewards_t)
                record.update(rewards=rewards_t, terminals=terminals_t, truncations=truncations_t)
                buf.add(ids, masks, record, state)
            t3 = time.perf_counter()
            self.times['copy'] += t3 - t2
            self.vecenv.send(env_actions)
            self.times['env'] += time.perf_counter() - t3
            self.global_step += len(ids) if masks is None else int(np.count_nonzero(masks))

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
        beta = prio_beta(cfg, self.epoch, self.total_epochs)
        sums = defaultdict(float)
        for mb in range(num_minibatches):
            with torch.no_grad():
                # advantages of every row from the stored values and the latest ratios
                compute_advantage(buf.values, buf.rewards, buf.terminals, buf.truncations,
                                  buf.ratio, buf.advantages, cfg['gamma'], cfg['gae_lambda'],
                                  cfg['vtrace_rho_clip'], cfg['vtrace_c_clip'])
                if mb == 0:
                    explained = explained_variance(buf.values[:, :H],
                                                   buf.advantages + buf.values[:, :H])
                # prioritized replay (the marked block below): rows and importance weights
                idx, weight = prioritized_sample(buf.advantages, n, cfg['prio_alpha'], beta)
                mb_advantages = buf.advantages[idx]
                mb_values = buf.values[idx, :H]
                mb_returns = mb_advantages + mb_values
                mb_adv = mb_advantages
                if cfg['normalize_advantages']:
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
        self.update_normalizers()
        self.losses = {k: float(v) / num_minibatches for k, v in sums.items()}
        self.losses['explained_variance'] = explained
        self.losses['learning_rate'] = lr
        self.times['learn'] += time.perf_counter() - t0
        self.epoch += 1

    def update_normalizers(self):
        """Add this epoch's observations and returns to the running statistics. Only here,
        between epochs: a rollout and its update see the same normalization."""
        inner = getattr(self.policy, 'policy', self.policy)   # inside an LSTMWrapper
        norm = getattr(inner, 'obs_norm', None)
        if norm is not None:
            obs = self.buffer.observations
            norm.update(inner.flat(obs.reshape(-1, *obs.shape[2:])))
            if self.world_size > 1:   # every rank keeps the same statistics: rank 0's
                torch.distributed.broadcast(norm.mean, 0)
                torch.distributed.broadcast(norm.var, 0)
                torch.distributed.broadcast(norm.count, 0)
        if self.reward_scaler is not None:
            self.reward_scaler.update()

    def minibatch_loss(self, idx, mb_adv, mb_values, mb_returns, mb):
        """Forward the rows `idx`, backpropagate the PPO loss, write ratios and values back."""
        buf, H = self.buffer, self.cfg['bptt_horizon']
        if self.state_size:   # the LSTM restarts from zero where an episode begins inside a row
            state = (buf.start_h[idx], buf.start_c[idx])
            starts = (buf.terminals[idx, :H] + buf.truncations[idx, :H]) > 0
            with self.autocast:
                logits, values = self.model(buf.observations[idx], state, starts)
        else:
            with self.autocast:
                logits, values = self.model(buf.observations[idx], None)
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
            merged = distributed.merge_epoch_stats(distributed.all_gather(
                {'steps': self.global_step - self.epoch_start_step, 'losses': self.losses,
                 'episode_sums': dict(self.episode_sums),
                 'episode_counts': dict(self.episode_counts), 'stop': self.stop_requested},
                self.world_size))
            self.global_step = self.epoch_start_step + merged['steps']
            self.losses, self.stop_agreed = merged['losses'], merged['stop']
            self.epoch_stats = merged['env_stats']
        else:
            self.epoch_stats = episode_means(self.episode_sums, self.episode_counts)
        if not self.epoch_stats.get('n'):   # no episode ended in this epoch: report none
            self.epoch_stats = {}
        if self.epoch_stats:    # the dashboard keeps showing the latest episodes
            self.env_stats = self.epoch_stats
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
        record.update({f'environment/{k}': v for k, v in self.epoch_stats.items()})
        record.update({f'performance/{k}': v for k, v in self.times.items()})
        return record

    # ---- checkpoints: the trainer's part (checkpoint.py) ------------------------------------

    def state_dict(self, gather=True):
        return checkpoint.trainer_state(self, gather)

    def load_state_dict(self, state, path='checkpoint'):
        checkpoint.load_trainer_state(self, state, path)


# ---- prioritized segment replay ------------------------------------------------------------------
# Segment priority w_i = (sum_t |A_it|) ** prio_alpha; `n` rows drawn with p = w / sum(w) by
# torch.multinomial without replacement; importance weights (S p_i) ** -beta over their max, beta
# annealed linearly from prio_beta0 to 1 over training. prio_alpha = 0 is plain PPO.
def prio_beta(cfg, epoch, total_epochs):
    return cfg['prio_beta0'] + (1 - cfg['prio_beta0']) * min(epoch / total_epochs, 1.0)


def prioritized_sample(advantages, n, alpha, beta):
    """Draw `n` of the S rows without replacement with probability p_i = w_i / sum(w), where
    w_i = (sum_t |A_it|) ** alpha, and return (rows, importance weights (S p_i) ** -beta divided by
    their max). alpha = 0 is uniform sampling. NaN/inf priorities count as 0; a tiny relative floor
    keeps n rows drawable when fewer carry all the priority; all-zero priorities sample uniformly.
    Drawing every row has no sampling bias to correct: the weights are then 1."""
    S = advantages.shape[0]
    if n >= S:
        return (torch.randperm(S, device=advantages.device),
                torch.ones(S, device=advantages.device))
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
# ---- end of prioritized replay -------------------------------------------------------------------


# ---- the PPO loss --------------------------------------------------------------------------------

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


# ---- the loop ------------------------------------------------------------------------------------

class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, docker stop, SLURM): stops training as Ctrl-C does."""


def stop_on_sigterm():
    """Make SIGTERM raise Terminated (once: a second one does not cut the final checkpoint
    short). Returns a function restoring the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    return lambda: signal.signal(signal.SIGTERM, previous)


def train(env_name, config, vecenv, policy, resume=None, dashboard=None, on_epoch=None):
    """The training loop: rollout, update, log, dashboard, checkpoints. `resume` is a checkpoint
    file or run folder whose model, optimizers, counters and RNG state are restored. Ctrl-C saves
    a final checkpoint, and so does SIGTERM; an env worker that fails saves the last epoch's state,
    then its error is raised. `vecenv` stays open: whoever opened it closes it. `on_epoch(trainer,
    record)` is called after every epoch; a true result ends training. Returns the Trainer.
    Under torchrun every rank calls this; rank 0 alone writes the run folder (log, config,
    checkpoints) and draws `dashboard` (pass None on the others). `config` is checked against
    the schema (config.validate) first."""
    try:
        cfg = validate(config)['train']
        # read and checked (env name, contents) before anything is built
        saved = checkpoint.load_checkpoint(resume, env_name) if resume is not None else None
        trainer = Trainer(cfg, vecenv, policy)
        writer = trainer.rank == 0
        if saved is not None:
            trainer.run_dir = checkpoint.resume(trainer, saved, env_name)
        elif writer:
            trainer.run_dir = checkpoint.new_run_dir(cfg['data_dir'], env_name, config)
        else:
            trainer.run_dir = None
        loggers = checkpoint.make_loggers(cfg, config, trainer.run_dir) if writer else []
    except BaseException:
        if dashboard is not None:
            dashboard.close(None)
        raise

    resumed_epoch = trainer.epoch if saved is not None else None   # later log lines are dropped
    log = checkpoint.open_log(trainer.run_dir, resumed_epoch) if writer else None
    trainer.interrupted = False
    trainer.last_checkpoint = None
    restore_signals = (distributed.catch_stop_signals(trainer) if trainer.world_size > 1
                       else stop_on_sigterm())
    try:
        while not trainer.done:
            trainer.rollout()
            trainer.update()
            record = trainer.epoch_summary()
            if writer:
                checkpoint.write_log(log, record)
            for logger in loggers:
                logger(record, trainer.global_step)
            if dashboard is not None:
                dashboard.update(trainer, record)
            if trainer.epoch % cfg['checkpoint_interval'] == 0:
                trainer.last_checkpoint = checkpoint.save_trainer(trainer, env_name, config)
            if writer and cfg.get('video_interval') and trainer.epoch % cfg['video_interval'] == 0:
                video.record_clip(env_name, config, policy,
                                  trainer.run_dir / f'video_{trainer.epoch:06d}.mp4')
            if trainer.stop_agreed:     # Ctrl-C under torchrun, agreed on by every rank
                trainer.interrupted = True
                break
            if on_epoch is not None and distributed.agree(on_epoch(trainer, record),
                                                          trainer.world_size):
                break
        trainer.last_checkpoint = checkpoint.save_trainer(trainer, env_name, config)
    except KeyboardInterrupt as e:   # no collective here: the other ranks may be gone already
        trainer.interrupted = 'SIGTERM' if isinstance(e, Terminated) else 'SIGINT'
        trainer.last_checkpoint = checkpoint.save_trainer(trainer, env_name, config, gather=False)
    except (EnvWorkerError, EnvTimeoutError, EnvDataError) as e:
        # raised by the vector env in a rollout: the policy and optimizers are the last epoch's
        if trainer.epoch > 0:
            trainer.global_step = trainer.epoch_start_step
            trainer.last_checkpoint = checkpoint.save_trainer(trainer, env_name, config,
                                                              gather=False)
            if trainer.last_checkpoint is not None:   # exception notes: Python 3.11+
                note = (f'puffer train: saved the state of epoch {trainer.epoch} to '
                        f'{trainer.last_checkpoint}')
                e.__notes__ = [*getattr(e, '__notes__', []), note]
        raise
    finally:
        if restore_signals is not None:
            restore_signals()
        if log is not None:
            log.close()
        if dashboard is not None:
            dashboard.close(trainer)
    return trainer
