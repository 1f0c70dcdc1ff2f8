"""What every benchmark prints beside its figures: the CPU they came from, and the published
PufferLib 3.0 measured in the same run (`--baseline-python PATH`, its own venv, built by
shared/tools/build-pufferlib3), through pufferlib3_side.py run by that Python."""
import json
import os
import subprocess
from pathlib import Path

SIDE_SCRIPT = Path(__file__).with_name('pufferlib3_side.py')


def cpu_description(cpuinfo='/proc/cpuinfo'):
    """'AMD EPYC, 2 cores, AVX2, no AVX-512, no AMX': model, cores this process may use, and the
    vector/matrix units that decide float32 vs bfloat16 speed."""
    model, flags = 'unknown CPU', set()
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(':')
                if key.strip() == 'model name' and model == 'unknown CPU':
                    model = value.strip()
                elif key.strip() == 'flags' and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    parts = [model, f'{cores} core' + ('s' if cores != 1 else '')]
    if 'avx2' in flags:
        parts.append('AVX2')
    parts.append('AVX-512' if 'avx512f' in flags else 'no AVX-512')
    parts.append('AMX' if 'amx_bf16' in flags else 'no AMX')
    return ', '.join(parts)


def add_argument(parser):
    parser.add_argument('--baseline-python', default=os.environ.get('PUFFERLIB3_PYTHON'),
                        help='Python of a venv holding the published PufferLib 3.0, run side by '
                             'side in the same run (default: $PUFFERLIB3_PYTHON; none: skipped)')


def run(python, *args, timeout=900):
    """The RESULT dict that pufferlib3_side.py prints under the baseline's `python`. Our
    PYTHONPATH is dropped so that its own pufferlib is imported, not ours."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['OMP_NUM_THREADS'] = '1'
    result = subprocess.run([python, str(SIDE_SCRIPT), *map(str, args)], capture_output=True,
                            text=True, env=env, timeout=timeout, cwd='/tmp')
    lines = [line for line in result.stdout.splitlines() if line.startswith('RESULT ')]
    if result.returncode or not lines:
        raise SystemExit(f'the baseline ({python} {SIDE_SCRIPT.name} {" ".join(map(str, args))}) '
                         f'failed:\n{result.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])
