"""Checkpoints that cannot hurt and runs that do not end unsaved (issue 12, items 2, 3, 6, 7, 11):
only tensors and plain data are unpickled, a digest catches a changed byte, bad contents and a full
disk are CheckpointErrors naming the file, a failed env worker leaves a checkpoint, resumed runs log
each epoch once, and old checkpoints are pruned."""
import copy
import errno
import json
import os
import signal
import subprocess
import zipfile

import pytest
import torch

import pufferlib.vector
from pufferlib.examples import Match
from pufferlib.exceptions import CheckpointError, EnvWorkerError
from pufferlib.trainer import checkpoint, cli, ppo
from pufferlib.trainer.config import load_config
from pufferlib.trainer.policy import make_policy


# small tensors: one torch thread (conftest.py's one_thread)
pytestmark = pytest.mark.usefixtures('one_thread')


def small_config(tmp_path, **train):
    config = load_config('match')
    config['train'].update(bptt_horizon=4, batch_size=128, minibatch_size=64,
                           total_timesteps=128 * 4, checkpoint_interval=2, optimizer='adam',
                           torch_threads=1, precision='float32', data_dir=str(tmp_path))
    config['train'].update(train)
    config['policy'].update(hidden_size=16, lstm=False)
    return config


def run(config, resume=None, vecenv=None, on_epoch=None):
    env = vecenv or Match(num_envs=8, seed=1)
    policy = make_policy(env, config['policy']['hidden_size'], 1, config['policy']['lstm'])
    return ppo.train('match', copy.deepcopy(config), env, policy, resume=resume,
                     on_epoch=on_epoch)


def epochs_logged(run_dir):
    return [json.loads(line)['epoch'] for line in open(run_dir / 'log.jsonl')]


def names(run_dir):
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith('checkpoint_'))


@pytest.fixture
def trained(tmp_path):
    """(config, run folder) of a 4-epoch run: checkpoints at epochs 2 and 4."""
    config = small_config(tmp_path / 'runs')
    return config, run(config).run_dir


# ---- item 2: nothing but tensors and plain data is unpickled ------------------------------------

class RunsCode:
    """Unpickling this calls open(marker, 'w'): the file appears if the pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), 'w')


def test_a_checkpoint_that_would_run_code_is_refused(trained, tmp_path, capsys):
    config, run_dir = trained
    payload = checkpoint.load_checkpoint(run_dir)
    marker = tmp_path / 'ran'
    payload['config']['env']['evil'] = RunsCode(marker)
    evil = run_dir / 'checkpoint_000006.pt'
    torch.save(payload, evil)
    with pytest.raises(CheckpointError, match=f'{evil} is refused: unpickling it would call '
                                              '(builtins|io).open'):
        checkpoint.load_checkpoint(evil)
    assert cli.main(['eval', 'match', '--checkpoint', str(evil), '--headless']) == 2
    assert cli.main(['train', 'match', '--resume', str(run_dir)]) == 2   # the newest: epoch 6
    err = capsys.readouterr().err
    assert err.count(f'checkpoint {evil} is refused') == 2, err
    assert not marker.exists()


# ---- item 3: a digest of the contents ------------------------------------------------------------

def tensor_data_offsets(path):
    """(start, end) of each tensor's bytes inside the checkpoint file (torch stores them
    uncompressed, one zip record each)."""
    offsets = []
    with zipfile.ZipFile(path) as z, open(path, 'rb') as f:
        for info in z.infolist():
            if '/data/' in info.filename and info.file_size:
                f.seek(info.header_offset + 26)
                name_len, extra_len = int.from_bytes(f.read(2), 'little'), int.from_bytes(f.read(2), 'little')
                start = info.header_offset + 30 + name_len + extra_len
                offsets.append((start, start + info.file_size))
    return offsets


def test_a_flipped_byte_fails_the_checksum(trained):
    _, run_dir = trained
    path = run_dir / 'checkpoint_000004.pt'
    original = checkpoint.load_checkpoint(path)
    data = bytearray(path.read_bytes())
    start, end = max(tensor_data_offsets(path), key=lambda span: span[1] - span[0])
    flipped = bytearray(data)
    flipped[(start + end) // 2] ^= 0x10      # one bit of a weight
    path.write_bytes(flipped)
    with pytest.raises(CheckpointError, match=f'checkpoint {path} fails its checksum'):
        checkpoint.load_checkpoint(path)
    # anywhere else in the file: an error naming the file, or the very same contents
    for offset in range(0, len(data), max(1, len(data) // 150)):
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        path.write_bytes(flipped)
        try:
            loaded = checkpoint.load_checkpoint(path)
        except CheckpointError as e:
            assert str(path) in str(e)
            continue
        assert loaded['sha256'] == original['sha256']
        for key, value in original['model'].items():
            assert torch.equal(loaded['model'][key], value), offset


# ---- item 11: bad contents, another env's checkpoint, a full disk -------------------------------

def damaged_copy(run_dir, damage):
    """The run's checkpoint with `damage` applied, saved as checkpoint_000008.pt with a valid
    digest: the contents are what is wrong."""
    payload = checkpoint.load_checkpoint(run_dir)
    del payload['path']
    damage(payload)
    bad = run_dir / 'checkpoint_000008.pt'
    checkpoint.save_checkpoint(bad, payload)
    return bad


@pytest.mark.parametrize('damage, message', [
    (lambda p: p['trainer'].pop('epoch'), 'no trainer.epoch entry'),
    (lambda p: p['trainer'].update(epoch='four'), 'trainer.epoch is a str, not a int'),
    (lambda p: p['model'].update({'extra': 'text'}), 'model holds a str where a Tensor belongs'),
    (lambda p: p.pop('model'), 'no model entry'),
    (lambda p: p.update(config=[1, 2]), 'config is a list, not a dict'),
    (lambda p: p['trainer']['rng'].update(python=(1, 2)), 'trainer.rng.python is a tuple'),
    (lambda p: p['trainer']['optimizers'].append(7), 'trainer.optimizers holds a int'),
])
def test_bad_contents_name_the_file_and_the_entry(trained, damage, message):
    _, run_dir = trained
    bad = damaged_copy(run_dir, damage)
    with pytest.raises(CheckpointError, match=f'checkpoint {bad} .*{message}'):
        checkpoint.load_checkpoint(bad)


@pytest.mark.parametrize('damage, message', [
    (lambda p: p['trainer']['rng'].update(numpy={}), "RNG state cannot be restored .*KeyError"),
    (lambda p: p['trainer']['rng'].update(python=[3, [1, 2], None]), 'RNG state cannot be restored'),
    (lambda p: p['trainer']['optimizers'][0].pop('state'), 'optimizer state does not match'),
])
def test_bad_contents_found_on_resume_name_the_file(trained, damage, message):
    config, run_dir = trained
    bad = damaged_copy(run_dir, damage)
    with pytest.raises(CheckpointError, match=f'{bad}.*{message}'):
        run(config, resume=bad)


def test_another_envs_checkpoint_is_refused_before_the_trainer_is_built(trained, monkeypatch):
    config, run_dir = trained

    def no_trainer(*args):
        raise AssertionError('the Trainer was built before the checkpoint was checked')
    monkeypatch.setattr(ppo, 'Trainer', no_trainer)
    env = Match(num_envs=8)
    with pytest.raises(CheckpointError, match="saved by a 'match' run, not 'squared'"):
        ppo.train('squared', config, env, make_policy(env, 16, 1, False), resume=run_dir)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (needs root and mount); skipped where it cannot be mounted."""
    disk = tmp_path / 'disk'
    disk.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip('cannot mount a tmpfs here (not root)')
    yield disk
    subprocess.run(['umount', '-l', str(disk)], check=True)


