"""Learning curve of one `puffer train` run from its log.jsonl: episode return (per epoch, and the
mean of the last 100 episodes) and policy entropy against agent steps, as a PNG.

    python benchmarks/plot_run.py RUN_FOLDER OUT.png --title "MinAtar/Breakout-v1, CNN"

Epochs whose log repeats the previous epoch's episode stats (issue 10.5, fixed on another branch)
are counted once: a record counts only when its episode stats differ from the last one counted.
"""
import argparse
import json
from pathlib import Path

CPU = 'AMD EPYC, 2 cores, AVX2, no AVX-512, no AMX; 1 torch thread'


def read_log(run):
    """[(agent_steps, episode_return or None, episode count, entropy)] of the run's epochs."""
    rows, last = [], None
    for line in open(Path(run) / 'log.jsonl'):
        record = json.loads(line)
        stats = (record.get('environment/episode_return'), record.get('environment/n'))
        fresh = stats[0] is not None and stats != last
        last = stats if fresh else last
        rows.append((record['agent_steps'], stats[0] if fresh else None,
                     stats[1] if fresh else 0, record['losses/entropy']))
    return rows


def last_episodes_mean(rows, episodes=100):
    """Per epoch with fresh stats: (steps, mean return of the last `episodes` episodes), the
    episodes of each report weighted by their count."""
    window, out = [], []
    for steps, ret, n, _ in rows:
        if ret is None:
            continue
        window.append((ret, n))
        while sum(c for _, c in window[1:]) >= episodes:
            window.pop(0)
        total = sum(c for _, c in window)
        out.append((steps, sum(r * c for r, c in window) / total))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('run')
    parser.add_argument('out')
    parser.add_argument('--title', default='')
    args = parser.parse_args()
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = read_log(args.run)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    fresh = [(s, r) for s, r, _, _ in rows if r is not None]
    ax1.plot([s for s, _ in fresh], [r for _, r in fresh], lw=0.5, alpha=0.4, label='report')
    mean = last_episodes_mean(rows)
    ax1.plot([s for s, _ in mean], [m for _, m in mean], lw=2, label='mean of the last 100 episodes')
    ax1.set_ylabel('episode return')
    ax1.legend(loc='lower right')
    ax2.plot([r[0] for r in rows], [r[3] for r in rows], lw=1)
    ax2.set_ylabel('policy entropy (nats)')
    for ax in (ax1, ax2):
        ax.set_xlabel('agent steps')
        ax.grid(alpha=0.3)
    fig.suptitle(f'{args.title}\n{CPU}', fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    if mean:
        print(f'{rows[-1][0]} steps: mean of the last 100 episodes {mean[-1][1]:.2f}, '
              f'entropy {rows[-1][3]:.3f}')


if __name__ == '__main__':
    main()
