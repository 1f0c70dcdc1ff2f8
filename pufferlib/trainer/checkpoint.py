"""Checkpoints and the run folder.

A run writes to `data_dir/<env>_<date>_<time>_<pid>/`: `config.json`, `log.jsonl` (one JSON line
per epoch; optionally Weights & Biases / TensorBoard logs too) and `checkpoint_<epoch>.pt` files, each a dict {'env_name', 'config', 'model' (the
policy's state_dict), 'trainer' (optimizer states, step and epoch counters, uptime, RNG states),
'sha256' (a digest of all the rest)}. A checkpoint holds tensors and plain data only (dicts,
lists, numbers, strings) and is read with `torch.load(weights_only=True)`: a file that would run
code when unpickled is refused. It is written to a temporary file and renamed: a crash leaves the
old file or the new one, never half of one. The newest `checkpoint_keep` checkpoints are kept, and
the best by score. Under torchrun only rank 0 writes; the checkpoint holds every rank's RNG
state (docs/training.md, "Many processes").
"""
import errno
import hashlib
import io
import json
import math
import os
import pickle
import random
import re
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from pufferlib.exceptions import APIUsageError, CheckpointError
from pufferlib.trainer.distributed import all_gather


# ---- the run folder: config, logs -------------------------------------------------------------------

def folder_name(env_name):
    """`env_name` as one flat folder name: ALE/Breakout-v5 -> ALE-Breakout-v5."""
    return env_name.replace('/', '-').replace(':', '-')


def new_run_dir(data_dir, env_name, config):
    """A fresh run folder under `data_dir` holding the run's config.json."""
    run_dir = Path(data_dir) / f'{folder_name(env_name)}_{time.strftime("%Y%m%d_%H%M%S")}_{os.getpid()}'
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / 'config.json', 'w') as f:
            json.dump(config, f, indent=2)
    except OSError as e:
        raise APIUsageError(f'train.data_dir = {str(data_dir)!r}: cannot write the run folder '
                            f'{run_dir} ({e.strerror or e})') from None
    return run_dir


def open_log(run_dir, resume_epoch=None):
    """log.jsonl of `run_dir`, opened to append. Resuming from epoch E first drops the lines of
    the later epochs (never checkpointed, so logged again). A symbolic link is refused, never
    written through."""
    path = Path(run_dir) / 'log.jsonl'
    refuse_link(path)
    if resume_epoch is not None and path.exists():
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line_epoch(line) <= resume_epoch]
        if kept != lines:
            write_file(path, ''.join(kept).encode())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            refuse_link(path)
        raise
    return open(fd, 'a')


def refuse_link(path):
    if os.path.islink(path):
        raise CheckpointError(f'{path} is a symbolic link (to {os.readlink(path)}): pufferlib does '
                              'not write through links; remove it (or replace it by a copy of the '
                              'file) and run again')


def line_epoch(line):
    """The epoch of a log.jsonl line; infinity for a line that is not a whole JSON record (cut
    short by a kill)."""
    try:
        epoch = json.loads(line)['epoch']
    except (ValueError, KeyError, TypeError):
        return math.inf
    return epoch if isinstance(epoch, int) else math.inf


def logged_scores(run_dir, last_epoch):
    """{epoch: score} of the epochs up to `last_epoch` in run_dir/log.jsonl (see score_of)."""
    path = Path(run_dir) / 'log.jsonl'
    refuse_link(path)
    scores = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line_epoch(line) <= last_epoch:
                record = json.loads(line)
                scores[record['epoch']] = score_of(record, 'environment/')
    return scores


def score_of(stats, prefix=''):
    """What "best" means for checkpoint_keep: the env's `score`, else its `episode_return`."""
    value = stats.get(prefix + 'score', stats.get(prefix + 'episode_return'))
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


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

CHECKPOINT_NAME = re.compile(r'checkpoint_([0-9]+)\.pt')


def checkpoints(folder):
    """[(epoch, path)] of the checkpoint_<epoch>.pt files in `folder`, oldest epoch first."""
    return sorted((int(m.group(1)), p) for p in Path(folder).iterdir()
                  if (m := CHECKPOINT_NAME.fullmatch(p.name)))


