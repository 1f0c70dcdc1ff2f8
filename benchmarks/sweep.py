"""A sweep against the committed config: `python benchmarks/sweep.py [--env squared] [--trials 16]`.

1. Trains the env's committed config once, through the same trial runner and score as a sweep's
   trials (`sweep.run_trial`; the score is the episode-weighted mean of the last 5 epochs): the
   baseline, measured in this run.
2. Runs a sweep of --trials trials over default.ini's search space (TPE; objectives score and
   agent steps; total_timesteps searched between 0.1x and 1x the committed value).
3. Prints the baseline's score and steps, the trials that score at least as well, and of those the
   one that needs the fewest steps, with its steps as a ratio of the baseline's.
4. Trains the committed config and that trial's config (its ini, through `--config`) again with a
   seed no trial used (--check-seed), so that the comparison is not one seed's luck.

squared is the default env: native, fast (a committed run is about 30 s here), and its config is
not about to change.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pufferlib.trainer import sweep  # noqa: E402


def cpu():
    with open('/proc/cpuinfo') as f:
        names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
    return f'{names[0] if names else "unknown CPU"}, {os.cpu_count()} cores'


def train(env, overrides, folder):
    """(score, agent steps, training seconds) of one run, measured as a sweep measures a trial."""
    score = sweep.Score('auto')

    def on_record(record):
        score.add(record)   # and None: the run is never stopped
    records, code, _, stderr = sweep.run_trial(env, overrides, folder, on_record)
    if code != 0:
        raise SystemExit(f'{folder}: training failed:\n{stderr}')
    return score.value, records[-1]['agent_steps'], records[-1]['uptime']


def line(name, result):
    score, steps, seconds = result
    return f'{name}: score {score:.4f} after {steps:,} steps ({seconds:.1f} s of training)'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--env', default='squared')
    parser.add_argument('--trials', type=int, default=16)
    parser.add_argument('--method', default='tpe')
    parser.add_argument('--seed', type=int, default=0, help="the sampler's seed")
    parser.add_argument('--check-seed', type=int, default=7, help='train.seed of the re-check')
    parser.add_argument('--data-dir', default=None, help='default: a new temporary folder')
    args = parser.parse_args()
    root = Path(args.data_dir or tempfile.mkdtemp(prefix='puffer_sweep_bench_'))
    print(f'# {cpu()}; sweep folder {root}', flush=True)

    baseline = train(args.env, [], root / 'committed')
    print(line(f'committed {args.env} config', baseline), flush=True)

    start = time.time()
    sweep.sweep(args.env, ['--sweep.trials', str(args.trials), '--sweep.method', args.method,
                           '--sweep.seed', str(args.seed), '--sweep.data_dir', str(root),
                           '--sweep.name', 'sweep'])
    minutes = (time.time() - start) / 60
    import optuna
    from optuna.trial import TrialState
    study = optuna.load_study(study_name='sweep', storage=f'sqlite:///{root / "sweep/study.db"}')
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    good = [t for t in complete if t.values[0] >= baseline[0]]
    print(f'\n{len(complete)} trials completed in {minutes:.1f} min; {len(good)} score at least '
          f"{baseline[0]:.4f} (the committed config's): "
          + ', '.join(f'trial {t.number} ({t.values[0]:.4f} in {t.values[1]:,.0f} steps)'
                      for t in good))
    if not good:
        best = max(complete, key=lambda t: t.values[0])
        print(f'none reached it; the best: trial {best.number}, score {best.values[0]:.4f} after '
              f'{best.values[1]:,.0f} steps')
        return 1
    win = min(good, key=lambda t: (t.values[1], -t.values[0]))
    print(f'fewest steps at that score or better: trial {win.number}, score {win.values[0]:.4f} '
          f"after {win.values[1]:,.0f} steps ({win.user_attrs['seconds']:.1f} s of training) = "
          f"{win.values[1] / baseline[1]:.2f}x the committed config's steps, "
          f"{win.user_attrs['seconds'] / baseline[2]:.2f}x its training time")
    print('  ' + ', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
                           for k, v in win.params.items()))
    ini = root / 'winner.ini'
    ini.write_text(sweep.trial_ini(args.env, study, win))

    check = ['--train.seed', str(args.check_seed)]
    print(f'\nagain with train.seed {args.check_seed}, which no trial used:', flush=True)
    again = train(args.env, check, root / 'committed_check')
    print(line('  committed config', again), flush=True)
    winner = train(args.env, ['--config', str(ini), *check], root / 'winner_check')
    print(line(f'  trial {win.number} (--config {ini})', winner))
    print(f'  ratio: score {winner[0] / again[0]:.3f}x, steps {winner[1] / again[1]:.2f}x, '
          f'training time {winner[2] / again[2]:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
