"""`puffer train|eval|play|bench|sweep ENV [--config PATH] [--section.key value ...]`.

ENV is an Ocean game (breakout, connect4, triple_triad, squared), `match` (the NumPy example env),
a Gymnasium id (CartPole-v1, ALE/Pong-v5), `module:EnvId` or a PettingZoo module
(pettingzoo.classic.connect_four_v3), the last three through pufferlib.emulation (envs.py). torch
is imported only by train, eval and the trainer half of
bench: `puffer play` and the env half of `puffer bench` work without it.
"""
import argparse
import os
import sys
import time

import numpy as np

from pufferlib.exceptions import APIUsageError, CheckpointError

USAGE = """puffer train ENV [--config PATH] [--resume PATH] [--section.key value ...]
       puffer eval ENV [--checkpoint PATH] [--episodes N] [--seconds S] [--headless] [--greedy]
                       [--record run.mp4|run.gif] [...]
       puffer play ENV
       puffer bench ENV [--config PATH] [--seconds S] [--section.key value ...]
       puffer sweep ENV [--config PATH] [--sweep.trials N] [--sweep.method tpe|cmaes|random|nsga2] [...]"""


def env_creator(name):
    """(creator, kind) of the env `name` names (pufferlib/trainer/envs.py)."""
    from pufferlib.trainer.envs import env_creator as named_env
    return named_env(name)


def make_vecenv(name, config, **env_overrides):
    """The vector env for `name` as the config's [env] and [vec] sections describe it. The caller
    closes it."""
    import pufferlib.vector
    creator, kind = env_creator(name)
    vec = dict(config['vec'])
    env_kwargs = {**config['env'], **env_overrides}
    backend = vec.pop('backend')     # as config.py spells it: auto or a lower-case name
    if backend == 'auto':
        backend = 'native' if kind in ('ocean', 'match') and vec['num_envs'] == 1 else 'serial'
    kwargs = {k: v for k, v in vec.items() if v != 'auto'}
    if backend != 'ray' or kwargs.get('ray_address') is None:
        kwargs.pop('ray_address', None)
    return pufferlib.vector.make(creator, env_kwargs=env_kwargs, backend=backend,
                                 seed=config['train']['seed'], **kwargs)


def load(name, overrides, config_file=None, saved=None):
    """The validated config of `name` (pufferlib/trainer/config.py): its ini files, or `saved` (a
    checkpoint's config) over them, then `config_file` (--config PATH: an ini whose sections are
    layered over them), then the command-line `overrides`, each key checked."""
    from pufferlib.trainer.config import load_config, read_config_file
    creator, kind = env_creator(name)
    emulated = kind in ('gymnasium', 'pettingzoo')
    kwargs = dict(env_creator=creator, emulated=emulated, saved=saved,
                  profile=env_profile(creator) if emulated else None)
    if config_file is not None:
        words = read_config_file(config_file)[0]
        try:
            load_config(name, words, **kwargs)
        except APIUsageError as e:
            raise APIUsageError(f'{config_file}: {e}') from None
        overrides = words + list(overrides)
    return load_config(name, overrides, **kwargs)


def env_profile(creator):
    """defaults.defaults_for the env that `creator` makes (one instance, closed again)."""
    from pufferlib.trainer.defaults import defaults_for
    env = creator()
    try:
        spec = getattr(getattr(env, 'env', None), 'spec', None)
        return defaults_for(env.single_observation_space, env.single_action_space,
                            getattr(spec, 'max_episode_steps', None))
    finally:
        env.close()


