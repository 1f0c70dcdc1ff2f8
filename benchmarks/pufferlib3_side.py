"""The published PufferLib 3.0's half of a side-by-side benchmark. Run by ITS Python (the
benchmarks start it with `--baseline-python PATH`), never by ours: it imports only PufferLib 3.0.

    PY pufferlib3_side.py env GAME NUM_ENVS SECONDS     agent-steps/s, random actions, one process
    PY pufferlib3_side.py train GAME SECONDS            its trainer's agent-steps/s at the CPU size

The last line printed is `RESULT <json>`.
"""
import json
import sys
import time

import numpy as np

GAMES = {'breakout': ('breakout', 'Breakout', 'puffer_breakout'),
         'connect4': ('connect4', 'Connect4', 'puffer_connect4'),
         'triple_triad': ('tripletriad', 'TripleTriad', 'puffer_tripletriad')}
# The published trainer at a CPU size (what benchmarks/train.py calls the CPU-sized run).
CPU_SIZE = {'device': 'cpu', 'batch_size': 16384, 'minibatch_size': 4096, 'bptt_horizon': 64,
            'compile': False, 'precision': 'float32'}


def env_class(game):
    import importlib
    folder, name, _ = GAMES[game]
    return getattr(importlib.import_module(f'pufferlib.ocean.{folder}.{folder}'), name)


def env_sps(game, num_envs, seconds, repeats=3):
    env = env_class(game)(num_envs=num_envs)
    rng = np.random.default_rng(0)
    table = rng.integers(0, env.single_action_space.n, (64, env.num_agents), dtype=np.int32)
    env.reset(seed=0)
    for a in table[:8]:
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
        best = max(best, steps * env.num_agents / elapsed)
    env.close()
    return best


def trainer_sps(game, seconds, num_envs=256, warmup=2):
    import torch
    import pufferlib.pufferl as pufferl
    torch.set_num_threads(1)
    pufferl.PuffeRL.print_dashboard = lambda *args, **kwargs: None   # no full-screen table
    sys.argv = [sys.argv[0]]
    args = pufferl.load_config(GAMES[game][2])
    args['vec'] = {'backend': 'Serial', 'num_envs': 1}
    args['env']['num_envs'] = num_envs
    args['train'].update(CPU_SIZE)
    args['train']['env'] = GAMES[game][2]
    vecenv = pufferl.load_env(GAMES[game][2], args)
    policy = pufferl.load_policy(args, vecenv)
    trainer = pufferl.PuffeRL(args['train'], vecenv, policy)
    for _ in range(warmup):
        trainer.evaluate()
        trainer.train()
    step, start = trainer.global_step, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.evaluate()
        trainer.train()
    sps = (trainer.global_step - step) / (time.perf_counter() - start)
    trainer.utilization.stop()
    vecenv.close()
    return sps


def main():
    mode, game = sys.argv[1], sys.argv[2]
    if mode == 'env':
        result = {'sps': env_sps(game, int(sys.argv[3]), float(sys.argv[4]))}
    elif mode == 'train':
        result = {'sps': trainer_sps(game, float(sys.argv[3])), 'size': CPU_SIZE,
                  'config': 'LSTM 128, 256 envs, its own ini otherwise'}
    else:
        raise SystemExit(f'unknown mode {mode!r}: env or train')
    print('RESULT ' + json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
