"""Learning suite: `python benchmarks/learning.py [--tasks cartpole,acrobot] [--steps N] [--no-sb3]`.

For each task, trains `puffer train ENV` with the committed defaults (one torch thread) and, when
stable-baselines3 and rl_zoo3 are installed (`pip install "pufferlib[bench]"`), SB3's PPO with
rl-zoo's hyperparameters for the same number of steps, read at run time from rl_zoo3's
hyperparams/ppo.yml (a task whose id is missing there uses the entry named in ZOO_ID). Prints the
mean return of the last 100 episodes, the step at which that mean first reached the target
(solved), and steps/s; writes each task's curves to benchmarks/results/learning_<task>.json and
draws all of them (what this run and earlier runs wrote) into benchmarks/results/learning.png.
"""
import argparse
import json
import os
import sys
import time
from collections import deque
from pathlib import Path

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / 'results'
CPU = 'AMD EPYC, 2 cores, AVX2, no AVX-512, no AMX'

# name: (env id, steps, target mean of the last 100 episodes, our extra overrides)
TASKS = {
    'cartpole': ('CartPole-v1', 100_000, 475, []),
    'acrobot': ('Acrobot-v1', 300_000, -100, []),
    'pendulum': ('Pendulum-v1', 500_000, -200, []),
    'lunarlander': ('LunarLander-v3', 1_000_000, 200, []),
    'masked_cartpole': ('MaskedCartPole-v1', 500_000, 400, ['--policy.lstm', 'True']),
    'masked_cartpole_mlp': ('MaskedCartPole-v1', 500_000, 400, ['--policy.lstm', 'False']),
    'halfcheetah': ('HalfCheetah-v5', 1_000_000, 3000, []),
}
ZOO_ID = {'HalfCheetah-v5': 'HalfCheetah-v4', 'MaskedCartPole-v1': None}


class MaskVelocity(gymnasium.ObservationWrapper):
    """CartPole with the two velocities zeroed: solving it needs memory."""

    def observation(self, obs):
        return (obs * np.array([1, 0, 1, 0], obs.dtype)).astype(obs.dtype)


def register_masked_cartpole():
    if 'MaskedCartPole-v1' not in gymnasium.registry:
        gymnasium.register('MaskedCartPole-v1', entry_point=lambda **kw: MaskVelocity(
            gymnasium.make('CartPole-v1', **kw)), max_episode_steps=None)


class Curve:
    """Episode returns as they arrive: (step, mean, count) reports; the mean of the last 100."""

    def __init__(self, target):
        self.target, self.window = target, deque()
        self.points, self.solved, self.count = [], None, 0

    def add(self, step, mean, n):
        self.window.append((mean, n))
        self.count += n
        while sum(c for _, c in self.window) - self.window[0][1] >= 100:
            self.window.popleft()
        last = self.last100()
        self.points.append((step, last))
        if self.solved is None and self.count >= 100 and last >= self.target:
            self.solved = step

    def last100(self):
        total = sum(c for _, c in self.window)
        return sum(m * c for m, c in self.window) / total if total else float('nan')


def run_ours(env_id, steps, target, extra, seed):
    import torch

    from pufferlib.trainer import cli, ppo
    config = cli.load(env_id, ['--train.total_timesteps', str(steps), '--train.seed', str(seed),
                               '--train.torch_threads', '1', '--train.checkpoint_interval',
                               str(10**9), '--train.data_dir', '/tmp/puffer_learning', *extra])
    cli.setup_torch(config['train'])
    torch.set_num_threads(1)
    curve = Curve(target)

    def on_epoch(trainer, record):
        if 'environment/episode_return' in record:
            curve.add(trainer.global_step, record['environment/episode_return'],
                      record['environment/n'])

    start = time.time()
    with cli.make_vecenv(env_id, config) as vecenv:
        policy = cli.build_policy(vecenv, config)
        trainer = ppo.train(env_id, config, vecenv, policy, on_epoch=on_epoch)
    return curve, trainer.global_step / (time.time() - start)


def zoo_hyperparams(env_id):
    """rl-zoo's PPO entry for `env_id` (or the one ZOO_ID names), None when there is none."""
    import rl_zoo3
    import yaml
    name = ZOO_ID.get(env_id, env_id)
    if name is None:
        return None, None
    with open(Path(rl_zoo3.__file__).parent / 'hyperparams' / 'ppo.yml') as f:
        return name, yaml.safe_load(f).get(name)


def schedule(value):
    """rl-zoo's 'lin_X' strings as SB3 schedules (progress goes from 1 to 0)."""
    if isinstance(value, str) and value.startswith('lin_'):
        start = float(value[4:])
        return lambda progress: progress * start
    return value


