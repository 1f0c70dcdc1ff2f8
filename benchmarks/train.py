"""Trainer speed and learning curve for one env: `python benchmarks/train.py GAME [options]
[--section.key value ...]`.

Runs `puffer train GAME` with the committed config (plus any overrides) for a wall-clock budget
and prints, every epoch-log interval, steps, SPS and the env's score / perf; then writes the
learning curve (score and perf vs wall-clock seconds) as a PNG and a JSON next to it.

--sps-only measures trainer SPS (rollout + update + the per-epoch merge, after 2 warm-up epochs)
for every combination of --ranks (processes under torchrun, DDP) and --threads (torch threads per
process), at two sizes: the published trainer's CPU network size (LSTM 128, 256 envs, batch 16384,
minibatch 4096) and the committed config of GAME. With R ranks the envs, batch and minibatch are
split over the ranks (each rank 256/R envs, batch 16384/R, minibatch 4096/R): the same global
batch and minibatch, the same amount of work per epoch as one process. Every measurement is a
fresh process (torchrun for R > 1), run in interleaved rounds (--rounds) so that a noisy machine
slows each alike; the medians are printed with ratios to 1 rank x 1 thread measured in the same
run and to the published trainer.

Baselines, printed as ratios, measured in the same run on the CPU named in the output:
  * env-only SPS with random actions (the ceiling the trainer approaches as the network shrinks);
  * with --baseline-python PATH (a venv holding the published PufferLib 3.0): its own trainer at
    the CPU size (LSTM 128, 256 envs, batch 16384, minibatch 4096, float32, one torch thread, its
    ini otherwise), run by its Python through pufferlib3_side.py, in the same interleaved rounds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pufferlib.trainer import cli  # noqa: E402
import baseline  # noqa: E402

BASELINE_GAMES = ('breakout', 'connect4', 'triple_triad')   # those PufferLib 3.0 also has
TARGET = {'breakout': ('score', 600, 600), 'connect4': ('perf', 0.99, 300),
          'triple_triad': ('perf', 0.85, 600)}
SPS_SIZE = ['--env.num_envs', '256', '--train.batch_size', '16384', '--train.minibatch_size',
            '4096', '--train.bptt_horizon', '64', '--policy.hidden_size', '128', '--policy.lstm',
            'True']


WINDOW = 60  # seconds of episodes averaged for the target check (one epoch holds few episodes)


def trailing_means(points, key, window):
    """[(t, mean of `key` over the episodes reported in (t - window, t])], weighted by count n."""
    out, total, count, first = [], 0.0, 0.0, 0
    for t, _, _, stats in points:
        if key in stats:
            total += stats[key] * stats.get('n', 1)
            count += stats.get('n', 1)
        while points[first][0] <= t - window:      # drop the points that left the window
            old = points[first][3]
            if key in old:
                total -= old[key] * old.get('n', 1)
                count -= old.get('n', 1)
            first += 1
        if count:
            out.append((t, total / count))
    return out


def split_for_ranks(game, overrides, ranks):
    """Overrides giving each of `ranks` processes 1/ranks of the envs, batch and minibatch."""
    if ranks == 1:
        return list(overrides)
    config = cli.load(game, overrides)
    env, train = config['env'], config['train']
    out = list(overrides)
    if 'num_envs' in env:
        if env['num_envs'] % ranks:
            raise SystemExit(f'env.num_envs {env["num_envs"]} does not split over {ranks} ranks')
        out += ['--env.num_envs', str(env['num_envs'] // ranks)]
    elif config['vec']['num_envs'] % ranks == 0:
        out += ['--vec.num_envs', str(config['vec']['num_envs'] // ranks)]
    for key in ('batch_size', 'minibatch_size'):
        if train[key] not in (None, 'auto'):
            out += [f'--train.{key}', str(train[key] // ranks)]
    return out


def sps_worker(game, overrides, seconds, threads):
    """One rank of a measurement (all ranks under torchrun): train for `seconds` after two
    warm-up epochs; rank 0 prints `SPS <agent steps per second of all ranks>`."""
    config = cli.load(game, overrides + ['--train.torch_threads', str(threads)])
    sps = cli.bench_trainer(game, config, seconds, warmup=2)
    if int(os.environ.get('RANK', 0)) == 0:
        print(f'SPS {sps}', flush=True)
    # The measurement is complete. Skip interpreter teardown: in about 1 run in 6 of this script
    # (never seen from `puffer train`), a rank aborts there with "terminate called without an
    # active exception" from torch's C++ side, after its process group is already destroyed.
    sys.stderr.flush()
    os._exit(0)


def measure_trainer_sps(game, overrides, seconds, threads, ranks):
    """Trainer SPS of `ranks` processes x `threads` torch threads, in a fresh process group."""
    script = [str(Path(__file__).resolve()), game, '--sps-worker', '--threads', str(threads),
              '--seconds', str(seconds)]
    if ranks == 1:
        command = [sys.executable] + script
    else:
        command = [str(Path(sys.executable).with_name('torchrun')), '--standalone',
                   '--nproc-per-node', str(ranks)] + script
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads)}
    result = subprocess.run(command + split_for_ranks(game, overrides, ranks), capture_output=True,
                            text=True, env=env, timeout=seconds + 300)
    lines = [line for line in result.stdout.splitlines() if line.startswith('SPS ')]
    if result.returncode or not lines:
        raise SystemExit(f'measurement failed ({" ".join(command)}):\n{result.stderr[-3000:]}')
    return float(lines[-1].split()[1])


def baseline_sps(python, game, seconds):
    """The published PufferLib 3.0 trainer's agent-steps/s at the CPU size, or None."""
    if not python or game not in BASELINE_GAMES:
        return None
    return baseline.run(python, 'train', game, seconds)['sps']


