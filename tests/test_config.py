"""The config schema (pufferlib/trainer/config.py): every value of train, eval and bench, from the
ini files, a checkpoint's saved config or the command line, is checked by type, range or choice
before anything starts, with an APIUsageError naming the key, the value and what is allowed."""
import configparser
import re

import pytest

from pufferlib.exceptions import APIUsageError
from pufferlib.trainer import checkpoint, cli, config as config_module, ppo
from pufferlib.trainer.config import (ANY_KEY, CONFIG_DIR, SCHEMA, check_value, load_config,
                                      read_ini)

SMALL = ['--env.num_envs', '16', '--train.batch_size', '512', '--train.minibatch_size', '256',
         '--train.bptt_horizon', '16', '--train.torch_threads', '1']


def load(*words):
    return load_config('squared', list(words))


def test_types():
    assert load('--train.total_timesteps', '1e6')['train']['total_timesteps'] == 1_000_000
    assert type(load('--train.total_timesteps', '1e6')['train']['total_timesteps']) is int
    assert load('--train.learning_rate', '1')['train']['learning_rate'] == 1
    assert load('--train.wandb_project', '2024')['train']['wandb_project'] == '2024'
    for words, message in [
            (['--vec.num_envs', '2.5'], "vec.num_envs = 2.5: use an integer in \\[1, inf\\)"),
            (['--train.learning_rate', 'fast'], "train.learning_rate = 'fast': use a number in"),
            (['--train.batch_size', 'big'], "train.batch_size = 'big': use an integer in "
                                            "\\[1, inf\\) or auto"),
            (['--train.data_dir', 'None'], 'train.data_dir = None: use text'),
            (['--train.device', 'gpu'], "train.device = 'gpu': use text matching cpu"),
            (['--train.total_timesteps', 'True'], 'train.total_timesteps = True: use an integer')]:
        with pytest.raises(APIUsageError, match=message):
            load(*words)


def test_ranges():
    for words, message in [
            (['--train.gamma', '2'], 'train.gamma = 2: use a number in \\[0, 1\\]'),
            (['--train.gamma', '-0.1'], 'train.gamma = -0.1: use a number in \\[0, 1\\]'),
            (['--train.max_grad_norm', '-1'], 'train.max_grad_norm = -1: use a number in \\(0, inf\\)'),
            (['--train.max_grad_norm', '0'], 'train.max_grad_norm = 0'),
            (['--train.reward_clamp', '-1'], 'train.reward_clamp = -1: use a number in \\(0, inf\\) '
                                             'or None'),
            (['--train.checkpoint_interval', '0'], 'train.checkpoint_interval = 0: use an integer '
                                                   'in \\[1, inf\\)'),
            (['--train.adam_beta2', '1'], 'train.adam_beta2 = 1: use a number in \\[0, 1\\)'),
            (['--train.learning_rate', 'inf'], 'train.learning_rate = inf'),
            (['--train.learning_rate', 'nan'], 'train.learning_rate = nan'),
            (['--train.seed', '-1'], 'train.seed = -1: use an integer in \\[0, 4294967295\\]'),
            (['--policy.hidden_size', '0'], 'policy.hidden_size = 0')]:
        with pytest.raises(APIUsageError, match=message):
            load(*words)
    train = load('--train.gamma', '1', '--train.gae_lambda', '0', '--train.reward_clamp', 'None',
                 '--train.adam_beta1', '0')['train']                    # the bounds themselves
    assert (train['gamma'], train['gae_lambda'], train['reward_clamp']) == (1, 0, None)


def test_choices_in_any_case_stored_in_the_schemas_spelling():
    config = load('--train.optimizer', 'ADAM', '--vec.backend', 'Multiprocessing',
                  '--train.precision', 'Float32')
    assert config['train']['optimizer'] == 'adam' and config['train']['precision'] == 'float32'
    assert config['vec']['backend'] == 'multiprocessing'
    with pytest.raises(APIUsageError, match="train.optimizer = 'sgd': use muon or adam"):
        load('--train.optimizer', 'sgd')
    with pytest.raises(APIUsageError, match="vec.backend = 'threads': use auto, native, serial, "
                                            "multiprocessing or ray"):
        load('--vec.backend', 'threads')


