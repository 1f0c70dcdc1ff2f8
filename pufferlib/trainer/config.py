"""Trainer configuration: `config/default.ini` merged with `config/<env>.ini` (and, to resume or
evaluate a run, the config saved in its checkpoint), then command-line overrides `--section.key
value`, then every value checked against SCHEMA below: one path for train, eval and bench, and
nothing starts with a bad value. Sections: [env] (kwargs of the env constructor), [vec] (how the
env is vectorised), [train] (the PPO + prioritized replay hyperparameters), [policy] (the network).
"""
import configparser
import difflib
import inspect
import math
import re
from pathlib import Path

import pufferlib.vector
from pufferlib.exceptions import APIUsageError

CONFIG_DIR = Path(__file__).parent / 'config'

# ---- the schema ----------------------------------------------------------------------------------
# One line per key: what it accepts. A rule is a tuple, one of
#   (bool,)                  true or false (those words only: yes, on and 1 are errors)
#   (int, RANGE, *extra)     an integer in RANGE (interval notation: '[1, inf)'), or one of extra
#   (float, RANGE, *extra)   a number in RANGE, or one of extra
#   (str, *extra)            any text, or one of extra
#   (re.compile(P), *extra)  text matching the regular expression P, or one of extra
#   ('a', 'b', ...)          one of these words (in any case; stored as written here)
# extra holds literal values such as 'auto' or None. A section given as ANY_KEY takes any key and
# value; ENV_KWARGS: [env]'s keys are the env constructor's keyword parameters (or those its ini
# sets) and the env checks their values itself.
ANY_KEY = 'any key'
ENV_KWARGS = "the env constructor's keyword arguments"
POSITIVE, NON_NEGATIVE, UNIT = '(0, inf)', '[0, inf)', '[0, 1]'
COUNT = '[1, inf)'

SCHEMA = {
    'env': ENV_KWARGS,
    'vec': {
        'backend': ('auto', *(name.lower() for name in pufferlib.vector.BACKENDS)),
        'num_envs': (int, COUNT),
        'num_workers': (int, COUNT, 'auto'),
        'batch_size': (int, COUNT, 'auto'),
        'zero_copy': (bool,),
        'check_finite': (bool,),
        'ray_address': (str, None),
    },
    'train': {
        'seed': (int, '[0, 4294967295]'),
        'device': (re.compile(r'cpu|cuda(:[0-9]+)?'),),
        'precision': ('auto', 'float32', 'bfloat16'),
        'torch_threads': (int, COUNT, 'auto'),
        'total_timesteps': (int, COUNT),
        'batch_size': (int, COUNT, 'auto'),
        'bptt_horizon': (int, COUNT),
        'minibatch_size': (int, COUNT),
        'max_minibatch_size': (int, COUNT),
        'update_epochs': (int, COUNT),
        'optimizer': ('muon', 'adam'),
        'learning_rate': (float, NON_NEGATIVE),
        'muon_adjust_lr': ('match_rms_adamw', 'original'),
        'min_learning_rate': (float, NON_NEGATIVE),
        'anneal_lr': (bool,),
        'adam_beta1': (float, '[0, 1)'),
        'adam_beta2': (float, '[0, 1)'),
        'adam_eps': (float, POSITIVE),
        'gamma': (float, UNIT),
        'gae_lambda': (float, UNIT),
        'clip_coef': (float, POSITIVE),
        'vf_coef': (float, NON_NEGATIVE),
        'vf_clip_coef': (float, NON_NEGATIVE),
        'max_grad_norm': (float, POSITIVE),
        'ent_coef': (float, NON_NEGATIVE),
        'vtrace_rho_clip': (float, POSITIVE),
        'vtrace_c_clip': (float, NON_NEGATIVE),
        'prio_alpha': (float, NON_NEGATIVE),
        'prio_beta0': (float, UNIT),
        'reward_clamp': (float, POSITIVE, None),
        'normalize_rewards': (bool,),
        'normalize_advantages': (bool,),
        'checkpoint_interval': (int, COUNT),
        'checkpoint_keep': (int, COUNT),
        'video_interval': (int, NON_NEGATIVE),
        'data_dir': (str,),
        'dist_timeout': (float, POSITIVE),
        'wandb': (bool,),
        'wandb_project': (str,),
        'tensorboard': (bool,),
    },
    'policy': {
        'hidden_size': (int, COUNT),
        'num_layers': (int, COUNT),
        'lstm': (bool,),
        'action_mask': (bool,),
        'normalize_observations': (bool,),
        'separate_critic': (bool,),
    },
}
SECTIONS = tuple(SCHEMA)
SWEEP = 'sweep'  # free-form, not in SCHEMA: puffer sweep's settings and search space (sweep.py); training ignores it
# -------------------------------------------------------------------------------------------------


def check_value(name, value, rule):
    """`value` of the key `name` ('train.gamma') as `rule` accepts it (an integral float such as
    1e6 as an int, a word in its schema spelling), else an APIUsageError naming key, value and
    what is allowed."""
    kind, extra = (rule[0], rule[1:]) if isinstance(rule[0], (type, re.Pattern)) else (None, rule)
    interval = None
    if kind in (int, float):
        interval, extra = extra[0], extra[1:]
    for allowed in extra:
        if value is allowed or (isinstance(value, str) and isinstance(allowed, str)
                                and value.lower() == allowed.lower()):
            return allowed
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int and number and (isinstance(value, int) or value.is_integer()):
        if in_interval(int(value), interval):
            return int(value)
    elif kind is float and number:
        if in_interval(value, interval):
            return value
    elif kind is bool and isinstance(value, bool):
        return value
    elif kind is str and isinstance(value, str):
        return value
    elif kind is str and number:     # e.g. --train.wandb_project 2024
        return str(value)
    elif isinstance(kind, re.Pattern) and isinstance(value, str) and kind.fullmatch(value):
        return value
    raise APIUsageError(f'{name} = {value!r}: use {describe(kind, interval, extra)}')