def setup_torch(cfg, rank=0):
    """A CUDA train.device that exists, threads (auto: this process's share of the cores) and
    seeds (offset by the rank under torchrun; DDP gives every rank rank 0's initial weights)."""
    import torch
    device = torch.device(cfg['device'])
    if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count():
        raise APIUsageError(f"train.device = {cfg['device']!r}, but torch sees "
                            f'{torch.cuda.device_count()} CUDA device(s): use --train.device cpu')
    threads = cfg['torch_threads']
    if threads in (None, 'auto'):
        threads = max(1, (os.cpu_count() or 1) // int(os.environ.get('LOCAL_WORLD_SIZE', 1)))
    torch.set_num_threads(int(threads))
    torch.manual_seed(cfg['seed'] + rank)
    np.random.seed((cfg['seed'] + rank) % 2**32)
    return torch


def build_policy(vecenv, config):
    from pufferlib.trainer.policy import make_policy
    p = config['policy']
    policy = make_policy(vecenv, p['hidden_size'], p['num_layers'], p['lstm'], p['action_mask'],
                         p['normalize_observations'], p['separate_critic'])
    return policy.to(config['train']['device'])


def cmd_train(name, args, overrides):
    """Train; under torchrun (`torchrun --nproc-per-node N -m pufferlib.trainer train ENV`) each
    process is one rank of a DistributedDataParallel run (docs/training.md, "Many processes")."""
    from pufferlib.trainer import checkpoint, distributed, ppo
    from pufferlib.trainer.dashboard import make_dashboard
    # --resume: the run's own settings, under --config and any new overrides
    saved = checkpoint.load_checkpoint(args.resume, name)['config'] if args.resume else None
    config = load(name, overrides, args.config, saved)
    rank, world_size = distributed.init_distributed(config['train'])
    try:
        setup_torch(config['train'], rank)
        with make_vecenv(name, config) as vecenv:  # opened here, so closed here
            policy = build_policy(vecenv, config)
            dashboard = make_dashboard(name, policy, config, world_size=world_size) if rank == 0 else None
            trainer = ppo.train(name, config, vecenv, policy, resume=args.resume, dashboard=dashboard)
    finally:
        distributed.close_distributed()
    stopped = 143 if trainer.interrupted == 'SIGTERM' else 130   # 128 + the signal's number
    if rank != 0:
        return stopped if trainer.interrupted else 0
    if trainer.interrupted:
        how = 'stopped by SIGTERM' if trainer.interrupted == 'SIGTERM' else 'interrupted'
        print(f'{how}: saved {trainer.last_checkpoint}', flush=True)
        return stopped
    print(f'done: {trainer.global_step} steps, checkpoint {trainer.last_checkpoint}', flush=True)
    return 0


def renders(name):
    """Whether env `name` takes a render_mode (Gymnasium and PettingZoo envs do)."""
    from pufferlib.trainer.config import creator_params
    creator, kind = env_creator(name)
    return kind in ('gymnasium', 'pettingzoo') or 'render_mode' in creator_params(creator)


def per_episode_reports(name):
    """report_interval=1 where the env takes it: every episode is reported as it ends, so that
    eval counts exactly --episodes."""
    from pufferlib.trainer.config import creator_params
    return {'report_interval': 1} if 'report_interval' in creator_params(env_creator(name)[0]) else {}


def recording_env(name, config, render_mode='rgb_array'):
    """One env object (Native backend) in `render_mode`, reporting every episode as it ends: what
    eval draws or records."""
    if not renders(name):
        raise APIUsageError(f'{name} does not render (its constructor takes no render_mode): '
                            'nothing to record')
    config = {**config, 'vec': {**config['vec'], 'backend': 'native', 'num_envs': 1}}
    overrides = {'render_mode': render_mode, **per_episode_reports(name)}
    if 'num_envs' in config['env']:
        overrides['num_envs'] = 1
    return make_vecenv(name, config, **overrides)


def cmd_eval(name, args, overrides):
    """Run a trained policy: rendered sub-env 0 when a display is available, else headless with
    episode statistics printed; --record PATH writes what env 0 shows to an mp4 or gif."""
    from pufferlib.trainer import checkpoint
    payload = checkpoint.load_checkpoint(args.checkpoint, name) if args.checkpoint else None
    config = load(name, overrides, saved=payload and payload['config'])
    setup_torch(config['train'])
    from pufferlib.ocean.render import has_display
    render = not args.headless and not args.record and renders(name) and has_display()
    recorder = None
    if args.record:
        from pufferlib.trainer import video
        video.check_path(args.record)
        vecenv = recording_env(name, config)
    elif render:
        vecenv = recording_env(name, config, 'human')
    else:
        vecenv = make_vecenv(name, config, **per_episode_reports(name))
    with vecenv:
        policy = build_policy(vecenv, config)
        if payload is not None:
            checkpoint.load_model(policy, payload, payload['path'])
        if args.record:
            recorder = video.Recorder(args.record, video.render_fps(vecenv))
        try:
            stats = evaluate(vecenv, policy, config, args.episodes, render, max_seconds=args.seconds,
                             greedy=args.greedy, record=recorder)
        finally:
            if recorder is not None:
                recorder.close()
    if recorder is not None:
        print(f'recorded {recorder.frames} frames to {args.record}')
    source = payload['path'] if payload else 'an untrained policy'
    print(f'eval {name} with {source}:')
    for key, value in stats.items():
        print(f'  {key}: {value:.4g}' if isinstance(value, float) else f'  {key}: {value}')
    return 0


def evaluate(vecenv, policy, config, episodes, render=False, max_seconds=None, greedy=False,
             record=None, max_steps=None):
    """Step `policy` on `vecenv` until exactly `episodes` episodes have been reported (or the
    window is closed, or `max_steps` steps are done); returns the means of the env's episode
    statistics, weighted by episode count. `greedy` takes the most likely action
    (Discrete/MultiDiscrete: argmax; Box: the mean). `record` (a video.Recorder) gets env 0's
    frame after every step."""
    from collections import defaultdict

    from pufferlib.trainer.rollout import add_episode_stats, agent_states, episode_means, policy_step
    policy.eval()
    device = config['train']['device']
    states = agent_states(policy, vecenv.num_agents, device)
    sums, counts = defaultdict(float), defaultdict(float)
    start, steps = time.time(), 0
    vecenv.async_reset(config['train']['seed'])
    while sums['n'] < episodes:
        batch = vecenv.recv()
        add_episode_stats(first_episodes(batch[4], episodes - sums['n']), sums, counts)  # [4]: infos
        _, _, actions = policy_step(policy, states, batch, vecenv.single_action_space, device,
                                    greedy=greedy)
        vecenv.send(actions)
        steps += 1
        if render:
            getattr(vecenv, 'env', vecenv).render()
            from pufferlib.ocean.render import raylib
            if raylib().window_should_close():
                break
        if record is not None:
            record.append(getattr(vecenv, 'env', vecenv).render())
        if max_steps is not None and steps >= max_steps:
            break
        if max_seconds is not None and time.time() - start > max_seconds:
            break
    stats = episode_means(sums, counts)
    stats['episodes'] = int(stats.pop('n', 0))
    stats['rendered frames' if render else 'steps'] = steps
    return stats


def first_episodes(infos, left):
    """The infos of the first `left` episodes: an info covering more (the means of episodes that
    ended in the same step) counts for the `left` it completes."""
    kept = []
    for info in [infos] if isinstance(infos, dict) else infos:
        n = info.get('n', 1) if isinstance(info, dict) else 0
        if n and left <= 0:
            break
        if n > left:
            info = {**info, 'n': left}
        kept.append(info)
        left -= n
    return kept


def cmd_play(name, args, overrides):
    from pufferlib import ocean
    if name not in ocean.ENVS:
        raise APIUsageError(f'puffer play works for the Ocean games ({", ".join(sorted(ocean.ENVS))}), '
                            f'not {name!r}')
    ocean.play(name)
    return 0


def cmd_bench(name, args, overrides):
    """Env SPS with random actions (no torch), then trainer SPS when torch is installed."""
    config = load(name, overrides, args.config)
    with make_vecenv(name, config) as vecenv:
        sps = bench_env(vecenv, args.seconds or 10.0)
    print(f'{name}: env {sps:,.0f} agent-steps/s (random actions, {vecenv.num_agents} agents)',
          flush=True)
    try:
        import torch  # noqa: F401
    except ImportError:
        print('trainer: torch is not installed (pip install "pufferlib[train]")')
        return 0
    trainer_sps = bench_trainer(name, config, args.seconds or 10.0)
    print(f'{name}: trainer {trainer_sps:,.0f} agent-steps/s '
          f'({trainer_sps / sps:.1%} of env-only speed)', flush=True)
    return 0


def bench_env(vecenv, seconds):
    space = vecenv.single_action_space
    rng = np.random.default_rng(0)
    vecenv.async_reset(0)
    steps, start = 0, time.perf_counter()
    actions = None
    while time.perf_counter() - start < seconds:
        obs, rewards, terminals, truncations, infos, ids, masks = vecenv.recv()
        if actions is None or len(actions) != len(ids):
            batch = [space.sample() for _ in range(64)]
            actions = np.stack([batch[i % 64] for i in range(len(ids))])
            if not np.issubdtype(actions.dtype, np.floating):
                actions = actions.astype(np.int32)
        vecenv.send(actions)
        steps += len(ids)
    return steps / (time.perf_counter() - start)


def bench_trainer(name, config, seconds, warmup=1):
    """Agent steps per second of the training loop (rollout, update, epoch summary) after `warmup`
    epochs. Under torchrun every rank runs it and gets the same figure: that of all ranks."""
    from pufferlib.trainer import distributed, ppo
    rank, world = distributed.init_distributed(config['train'])
    try:
        setup_torch(config['train'], rank)
        with make_vecenv(name, config) as vecenv:
            trainer = ppo.Trainer(config['train'], vecenv, build_policy(vecenv, config))
            for _ in range(warmup):
                trainer.rollout()
                trainer.update()
                trainer.epoch_summary()
            step, start = trainer.global_step, time.perf_counter()
            while True:
                trainer.rollout()
                trainer.update()
                trainer.epoch_summary()   # merges the ranks' step counts: global_step is global
                if distributed.agree(time.perf_counter() - start >= seconds, world):
                    return (trainer.global_step - step) / (time.perf_counter() - start)
    finally:
        distributed.close_distributed()


def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f'{text} is not a positive {kind.__name__}')
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def cmd_sweep(name, args, overrides):
    from pufferlib.trainer import sweep
    return sweep.sweep(name, overrides, args.config)


