"""`puffer sweep`: the [sweep] format and its errors, objectives, pruning, failed trials, storage
that survives a killed sweep, and the best ini that `puffer train --config` takes."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from pufferlib.exceptions import APIUsageError
from pufferlib.trainer import cli, sweep
from pufferlib.trainer.config import CONFIG_DIR

# every trial: 16 squared envs, 32 epochs of 512 steps (episode stats every 2048 steps)
TINY = ['--env.num_envs', '16', '--train.batch_size', '512', '--train.minibatch_size', '256',
        '--train.bptt_horizon', '16', '--train.total_timesteps', '16384',
        '--train.checkpoint_interval', '1000', '--sweep.train.total_timesteps', 'none']


def load_study(data_dir, name='squared'):
    return optuna.load_study(study_name=name, storage=f'sqlite:///{Path(data_dir) / name / "study.db"}')


# ---- the [sweep] format -----------------------------------------------------------------------

def test_ranges_parse_to_optuna_distributions():
    assert sweep.parse_range('k', 'float 1e-4 0.1 log', 0.5) == ('float', 1e-4, 0.1, True)
    assert sweep.parse_range('k', 'float 0.8 0.99', 0.9) == ('float', 0.8, 0.99, False)
    assert sweep.parse_range('k', 'int 1 4', 1) == ('int', 1, 4, False)
    # Nx: N times the env's own value; an int key gives ints
    kind, low, high, log = sweep.parse_range('k', 'float 0.1x 10x log', 0.015)
    assert (kind, log) == ('float', True) and low == pytest.approx(0.0015) and high == pytest.approx(0.15)
    assert sweep.parse_range('k', 'int 0.1x 1x log', 1500000) == ('int', 150000, 1500000, True)
    assert sweep.parse_range('k', 'choice 0.5x 1x 2x', 64) == ('choice', [32, 64, 128])
    assert sweep.parse_range('k', 'choice adam muon', 'muon') == ('choice', ['adam', 'muon'])
    assert sweep.parse_range('k', 'choice True False', True) == ('choice', [True, False])


def test_the_default_space_is_valid_for_every_shipped_env():
    for path in CONFIG_DIR.glob('*.ini'):
        name = {'default': 'match', 'emulated': 'CartPole-v1'}.get(path.stem, path.stem)
        settings, space, base = sweep.load_sweep(name, [])
        assert settings['method'] == 'tpe' and base == []
        assert set(space) >= {'train.learning_rate', 'train.ent_coef', 'train.gamma',
                              'train.gae_lambda', 'train.clip_coef', 'train.minibatch_size',
                              'train.update_epochs', 'policy.hidden_size'}
    config = cli.load('squared', [])
    settings, space, base = sweep.load_sweep('squared', ['--sweep.train.gamma', 'none',
                                                         '--env.size', '7'])
    assert 'train.gamma' not in space and base == ['--env.size=7']
    hidden = config['policy']['hidden_size']
    assert space['policy.hidden_size'] == ('choice', [hidden // 2, hidden, 2 * hidden])


BAD = [
    (['--sweep.trails', '3'], r'unknown sweep setting sweep.trails: did you mean sweep.trials\?'),
    (['--sweep.train.learnig_rate', 'float 1 2'],
     r'\[sweep\] train.learnig_rate: unknown option --train.learnig_rate; did you mean '
     r'--train.learning_rate'),
    (['--sweep.trian.gamma', 'float 0.9 0.99'], r'\[sweep\] trian.gamma: unknown option'),
    (['--sweep.train.gamma', 'float 0.9'], r'train.gamma = float 0.9: float needs two bounds'),
    (['--sweep.train.gamma', 'float 0.99 0.9'], 'LOW 0.99 is not below HIGH 0.9'),
    (['--sweep.train.ent_coef', 'float 0 0.1 log'], 'a log range needs LOW above 0'),
    (['--sweep.train.gamma', 'gauss 0.9 0.99'], r"unknown kind 'gauss'; use 'float LOW HIGH \[log\]'"),
    (['--sweep.train.gamma', '0.99'], "unknown kind '0.99'"),
    (['--sweep.train.update_epochs', 'int 1.5 4'], '1.5 is not an integer'),
    (['--sweep.train.gamma', 'float 0.9 high'], "'high' is not a number"),
    (['--sweep.policy.hidden_size', 'choice 64'], 'a choice needs two values or more'),
    (['--sweep.train.batch_size', 'int 0.5x 2x'],
     "0.5x is relative to the env's train.batch_size, which is 'auto', not a number"),
    (['--sweep.method', 'bayes'], "sweep.method is 'bayes': use tpe, cmaes, random, nsga2"),
    (['--sweep.trials', '0'], "sweep.trials is 0: use a positive integer"),
    (['--sweep.cost', 'money'], "sweep.cost is 'money': use steps, time, none"),
    (['--sweep.method', 'cmaes'], 'cmaes optimises one objective: add --sweep.cost none'),
    (['--sweep.pruner', 'median'], 'Optuna prunes single-objective studies only'),
    (['--train.learnig_rate', '1'], 'did you mean --train.learning_rate'),
    (['--sweep.storage', 'nosuchdb://host/db'], r'sweep.storage nosuchdb://host/db: '),
]


@pytest.mark.parametrize('words, message', BAD, ids=[' '.join(w) for w, _ in BAD])
def test_bad_input_is_an_error_before_any_trial(words, message, tmp_path):
    with pytest.raises(APIUsageError, match=message):
        sweep.sweep('squared', ['--sweep.data_dir', str(tmp_path / 'sweeps'), *words])
    assert not (tmp_path / 'sweeps').exists()


def test_the_cli_reports_bad_input_and_exits_2(tmp_path, capsys):
    assert cli.main(['sweep', 'squared', '--sweep.data_dir', str(tmp_path),
                     '--sweep.train.gamma', 'float 1']) == 2
    assert 'puffer sweep: error: [sweep] train.gamma = float 1' in capsys.readouterr().err


def test_resuming_with_another_space_is_an_error(tmp_path):
    words = ['--sweep.data_dir', str(tmp_path)]
    sweep.open_study('squared', *sweep.load_sweep('squared', words))
    sweep.open_study('squared', *sweep.load_sweep('squared', words))   # the same sweep: fine
    with pytest.raises(APIUsageError, match=r"study 'squared' .* is another sweep: space .*"
                                            r"give this one --sweep.name NEW"):
        sweep.open_study('squared', *sweep.load_sweep('squared', words + [
            '--sweep.train.gamma', 'none']))
    with pytest.raises(APIUsageError, match=r'is another sweep: cost \(was .steps., now .none.\)'):
        sweep.open_study('squared', *sweep.load_sweep('squared', words + ['--sweep.cost', 'none']))


def test_a_config_file_gives_overrides_and_sweep_settings(tmp_path):
    path = tmp_path / 'mine.ini'
    path.write_text('[train]\ngamma = 0.9\n\n[sweep]\ntrials = 7\n'
                    'train.learning_rate = float 0.001 0.01 log\n')
    settings, space, base = sweep.load_sweep('squared', ['--sweep.trials', '9'], path)
    assert settings['trials'] == 9 and base == ['--train.gamma=0.9']
    assert space['train.learning_rate'] == ('float', 0.001, 0.01, True)
    assert cli.load('squared', [], path)['train']['gamma'] == 0.9
    path.write_text('[train]\ngama = 0.9\n')
    with pytest.raises(APIUsageError, match=r'mine.ini: unknown key gama in \[train\]; did you mean --train.gamma'):
        cli.load('squared', [], path)
    path.write_text('[trian]\ngamma = 0.9\n')
    with pytest.raises(APIUsageError, match=r'unknown section \[trian\]'):
        cli.load('squared', [], path)
    with pytest.raises(APIUsageError, match='config file .*nothere.ini does not exist'):
        cli.load('squared', [], tmp_path / 'nothere.ini')


# ---- objectives, best config ------------------------------------------------------------------

def test_score_is_the_episode_weighted_mean_of_the_last_epochs():
    score = sweep.Score('auto')
    assert score.add({'epoch': 1}) is None                       # no episode ended yet
    records = [{'environment/score': float(i), 'environment/episode_return': -1.0,
                'environment/n': i} for i in range(1, 9)]
    for record in records:
        value = score.add(record)
    last = range(4, 9)   # the last 5 epochs, weighted by their episode counts
    assert value == pytest.approx(sum(i * i for i in last) / sum(last))
    returns = sweep.Score('auto')
    assert returns.add({'environment/episode_return': 3.0}) == 3.0   # no score: episode_return
    assert sweep.Score('perf').add({'environment/perf': 0.5, 'environment/score': 9}) == 0.5


def test_pruning_only_with_one_objective():
    base = {'pruner': 'auto', 'prune_warmup': 3}
    assert isinstance(sweep.make_pruner({**base, 'cost': 'steps'}), optuna.pruners.NopPruner)
    assert isinstance(sweep.make_pruner({**base, 'cost': 'none'}), optuna.pruners.MedianPruner)
    assert isinstance(sweep.make_pruner({**base, 'cost': 'none', 'pruner': 'hyperband'}),
                      optuna.pruners.HyperbandPruner)


def test_best_ini_is_the_highest_score_on_the_pareto_front_and_trains(tmp_path, capsys):
    study = optuna.create_study(directions=['maximize', 'minimize'], study_name='s')
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        study.set_metric_names(['score', 'steps'])
    dist = {'train.learning_rate': optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    for lr, values in ((0.01, [0.5, 1000]), (0.02, [0.9, 3000]), (0.03, [0.9, 2000]),
                       (0.04, [0.2, 5000])):
        study.add_trial(optuna.trial.create_trial(
            params={'train.learning_rate': lr}, distributions=dist, values=values,
            user_attrs={'overrides': ['--env.num_envs=16', f'--train.learning_rate={lr}']}))
    best = sweep.best_trial(study)
    assert best.params['train.learning_rate'] == 0.03     # 0.9 in fewer steps than 0.02
    path = tmp_path / 'best.ini'
    path.write_text(sweep.trial_ini('squared', study, best))
    assert '(score 0.9, steps 2000)' in path.read_text()
    config = cli.load('squared', [], path)
    assert config['train']['learning_rate'] == 0.03 and config['env']['num_envs'] == 16
    assert cli.main(['train', 'squared', '--config', str(path), '--train.total_timesteps', '1024',
                     '--train.batch_size', '256', '--train.bptt_horizon', '16',
                     '--train.minibatch_size', '256', '--train.data_dir', str(tmp_path / 'runs')]) == 0
    run = next((tmp_path / 'runs').iterdir())
    assert json.loads((run / 'config.json').read_text())['train']['learning_rate'] == 0.03


def test_trials_of_dead_sweep_processes_on_this_machine_are_failed(monkeypatch):
    study = optuna.create_study(directions=['maximize'])
    storage = study._storage
    me = sweep.this_worker()
    gone = subprocess.Popen(['true'])
    gone.wait()
    workers = [me, {**me, 'pid': gone.pid}, {**me, 'pid': gone.pid, 'host': 'elsewhere'},
               {**me, 'started': me['started'] + 1}]   # the pid reused by another process
    for worker in workers:
        study.ask().set_user_attr('worker', worker)
    study.ask()   # a sweep that died between Optuna's ask and the trial's start: no worker
    sweep.fail_dead_trials(study, storage, me)
    assert [t.state for t in study.trials] == [TrialState.RUNNING, TrialState.FAIL,
                                               TrialState.RUNNING, TrialState.FAIL,
                                               TrialState.RUNNING]
    assert study.trials[1].user_attrs['error'] == f'its sweep process {gone.pid} died'
    monkeypatch.setattr(sweep, 'HEARTBEAT', -1)    # ... failed once HEARTBEAT seconds old
    sweep.fail_dead_trials(study, storage, me)
    assert study.trials[4].state == TrialState.FAIL
    assert study.trials[0].state == study.trials[2].state == TrialState.RUNNING


def test_workers_starting_together_on_a_new_database_both_connect(tmp_path):
    """Two workers opening a new database at once race to create Optuna's tables (without the
    retry, every round here failed one of them with 'table ... already exists')."""
    for round_ in range(3):
        url = f'sqlite:///{tmp_path / f"new{round_}.db"}'
        barrier, errors = threading.Barrier(2), []

        def worker():
            barrier.wait()
            try:
                optuna.create_study(storage=sweep.connect(url), study_name='s', load_if_exists=True)
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors and len(optuna.get_all_study_names(url)) == 1


# ---- sweeps of real trials ----------------------------------------------------------------------

def test_a_pruned_trial_stops_its_run_and_counts(tmp_path, monkeypatch, capsys):
    """One objective: the pruner sees the score of every epoch and stops the run (SIGINT)."""
    monkeypatch.setattr(sweep, 'make_pruner', lambda settings: optuna.pruners.ThresholdPruner(
        lower=2.0, n_warmup_steps=settings['prune_warmup']))   # a score is below 2: prune
    assert sweep.sweep('squared', ['--sweep.data_dir', str(tmp_path), '--sweep.trials', '1',
                                   '--sweep.cost', 'none', '--sweep.prune_warmup', '5', *TINY]) == 0
    (trial,) = load_study(tmp_path).trials
    assert trial.state == TrialState.PRUNED
    log = [json.loads(line) for line in open(next((tmp_path / 'squared').glob('trial_0000/*/log.jsonl')))]
    assert 5 <= log[-1]['epoch'] < 32          # stopped after the warm-up, before its end
    assert 'interrupted: saved' in (tmp_path / 'squared/trial_0000/stdout.log').read_text()
    out = capsys.readouterr().out
    assert 'trial 0 pruned at epoch' in out and '1 of 1 trials done (1 pruned)' in out
    assert 'no plots: they need 2 completed trials' in out


def test_a_crashing_trial_is_recorded_failed_and_the_sweep_goes_on(tmp_path, capsys):
    """Every trial segfaults in the env (crash_at_step): each is failed with its error, the
    next one runs, and sweep.max_failures in a row end the sweep with exit code 1."""
    code = sweep.sweep('squared', ['--sweep.data_dir', str(tmp_path), '--sweep.trials', '3',
                                   '--sweep.max_failures', '2', '--env.crash_at_step', '100', *TINY])
    assert code == 1
    trials = load_study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert all('killed by SIGSEGV' in t.user_attrs['error'] for t in trials)
    assert '2 trials in a row failed (sweep.max_failures)' in capsys.readouterr().err


def sweep_command(data_dir):
    return [sys.executable, '-m', 'pufferlib.trainer', 'sweep', 'squared', '--sweep.trials', '3',
            '--sweep.data_dir', str(data_dir), '--sweep.seed', '0', *TINY]


def child_env():
    return {**os.environ, 'OMP_NUM_THREADS': '1'}


def interrupt_mid_trial(command, trial_dir, sig):
    """Start the sweep, send `sig` to it once trial_dir's run has logged an epoch, wait for it
    and for its training process; returns the sweep's exit code."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), start_new_session=True)
    try:
        deadline = time.time() + 240
        while not any(p.stat().st_size for p in trial_dir.glob('*/log.jsonl')):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.1)
        training = psutil.Process(proc.pid).children()
        assert training, 'no training process'
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        gone, alive = psutil.wait_procs(training, timeout=60)   # none outlives the sweep
        assert not alive
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_losing_or_counting_a_trial_twice(tmp_path):
    command, folder = sweep_command(tmp_path), tmp_path / 'squared'
    # Ctrl-C (SIGINT to the sweep alone) during trial 1: it is failed, the sweep exits 130
    assert interrupt_mid_trial(command, folder / 'trial_0001', signal.SIGINT) == 130
    assert [t.state for t in load_study(tmp_path).trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert load_study(tmp_path).trials[1].user_attrs['error'] == 'interrupted (Ctrl-C)'
    # SIGKILL during trial 2: left running in the storage, failed when the sweep starts again
    assert interrupt_mid_trial(command, folder / 'trial_0002', signal.SIGKILL) == -signal.SIGKILL
    assert load_study(tmp_path).trials[2].state == TrialState.RUNNING
    result = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=600)
    assert result.returncode == 0, result.stderr
    trials = load_study(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL,
                                         TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[2].user_attrs['error'].startswith('its sweep process')
    assert sorted(p.name for p in folder.glob('trial_*')) == [f'trial_{i:04d}' for i in range(5)]
    assert '3 of 3 trials done' in result.stdout and 'trial 3 started' in result.stdout
    for name in ('best.ini', 'pareto.png', 'importance.png'):
        assert (folder / name).stat().st_size > 0, name
    # the same command again runs nothing: the 3 trials are done
    again = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=120)
    assert again.returncode == 0 and 'started' not in again.stdout and len(load_study(tmp_path).trials) == 5
    # the best config trains
    result = subprocess.run([sys.executable, '-m', 'pufferlib.trainer', 'train', 'squared',
                             '--config', str(folder / 'best.ini'), '--train.total_timesteps', '2048',
                             '--train.data_dir', str(tmp_path / 'best')],
                            capture_output=True, text=True, env=child_env(), timeout=120)
    assert result.returncode == 0 and 'done:' in result.stdout, result.stderr


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='prctl is Linux only')
def test_a_trial_takes_sigint_even_from_a_sweep_that_ignores_it():
    """A sweep started in the background (`&`, nohup) ignores SIGINT; its trials must not, or
    neither pruning nor the sweep's death would stop them."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        child = subprocess.run([sys.executable, '-c', 'import signal; print(signal.getsignal('
                                'signal.SIGINT) is signal.default_int_handler)'],
                               capture_output=True, text=True, preexec_fn=sweep.trial_signals())
    finally:
        signal.signal(signal.SIGINT, previous)
    assert child.stdout.strip() == 'True', child.stderr


@pytest.mark.slow
def test_workers_sharing_a_storage_url_run_the_trials_once(tmp_path):
    """Two workers (as on two machines: each its own folder) against one study: 3 trials in all,
    none run twice, and neither fails the other's running trial."""
    url = f'sqlite:///{tmp_path / "shared.db"}'
    workers = [subprocess.Popen(sweep_command(tmp_path / f'machine{i}') + [
        '--sweep.storage', url, '--sweep.seed', 'None'], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=child_env()) for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = optuna.load_study(study_name='squared', storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    folders = sorted(p.name for i in range(2) for p in (tmp_path / f'machine{i}/squared').glob('trial_*'))
    assert folders == ['trial_0000', 'trial_0001', 'trial_0002']
    assert {t.user_attrs['worker']['pid'] for t in trials} == {w.pid for w in workers}
