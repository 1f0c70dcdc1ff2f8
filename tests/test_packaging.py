"""Fault-matrix row 26: a wheel built with `pip wheel .` and installed in a clean venv imports every
module that does not need torch, holds the files the trainer needs at run time, and every Ocean env
steps (no missing package data, no missing extension)."""
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).parent.parent

CHECK = '''
import importlib, pkgutil, numpy as np, pufferlib
from pufferlib import ocean
torch_modules = ('pufferlib.trainer.', 'pufferlib.spaces_torch', 'pufferlib.emulation_torch')
names = [m.name for m in pkgutil.walk_packages(pufferlib.__path__, 'pufferlib.')
         if not m.name.endswith('__main__') and not m.name.startswith(torch_modules)]
for name in names:
    importlib.import_module(name)
for name in ocean.ENVS:
    env = ocean.make(name, num_envs=4, seed=1)
    before = env.reset()[0].copy()
    after = env.step(np.ones(4, np.int32))[0]
    assert not np.array_equal(before, after), name
    env.close()
print('ok', len(names))
'''


@pytest.mark.slow
def test_wheel_in_a_clean_venv(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PUFFER_SANITIZE', 'PUFFER_ONLY')}
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '-w', str(tmp_path / 'dist'),
                    str(ROOT)], check=True, env=env, timeout=600)
    wheel = next((tmp_path / 'dist').glob('pufferlib-*.whl'))
    files = zipfile.ZipFile(wheel).namelist()
    for needed in ('pufferlib/trainer/advantage.cu', 'pufferlib/trainer/advantage.h',
                   'pufferlib/trainer/config/default.ini', 'pufferlib/trainer/config/breakout.ini',
                   'pufferlib/ocean/env_binding.h'):
        assert needed in files, needed
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=120)
    python = str(venv / 'bin' / 'python')
    subprocess.run([python, '-m', 'pip', 'install', '-q', str(wheel)], check=True, env=env, timeout=600)
    result = subprocess.run([python, '-c', CHECK], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('ok')