def test_vector_backends_take_the_configured_name():
    config = cli.load('squared', ['--vec.backend', 'SERIAL', '--env.num_envs', '4'])
    vecenv = cli.make_vecenv('squared', config)
    try:
        assert type(vecenv).__name__ == 'Serial'
    finally:
        vecenv.close()


@pytest.mark.parametrize('word', ['yes', 'no', '1', '0', 'on', 'None'])
def test_bool_keys_take_true_or_false_only(word):
    with pytest.raises(APIUsageError, match='train.anneal_lr = .*: use true or false'):
        load('--train.anneal_lr', word)
    assert load('--train.anneal_lr', 'False')['train']['anneal_lr'] is False
    assert load('--policy.lstm', 'TRUE')['policy']['lstm'] is True


def test_unknown_keys_and_sections(tmp_path):
    with pytest.raises(APIUsageError, match='unknown option --train.lerning_rate; did you mean '
                                            '--train.learning_rate'):
        load('--train.lerning_rate', '1')
    with pytest.raises(APIUsageError, match='unknown option --foo.bar; sections are env, vec'):
        load('--foo.bar', '1')
    ini = tmp_path / 'mine.ini'
    ini.write_text('[train]\nlerning_rate = 0.1\n')
    into = {s: {} for s in SCHEMA}
    with pytest.raises(APIUsageError, match='mine.ini: unknown key lerning_rate in \\[train\\]; '
                                            'did you mean --train.learning_rate'):
        read_ini(ini, into)
    ini.write_text('[sweeps]\nlr = 1\n')
    with pytest.raises(APIUsageError, match='mine.ini: unknown section \\[sweeps\\]'):
        read_ini(ini, into)
    with pytest.raises(APIUsageError, match='unknown config section \\[sweeps\\]'):
        config_module.validate({'sweeps': {}})
    ini.write_text('[sweep]\nlr = 1\n')   # puffer sweep's section: read only when asked for
    read_ini(ini, into)
    assert 'sweep' not in into


def test_a_free_form_section_is_one_schema_line(tmp_path, monkeypatch):
    monkeypatch.setitem(SCHEMA, 'notes', ANY_KEY)
    ini = tmp_path / 'mine.ini'
    ini.write_text('[notes]\nlearning_rate = log(1e-4, 1e-1)\n')
    into = {s: {} for s in SCHEMA}
    read_ini(ini, into)
    assert into['notes'] == {'learning_rate': 'log(1e-4, 1e-1)'}
    assert load('--notes.anything', '3')['notes'] == {'anything': 3}


def test_a_new_key_is_one_schema_line(monkeypatch):
    monkeypatch.setitem(SCHEMA['train'], 'obs_norm_clip', (float, '(0, inf)', None))
    assert load('--train.obs_norm_clip', '5')['train']['obs_norm_clip'] == 5
    with pytest.raises(APIUsageError, match='train.obs_norm_clip = -5: use a number in \\(0, inf\\) '
                                            'or None'):
        load('--train.obs_norm_clip', '-5')


def test_env_keys_are_the_constructors():
    from pufferlib.ocean import env_creator
    assert load_config('squared', ['--env.size', '7'], env_creator('squared'))['env']['size'] == 7
    with pytest.raises(APIUsageError, match='unknown option --env.sise.*did you mean --env.size'):
        load_config('squared', ['--env.sise', '7'], env_creator('squared'))


def test_default_ini_and_the_schema_hold_the_same_keys():
    parser = configparser.ConfigParser(inline_comment_prefixes=('#', ';'))
    parser.optionxform = str
    parser.read(CONFIG_DIR / 'default.ini')
    for section, rules in SCHEMA.items():
        if isinstance(rules, dict):
            assert set(parser[section]) == set(rules), section


def bad_values(rule):
    """Values that `rule` rejects, made from the rule itself."""
    kind = rule[0]
    if kind is bool:
        return ['yes', 1]
    if kind in (int, float):
        low = config_module.parse_interval(rule[1])[1]
        return ['text', low - 1] + ([2.5] if kind is int else [])
    if kind is str:
        return [True] if None in rule else [None]
    if isinstance(kind, re.Pattern):
        return ['no such device', 3]
    return ['no such choice', 1.5]


@pytest.mark.parametrize('name', [f'{s}.{k}' for s, rules in SCHEMA.items()
                                  if isinstance(rules, dict) for k in rules])
