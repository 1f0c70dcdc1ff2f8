"""Many processes under torchrun: the process group, collectives, DDP, agreeing to stop.

Every rank runs the same training loop (ppo.train) on its own vector env and buffer;
DistributedDataParallel averages the gradients, `merge_epoch_stats` merges the ranks' statistics
once per epoch, and only rank 0 writes logs and checkpoints (docs/training.md, "Many processes").
A plain process (no WORLD_SIZE) is rank 0 of 1 and none of this touches it.
"""
import datetime
import os
import signal
import threading
from collections import defaultdict

import torch

from pufferlib.exceptions import APIUsageError
from pufferlib.trainer.rollout import episode_means


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


def agree(flag, world_size):
    """True on every rank when `flag` is true on any rank."""
    return any(all_gather(bool(flag), world_size))


def wrap_ddp(policy, device):
    """DistributedDataParallel around `policy`: it broadcasts rank 0's weights now and averages
    the gradients of every backward pass. The rollout keeps calling the plain module."""
    from torch.nn.parallel import DistributedDataParallel
    device = torch.device(device)
    return DistributedDataParallel(policy, device_ids=[device] if device.type == 'cuda' else None,
                                   gradient_as_bucket_view=True)


def check_same_sizes(sizes, world_size):
    """Every rank must make the same number of backward passes per epoch: DDP averages one
    backward pass of each rank at a time, so a rank with more would wait forever."""
    per_rank = all_gather(sizes, world_size)
    if len(set(per_rank)) > 1:
        raise APIUsageError(
            'the ranks disagree on (agents, batch_size, minibatch segments, accumulation, '
            f'minibatches) {per_rank}: every rank needs the same env and [train] sizes, since '
            'DistributedDataParallel averages one backward pass of each rank at a time')


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
    return {'steps': sum(s['steps'] for s in per_rank), 'losses': dict(losses),
            'env_stats': episode_means(sums, counts), 'stop': any(s['stop'] for s in per_rank)}


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