def in_interval(value, interval):
    low_bracket, low, high, high_bracket = parse_interval(interval)
    above = value >= low if low_bracket == '[' else value > low
    below = value <= high if high_bracket == ']' else value < high
    return above and below and not math.isnan(value)


def parse_interval(interval):
    match = re.fullmatch(r'([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])', interval)
    if match is None:
        raise ValueError(f'bad interval {interval!r} in the config schema')
    return match[1], float(match[2]), float(match[3]), match[4]


def describe(kind, interval, extra):
    words = {int: f'an integer in {interval}', float: f'a number in {interval}',
             bool: 'true or false', str: 'text'}
    if isinstance(kind, re.Pattern):
        options = [f'text matching {kind.pattern}']
    else:
        options = [words[kind]] if kind is not None else []
    options += ['None' if x is None else str(x) for x in extra]
    return ', '.join(options[:-1]) + ' or ' + options[-1] if len(options) > 1 else options[0]


def validate(config):
    """Check every value of the schema's sections in `config` (in place: values become what
    check_value returns) and reject keys the schema does not know. Returns `config`."""
    for section, values in config.items():
        rules = SCHEMA.get(section)
        if rules is None:
            raise APIUsageError(f'unknown config section [{section}]; sections are '
                                f'{", ".join(f"[{s}]" for s in SECTIONS)}')
        if not isinstance(rules, dict):
            continue
        for key, value in values.items():
            if key not in rules:
                raise APIUsageError(f'unknown key {section}.{key}{close_matches(f"{section}.{key}")}')
            values[key] = check_value(f'{section}.{key}', value, rules[key])
    return config


def close_matches(name, extra=()):
    choices = [f'{s}.{k}' for s, rules in SCHEMA.items() if isinstance(rules, dict) for k in rules]
    close = difflib.get_close_matches(name, choices + list(extra), n=3, cutoff=0.6)
    if close:
        return f'; did you mean {", ".join("--" + c for c in close)}?'
    return f'; sections are {", ".join(SECTIONS)} (see pufferlib/trainer/config/default.ini)'


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
        if section != SWEEP and section not in SCHEMA:
            raise APIUsageError(f'{path}: unknown section [{section}]; sections are '
                                f'{", ".join(f"[{s}]" for s in SECTIONS + (SWEEP,))}')
        if section not in into:   # [sweep] only when the caller asks for it
            continue
        rules = SCHEMA.get(section, ANY_KEY)
        for key, text in parser.items(section):
            if isinstance(rules, dict) and key not in rules:
                raise APIUsageError(f'{path}: unknown key {key} in [{section}]'
                                    f'{close_matches(f"{section}.{key}")}')
            into[section][key] = parse_value(text)


def read_config_file(path):
    """`--config PATH`: the ini's [env]/[vec]/[train]/[policy] keys as command-line words (so that
    load_config checks them like the command line's) and its [sweep] section as a dict."""
    config = {section: {} for section in SECTIONS + (SWEEP,)}
    if not Path(path).is_file():
        raise APIUsageError(f'config file {path} does not exist')
    read_ini(path, config)
    words = [f'--{s}.{k}={v}' for s in SECTIONS for k, v in config[s].items()]
    return words, config[SWEEP]


def load_config(env_name, overrides=(), env_creator=None, emulated=False, saved=None,
                profile=None):
    """{section: {key: value}} for `env_name`, validated against SCHEMA. `saved` is the config of
    a checkpoint (to resume or evaluate its run): it replaces the ini files' values, keys the
    schema no longer has are dropped and keys it lacks keep their defaults. `overrides` is a list
    of command-line words such as ['--train.learning_rate', '3e-4', '--vec.num_envs=2']; an
    unknown section or key is an APIUsageError listing the close matches; [env] also accepts any
    keyword parameter of `env_creator` (the env's constructor). `emulated` marks a
    Gymnasium/PettingZoo id. `profile` ({section: {key: value}}, defaults.py) is laid over the
    ini files of an env that has none of its own."""
    config = {section: {} for section in SCHEMA}
    read_ini(CONFIG_DIR / 'default.ini', config)
    path = config_path(env_name, emulated)
    if path is not None:
        read_ini(path, config)
    if profile and (path is None or path.name == 'emulated.ini'):
        for section, values in profile.items():
            config[section].update(values)
    for section, values in (saved or {}).items():
        rules = SCHEMA.get(section)
        if rules is not None:
            config[section].update({k: v for k, v in values.items()
                                    if not isinstance(rules, dict) or k in rules})
    env_params = creator_params(env_creator)
    for key, value in parse_overrides(overrides):
        section, _, name = key.partition('.')
        rules = SCHEMA.get(section)
        known = set(config['env']) | env_params if rules is ENV_KWARGS else rules
        if rules is None or (rules is not ANY_KEY and name not in known):
            env_keys = [f'env.{k}' for k in set(config['env']) | env_params]
            raise APIUsageError(f'unknown option --{key}{close_matches(key, env_keys)}')
        config[section][name] = value
    return validate(config)


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