def run_sb3(env_id, steps, target, seed):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    name, hp = zoo_hyperparams(env_id)
    if hp is None:
        return None, None, name
    hp = dict(hp)
    hp.pop('n_timesteps', None)
    n_envs = hp.pop('n_envs', 1)
    normalize = hp.pop('normalize', False)
    policy = hp.pop('policy')
    if isinstance(normalize, str):
        normalize = eval(normalize)      # rl-zoo writes e.g. "dict(norm_obs=True, norm_reward=False)"
    if isinstance(hp.get('policy_kwargs'), str):
        hp['policy_kwargs'] = eval(hp['policy_kwargs'], {'nn': torch.nn, 'dict': dict})
    for key in ('learning_rate', 'clip_range'):
        if key in hp:
            hp[key] = schedule(hp[key])
    torch.set_num_threads(1)
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalize:
        env = VecNormalize(env, gamma=hp.get('gamma', 0.99),
                           **(normalize if isinstance(normalize, dict) else {}))
    curve = Curve(target)

    class Episodes(BaseCallback):
        def _on_step(self):
            for info in self.locals['infos']:
                if 'episode' in info:
                    curve.add(self.num_timesteps, info['episode']['r'], 1)
            return True

    model = PPO(policy, env, seed=seed, device='cpu', verbose=0, **hp)
    start = time.time()
    model.learn(steps, callback=Episodes())
    sps = model.num_timesteps / (time.time() - start)
    env.close()
    return curve, sps, name


def row(label, curve, sps):
    solved = f'{curve.solved:,}' if curve.solved is not None else 'not solved'
    return f'  {label:<28} last-100 mean {curve.last100():9.1f}   solved at {solved:>12}   {sps:8,.0f} steps/s'


def plot(paths, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    results = [json.loads(Path(p).read_text()) for p in paths]
    fig, axes = plt.subplots(1, len(results), figsize=(max(7.0, 4.2 * len(results)), 3.6),
                             squeeze=False)
    for ax, result in zip(axes[0], results):
        for label, run in result['runs'].items():
            if run['points']:
                steps, means = zip(*run['points'])
                ax.plot(steps, means, label=f"{label} ({run['sps']:,.0f} steps/s)")
        ax.axhline(result['target'], color='gray', linestyle=':', linewidth=1)
        ax.set_title(result['env'])
        ax.set_xlabel('agent steps')
        ax.xaxis.set_major_formatter(lambda x, _: f'{x / 1e3:.0f}k')
        ax.set_ylabel('mean return, last 100 episodes')
        ax.legend(fontsize=7)
    fig.suptitle(f'PPO, committed defaults vs SB3 + rl-zoo, 1 torch thread ({CPU})', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tasks', default='cartpole,acrobot,pendulum',
                        help=f'comma-separated, from {", ".join(TASKS)} (or all)')
    parser.add_argument('--steps', type=int, default=None, help="override every task's steps")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-sb3', action='store_true', help='only our trainer')
    parser.add_argument('--sb3-only', action='store_true',
                        help="only SB3 (kept beside the task's earlier result for ours)")
    parser.add_argument('--plot-only', action='store_true',
                        help='redraw learning.png from the JSON files in benchmarks/results')
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    names = list(TASKS) if args.tasks == 'all' else args.tasks.split(',')
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise SystemExit(f'unknown task(s) {unknown}: use {", ".join(TASKS)}')
    register_masked_cartpole()
    try:
        import rl_zoo3  # noqa: F401
        import stable_baselines3  # noqa: F401
        have_sb3 = not args.no_sb3
    except ImportError:
        have_sb3 = False
        print('stable-baselines3 / rl_zoo3 not installed: our trainer only '
              '(pip install "pufferlib[bench]")')
    for name in names if not args.plot_only else ():
        env_id, steps, target, extra = TASKS[name]
        steps = args.steps or steps
        print(f'{name}: {env_id}, {steps:,} steps, target {target} ({CPU})', flush=True)
        path = RESULTS / f'learning_{name}.json'
        result = {'task': name, 'env': env_id, 'steps': steps, 'target': target, 'cpu': CPU,
                  'runs': {}}
        if args.sb3_only and path.exists():
            result['runs'] = json.loads(path.read_text())['runs']
        if not args.sb3_only:
            curve, sps = run_ours(env_id, steps, target, extra, args.seed)
            print(row('ours (committed defaults)', curve, sps), flush=True)
            result['runs']['ours'] = {'points': curve.points, 'last100': curve.last100(),
                                      'solved': curve.solved, 'sps': sps}
        if have_sb3:
            curve, sps, zoo_name = run_sb3(env_id, steps, target, args.seed)
            if curve is None:
                print(f'  SB3: rl-zoo has no PPO entry for {env_id}')
            else:
                label = f'SB3 rl-zoo ({zoo_name})'
                print(row(label, curve, sps), flush=True)
                result['runs'][label] = {'points': curve.points, 'last100': curve.last100(),
                                         'solved': curve.solved, 'sps': sps}
        path.write_text(json.dumps(result))
    paths = sorted(RESULTS.glob('learning_*.json'))
    if paths:
        plot(paths, RESULTS / 'learning.png')
        print(f'curves: {RESULTS / "learning.png"}')


if __name__ == '__main__':
    main()