def test_a_full_disk_is_named_and_keeps_the_previous_checkpoint(trained, tiny_disk):
    _, run_dir = trained
    payload = checkpoint.load_checkpoint(run_dir)
    first = checkpoint.save_checkpoint(tiny_disk / 'checkpoint_000002.pt', payload)
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    (tiny_disk / 'filler').write_bytes(b'x' * (free - 4096))
    second = tiny_disk / 'checkpoint_000004.pt'
    with pytest.raises(CheckpointError, match=f'no space left on tmpfs \\(mounted on {tiny_disk}\\) '
                                              f'writing {second}'):
        checkpoint.save_checkpoint(second, payload)
    assert sorted(p.name for p in tiny_disk.iterdir()) == ['checkpoint_000002.pt', 'filler']
    assert checkpoint.load_checkpoint(first)['sha256'] == payload['sha256']


def test_a_failed_write_is_named_and_keeps_the_previous_checkpoint(trained, monkeypatch):
    """The same without a tmpfs: the disk fills up as the file is flushed to it."""
    config, run_dir = trained

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'fsync', full)
    config['train']['total_timesteps'] = 128 * 6
    with pytest.raises(CheckpointError, match=f'no space left on .* writing '
                                              f'{run_dir / "checkpoint_000006.pt"}'):
        run(config, resume=run_dir)
    assert names(run_dir) == ['checkpoint_000002.pt', 'checkpoint_000004.pt']
    assert checkpoint.load_checkpoint(run_dir)['trainer']['epoch'] == 4


# ---- item 6: an env worker that dies leaves a checkpoint -----------------------------------------