def sps_table(game, overrides, seconds, threads_list, ranks_list, rounds, env_sps, python=None):
    """Interleaved rounds over (size, ranks, threads) and the baseline; prints medians and
    ratios."""
    theirs = []
    sizes = {'LSTM 128 / 256 envs / batch 16384 / minibatch 4096': SPS_SIZE + overrides,
             f'committed {game} config': list(overrides)}
    combos = [(size, r, t) for size in sizes for r in ranks_list for t in threads_list]
    results = {c: [] for c in combos}
    for round_ in range(rounds):
        for combo in combos:
            size, r, t = combo
            results[combo].append(measure_trainer_sps(game, sizes[size], seconds, t, r))
            print(f'  round {round_ + 1}: {size}, {r} rank(s) x {t} thread(s): '
                  f'{results[combo][-1]:,.0f} SPS', flush=True)
        sps = baseline_sps(python, game, seconds)
        if sps is not None:
            theirs.append(sps)
            print(f'  round {round_ + 1}: PufferLib 3.0 trainer, CPU size: {sps:,.0f} SPS', flush=True)
    published = statistics.median(theirs) if theirs else None
    print(f'on {baseline.cpu_description()}:')
    if published:
        print(f'PufferLib 3.0 trainer, CPU size, 1 process x 1 thread: {published:>10,.0f} '
              f'agent-steps/s (median of {rounds} rounds of this run)')
    for size in sizes:
        print(f'{game}: trainer SPS, {size} (median of {rounds} rounds of {seconds:.0f} s):')
        base = statistics.median(results[(size, ranks_list[0], threads_list[0])])
        for r in ranks_list:
            for t in threads_list:
                sps = statistics.median(results[(size, r, t)])
                ratio = f', {sps / published:.2f}x PufferLib 3.0' if published else ''
                print(f'  {r} rank(s) x {t} thread(s): {sps:>10,.0f} agent-steps/s  '
                      f'{sps / base:.2f}x {ranks_list[0]} rank x {threads_list[0]} thread'
                      f'{ratio}  ({sps / env_sps:.1%} of env-only)', flush=True)


def learning_curve(game, overrides, minutes, out_dir):
    """Train for `minutes` of wall-clock (or until the config's total_timesteps, which also sets
    the learning-rate schedule); returns [(seconds, steps, sps, env stats)]."""
    import torch  # noqa: F401  (imported here so that the env baseline never needs it)
    from pufferlib.trainer import ppo
    config = cli.load(game, overrides)
    config['train']['data_dir'] = str(out_dir)
    config['train']['checkpoint_interval'] = 10**9
    cli.setup_torch(config['train'])
    vecenv = cli.make_vecenv(game, config)
    policy = cli.build_policy(vecenv, config)
    budget, start, points = minutes * 60, time.time(), []
    last_print = [0.0]

    def record(trainer, entry):
        now = time.time() - start
        points.append((now, trainer.global_step, trainer.sps, dict(trainer.epoch_stats)))
        if now - last_print[0] >= 10 or now >= budget:
            last_print[0] = now
            stats = '  '.join(f'{k} {v:.4g}' for k, v in trainer.env_stats.items()
                              if k in ('score', 'perf', 'episode_length', 'n'))
            print(f'{now:7.1f}s  {trainer.global_step:>11,} steps  {trainer.sps:>9,.0f} SPS  {stats}',
                  flush=True)
        return now >= budget

    with vecenv:
        ppo.train(game, config, vecenv, policy, on_epoch=record)
    return points, config, policy


