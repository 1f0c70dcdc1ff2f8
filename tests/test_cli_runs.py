"""What `puffer` reports about a run: eval counts exactly --episodes, run folders are flat for any
env id, and an env's usage error is one line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pufferlib.trainer import checkpoint, cli


def stats(out):
    """The `key: value` lines `puffer eval` printed."""
    return dict(line.strip().split(': ') for line in out.splitlines()[1:] if ': ' in line)


@pytest.mark.parametrize('env, args', [
    ('CartPole-v1', []),                                  # 16 env objects, Serial
    ('Blackjack-v1', []),                                 # episodes of one or two steps
    ('breakout', ['--env.num_envs', '64']),               # one env object, 64 sub-envs
    ('squared', ['--env.num_envs', '256']),               # several episodes end in one step
])
def test_eval_counts_exactly_the_episodes_asked_for(env, args, capsys):
    """--episodes 20 reports 20 episodes, not every episode the envs had finished by the time the
    20th was reported (before: 90 on CartPole, 1805 on Blackjack)."""
    assert cli.main(['eval', env, '--headless', '--episodes', '20', *args]) == 0
    assert stats(capsys.readouterr().out)['episodes'] == '20'


def test_first_episodes_keeps_exactly_the_episodes_left():
    infos = [{'n': 3, 'score': 1.0}, 'not a dict', {'n': 2, 'score': 5.0}, {'score': 7.0}]
    assert cli.first_episodes(infos, 4) == [{'n': 3, 'score': 1.0}, 'not a dict',
                                            {'n': 1, 'score': 5.0}]
    assert cli.first_episodes(infos, 10) == infos
    assert cli.first_episodes({'n': 5, 'score': 2.0}, 2) == [{'n': 2, 'score': 2.0}]
    assert cli.first_episodes(infos, 0) == []


@pytest.mark.parametrize('env_id, folder', [('ALE/Breakout-v5', 'ALE-Breakout-v5'),
                                            ('my_pkg.envs:Grid-v0', 'my_pkg.envs-Grid-v0'),
                                            ('breakout', 'breakout')])
def test_run_folders_are_flat(tmp_path, env_id, folder):
    """A run folder is one folder under data_dir whatever the env id (before: experiments/ALE/...)."""
    run = checkpoint.new_run_dir(tmp_path, env_id, {'env': {}})
    assert run.parent == tmp_path and run.name.startswith(folder + '_')
    assert (run / 'config.json').exists()


@pytest.mark.slow
def test_train_an_ale_env_writes_one_flat_run_folder(tmp_path):
    pytest.importorskip('ale_py')
    assert cli.main(['train', 'ALE/Pong-v5', '--vec.num_envs', '1', '--train.total_timesteps', '64',
                     '--train.batch_size', '64', '--train.minibatch_size', '64',
                     '--train.bptt_horizon', '16', '--train.data_dir', str(tmp_path),
                     '--train.torch_threads', '1']) == 0
    run, = tmp_path.iterdir()
    assert run.name.startswith('ALE-Pong-v5_') and (run / 'checkpoint_000001.pt').exists()


@pytest.mark.parametrize('vec', [[], ['--vec.backend', 'multiprocessing', '--vec.num_envs', '2']])
def test_an_env_usage_error_is_one_line(vec):
    """An APIUsageError raised by the env's constructor (here: 0 sub-envs) is printed as one line,
    exit status 2, in this process (Native) or in a worker pool (before: a 93-line traceback of
    an EnvWorkerError)."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run([sys.executable, '-m', 'pufferlib.trainer', 'train', 'breakout',
                             '--env.num_envs', '0', *vec], capture_output=True, text=True,
                            timeout=120, env=env, cwd=Path(__file__).parent.parent)
    assert result.returncode == 2
    assert result.stderr == ('puffer train: error: env 0: Breakout: num_envs is 0: it must be an '
                             'integer in [1, 16777216] (in its constructor)\n')
    assert result.stdout == ''
