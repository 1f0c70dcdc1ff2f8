"""Fault row 19 (slow tier, runs in CI): every Ocean env under AddressSanitizer and UBSan.

1. The Cython bindings, built with PUFFER_SANITIZE=1 into a temporary directory, loaded into a Python
   started with LD_PRELOAD=libasan: reset + 10^4 random steps + the misuse calls of row 10 + close.
   Leak checking is off there (the interpreter itself never frees everything at exit).
2. Each env's standalone `<game>.c` (its first line is the build note), compiled with the same
   flags and run as `<game> fuzz`: reset + 10^4 random int32 actions (out-of-range included)
   + close, with LeakSanitizer on.
Both must produce 0 sanitizer reports."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

import pufferlib.ocean

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OCEAN = os.path.join(ROOT, 'pufferlib', 'ocean')
NAMES = sorted(pufferlib.ocean.ENVS)
CONFIGS = [(name, {}) for name in NAMES] + [('breakout', {'continuous': True}),
                                             ('connect4', {'features': True}),
                                             ('triple_triad', {'features': True})]
SANITIZE = ['-O1', '-g', '-fsanitize=address,undefined', '-fno-omit-frame-pointer',
            '-fno-sanitize-recover=undefined']
REPORT = re.compile(r'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer')


def sanitizer_env(**extra):
    env = dict(os.environ, UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1',
               ASAN_OPTIONS='halt_on_error=1:detect_leaks=1', **extra)
    env.pop('PUFFER_SANITIZE', None)
    return env


@pytest.fixture(scope='module')
def sanitized_lib(tmp_path_factory):
    """Every Ocean binding built with PUFFER_SANITIZE=1 into a temporary build directory."""
    tmp = tmp_path_factory.mktemp('sanitized')
    out = subprocess.run(
        [sys.executable, 'setup.py', 'build_ext', '--build-lib', str(tmp / 'lib'),
         '--build-temp', str(tmp / 'tmp'), '--parallel', '2'],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PUFFER_SANITIZE='1', PUFFER_ONLY='pufferlib.ocean.'))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return tmp / 'lib'


RUN_SCRIPT = textwrap.dedent('''
    import glob, importlib, importlib.util, json, sys
    import numpy as np
    from gymnasium import spaces
    lib, name, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    module = f'pufferlib.ocean.{name}.binding'
    path, = glob.glob(f'{lib}/pufferlib/ocean/{name}/binding*.so')
    spec = importlib.util.spec_from_file_location(module, path)
    binding = importlib.util.module_from_spec(spec)
    sys.modules[module] = binding
    spec.loader.exec_module(binding)
    importlib.import_module(f'pufferlib.ocean.{name}').binding = binding
    import pufferlib.ocean
    n = 8
    env = pufferlib.ocean.make(name, num_envs=n, seed=1, report_interval=100, **kwargs)
    assert type(env.c).__module__ == module, 'the sanitized binding is not the one in use'
    env.reset()
    space = env.single_action_space
    rng = np.random.default_rng(0)
    for t in range(10_000):
        if isinstance(space, spaces.Discrete):
            actions = rng.integers(0, space.n, n, dtype=np.int32)
            if t % 10 == 0:                      # rejected before any sub-env steps
                actions[t % n] = rng.integers(-2**31, 2**31)
                if not 0 <= actions[t % n] < space.n:
                    try:
                        env.step(actions)
                        raise AssertionError('an out-of-range action was accepted')
                    except ValueError:
                        continue
        else:
            actions = rng.integers(0, 2**32, (n, *space.shape), dtype=np.uint64).astype(np.uint32).view(np.float32)
        env.step(actions)
    env.reset(seed=3)
    env.c.get_state(n - 1)
    for bad in (n, -1):
        try:
            env.c.get_state(bad)
            raise AssertionError('bad env_id accepted')
        except IndexError:
            pass
    env.close()
    env.close()
    try:
        env.step(env.actions)
        raise AssertionError('step after close accepted')
    except ValueError as e:
        assert str(e) == 'closed'
    print('ok')
''')


@pytest.mark.parametrize('name, kwargs', CONFIGS,
                         ids=[name + ''.join('-' + key for key in kw) for name, kw in CONFIGS])
def test_binding_under_sanitizers(sanitized_lib, name, kwargs):
    import json
    libasan = subprocess.run(['gcc', '-print-file-name=libasan.so'], capture_output=True, text=True,
                             check=True).stdout.strip()
    env = sanitizer_env(LD_PRELOAD=libasan)
    env['ASAN_OPTIONS'] = 'halt_on_error=1:detect_leaks=0'
    out = subprocess.run([sys.executable, '-c', RUN_SCRIPT, str(sanitized_lib), name, json.dumps(kwargs)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert not REPORT.search(out.stderr), out.stderr[-6000:]
    assert out.returncode == 0 and out.stdout.strip().endswith('ok'), out.stderr[-6000:]


def build_note(name):
    return (f'// gcc {" ".join(SANITIZE[:4])} -I pufferlib/ocean pufferlib/ocean/{name}/{name}.c -lm '
            f'-o /tmp/{name} && /tmp/{name} fuzz\n')


@pytest.mark.parametrize('name', NAMES)
def test_standalone_demo_under_sanitizers(tmp_path, name):
    source = os.path.join(OCEAN, name, f'{name}.c')
    with open(source) as f:
        assert f.readline() == build_note(name), f'{source}: the first line must be the build note'
    binary = str(tmp_path / name)
    subprocess.run(['gcc', *SANITIZE, '-I', OCEAN, source, '-lm', '-o', binary], check=True,
                   timeout=120)
    out = subprocess.run([binary, 'fuzz'], capture_output=True, text=True, timeout=120,
                         env=sanitizer_env())
    assert not REPORT.search(out.stdout + out.stderr), (out.stdout + out.stderr)[-6000:]
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