def final_eval(game, config, policy, episodes):
    """{'sampled': stats, 'greedy': stats} of the trained policy over >= `episodes` episodes."""
    results = {}
    for mode in ('sampled', 'greedy'):
        with cli.make_vecenv(game, config) as vecenv:
            results[mode] = cli.evaluate(vecenv, policy, config, episodes,
                                         greedy=(mode == 'greedy'), max_seconds=120)
    return results


def plot(points, game, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    t = [p[0] / 60 for p in points]
    for ax, key in zip(axes, ('score', 'perf')):
        ax.plot(t, [p[3].get(key, float('nan')) for p in points], lw=0.6, alpha=0.5, label='epoch')
        curve = trailing_means(points, key, WINDOW)
        ax.plot([c[0] / 60 for c in curve], [c[1] for c in curve], lw=2,
                label=f'mean over the last {WINDOW} s')
        ax.legend(loc='lower right')
        ax.set_xlabel('wall-clock minutes')
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument('game')
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--sps-only', action='store_true',
                        help='only trainer SPS, at LSTM 128 size and with the committed config')
    parser.add_argument('--threads', default='1,2', help='torch threads per process (--sps-only)')
    parser.add_argument('--ranks', default='1,2', help='processes under torchrun (--sps-only)')
    parser.add_argument('--rounds', type=int, default=2, help='interleaved rounds (--sps-only)')
    parser.add_argument('--seconds', type=float, default=10.0, help='per SPS measurement')
    parser.add_argument('--sps-worker', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--out', default='benchmarks/results')
    baseline.add_argument(parser)
    parser.add_argument('--eval-episodes', type=int, default=1000,
                        help='evaluate the final policy on this many episodes (0: skip)')
    args, overrides = parser.parse_known_args()
    game = args.game
    if args.sps_worker:
        return sps_worker(game, overrides, args.seconds, int(args.threads))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    config = cli.load(game, overrides)
    with cli.make_vecenv(game, config) as vecenv:
        env_sps = cli.bench_env(vecenv, min(args.seconds, 5.0))
    print(f'{game}: env only (random actions) {env_sps:,.0f} agent-steps/s, on '
          f'{baseline.cpu_description()}', flush=True)

    if args.sps_only:
        return sps_table(game, overrides, args.seconds, [int(t) for t in args.threads.split(',')],
                         [int(r) for r in args.ranks.split(',')], args.rounds, env_sps,
                         args.baseline_python)
    published = baseline_sps(args.baseline_python, game, args.seconds)
    if published:
        print(f'PufferLib 3.0 trainer, CPU size: {published:,.0f} agent-steps/s (this run)')

    points, config, policy = learning_curve(game, overrides, args.minutes, out / 'runs')
    steps, seconds = points[-1][1], points[-1][0]
    mean_sps = steps / seconds
    print(f'{game}: {steps:,} steps in {seconds:.0f} s = {mean_sps:,.0f} agent-steps/s on average '
          f'({mean_sps / env_sps:.1%} of env-only'
          + (f', {mean_sps / published:.2f}x the PufferLib 3.0 trainer at the CPU size, this run'
             if published else '') + f') on {baseline.cpu_description()}')
    if game in TARGET:
        key, goal, limit = TARGET[game]
        curve = trailing_means(points, key, WINDOW)
        within = [(t, v) for t, v in curve if t <= limit]
        best = max((v for _, v in within), default=float('nan'))
        first = next((t for t, v in within if v >= goal), None)
        print(f'{game}: target {key} >= {goal} within {limit // 60} min, as the mean over the '
              f'episodes of the last {WINDOW} s: best {best:.4g}, final {curve[-1][1]:.4g}, '
              + (f'first reached at {first:.0f} s' if first is not None else 'not reached'))
    evals = {}
    if args.eval_episodes:
        evals = final_eval(game, config, policy, args.eval_episodes)
        for mode, stats in evals.items():
            print(f'{game}: final policy, {mode} actions, {stats.get("episodes", 0)} episodes: '
                  + '  '.join(f'{k} {v:.4g}' for k, v in stats.items() if k != 'episodes'))
    stamp = time.strftime('%Y%m%d_%H%M%S')
    png = out / f'train_{game}_{stamp}.png'
    with open(png.with_suffix('.json'), 'w') as f:
        json.dump({'game': game, 'overrides': overrides, 'cpu': baseline.cpu_description(),
                   'env_sps': env_sps, 'baseline_sps': published, 'eval': evals,
                   'points': [{'seconds': p[0], 'steps': p[1], 'sps': p[2], **p[3]} for p in points]},
                  f)
    try:
        plot(points, game, png, f'{game}: {mean_sps:,.0f} SPS, {" ".join(overrides) or "default config"}')
        print(f'wrote {png} and {png.with_suffix(".json").name}')
    except ImportError:
        print(f'matplotlib is not installed: wrote {png.with_suffix(".json")} only')


if __name__ == '__main__':
    main()
