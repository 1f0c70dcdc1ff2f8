"""Steps/s of a Gymnasium env through pufferlib's emulation and vector layers, against Gymnasium's own
vector envs measured in the same run.

CartPole-v1, 8 envs, random actions generated before timing:
  * Gymnasium SyncVectorEnv and AsyncVectorEnv(shared_memory=True) (baselines),
  * pufferlib Serial and Multiprocessing (2 workers) over GymnasiumPufferEnv,
with ratios against both baselines (targets: Multiprocessing >= 1.5x Sync and >= 10x Async on 2
cores), plus the emulation layer's own cost: GymnasiumPufferEnv.step minus the raw env's step, in
microseconds. The same vector envs over `NoOp`, an env whose step costs almost nothing, show what
each vector layer itself costs per batch of 8.

All vector envs of a round are open at once and timed in alternating chunks of 256 steps, so that
load from other processes on a shared machine falls on all of them alike. Each figure is reported
as the mean over the run and as the fastest chunk (the least disturbed one).

    python benchmarks/emulation.py [--quick] [--seconds S] [--rounds R] [--env CartPole-v1]
"""
import argparse
import functools
import time

import gymnasium as gym
import numpy as np

import pufferlib.vector
from pufferlib.emulation import GymnasiumPufferEnv

NUM_ENVS, NUM_WORKERS, CHUNK = 8, 2, 256


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


def make_env(env_id):
    return NoOp() if env_id == 'NoOp' else gym.make(env_id)


def gymnasium_vector(env_id, cls, **kwargs):
    return cls([functools.partial(make_env, env_id)] * NUM_ENVS, **kwargs)


def puffer_vector(env_id, backend):
    creator = functools.partial(GymnasiumPufferEnv, env_creator=make_env, env_args=(env_id,))
    workers = NUM_WORKERS if backend == 'Multiprocessing' else None
    return pufferlib.vector.make(creator, backend=backend, num_envs=NUM_ENVS, num_workers=workers)


def vector_round(makers, table, seconds):
    """{name: (total seconds, fastest chunk seconds, chunks)} with every vector env open and the
    chunks of 256 steps alternating between them for about `seconds` each."""
    envs = {}
    try:
        for name, make in makers.items():
            envs[name] = make()
            envs[name].reset(seed=0)
            for row in table[:16]:
                envs[name].step(row)
        stats = {name: [0.0, float('inf'), 0] for name in envs}
        deadline = time.perf_counter() + seconds * len(envs)
        while time.perf_counter() < deadline:
            for lo in range(0, len(table), CHUNK):
                for name, env in envs.items():
                    start = time.perf_counter()
                    for row in table[lo:lo + CHUNK]:
                        env.step(row)
                    elapsed = time.perf_counter() - start
                    s = stats[name]
                    s[0], s[1], s[2] = s[0] + elapsed, min(s[1], elapsed), s[2] + 1
        return stats
    finally:
        for env in envs.values():
            env.close()


def emulation_cost(env_id, table, seconds):
    """(raw, emulated) microseconds per step of one env: the raw env with a hand-written reset, and
    GymnasiumPufferEnv.step as the vector backends call it (actions written in place), alternating
    in chunks; each keeps its fastest chunk."""
    raw, env = make_env(env_id), GymnasiumPufferEnv(make_env(env_id))
    raw.reset(seed=0)
    env.reset(seed=0)
    actions = env.actions
    python_actions = table[:, 0].tolist()
    best = [float('inf'), float('inf')]
    deadline = time.perf_counter() + 2 * seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for a in python_actions:
            _, _, terminated, truncated, _ = raw.step(a)
            if terminated or truncated:
                raw.reset()
        middle = time.perf_counter()
        for a in table[:, :1]:
            actions[:] = a
            env.step(actions)
        end = time.perf_counter()
        best = [min(best[0], middle - start), min(best[1], end - middle)]
    return np.array([1e6 * t / len(table) for t in best])


def vector_envs(env_id):
    return {
        'gymnasium SyncVectorEnv': functools.partial(gymnasium_vector, env_id,
                                                     gym.vector.SyncVectorEnv),
        'gymnasium AsyncVectorEnv(shared_memory=True)': functools.partial(
            gymnasium_vector, env_id, gym.vector.AsyncVectorEnv, shared_memory=True),
        'pufferlib Serial': functools.partial(puffer_vector, env_id, 'Serial'),
        'pufferlib Multiprocessing (2 workers)': functools.partial(puffer_vector, env_id,
                                                                   'Multiprocessing'),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--env', default='CartPole-v1')
    parser.add_argument('--seconds', type=float, default=4.0,
                        help='timed seconds per vector env per round')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--quick', action='store_true', help='a smoke run: 0.3 s, one round')
    args = parser.parse_args()
    seconds, rounds = (0.3, 1) if args.quick else (args.seconds, args.rounds)

    n_actions = gym.make(args.env).action_space.n
    table = np.random.default_rng(0).integers(0, n_actions, (2048, NUM_ENVS)).astype(np.int32)
    env_ids = (args.env, 'NoOp')
    sps = {env_id: {name: np.zeros(2) for name in vector_envs(env_id)} for env_id in env_ids}
    costs = {env_id: np.full(2, np.inf) for env_id in env_ids}
    for _ in range(rounds):
        for env_id in env_ids:
            for name, (total, fastest, chunks) in vector_round(vector_envs(env_id), table,
                                                               seconds).items():
                # (mean, fastest chunk) steps/s, best round
                sps[env_id][name] = np.maximum(sps[env_id][name], [
                    NUM_ENVS * CHUNK * chunks / total, NUM_ENVS * CHUNK / fastest])
            costs[env_id] = np.minimum(costs[env_id], emulation_cost(env_id, table[:512], seconds))

    print(f'{args.env}, {NUM_ENVS} envs, random actions, best of {rounds} rounds x {seconds:g} s '
          'per vector env')
    print(f'  {"steps/s":46s} {"mean":>9s} {"fastest":>9s}')
    for name, (mean, peak) in sps[args.env].items():
        print(f'  {name:46s} {mean / 1e3:8.1f}k {peak / 1e3:8.1f}k')
    sync = sps[args.env]['gymnasium SyncVectorEnv']
    asyn = sps[args.env]['gymnasium AsyncVectorEnv(shared_memory=True)']
    for name in ('pufferlib Serial', 'pufferlib Multiprocessing (2 workers)'):
        (s_mean, s_peak), (a_mean, a_peak) = sps[args.env][name] / sync, sps[args.env][name] / asyn
        print(f'{name}: {s_mean:.2f}x SyncVectorEnv, {a_mean:.2f}x AsyncVectorEnv '
              f'(fastest chunks: {s_peak:.2f}x, {a_peak:.2f}x)')
    print('targets: Multiprocessing >= 1.5x SyncVectorEnv and >= 10x AsyncVectorEnv (2 cores)')
    for env_id, (raw_us, emu_us) in costs.items():
        print(f'emulation cost, {env_id}: {emu_us - raw_us:.2f} us/step over the raw env '
              f'({raw_us:.2f} -> {emu_us:.2f} us/step, fastest chunks)')
    print(f'vector layer cost per batch of {NUM_ENVS}, NoOp env (pufferlib includes emulation):')
    for name, (mean, peak) in sps['NoOp'].items():
        print(f'  {name:46s} {NUM_ENVS * 1e6 / mean:7.1f} us mean, '
              f'{NUM_ENVS * 1e6 / peak:.1f} us fastest chunk')


if __name__ == '__main__':
    main()
