"""Trainer configuration: `config/default.ini` merged with `config/<env>.ini`, then command-line
overrides `--section.key value`. Sections: [env] (kwargs of the env constructor), [vec] (how the
env is vectorised), [train] (the PPO + prioritized replay hyperparameters), [policy] (the network).
"""
import configparser
import difflib
import inspect
from pathlib import Path

from pufferlib.exceptions import APIUsageError

CONFIG_DIR = Path(__file__).parent / 'config'
SECTIONS = ('env', 'vec', 'train', 'policy')
SWEEP = 'sweep'  # free-form: puffer sweep's settings and search space (sweep.py); training ignores it


def parse_value(text):
    """An ini or command-line string as a Python value: bool, None, int, float, else the string."""
    text = text.strip()
    lowered = text.lower()
    if lowered in ('true', 'false'):
        return lowered == 'true'
    if lowered in ('none', 'null'):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def config_path(env_name, emulated=False):
    """The per-env ini for `env_name`; emulated.ini for Gymnasium/PettingZoo ids without one."""
    path = CONFIG_DIR / f'{env_name}.ini'
    if path.exists():
        return path
    return CONFIG_DIR / 'emulated.ini' if emulated else None


def read_ini(path, into):
    parser = configparser.ConfigParser(inline_comment_prefixes=('#', ';'))
    parser.optionxform = str  # keys are case sensitive (env kwargs)
    with open(path) as f:
        parser.read_file(f)
    for section in parser.sections():
        if section not in SECTIONS + (SWEEP,):
            raise APIUsageError(f'{path}: unknown section [{section}]; sections are '
                                f'{", ".join(f"[{s}]" for s in SECTIONS + (SWEEP,))}')
        if section in into:   # [sweep] only when the caller asks for it
            into[section].update({k: parse_value(v) for k, v in parser.items(section)})


def read_config_file(path):
    """`--config PATH`: the ini's [env]/[vec]/[train]/[policy] keys as command-line words (so that
    load_config checks them like the command line's) and its [sweep] section as a dict."""
    config = {section: {} for section in SECTIONS + (SWEEP,)}
    if not Path(path).is_file():
        raise APIUsageError(f'config file {path} does not exist')
    read_ini(path, config)
    words = [f'--{s}.{k}={v}' for s in SECTIONS for k, v in config[s].items()]
    return words, config[SWEEP]


def load_config(env_name, overrides=(), env_creator=None, emulated=False):
    """{section: {key: value}} for `env_name`. `overrides` is a list of command-line words such as
    ['--train.learning_rate', '3e-4', '--vec.num_envs=2']. An unknown section or key is an
    APIUsageError listing the close matches; [env] also accepts any keyword parameter of
    `env_creator` (the env's constructor). `emulated` marks a Gymnasium/PettingZoo id."""
    config = {section: {} for section in SECTIONS}
    read_ini(CONFIG_DIR / 'default.ini', config)
    path = config_path(env_name, emulated)
    if path is not None:
        read_ini(path, config)
    env_params = creator_params(env_creator)
    for key, value in parse_overrides(overrides):
        section, _, name = key.partition('.')
        known = set(config.get(section, ()))
        if section == 'env':
            known |= env_params
        if section not in SECTIONS or name not in known:
            choices = [f'{s}.{k}' for s in SECTIONS for k in config[s]]
            choices += [f'env.{k}' for k in env_params]
            close = difflib.get_close_matches(key, choices, n=3, cutoff=0.6)
            hint = f'; did you mean {", ".join("--" + c for c in close)}?' if close else (
                f'; sections are {", ".join(SECTIONS)} (see pufferlib/trainer/config/default.ini)')
            raise APIUsageError(f'unknown option --{key}{hint}')
        config[section][name] = value
    return config


def parse_overrides(words):
    """[('train.learning_rate', 0.0003), ...] from ['--train.learning_rate', '3e-4', ...]."""
    pairs, words = [], list(words)
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith('--') or '.' not in word.split('=')[0]:
            raise APIUsageError(f'unexpected argument {word!r}: options look like '
                                '--section.key value (e.g. --train.learning_rate 3e-4)')
        if '=' in word:
            key, value = word[2:].split('=', 1)
            i += 1
        elif i + 1 < len(words):
            key, value = word[2:], words[i + 1]
            i += 2
        else:
            raise APIUsageError(f'option {word} has no value')
        pairs.append((key, parse_value(value)))
    return pairs


def creator_params(env_creator):
    """Names of the keyword parameters of `env_creator` (empty when it takes **kwargs only)."""
    if env_creator is None:
        return set()
    try:
        params = inspect.signature(env_creator).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in ('self', 'buf')}
