"""The README's Python examples run as written, and its commands name real things."""
import pathlib
import re

import numpy as np
import pytest

from pufferlib import ClosedError

README = (pathlib.Path(__file__).parent.parent / 'README.md').read_text()
EXAMPLES = re.findall(r'```python\n(.*?)```', README, re.S)


@pytest.mark.parametrize('code', EXAMPLES, ids=[f'example{i}' for i in range(len(EXAMPLES))])
def test_python_examples_run(code):
    """Each example runs as written (its own asserts included), and the env or vector env it leaves
    in `env` or `vec`, unless it closed it, resets and steps: a batch of its spaces comes back."""
    namespace = {'__name__': '__readme__'}
    exec(compile(code, 'README.md', 'exec'), namespace)
    made = [namespace[name] for name in ('env', 'vec') if name in namespace]
    assert made, 'the example makes no env or vec'
    for env in made:
        with env:
            try:
                obs, _ = env.reset(seed=1)
            except ClosedError:    # the example closed it itself
                continue
            agents = env.agents_per_batch
            assert obs.shape == (agents, *env.single_observation_space.shape)
            obs, rewards, terminals, truncations, _ = env.step(env.action_space.sample())
            assert obs.shape[0] == rewards.shape[0] == terminals.shape[0] == agents
            assert np.isfinite(rewards).all()


def test_quick_start_commands_match_ci():
    """.ci/run runs exactly the README's test command."""
    commands = re.findall(r'```bash\n(.*?)```', README, re.S)
    test_command = next(c.strip() for c in commands if 'pytest' in c)
    ci = (pathlib.Path(__file__).parent.parent / '.ci' / 'run').read_text()
    assert test_command in ci
    main_command = commands[0].strip()
    assert main_command.endswith('puffer train breakout')


TRAIN_COMMANDS = re.findall(r'(?:puffer|-m pufferlib\.trainer) train (\S+)([^\n#]*)',
                            '\n'.join(re.findall(r'```bash\n(.*?)```', README, re.S)))


@pytest.mark.parametrize('game, args', TRAIN_COMMANDS, ids=[' '.join(c) for c in TRAIN_COMMANDS])
def test_train_commands_use_real_config_keys(game, args):
    """Every `train` command in the README loads: its env exists and its overrides are config keys."""
    from pufferlib.trainer import cli
    words = args.split()
    if '--config' in words:   # a file the command makes first (a sweep's best.ini)
        del words[words.index('--config'):words.index('--config') + 2]
    config = cli.load(game, words)
    for key, value in zip(words[::2], words[1::2]):
        section, name = key[2:].split('.')
        assert str(config[section][name]).lower() == value.lower()


def test_readme_has_no_placeholders():
    """Figures still to measure were written as a line of one CAPITALS_WORD."""
    assert not re.findall(r'^[A-Z][A-Z0-9_]+$', README, re.M)