def test_every_key_rejects_what_its_rule_does_not_allow(name):
    section, key = name.split('.')
    rule = SCHEMA[section][key]
    for value in bad_values(rule):
        with pytest.raises(APIUsageError, match=f'^{re.escape(name)} = {re.escape(repr(value))}: use '):
            check_value(name, value, rule)


def test_eval_and_bench_overrides_are_checked_before_anything_starts(monkeypatch, capsys):
    def no_env(*args, **kwargs):
        raise AssertionError('an env was made')
    monkeypatch.setattr(cli, 'make_vecenv', no_env)
    for argv, message in [
            (['eval', 'squared', '--foo.bar', '1'], 'unknown option --foo.bar'),
            (['eval', 'squared', '--train.lerning_rate', '1'], 'did you mean --train.learning_rate'),
            (['eval', 'squared', '--train.gamma', '2'], 'train.gamma = 2: use a number in'),
            (['bench', 'squared', '--train.anneal_lr', 'yes'], "train.anneal_lr = 'yes'"),
            (['bench', 'squared', '--vec.num_envs', '0'], 'vec.num_envs = 0'),
            (['train', 'squared', '--train.checkpoint_interval', '0'], 'checkpoint_interval = 0'),
            (['train', 'squared', '--train.device', 'cuda:99'], "train.device = 'cuda:99', but "
                                                                'torch sees')]:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f'puffer {argv[0]}: error: ' in err and message in err, (argv, err)
        assert 'Traceback' not in err


def test_resume_and_eval_take_the_saved_config_then_checked_overrides(tmp_path, capsys, monkeypatch):
    assert cli.main(['train', 'squared', *SMALL, '--train.total_timesteps', '512', '--train.gamma',
                     '0.9', '--train.data_dir', str(tmp_path)]) == 0
    run = next(tmp_path.iterdir())
    saved = checkpoint.load_checkpoint(run)['config']
    # an older checkpoint: a key the schema no longer has is dropped, a new one takes its default
    saved['train']['obsolete_key'] = 1
    del saved['train']['vf_coef']
    config = cli.load('squared', ['--train.ent_coef', '0.5'], saved=saved)
    assert config['train']['gamma'] == 0.9 and config['env']['num_envs'] == 16
    assert config['train']['ent_coef'] == 0.5 and 'obsolete_key' not in config['train']
    assert config['train']['vf_coef'] == load_config('squared')['train']['vf_coef']
    capsys.readouterr()

    def no_env(*args, **kwargs):
        raise AssertionError('an env was made')
    monkeypatch.setattr(cli, 'make_vecenv', no_env)
    for argv, message in [
            (['eval', 'squared', '--checkpoint', str(run), '--train.gamma', '2'], 'train.gamma = 2'),
            (['eval', 'squared', '--checkpoint', str(run), '--foo.bar', '1'], 'unknown option'),
            (['train', 'squared', '--resume', str(run), '--train.lerning_rate', '1'], 'did you mean'),
            (['train', 'squared', '--resume', str(run), '--train.max_grad_norm', '-1'],
             'train.max_grad_norm = -1'),
            (['train', 'breakout', '--resume', str(run)], "saved by a 'squared' run, not 'breakout'")]:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and 'Traceback' not in err, (argv, err)


def test_train_checks_a_config_it_is_handed():
    from pufferlib.examples import Match
    from pufferlib.trainer.policy import make_policy
    config = load_config('match')
    config['train']['gamma'] = 2
    env = Match(num_envs=8)
    with pytest.raises(APIUsageError, match='train.gamma = 2'):
        ppo.train('match', config, env, make_policy(env, 16, 1, False))


def test_an_unwritable_data_dir_and_bad_cli_numbers_are_usage_errors(tmp_path, capsys):
    not_a_folder = tmp_path / 'file'
    not_a_folder.write_text('')
    assert cli.main(['train', 'squared', *SMALL, '--train.data_dir', str(not_a_folder)]) == 2
    assert 'train.data_dir = ' in capsys.readouterr().err
    for argv in (['bench', 'squared', '--seconds', '0'], ['eval', 'squared', '--episodes', '-1']):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == 2
        assert 'is not a positive' in capsys.readouterr().err
