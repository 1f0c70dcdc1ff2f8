"""Steps/s of a Gymnasium env through pufferlib's emulation and vector layers, against Gymnasium's own
vector envs measured in the same run.

CartPole-v1, 8 envs, random actions generated before timing:
  * Gymnasium SyncVectorEnv and AsyncVectorEnv(shared_memory=True) (baselines),
  * pufferlib Serial and Multiprocessing (2 workers) over GymnasiumPufferEnv,
with ratios against both baselines (targets: Multiprocessing >= 1.5x Sync and >= 10x Async on 2
cores), plus the emulation layer's own cost: GymnasiumPufferEnv.step minus the raw env's step, in
microseconds. The same vector envs over `NoOp`, an env whose step costs almost nothing, show what
each vector layer itself costs per batch of 8. Each figure is the best of `--rounds` rounds, every
backend built and closed within its round, so that a noisy shared machine costs as little accuracy
as possible.

    python benchmarks/emulation.py [--quick] [--seconds S] [--rounds R] [--env CartPole-v1]
"""
import argparse
import functools
import time

import gymnasium as gym
import numpy as np

import pufferlib.vector
from pufferlib.emulation import GymnasiumPufferEnv

NUM_ENVS, NUM_WORKERS = 8, 2


class NoOp(gym.Env):
    """CartPole's spaces, a constant observation, 100-step episodes: the vector layers' own cost."""
    observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.obs, self.t = np.zeros(4, np.float32), 0

    def reset(self, seed=None, options=None):
        self.t = 0
        return self.obs, {}

    def step(self, action):
        self.t += 1
        return self.obs, 1.0, self.t >= 100, False, {}


def timed(step, table, seconds):
    """Calls of step(row) per second over the rows of `table`, for about `seconds`."""
    for row in table[:16]:
        step(row)
    calls, start = 0, time.perf_counter()
    while True:
        for row in table:
            step(row)
        calls += len(table)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def raw_env(env_id, table, seconds):
    env = gym.make(env_id)
    env.reset(seed=0)

    def step(row):
        _, _, terminated, truncated, _ = env.step(row[0])
        if terminated or truncated:
            env.reset()
    return timed(step, [row.tolist() for row in table], seconds)


def emulated_env(env_id, table, seconds):
    env = GymnasiumPufferEnv(gym.make(env_id))
    env.reset(seed=0)
    actions = env.actions

    def step(row):  # the vector backends write the actions in place and call step(env.actions)
        actions[0] = row[0]
        env.step(actions)
    return timed(step, table, seconds)


def make_env(env_id):
    return NoOp() if env_id == 'NoOp' else gym.make(env_id)


def gymnasium_vector(env_id, table, seconds, cls, **kwargs):
    vec = cls([functools.partial(make_env, env_id)] * NUM_ENVS, **kwargs)
    try:
        vec.reset(seed=0)
        return NUM_ENVS * timed(vec.step, table, seconds)
    finally:
        vec.close()


def puffer_vector(env_id, table, seconds, backend):
    creator = functools.partial(GymnasiumPufferEnv, env_creator=make_env, env_args=(env_id,))
    workers = NUM_WORKERS if backend == 'Multiprocessing' else None
    vec = pufferlib.vector.make(creator, backend=backend, num_envs=NUM_ENVS, num_workers=workers)
    try:
        vec.reset(seed=0)
        return NUM_ENVS * timed(vec.step, table, seconds)
    finally:
        vec.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--env', default='CartPole-v1')
    parser.add_argument('--seconds', type=float, default=3.0,
                        help='timed seconds per figure per round')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--quick', action='store_true', help='a smoke run: 0.3 s, one round')
    args = parser.parse_args()
    seconds, rounds = (0.3, 1) if args.quick else (args.seconds, args.rounds)

    n_actions = gym.make(args.env).action_space.n
    table = np.random.default_rng(0).integers(0, n_actions, (4096, NUM_ENVS)).astype(np.int32)
    one = table[:, :1]
    runs = {
        'raw env, 1 env (steps/s)': lambda: raw_env(args.env, one, seconds),
        'GymnasiumPufferEnv, 1 env (steps/s)': lambda: emulated_env(args.env, one, seconds),
        'gymnasium SyncVectorEnv': lambda: gymnasium_vector(args.env, table, seconds,
                                                            gym.vector.SyncVectorEnv),
        'gymnasium AsyncVectorEnv(shared_memory=True)': lambda: gymnasium_vector(
            args.env, table, seconds, gym.vector.AsyncVectorEnv, shared_memory=True),
        'pufferlib Serial': lambda: puffer_vector(args.env, table, seconds, 'Serial'),
        'pufferlib Multiprocessing (2 workers)': lambda: puffer_vector(args.env, table, seconds,
                                                                       'Multiprocessing'),
    }
    for name, cls, kw in (('SyncVectorEnv', gym.vector.SyncVectorEnv, {}),
                          ('AsyncVectorEnv', gym.vector.AsyncVectorEnv, {'shared_memory': True})):
        runs[f'NoOp: gymnasium {name}'] = functools.partial(gymnasium_vector, 'NoOp', table,
                                                            seconds, cls, **kw)
    for backend in ('Serial', 'Multiprocessing'):
        runs[f'NoOp: pufferlib {backend}'] = functools.partial(puffer_vector, 'NoOp', table,
                                                               seconds, backend)
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, run in runs.items():
            best[name] = max(best[name], run())

    print(f'{args.env}, {NUM_ENVS} envs, random actions, best of {rounds} x {seconds:g} s')
    for name, sps in best.items():
        print(f'  {name:46s} {sps / 1e3:9.1f} k')
    raw_us = 1e6 / best['raw env, 1 env (steps/s)']
    emu_us = 1e6 / best['GymnasiumPufferEnv, 1 env (steps/s)']
    print(f'emulation cost: {emu_us - raw_us:.2f} us/step over the raw env ({raw_us:.2f} -> '
          f'{emu_us:.2f} us/step, {emu_us / raw_us:.2f}x)')
    sync = best['gymnasium SyncVectorEnv']
    asyn = best['gymnasium AsyncVectorEnv(shared_memory=True)']
    for name in ('pufferlib Serial', 'pufferlib Multiprocessing (2 workers)'):
        print(f'{name}: {best[name] / sync:.2f}x SyncVectorEnv, {best[name] / asyn:.2f}x '
              'AsyncVectorEnv')
    print('targets: Multiprocessing >= 1.5x SyncVectorEnv and >= 10x AsyncVectorEnv (2 cores)')
    print(f'vector layer cost per batch of {NUM_ENVS} (NoOp env, emulation included for pufferlib):')
    for name in [n for n in best if n.startswith('NoOp')]:
        print(f'  {name[6:]:44s} {NUM_ENVS * 1e6 / best[name]:8.1f} us')


if __name__ == '__main__':
    main()
