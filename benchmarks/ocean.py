"""Agent-steps/s of every Ocean env with random actions.

One process at num_envs 1 / 64 / 1024, and 1024 sub-envs under pufferlib.vector.Multiprocessing
(2 workers x 1 env object of 512 sub-envs) with its ratio to one process (target >= 1.8x). The
random actions are generated before timing. With --baseline-python, the published PufferLib 3.0's
same game (one process, 1024 envs, random actions) is measured in the same run, by its own Python,
and the ratio printed. The CPU is named in the output.

    python benchmarks/ocean.py [--quick] [--seconds S] [--envs breakout,connect4] [--kwargs features=True]
                               [--baseline-python /work/pufferlib3/bin/python]
"""
import argparse
import ast
import time

import numpy as np

import pufferlib.ocean
import baseline

BASELINE_GAMES = ('breakout', 'connect4', 'triple_triad')   # those PufferLib 3.0 also has
SIZES = (1, 64, 1024)


def random_action_table(env, batches=64, seed=0):
    space = env.single_action_space
    rng = np.random.default_rng(seed)
    if hasattr(space, 'n'):
        return rng.integers(0, space.n, (batches, env.num_agents), dtype=np.int32)
    return rng.uniform(space.low, space.high, (batches, env.num_agents, *space.shape)).astype(space.dtype)


def steps_per_second(env, num_agents, seconds, repeats=3):
    """Agent-steps/s of env.step on pre-generated random actions: the best of `repeats` timings of
    about seconds / repeats each (the best one is the least disturbed by other load)."""
    table = random_action_table(env)
    env.reset(seed=0)
    for a in table[:8]:                                  # warm-up
        env.step(a)
    best = 0.0
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while True:
            for a in table:
                env.step(a)
            steps += len(table)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / repeats:
                break
        best = max(best, steps * num_agents / elapsed)
    return best


def one_process(name, num_envs, seconds, kwargs):
    env = pufferlib.ocean.make(name, num_envs=num_envs, **kwargs)
    try:
        return steps_per_second(env, num_envs, seconds)
    finally:
        env.close()


def multiprocessing(name, seconds, kwargs, workers=2, total=1024):
    """Agent-steps/s under Multiprocessing, or None when pufferlib.vector is not available."""
    try:
        import pufferlib.vector
    except ImportError:
        return None
    vec = pufferlib.vector.make(pufferlib.ocean.env_creator(name),
                                env_kwargs={'num_envs': total // workers, **kwargs},
                                backend=pufferlib.vector.Multiprocessing,
                                num_envs=workers, num_workers=workers)
    try:
        return steps_per_second(vec, vec.num_agents, seconds)
    finally:
        vec.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='smoke run: 0.1 s per measurement')
    parser.add_argument('--seconds', type=float, default=3.0,
                        help='time per measurement (the best of 3 equal parts is reported)')
    parser.add_argument('--envs', default=','.join(sorted(pufferlib.ocean.ENVS)),
                        help='comma-separated Ocean env names')
    parser.add_argument('--kwargs', default='',
                        help='constructor arguments for every env, comma-separated, e.g. features=True')
    baseline.add_argument(parser)
    args = parser.parse_args()
    seconds = 0.1 if args.quick else args.seconds
    names = args.envs.split(',')
    kwargs = {key: ast.literal_eval(value) for key, value in
              (item.split('=', 1) for item in args.kwargs.split(',') if item)}
    if kwargs:
        print('every env with', ', '.join(f'{k}={v!r}' for k, v in kwargs.items()))
    header = (f'{"env":<14}' + ''.join(f'{f"{n} env" + ("s" if n > 1 else ""):>11}' for n in SIZES)
              + f'{"MP 2x512":>11}{"MP/1proc":>10}{"PL3.0@1024":>12}{"ours/PL3.0":>11}')
    print(f'M agent-steps/s, random actions, best of 3 timings, on {baseline.cpu_description()}')
    if not args.baseline_python:
        print('PufferLib 3.0 columns: not measured (pass --baseline-python PATH)')
    print(header)
    print('-' * len(header))
    missing_vector = False
    for name in names:
        rates = [one_process(name, n, seconds, kwargs) for n in SIZES]
        mp = multiprocessing(name, seconds, kwargs)
        missing_vector |= mp is None
        theirs = None
        if args.baseline_python and name in BASELINE_GAMES and not kwargs:
            theirs = baseline.run(args.baseline_python, 'env', name, 1024, seconds)['sps']
        row = f'{name:<14}' + ''.join(f'{r / 1e6:>11.3f}' for r in rates)
        row += f'{mp / 1e6:>11.3f}{mp / rates[-1]:>9.2f}x' if mp else f'{"n/a":>11}{"n/a":>10}'
        row += (f'{theirs / 1e6:>12.3f}{rates[-1] / theirs:>10.2f}x' if theirs
                else f'{"-":>12}{"-":>11}')
        print(row, flush=True)
    print('ours/PL3.0: ours at 1024 envs, one process, over PufferLib 3.0 at 1024 envs measured '
          'just after it in this run')
    if missing_vector:
        print('MP columns: pufferlib.vector is not importable in this checkout')


if __name__ == '__main__':
    main()
