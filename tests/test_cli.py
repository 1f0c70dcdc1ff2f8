"""`puffer train|eval|bench` smoke runs: each Ocean game trains for a few seconds as a subprocess,
writes a checkpoint, resumes from it, and `eval` loads it headless; Ctrl-C saves and exits."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from pufferlib.trainer import checkpoint, cli

SMALL = ['--train.batch_size', '512', '--train.minibatch_size', '256', '--train.bptt_horizon', '16',
         '--train.torch_threads', '1', '--train.checkpoint_interval', '2']


def child_env():  # read at call time: conftest may start an Xvfb and set DISPLAY after import
    return {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}


def puffer(*args, timeout=120, module=False):
    command = [sys.executable, '-m', 'pufferlib.trainer'] if module else [
        str(Path(sys.executable).with_name('puffer'))]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=child_env(), start_new_session=True)


def only_run(data_dir):
    runs = list(Path(data_dir).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize('game', ['squared', 'breakout', 'connect4', 'triple_triad'])
def test_train_resume_eval(game, tmp_path, capsys):
    # train as a subprocess (plain progress lines: stdout is a pipe)
    result = puffer('train', game, '--env.num_envs', '16', '--train.total_timesteps', '1024',
                    '--train.data_dir', tmp_path, *SMALL, module=(game == 'squared'))
    assert result.returncode == 0, result.stderr
    assert 'epoch 2 |' in result.stdout and 'done:' in result.stdout
    run = only_run(tmp_path)
    assert (run / 'checkpoint_000002.pt').exists()
    first = [json.loads(line) for line in open(run / 'log.jsonl')]
    assert first[-1]['epoch'] == 2 and 'losses/policy_loss' in first[-1]
    if game == 'squared':  # the whole chain through the console script
        result = puffer('train', game, '--resume', run, '--train.total_timesteps', '2048')
        assert result.returncode == 0, result.stderr
        assert 'epoch 4 |' in result.stdout
        result = puffer('eval', game, '--checkpoint', run, '--headless', '--episodes', '4')
        assert result.returncode == 0, result.stderr
        out = result.stdout
    else:  # resume and eval in-process: the subprocess start-up is the slow part
        assert cli.main(['train', game, '--resume', str(run), '--train.total_timesteps', '2048']) == 0
        capsys.readouterr()
        greedy = ['--greedy'] if game == 'connect4' else []
        assert cli.main(['eval', game, '--checkpoint', str(run), '--headless', '--episodes', '4',
                         *greedy]) == 0
        out = capsys.readouterr().out
    lines = [json.loads(line) for line in open(run / 'log.jsonl')]
    assert [r['epoch'] for r in lines] == [1, 2, 3, 4]  # the step count continues
    assert lines[2]['agent_steps'] > first[-1]['agent_steps']
    assert checkpoint.load_checkpoint(run)['trainer']['epoch'] == 4
    assert 'checkpoint_000004.pt' in out and 'episodes:' in out


@pytest.mark.parametrize('how', ['ctrl_c', 'sigterm'])
def test_a_stop_signal_saves_a_checkpoint_and_leaves_no_workers(tmp_path, how):
    """With Multiprocessing workers, SIGINT to the whole process group (what a terminal's Ctrl-C
    does; exit code 130) and SIGTERM to the main process only (kill PID, docker stop; 143 = 128 +
    15) both write a final checkpoint and leave no process behind."""
    command = [str(Path(sys.executable).with_name('puffer')), 'train', 'squared',
               '--vec.backend', 'multiprocessing', '--vec.num_envs', '2', '--vec.num_workers', '2',
               '--env.num_envs', '8', '--train.total_timesteps', '100000000',
               '--train.data_dir', str(tmp_path), *SMALL]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), start_new_session=True)
    # Bounds that hold on a loaded machine: they only guard against a hang (a run that never
    # prints progress is killed, so that readline returns).
    guard = threading.Timer(300, os.killpg, (proc.pid, signal.SIGKILL))
    guard.start()
    try:
        for line in proc.stdout:
            if line.startswith('epoch'):
                break
        else:
            pytest.fail(f'no progress line before the run ended:\n{proc.stderr.read()}')
        import psutil
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 2
        if how == 'ctrl_c':
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=240)
    finally:
        guard.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if how == 'ctrl_c':
        assert proc.returncode == 130, err
        assert 'interrupted: saved' in out
        assert err.count('KeyboardInterrupt') == 0, err
    else:
        assert proc.returncode == 143, err
        assert 'stopped by SIGTERM: saved' in out, out[-2000:]
    payload = checkpoint.load_checkpoint(only_run(tmp_path))
    assert payload['trainer']['global_step'] > 0 and payload['trainer']['epoch'] >= 1
    assert str(payload['path']) in out
    _, alive = psutil.wait_procs(children, timeout=60)
    assert not [c for c in alive if c.status() != 'zombie']


def test_bench_prints_env_and_trainer_sps(capsys):
    assert cli.main(['bench', 'squared', '--seconds', '0.5', '--env.num_envs', '16', *SMALL]) == 0
    out = capsys.readouterr().out
    assert 'squared: env' in out and 'agent-steps/s' in out and 'squared: trainer' in out


def test_play_and_env_bench_do_not_import_torch():
    code = ('import sys; from pufferlib.trainer import cli; '
            'cli.bench_env(cli.make_vecenv("squared", cli.load("squared", [])), 0.2); '
            'assert "torch" not in sys.modules, "torch imported"; print("ok")')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and 'ok' in result.stdout, result.stderr


def test_usage_errors_are_clear(capsys):
    assert cli.main(['train', 'nosuchgame']) == 2
    assert 'unknown env' in capsys.readouterr().err
    assert cli.main(['train', 'squared', '--train.learnig_rate', '1']) == 2
    assert 'did you mean --train.learning_rate' in capsys.readouterr().err
    assert cli.main(['eval', 'squared', '--checkpoint', '/nonexistent/run']) == 2
    assert 'does not exist' in capsys.readouterr().err


@pytest.mark.render
def test_eval_renders_with_a_display(tmp_path):
    assert cli.main(['train', 'breakout', '--env.num_envs', '16', '--train.total_timesteps', '512',
                     '--train.data_dir', str(tmp_path), *SMALL]) == 0
    result = puffer('eval', 'breakout', '--checkpoint', only_run(tmp_path), '--seconds', '2')
    assert result.returncode == 0, result.stderr
    frames = int(result.stdout.split('rendered frames:')[1].split()[0])
    assert frames > 5, result.stdout


@pytest.mark.slow
def test_train_with_ray_workers(tmp_path):
    """`--vec.backend ray`: env workers as Ray actors on a local instance (loopback only)."""
    pytest.importorskip('ray', reason='ray is not installed (pip install "pufferlib[ray]")')
    result = puffer('train', 'squared', '--vec.backend', 'ray', '--vec.num_envs', '2',
                    '--vec.num_workers', '2', '--env.num_envs', '8', '--train.total_timesteps', '1024',
                    '--train.data_dir', tmp_path, *SMALL, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'done:' in result.stdout
    assert checkpoint.load_checkpoint(only_run(tmp_path))['trainer']['epoch'] >= 2


def test_ray_address_goes_to_ray_only():
    config = cli.load('squared', ['--env.num_envs', '4', '--vec.ray_address', '10.0.0.1:6379'])
    assert config['vec']['ray_address'] == '10.0.0.1:6379'
    vecenv = cli.make_vecenv('squared', config)   # Native: the address is not passed on
    vecenv.close()



def test_train_leaves_the_vecenv_to_whoever_opened_it(tmp_path, monkeypatch):
    """ppo.train never closes the vector env it was given; `puffer train`, which opens it, closes
    it once, also when training fails."""
    from pufferlib.examples import Match
    from pufferlib.trainer import ppo
    from pufferlib.trainer.policy import make_policy
    config = cli.load('match', ['--train.total_timesteps', '512', '--train.data_dir', str(tmp_path),
                                *SMALL])
    env = Match(num_envs=8)
    closed = []
    monkeypatch.setattr(env, 'close', lambda: closed.append(env))
    ppo.train('match', config, env, make_policy(env, 16, 1, False))
    with pytest.raises(Exception, match='does not exist'):
        ppo.train('match', config, env, make_policy(env, 16, 1, False), resume=tmp_path / 'nope')
    assert closed == []
    env.step(env.actions)     # still usable

    opened = []

    def make_vecenv(name, config, **kw):
        vecenv = make(name, config, **kw)
        opened.append(vecenv)
        monkeypatch.setattr(vecenv, 'close', lambda: closed.append(vecenv))
        return vecenv

    make = cli.make_vecenv
    monkeypatch.setattr(cli, 'make_vecenv', make_vecenv)
    assert cli.main(['train', 'squared', '--env.num_envs', '16', '--train.total_timesteps', '512',
                     '--train.data_dir', str(tmp_path), *SMALL]) == 0
    assert closed == opened and len(opened) == 1

    def fail(trainer):
        raise RuntimeError('update failed')
    monkeypatch.setattr(ppo.Trainer, 'update', fail)
    with pytest.raises(RuntimeError, match='update failed'):
        cli.main(['train', 'squared', '--env.num_envs', '16', '--train.data_dir', str(tmp_path),
                  *SMALL])
    assert closed == opened and len(opened) == 2
    for vecenv in opened:
        type(vecenv).close(vecenv)


def test_eval_without_a_reachable_display_runs_headless(monkeypatch, capsys):
    """One display check (pufferlib.ocean.render.has_display): DISPLAY naming no X server means
    headless, not an error from the window."""
    from pufferlib.ocean.render import has_display
    monkeypatch.setenv('DISPLAY', ':4242')
    assert not has_display()
    assert cli.main(['eval', 'squared', '--episodes', '2', '--env.num_envs', '4']) == 0
    out = capsys.readouterr().out
    assert 'episodes:' in out and 'steps:' in out and 'rendered frames' not in out
    monkeypatch.delenv('DISPLAY')
    assert not has_display()
