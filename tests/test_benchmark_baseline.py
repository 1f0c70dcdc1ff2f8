"""benchmarks/baseline.py: the CPU named beside every figure, and the PufferLib 3.0 side runner."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'benchmarks'))
import baseline  # noqa: E402

CORES = len(os.sched_getaffinity(0))


def cpuinfo(tmp_path, flags):
    path = tmp_path / 'cpuinfo'
    path.write_text(f'processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu {flags}\n\n'
                    'processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n')
    return str(path)


def test_cpu_without_amx_is_named_so(tmp_path):
    text = baseline.cpu_description(cpuinfo(tmp_path, 'avx avx2'))
    assert text == f'AMD EPYC, {CORES} core{"s" * (CORES != 1)}, AVX2, no AVX-512, no AMX'


def test_cpu_with_amx_and_avx512_is_named_so(tmp_path):
    text = baseline.cpu_description(cpuinfo(tmp_path, 'avx2 avx512f amx_tile amx_bf16'))
    assert text.endswith(', AVX2, AVX-512, AMX')


def test_unreadable_cpuinfo_still_gives_the_cores(tmp_path):
    assert baseline.cpu_description(str(tmp_path / 'missing')) == \
        f'unknown CPU, {CORES} core{"s" * (CORES != 1)}, no AVX-512, no AMX'


def test_a_failing_baseline_names_its_command_and_error(tmp_path):
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\necho "no pufferlib here" >&2\nexit 3\n')
    fake.chmod(0o755)
    with pytest.raises(SystemExit, match=r'pufferlib3_side.py env breakout 1024 1\) failed:\n'
                                         r'no pufferlib here'):
        baseline.run(str(fake), 'env', 'breakout', 1024, 1)


def test_the_baseline_runs_without_our_pythonpath(tmp_path, monkeypatch):
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\necho "RESULT {\\"path\\": \\"${PYTHONPATH:-unset}\\"}"\n')
    fake.chmod(0o755)
    monkeypatch.setenv('PYTHONPATH', '/our/checkout')
    assert baseline.run(str(fake), 'env', 'breakout', 1, 1) == {'path': 'unset'}