def main(argv=None):
    # Sleeping, not spinning, OpenMP threads: spinning ones stall torch by milliseconds per op
    # whenever another process holds a core (measured: 10x slower on a busy 2-core machine).
    os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog='puffer', usage=USAGE)
    parser.add_argument('mode', choices=['train', 'eval', 'play', 'bench', 'sweep'])
    parser.add_argument('env')
    parser.add_argument('--config', default=None,
                        help='train, bench, sweep: an ini layered over the env\'s own config')
    parser.add_argument('--resume', default=None, help='train: continue from a checkpoint or run folder')
    parser.add_argument('--checkpoint', default=None, help='eval: checkpoint file or run folder')
    parser.add_argument('--episodes', type=positive(int), default=100, help='eval: episodes to run')
    parser.add_argument('--headless', action='store_true', help='eval: never open a window')
    parser.add_argument('--record', default=None, metavar='PATH',
                        help='eval: write what env 0 shows to PATH (.mp4 or .gif), off-screen')
    parser.add_argument('--greedy', action='store_true',
                        help='eval: take the most likely action instead of sampling')
    parser.add_argument('--seconds', type=positive(float), default=None,
                        help='bench: seconds per measurement (10); eval: stop after this long')
    args, overrides = parser.parse_known_args(argv)
    commands = {'train': cmd_train, 'eval': cmd_eval, 'play': cmd_play, 'bench': cmd_bench,
                'sweep': cmd_sweep}
    try:
        return commands[args.mode](args.env, args, overrides)
    except (APIUsageError, CheckpointError) as e:
        rank = f' (rank {os.environ["RANK"]})' if int(os.environ.get('WORLD_SIZE', 1)) > 1 else ''
        print(f'puffer {args.mode}{rank}: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
