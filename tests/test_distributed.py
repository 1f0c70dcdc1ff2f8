"""Training under torchrun: 2 CPU ranks (gloo) on squared (an LSTM policy, gradients accumulated
over 2 pieces per minibatch). The ranks run `puffer train` through a
small launcher script that wraps Trainer.update to check, after every update, that both ranks
hold bit-identical weights (and, optionally, to make one rank fail)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from pufferlib.exceptions import CheckpointError
from pufferlib.trainer import checkpoint, cli, distributed, ppo

TORCHRUN = str(Path(sys.executable).with_name('torchrun'))
AGENTS = 16   # per rank
SMALL = ['--env.num_envs', str(AGENTS), '--train.batch_size', '512', '--train.minibatch_size',
         '256', '--train.max_minibatch_size', '128', '--train.bptt_horizon', '16',
         '--train.torch_threads', '1', '--train.checkpoint_interval', '2', '--train.dist_timeout',
         '60']

LAUNCHER = '''
import hashlib, os, sys, time
import psutil
from pufferlib.trainer import cli, distributed, ppo

out = os.environ['CHECK_DIR']
update = ppo.Trainer.update

def digest(tensors):
    return hashlib.sha256(b''.join(t.detach().cpu().numpy().tobytes() for t in tensors)).hexdigest()

def checked_update(self):
    if not hasattr(self, 'checked'):  # the ranks' envs are their own: different first rollouts
        self.checked = True
        with open(f'{out}/rank{self.rank}.tmp', 'w') as f:
            procs = [os.getpid()] + [c.pid for c in psutil.Process().children(recursive=True)]
            f.write(f'{{"env_seed": {self.env_seed}, "pids": {procs}, '
                    f'"observations": "{digest([self.buffer.observations])}"}}')
        os.replace(f'{out}/rank{self.rank}.tmp', f'{out}/rank{self.rank}.json')
    update(self)
    if os.environ.get('FAIL_RANK') == str(self.rank) and os.path.exists(f'{out}/fail'):
        if os.environ['FAIL_HOW'] == 'hang':
            time.sleep(3600)
        raise RuntimeError(f'injected failure on rank {self.rank}')
    weights = distributed.all_gather(digest(self.policy.parameters()), self.world_size)
    assert len(set(weights)) == 1, f'weights differ after epoch {self.epoch}: {weights}'
    with open(f'{out}/weights{self.rank}.txt', 'a') as f:
        f.write(f'{self.epoch} {weights[0]}\\n')

ppo.Trainer.update = checked_update
sys.exit(cli.main())
'''


def torchrun(tmp_path, name, *args, **env):
    """Start `torchrun --standalone --nproc-per-node 2 launch.py train squared ...`; returns the
    process and the folder where the ranks write their checks."""
    script = tmp_path / 'launch.py'
    script.write_text(LAUNCHER)
    check_dir = tmp_path / name
    check_dir.mkdir()
    command = [TORCHRUN, '--standalone', '--nproc-per-node', '2', str(script),
               'train', 'squared', *SMALL, *[str(a) for a in args]]
    child_env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1',
                 'CHECK_DIR': str(check_dir), **env}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env, start_new_session=True), check_dir


def finish(proc, timeout):
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def wait_for_ranks(check_dir, proc, timeout=60):
    """Until both ranks have made their first update."""
    deadline = time.time() + timeout
    while not all((check_dir / f'rank{r}.json').exists() for r in (0, 1)):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, 'the ranks did not start training'
        time.sleep(0.1)


def rank_processes(check_dir):
    """psutil handles of both ranks and their vector workers, as recorded at their first update."""
    procs = []
    for rank in (0, 1):
        for pid in json.loads((check_dir / f'rank{rank}.json').read_text())['pids']:
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
    return procs


def assert_all_gone(procs, within=5.0):
    deadline = time.time() + within
    while time.time() < deadline:
        alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return
        time.sleep(0.1)
    pytest.fail(f'processes left behind: {alive}')


def test_two_ranks_train_identically_write_one_run_and_resume(tmp_path):
    data = tmp_path / 'runs'
    proc, check = torchrun(tmp_path, 'first', '--train.total_timesteps', 4 * 1024,
                           '--train.data_dir', data, '--policy.lstm', 'True')
    out, err = finish(proc, timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert out.count('done:') == 1 and out.count('training squared') == 1  # rank 0 prints
    assert 'epoch 4 |' in out

    # identical weights on both ranks after every update (also asserted inside the run)
    lines = [(check / f'weights{r}.txt').read_text().split('\n') for r in (0, 1)]
    assert lines[0] == lines[1] and len(lines[0]) == 5  # 4 epochs + trailing ''
    # per-rank envs: disjoint seed ranges, different rollouts
    ranks = [json.loads((check / f'rank{r}.json').read_text()) for r in (0, 1)]
    assert ranks[1]['env_seed'] - ranks[0]['env_seed'] == AGENTS
    assert ranks[0]['observations'] != ranks[1]['observations']

    # one run folder, written by rank 0; agent steps summed over the ranks (the first rollout of
    # each rank takes one step more per agent: the column H of its last rows)
    runs = list(data.iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    assert sorted(p.name for p in run.glob('checkpoint_*')) == ['checkpoint_000002.pt',
                                                              'checkpoint_000004.pt']
    log = [json.loads(line) for line in open(run / 'log.jsonl')]
    assert [r['epoch'] for r in log] == [1, 2, 3, 4]
    assert [r['agent_steps'] for r in log] == [2 * (512 * k + AGENTS) for k in (1, 2, 3, 4)]
    payload = checkpoint.load_checkpoint(run)
    assert payload['trainer']['world_size'] == 2 and len(payload['trainer']['rank_rng']) == 2
    final = payload['model']

    # resume with 2 ranks, then Ctrl-C (SIGINT to torchrun): the ranks stop at the same epoch
    # boundary, rank 0 saves, nothing is left running
    proc, check = torchrun(tmp_path, 'resumed', '--resume', run, '--train.total_timesteps', 10**9)
    try:
        wait_for_ranks(check, proc)
        procs = rank_processes(check)
        assert len(procs) == 2
        deadline = time.time() + 60
        while time.time() < deadline:  # progress lines come at most 4 a second: not every epoch
            line = proc.stdout.readline()
            if not line or (line.startswith('epoch ') and int(line.split()[1]) >= 6):
                break
        proc.send_signal(signal.SIGINT)
        out, err = finish(proc, timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert 'interrupted: saved' in out, err[-3000:]
    assert 'pufferlib/trainer' not in err and 'KeyboardInterrupt' not in err, err[-3000:]
    assert_all_gone(procs)
    assert len(list(data.iterdir())) == 1
    log = [json.loads(line) for line in open(run / 'log.jsonl')]
    epochs = [r['epoch'] for r in log]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 6
    assert log[4]['agent_steps'] == log[3]['agent_steps'] + 2 * (512 + AGENTS)
    resumed = checkpoint.load_checkpoint(run)
    assert resumed['trainer']['epoch'] == epochs[-1]
    weights = [(check / f'weights{r}.txt').read_text().split('\n') for r in (0, 1)]
    assert weights[0] == weights[1]
    assert any(not torch.equal(resumed['model'][k], final[k]) for k in final)  # it trained on

    # one process cannot resume a 2-process run
    with pytest.raises(CheckpointError, match='saved by a run of 2 process.*this one has 1'):
        config = resumed['config']
        vecenv = cli.make_vecenv('squared', config)
        try:
            ppo.train('squared', config, vecenv, cli.build_policy(vecenv, config), resume=run)
        finally:
            vecenv.close()


@pytest.mark.parametrize('how', ['raise', 'hang'])
def test_a_failing_rank_ends_the_run(tmp_path, how):
    """Rank 1 raises (or hangs) after an update while rank 0 waits for it in a collective. The run
    must end non-zero within seconds (a hang: train.dist_timeout, 5 s here), with no rank or vector
    worker left behind."""
    proc, check = torchrun(tmp_path, 'failing', '--train.total_timesteps', 10**9, '--train.data_dir',
                           tmp_path / 'runs', '--vec.backend', 'multiprocessing',
                           '--vec.num_envs', '1', '--vec.num_workers', '1',
                           '--train.dist_timeout', 5, FAIL_RANK='1', FAIL_HOW=how)
    try:
        wait_for_ranks(check, proc)
        procs = rank_processes(check)
        assert len(procs) == 4  # 2 ranks and a vector worker each
        (check / 'fail').touch()
        start = time.time()
        out, err = finish(proc, timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    if how == 'raise':
        assert 'injected failure on rank 1' in err
    else:
        assert '[rank0]' in err and 'timed out' in err.lower(), err[-3000:]
    assert time.time() - start < 30, time.time() - start
    assert_all_gone(procs)


def test_merge_epoch_stats():
    ranks = [{'steps': 100, 'losses': {'policy_loss': 1.0, 'entropy': 2.0},
              'episode_sums': {'n': 3.0, 'score': 3 * 10.0}, 'episode_counts': {'n': 1.0, 'score': 3.0},
              'stop': False},
             {'steps': 50, 'losses': {'policy_loss': 3.0, 'entropy': 4.0},
              'episode_sums': {'n': 1.0, 'score': 1 * 30.0, 'perf': 0.5},
              'episode_counts': {'n': 1.0, 'score': 1.0, 'perf': 1.0}, 'stop': True},
             {'steps': 10, 'losses': {'policy_loss': 2.0, 'entropy': 0.0},
              'episode_sums': {}, 'episode_counts': {}, 'stop': False}]
    merged = distributed.merge_epoch_stats(ranks)
    assert merged['steps'] == 160 and merged['stop'] is True
    assert merged['losses'] == pytest.approx({'policy_loss': 2.0, 'entropy': 2.0})
    # weighted by episode count: (3 * 10 + 1 * 30) / 4; perf only from the rank that reported it
    assert merged['env_stats'] == pytest.approx({'n': 4.0, 'score': 15.0, 'perf': 0.5})
