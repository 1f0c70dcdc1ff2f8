"""Checkpoints and the run folder.

A run writes to `data_dir/<env>_<date>_<time>_<pid>/`: `config.json`, `log.jsonl` (one JSON line
per epoch; optionally Weights & Biases / TensorBoard logs too) and `checkpoint_<epoch>.pt` files, each a dict {'env_name', 'config', 'model' (the
policy's state_dict), 'trainer' (optimizer states, step and epoch counters, uptime, RNG states)}.
A checkpoint is written to a temporary file and renamed: a crash leaves the old file or the new
one, never half of one. Under torchrun only rank 0 writes; the checkpoint holds every rank's RNG
state (docs/training.md, "Many processes").
"""
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from pufferlib.exceptions import APIUsageError, CheckpointError
from pufferlib.trainer.distributed import all_gather


# ---- the run folder: config, logs -------------------------------------------------------------------

def new_run_dir(data_dir, env_name, config):
    """A fresh run folder under `data_dir` holding the run's config.json."""
    run_dir = Path(data_dir) / f'{env_name}_{time.strftime("%Y%m%d_%H%M%S")}_{os.getpid()}'
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / 'config.json', 'w') as f:
            json.dump(config, f, indent=2)
    except OSError as e:
        raise APIUsageError(f'train.data_dir = {str(data_dir)!r}: cannot write the run folder '
                            f'{run_dir} ({e.strerror or e})') from None
    return run_dir


def open_log(run_dir):
    return open(Path(run_dir) / 'log.jsonl', 'a')


def write_log(log, record):
    """One JSON line; NaN and infinities (not JSON) as null."""
    log.write(json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                          for k, v in record.items()}) + '\n')
    log.flush()


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


# ---- files ---------------------------------------------------------------------------------------

def save_checkpoint(path, payload):
    """Write `payload` to `path` atomically: a crash leaves the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(path.name + f'.tmp{os.getpid()}')
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, env_name=None):
    """The checkpoint dict at `path` (a file, or a run folder: its newest checkpoint); with
    `env_name`, a CheckpointError unless a run of that env saved it."""
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
    if env_name is not None and payload.get('env_name') != env_name:
        raise CheckpointError(f"{path} was saved by a {payload.get('env_name')!r} run, not "
                              f'{env_name!r}')
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


# ---- the trainer's state -------------------------------------------------------------------------

def save_trainer(trainer, env_name, config, gather=True):
    """Checkpoint `trainer` as run_dir/checkpoint_<epoch>.pt; returns its path (None on the ranks
    other than 0, which only take part in gathering the RNG states)."""
    state = trainer_state(trainer, gather)   # every rank: it may gather the ranks' RNG states
    if trainer.rank != 0:
        return None
    payload = {'env_name': env_name, 'config': config, 'model': trainer.policy.state_dict(),
               'trainer': state}
    return save_checkpoint(trainer.run_dir / f'checkpoint_{trainer.epoch:06d}.pt', payload)


def resume(trainer, path, env_name):
    """Restore the model, optimizers, counters and RNG state of the checkpoint (or run folder)
    `path` into `trainer`; returns the run folder, which the resumed run goes on writing."""
    payload = load_checkpoint(path, env_name)
    load_model(trainer.policy, payload, payload['path'])
    load_trainer_state(trainer, payload['trainer'], payload['path'])
    return Path(payload['path']).parent


def trainer_state(trainer, gather=True):
    """The trainer's part of a checkpoint. Under torchrun, with `gather` (every rank calls
    it at the same point), it holds every rank's RNG state under 'rank_rng'."""
    state = {'optimizers': [opt.state_dict() for opt in trainer.optimizers],
             'global_step': trainer.global_step, 'epoch': trainer.epoch,
             'uptime': trainer.uptime, 'world_size': trainer.world_size, 'rng': rng_state()}
    if trainer.reward_scaler is not None:
        state['reward_scaler'] = trainer.reward_scaler.state_dict()
    if trainer.world_size > 1 and gather:
        state['rank_rng'] = all_gather(state['rng'], trainer.world_size)
    return state


def load_trainer_state(trainer, state, path='checkpoint'):
    saved_world = state.get('world_size', 1)
    if saved_world != trainer.world_size:
        raise CheckpointError(
            f'{path} was saved by a run of {saved_world} process(es), this one has '
            f'{trainer.world_size}: resume with the same number (torchrun --nproc-per-node '
            f'{saved_world} ... for more than one), since batch, seeds and schedule are per rank')
    try:
        for opt, opt_state in zip(trainer.optimizers, state['optimizers'], strict=True):
            opt.load_state_dict(opt_state)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f'{path}: its optimizer state does not match train.optimizer '
                              f'{trainer.cfg["optimizer"]!r} ({e})') from None
    if trainer.reward_scaler is not None and 'reward_scaler' in state:
        trainer.reward_scaler.load_state_dict(state['reward_scaler'])
    trainer.global_step, trainer.epoch = state['global_step'], state['epoch']
    trainer.epoch_start_step = trainer.global_step
    trainer.uptime_before = state.get('uptime', 0.0)
    trainer.last_log = (time.time(), trainer.global_step)
    if 'rank_rng' in state:
        set_rng_state(state['rank_rng'][trainer.rank])
    elif trainer.rank == 0:
        set_rng_state(state['rng'])
    else:  # a checkpoint written on a hard stop holds rank 0's state only
        seed = trainer.cfg['seed'] + trainer.rank + 100_003 * trainer.epoch
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)


def rng_state():
    return {'torch': torch.get_rng_state(), 'numpy': np.random.get_state(),
            'python': random.getstate()}


def set_rng_state(state):
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])