def write_file(path, data):
    """Write `data` to `path` through a temporary file renamed over it: a crash leaves the old
    file or the new one. The temporary file is created anew, never through a symbolic link."""
    path = Path(path)
    tmp = path.with_name(f'{path.name}.tmp{os.getpid()}')
    tmp.unlink(missing_ok=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with open(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path, payload):
    """Write `payload` (tensors and plain data) to `path` atomically, with the sha256 digest of
    its contents. A write that fails (a full disk) is a CheckpointError and leaves the file that
    was there."""
    path = Path(path)
    payload = {k: v for k, v in payload.items() if k not in ('sha256', 'path')}  # path: load's
    payload['sha256'] = digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    try:
        write_file(path, buffer.getbuffer())
    except OSError as e:
        raise CheckpointError(write_error(path, e, buffer.tell())) from None
    return path


def write_error(path, error, size):
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        free = shutil.disk_usage(path.parent).free
        return (f'no space left on {device_of(path.parent)} writing {path} ({size:,} bytes, '
                f'{free:,} free): free some space or set train.data_dir elsewhere; the previous '
                'checkpoints are kept')
    return f'cannot write {path}: {error.strerror or error}'


def device_of(folder):
    """'/dev/sda1 (mounted on /data)': the file system `folder` is on."""
    mount = Path(os.path.abspath(folder))
    while not os.path.ismount(mount):
        mount = mount.parent
    try:
        with open('/proc/mounts') as f:
            devices = {fields[1]: fields[0] for fields in map(str.split, f) if len(fields) > 1}
    except OSError:
        devices = {}
    return f'{devices[str(mount)]} (mounted on {mount})' if str(mount) in devices else str(mount)


def prune(run_dir, keep, scores):
    """Delete the temporary files a killed run left in `run_dir` and every checkpoint but the
    newest `keep` and the best by `scores` ({epoch: score or None})."""
    for pattern in ('checkpoint_*.pt.tmp*', 'log.jsonl.tmp*'):
        for tmp in Path(run_dir).glob(pattern):
            tmp.unlink(missing_ok=True)
    found = checkpoints(run_dir)
    kept = {path for _, path in found[-keep:]}
    scored = [(scores[epoch], epoch, path) for epoch, path in found if scores.get(epoch) is not None]
    if scored:
        kept.add(max(scored)[2])
    for _, path in found:
        if path not in kept:
            path.unlink(missing_ok=True)


def digest(obj):
    """sha256 of a checkpoint's contents: tensors (dtype, shape, bytes) and plain data."""
    h = hashlib.sha256()
    feed_digest(h, obj)
    return h.hexdigest()


def feed_digest(h, obj):
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f'T{t.dtype}{tuple(t.shape)}'.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f'D{len(obj)}'.encode())
        for key in sorted(obj, key=repr):
            feed_digest(h, key)
            feed_digest(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f'{type(obj).__name__}{len(obj)}'.encode())
        for value in obj:
            feed_digest(h, value)
    else:
        h.update(f'{type(obj).__name__}:{obj!r};'.encode())


def load_checkpoint(path, env_name=None):
    """The checkpoint dict at `path` (a file, or a run folder: its checkpoint of the highest
    epoch), checked: only tensors and plain data are unpickled, the digest must match and every
    entry the trainer reads must be there with its type. With `env_name`, a CheckpointError
    unless a run of that env saved it."""
    path = Path(path)
    if path.is_dir():
        found = checkpoints(path)
        if not found:
            raise CheckpointError(f'{path} holds no checkpoint_*.pt file')
        path = found[-1][1]
    if not path.exists():
        raise CheckpointError(f'checkpoint {path} does not exist')
    try:
        payload = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r'GLOBAL (\S+)', str(e))
        if 'Weights only load failed' in str(e) and unsafe:
            raise CheckpointError(
                f'checkpoint {path} is refused: unpickling it would call {unsafe.group(1)}, which '
                'could run code. A pufferlib checkpoint holds tensors and plain data only (files '
                'written before pufferlib checked this hold numpy RNG state: retrain, or convert '
                'one you trust yourself)') from None
        raise CheckpointError(f'checkpoint {path} is corrupt or not a pufferlib checkpoint '
                              f'({type(e).__name__}: {str(e).splitlines()[0][:200]})') from None
    except Exception as e:  # a truncated or foreign file fails in many ways: name it
        raise CheckpointError(f'checkpoint {path} is corrupt or not a pufferlib checkpoint '
                              f'({type(e).__name__}: {e})') from None
    check_contents(payload, path)
    if env_name is not None and payload['env_name'] != env_name:
        raise CheckpointError(f"{path} was saved by a {payload['env_name']!r} run, not "
                              f'{env_name!r}')
    payload['path'] = str(path)
    return payload


CONTENTS = {'env_name': str, 'config': dict, 'model': dict, 'trainer': dict, 'sha256': str}
TRAINER_CONTENTS = {'optimizers': list, 'global_step': int, 'epoch': int, 'uptime': (int, float),
                    'world_size': int, 'rng': dict}
RNG_CONTENTS = {'torch': torch.Tensor, 'numpy': dict, 'python': list}