def test_a_dead_env_worker_ends_the_run_with_a_checkpoint(tmp_path):
    config = small_config(tmp_path, total_timesteps=128 * 100, checkpoint_interval=1000)
    vecenv = pufferlib.vector.make(Match, env_kwargs={'num_envs': 4}, backend='Multiprocessing',
                                   num_envs=2, num_workers=2)

    def kill_worker_1(trainer, record):
        if trainer.epoch == 2:
            os.kill(vecenv.processes[1].pid, signal.SIGKILL)
    try:
        with pytest.raises(EnvWorkerError, match='worker 1') as raised:
            run(config, vecenv=vecenv, on_epoch=kill_worker_1)
    finally:
        vecenv.close()
    run_dir = next((tmp_path).iterdir())
    assert names(run_dir) == ['checkpoint_000002.pt']
    assert f'saved the state of epoch 2 to {run_dir / "checkpoint_000002.pt"}' in \
        ''.join(raised.value.__notes__)
    saved = checkpoint.load_checkpoint(run_dir)
    logged = [json.loads(line) for line in open(run_dir / 'log.jsonl')]
    assert saved['trainer']['epoch'] == 2 and logged[-1]['epoch'] == 2
    assert saved['trainer']['global_step'] == logged[-1]['agent_steps']
    resumed = run(dict(config, train={**config['train'], 'total_timesteps': 128 * 3}),
                  resume=run_dir)
    assert resumed.epoch == 3 and epochs_logged(run_dir) == [1, 2, 3]


# ---- item 7: the run folder after kills and resumes ----------------------------------------------

def test_a_folder_resumes_from_its_highest_epoch(trained, tmp_path):
    _, run_dir = trained
    payload = checkpoint.load_checkpoint(run_dir)
    folder = tmp_path / 'long_run'
    folder.mkdir()
    for epoch in (999_999, 1_000_000, 20):
        payload['trainer']['epoch'] = epoch
        checkpoint.save_checkpoint(folder / f'checkpoint_{epoch:06d}.pt', payload)
    assert checkpoint.load_checkpoint(folder)['trainer']['epoch'] == 1_000_000


def test_temporary_files_left_by_a_kill_are_removed(trained):
    config, run_dir = trained
    (run_dir / 'checkpoint_000006.pt.tmp4242').write_bytes(b'half a checkpoint')
    config['train']['total_timesteps'] = 128 * 6
    run(config, resume=run_dir)
    assert names(run_dir) == ['checkpoint_000002.pt', 'checkpoint_000004.pt',
                              'checkpoint_000006.pt']


def test_a_resumed_run_logs_each_epoch_once(trained):
    config, run_dir = trained
    with open(run_dir / 'log.jsonl', 'a') as log:   # killed after logging epoch 5, mid-line 6
        log.write(json.dumps({'epoch': 5, 'agent_steps': 1}) + '\n{"epoch": 6, "agent_st')
    config['train']['total_timesteps'] = 128 * 6
    run(config, resume=run_dir)                     # from epoch 4
    assert epochs_logged(run_dir) == [1, 2, 3, 4, 5, 6]
    run(config, resume=run_dir / 'checkpoint_000002.pt')    # an older one: 3 to 6 again
    assert epochs_logged(run_dir) == [1, 2, 3, 4, 5, 6]


def test_a_symlinked_log_is_refused_not_written_through(trained, tmp_path):
    config, run_dir = trained
    target = tmp_path / 'elsewhere.txt'
    target.write_text('keep me\n')
    (run_dir / 'log.jsonl').unlink()
    (run_dir / 'log.jsonl').symlink_to(target)
    config['train']['total_timesteps'] = 128 * 6
    with pytest.raises(CheckpointError, match=f'{run_dir / "log.jsonl"} is a symbolic link '
                                              f'\\(to {target}\\): pufferlib does not write through'):
        run(config, resume=run_dir)
    assert target.read_text() == 'keep me\n'


def test_prune_keeps_the_newest_and_the_best(tmp_path):
    for epoch in range(1, 8):
        (tmp_path / f'checkpoint_{epoch:06d}.pt').write_bytes(b'')
    (tmp_path / 'checkpoint_000003.pt.tmp77').write_bytes(b'')
    (tmp_path / 'log.jsonl.tmp77').write_bytes(b'')
    checkpoint.prune(tmp_path, 2, {1: 0.5, 2: 3.0, 3: 0.1, 4: None, 5: 0.2, 6: 0.3})
    assert not list(tmp_path.glob('*.tmp*'))
    assert names(tmp_path) == ['checkpoint_000002.pt', 'checkpoint_000006.pt',
                               'checkpoint_000007.pt']
    checkpoint.prune(tmp_path, 5, {})
    assert len(names(tmp_path)) == 3


def test_checkpoint_keep_deletes_older_checkpoints(tmp_path):
    config = small_config(tmp_path, total_timesteps=128 * 6, checkpoint_interval=1,
                          checkpoint_keep=2)
    run_dir = run(config).run_dir
    logged = [json.loads(line) for line in open(run_dir / 'log.jsonl')]
    best = max((r['environment/score'], r['epoch']) for r in logged if 'environment/score' in r)[1]
    assert names(run_dir) == sorted({f'checkpoint_{e:06d}.pt' for e in (5, 6, best)})
    assert load_config('match')['train']['checkpoint_keep'] == 5
    from pufferlib.exceptions import APIUsageError
    with pytest.raises(APIUsageError, match='checkpoint_keep'):
        cli.load('match', ['--train.checkpoint_keep', '0'])