def check_contents(payload, path):
    """A CheckpointError naming `path` and the entry, unless `payload` has every entry the
    trainer reads, with its type, and its digest matches."""
    if not isinstance(payload, dict):
        raise CheckpointError(f'checkpoint {path} is not a pufferlib checkpoint (it holds a '
                              f'{type(payload).__name__}, not a dict)')
    check_entries(payload, CONTENTS, '', path)
    check_entries(payload['trainer'], TRAINER_CONTENTS, 'trainer.', path)
    check_entries(payload['trainer']['rng'], RNG_CONTENTS, 'trainer.rng.', path)
    for where, entries, kind in (('model', payload['model'].values(), torch.Tensor),
                                 ('trainer.optimizers', payload['trainer']['optimizers'], dict),
                                 ('config', payload['config'].values(), dict)):
        wrong = [type(v).__name__ for v in entries if not isinstance(v, kind)]
        if wrong:
            raise CheckpointError(f'checkpoint {path} is damaged: {where} holds a {wrong[0]} '
                                  f'where a {kind.__name__} belongs')
    actual = digest({k: v for k, v in payload.items() if k != 'sha256'})
    if actual != payload['sha256']:
        raise CheckpointError(f'checkpoint {path} fails its checksum (sha256 {actual[:16]}..., '
                              f'written as {payload["sha256"][:16]}...): the file changed after '
                              'it was written (a damaged disk or copy); use another checkpoint')


def check_entries(entries, expected, where, path):
    for key, kind in expected.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if key not in entries:
            raise CheckpointError(f'checkpoint {path} is not a pufferlib checkpoint, or a damaged '
                                  f'one: it has no {where}{key} entry')
        value = entries[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise CheckpointError(f'checkpoint {path} is damaged: {where}{key} is a '
                                  f'{type(value).__name__}, not a '
                                  f'{" or ".join(k.__name__ for k in kinds)}')


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
    """Checkpoint `trainer` as run_dir/checkpoint_<epoch>.pt, then delete the older ones past
    train.checkpoint_keep (the best by score stays); returns its path (None on the ranks other
    than 0, which only take part in gathering the RNG states)."""
    state = trainer_state(trainer, gather)   # every rank: it may gather the ranks' RNG states
    if trainer.rank != 0:
        return None
    payload = {'env_name': env_name, 'config': config, 'model': trainer.policy.state_dict(),
               'trainer': state}
    path = save_checkpoint(trainer.run_dir / f'checkpoint_{trainer.epoch:06d}.pt', payload)
    trainer.checkpoint_scores[trainer.epoch] = score_of(trainer.epoch_stats)  # as logged
    prune(trainer.run_dir, trainer.cfg['checkpoint_keep'], trainer.checkpoint_scores)
    return path


def resume(trainer, path, env_name):
    """Restore the model, optimizers, counters and RNG state of the checkpoint (or run folder)
    `path`, or of an already loaded checkpoint dict, into `trainer`; returns the run folder, which
    the resumed run goes on writing."""
    payload = path if isinstance(path, dict) else load_checkpoint(path, env_name)
    load_model(trainer.policy, payload, payload['path'])
    load_trainer_state(trainer, payload['trainer'], payload['path'])
    run_dir = Path(payload['path']).parent
    trainer.checkpoint_scores = logged_scores(run_dir, trainer.epoch)
    return run_dir


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
        if len(state['optimizers']) != len(trainer.optimizers):
            raise ValueError(f"{len(state['optimizers'])} optimizers saved, "
                             f'{len(trainer.optimizers)} built')
        for opt, opt_state in zip(trainer.optimizers, state['optimizers']):
            opt.load_state_dict(opt_state)
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError, AttributeError) as e:
        raise CheckpointError(f'{path}: its optimizer state does not match train.optimizer '
                              f'{trainer.cfg["optimizer"]!r} ({e})') from None
    if trainer.reward_scaler is not None and 'reward_scaler' in state:
        trainer.reward_scaler.load_state_dict(state['reward_scaler'])
    trainer.global_step, trainer.epoch = state['global_step'], state['epoch']
    trainer.epoch_start_step = trainer.global_step
    trainer.uptime_before = state.get('uptime', 0.0)
    trainer.last_log = (time.time(), trainer.global_step)
    try:
        if 'rank_rng' in state:
            set_rng_state(state['rank_rng'][trainer.rank])
        elif trainer.rank == 0:
            set_rng_state(state['rng'])
        else:  # a checkpoint written on a hard stop holds rank 0's state only
            seed = trainer.cfg['seed'] + trainer.rank + 100_003 * trainer.epoch
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise CheckpointError(f'checkpoint {path} is damaged: its RNG state cannot be restored '
                              f'({type(e).__name__}: {e})') from None


def rng_state():
    """The torch, numpy and Python RNG states as tensors and plain data."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {'torch': torch.get_rng_state(),
            'numpy': {'bit_generator': name, 'keys': torch.from_numpy(keys.astype(np.int64)),
                      'pos': int(pos), 'has_gauss': int(has_gauss),
                      'cached_gaussian': float(cached_gaussian)},
            'python': [version, list(internal), gauss_next]}


def set_rng_state(state):
    torch.set_rng_state(state['torch'])
    n = state['numpy']
    np.random.set_state((n['bit_generator'], n['keys'].numpy().astype(np.uint32), n['pos'],
                         n['has_gauss'], n['cached_gaussian']))
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
