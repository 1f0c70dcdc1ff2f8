"""What `puffer train ENV` can name (pufferlib/trainer/envs.py) and the CNN policy that image
observations get (pufferlib/trainer/policy.py), each through the CLI entry in-process."""
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pufferlib.exceptions import APIUsageError
from pufferlib.trainer import checkpoint, cli
from pufferlib.trainer.policy import CNN, Default, LSTMWrapper, image_layout, make_policy, to_chw

SMALL = ['--train.batch_size', '256', '--train.minibatch_size', '128', '--train.bptt_horizon', '8',
         '--train.torch_threads', '1', '--vec.num_envs', '2']


def train(name, tmp_path, steps=512, *extra):
    return cli.main(['train', name, '--train.total_timesteps', str(steps),
                     '--train.data_dir', str(tmp_path), *SMALL, *extra])


def trained_model(tmp_path):
    run, = {path.parent for path in tmp_path.rglob('checkpoint_*.pt')}   # ALE/Pong-v5_<time>/...
    return checkpoint.load_checkpoint(run)['model']


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert '\n' not in err, err
    return err


# ---- naming ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('name, shape', [('MinAtar/Breakout-v1', (10, 10, 4)),
                                         ('ALE/Pong-v5', (4, 84, 84)),
                                         ('MiniGrid-Empty-5x5-v0', (7, 7, 3))])
def test_ids_registered_by_a_package_import_it_on_demand(name, shape):
    creator, kind = cli.env_creator(name)
    with creator() as env:
        assert kind == 'gymnasium' and env.single_observation_space.shape == shape
        obs, _ = env.reset(0)
        assert obs.shape == (1, *shape) and obs.any()


def test_ale_ids_take_a_frame_stack_key_and_minatar_stacks_on_request():
    creator, _ = cli.env_creator('ALE/Pong-v5')
    with creator(frame_stack=2) as env:
        assert env.single_observation_space.shape == (2, 84, 84)
        assert env.single_observation_space.dtype == np.uint8
    creator, _ = cli.env_creator('MinAtar/Breakout-v1')
    with creator(frame_stack=3) as env:
        assert env.single_observation_space.shape == (3, 10, 10, 4)
        assert image_layout(env.single_observation_space) == 'khwc'
    with pytest.raises(APIUsageError, match=r'env.frame_stack = 0: use an integer >= 1'):
        creator(frame_stack=0)


@pytest.mark.parametrize('name, module, package', [('ALE/Pong-v5', 'ale_py', 'ale-py'),
                                                   ('MinAtar/Breakout-v1', 'minatar.gym', 'minatar'),
                                                   ('mpe2.simple_spread_v3', 'mpe2', 'mpe2')])
def test_a_missing_package_is_one_line_that_says_what_to_install(name, module, package, monkeypatch,
                                                                 capsys):
    monkeypatch.setitem(sys.modules, module, None)   # import fails as if it were not installed
    assert cli.main(['train', name]) == 2
    err = one_line_error(capsys)
    assert f'{name} needs {package}: pip install {package}' in err


def test_an_unknown_env_is_one_line_naming_the_forms(capsys):
    assert cli.main(['train', 'NoSuchEnv-v0']) == 2
    err = one_line_error(capsys)
    assert "unknown env 'NoSuchEnv-v0'" in err and 'module:EnvId' in err
    assert cli.main(['train', 'MinAtar/NoSuchGame-v1']) == 2
    assert "unknown env 'MinAtar/NoSuchGame-v1'; minatar.gym registers MinAtar/" in one_line_error(capsys)


NOVEL = '''
import gymnasium
import numpy as np


class CartPoleNoVel(gymnasium.Wrapper):
    """CartPole observing positions only."""
    def __init__(self):
        super().__init__(gymnasium.make('CartPole-v1'))
        self.observation_space = gymnasium.spaces.Box(-5, 5, (2,), np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs[[0, 2]], info

    def step(self, action):
        obs, *rest = self.env.step(action)
        return (obs[[0, 2]], *rest)


gymnasium.register('CartPoleNoVel-v1', entry_point=CartPoleNoVel, max_episode_steps=500)
'''


def test_module_colon_id_imports_the_module_that_registers_it(tmp_path, monkeypatch):
    (tmp_path / 'novel.py').write_text(textwrap.dedent(NOVEL))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert train('novel:CartPoleNoVel-v1', tmp_path / 'runs') == 0
    assert trained_model(tmp_path / 'runs')['encoder.0.weight'].shape[1] == 2


def test_module_colon_id_of_a_missing_module_says_so(capsys):
    assert cli.main(['train', 'nosuchmodule:Thing-v0']) == 2
    assert 'nosuchmodule:Thing-v0 needs nosuchmodule: pip install nosuchmodule' in one_line_error(capsys)
    assert cli.main(['train', 'json:Thing-v0']) == 2
    assert "unknown env 'json:Thing-v0': importing json did not register Thing-v0" in one_line_error(capsys)
    assert cli.main(['train', 'pettingzoo.classic.no_such_game_v0']) == 2
    assert ("unknown env 'pettingzoo.classic.no_such_game_v0': No module named "
            "'pettingzoo.classic.no_such_game_v0'") in one_line_error(capsys)


@pytest.mark.parametrize('name', ['pettingzoo.classic.connect_four_v3', 'mpe2.simple_spread_v3'])
def test_pettingzoo_aec_and_mpe2_modules_train(name, tmp_path):
    assert train(name, tmp_path) == 0
    assert trained_model(tmp_path)


def count_illegal_moves(monkeypatch):
    from pettingzoo.utils.env_logger import EnvLogger
    count = [0]
    monkeypatch.setattr(EnvLogger, 'warn_on_illegal_move',
                        staticmethod(lambda: count.__setitem__(0, count[0] + 1)))
    return count


def test_action_mask_in_the_observation_dict_is_used(tmp_path, monkeypatch):
    creator, _ = cli.env_creator('pettingzoo.classic.tictactoe_v3')
    with creator() as env:
        obs, _ = env.reset(0)
        assert env.action_mask(obs).tolist() == [[True] * 9, [False] * 9]   # player_1 moves first
        assert env.action_mask(torch.as_tensor(obs)).dtype == torch.bool
    illegal = count_illegal_moves(monkeypatch)
    name = 'pettingzoo.classic.tictactoe_v3'
    assert train(name, tmp_path / 'unmasked', 2048, '--policy.action_mask', 'false') == 0
    assert illegal[0] > 20     # the check can fail: without the mask, random play is illegal often
    illegal[0] = 0
    assert train(name, tmp_path / 'masked', 2048) == 0
    assert illegal[0] == 0


@pytest.mark.slow
def test_twenty_thousand_masked_tictactoe_steps_end_no_game_on_an_illegal_move(tmp_path,
                                                                                monkeypatch):
    illegal = count_illegal_moves(monkeypatch)
    assert train('pettingzoo.classic.tictactoe_v3', tmp_path, 20000) == 0
    assert illegal[0] == 0


# ---- the CNN policy -------------------------------------------------------------------------------

def fake_vecenv(shape, dtype):
    high = 1 if dtype is np.bool_ else 255
    return SimpleNamespace(single_observation_space=spaces.Box(0, high, shape, dtype),
                           single_action_space=spaces.Discrete(4))


@pytest.mark.parametrize('shape, dtype, layout', [
    ((84, 84, 3), np.uint8, 'hwc'), ((4, 84, 84), np.uint8, 'chw'), ((84, 84), np.uint8, 'hw'),
    ((10, 10, 4), np.bool_, 'hwc'), ((10, 10, 4), np.uint8, 'hwc'), ((4, 10, 10), np.uint8, 'chw'),
    ((4, 84, 84, 3), np.uint8, 'khwc'), ((4, 1, 84, 84), np.uint8, 'kchw'),
    ((118,), np.float32, None), ((128,), np.uint8, None), ((10, 10, 4), np.float32, None),
    ((3, 3, 2), np.uint8, None)])
def test_cnn_is_picked_for_images_and_not_for_vectors(shape, dtype, layout):
    assert image_layout(fake_vecenv(shape, dtype).single_observation_space) == layout
    policy = make_policy(fake_vecenv(shape, dtype), 32, lstm=False)
    assert type(policy) is (CNN if layout else Default)


def test_nature_cnn_for_large_images_small_conv_for_grids():
    big = make_policy(fake_vecenv((4, 84, 84), np.uint8), 512, lstm=False)
    assert [m.kernel_size for m in big.encoder if isinstance(m, torch.nn.Conv2d)] == [(8, 8), (4, 4), (3, 3)]
    assert big.encoder[-2].in_features == 3136 and big.encoder[-2].out_features == 512
    small = make_policy(fake_vecenv((10, 10, 4), np.bool_), 128, lstm=False)
    assert [m.kernel_size for m in small.encoder if isinstance(m, torch.nn.Conv2d)] == [(3, 3)]
    assert small.encoder[0].in_channels == 4 and small.encoder[-2].in_features == 16 * 10 * 10


def test_hwc_and_chw_images_give_the_same_outputs_and_uint8_is_scaled():
    torch.manual_seed(0)
    chw = make_policy(fake_vecenv((4, 36, 40), np.uint8), 64, lstm=False)
    hwc = make_policy(fake_vecenv((36, 40, 4), np.uint8), 64, lstm=False)
    hwc.load_state_dict(chw.state_dict())
    images = torch.randint(0, 256, (5, 4, 36, 40), dtype=torch.uint8)
    logits, values, _ = chw.forward_step(images)
    logits2, values2, _ = hwc.forward_step(images.permute(0, 2, 3, 1))
    torch.testing.assert_close(logits, logits2)
    torch.testing.assert_close(values, values2)
    assert to_chw(torch.full((1, 5, 5), 255, dtype=torch.uint8), 'hw').tolist() == [[[[1.0] * 5] * 5]]


@pytest.mark.parametrize('lstm', [False, True])
def test_cnn_forward_shapes_with_and_without_lstm(lstm):
    policy = make_policy(fake_vecenv((10, 10, 4), np.bool_), 32, lstm=lstm)
    assert isinstance(policy, LSTMWrapper) == lstm
    obs = torch.rand(6, 10, 10, 4) > 0.5
    state = (torch.zeros(6, 32), torch.zeros(6, 32)) if lstm else None
    logits, values, new_state = policy.forward_step(obs, state)
    assert logits.shape == (6, 4) and values.shape == (6,)
    assert (new_state[0].shape == (6, 32)) if lstm else new_state is None
    rows = torch.rand(3, 7, 10, 10, 4) > 0.5   # (B, T, ...) training rows
    state = (torch.zeros(3, 32), torch.zeros(3, 32)) if lstm else None
    logits, values = policy.forward(rows, state)
    assert logits.shape == (21, 4) and values.shape == (21,)


@pytest.mark.parametrize('lstm', ['false', 'true'])
def test_puffer_train_minatar_picks_the_cnn(lstm, tmp_path):
    assert train('MinAtar/Breakout-v1', tmp_path, 1024, '--policy.lstm', lstm,
                 '--policy.hidden_size', '32') == 0
    model = trained_model(tmp_path)
    prefix = 'policy.' if lstm == 'true' else ''
    assert model[f'{prefix}encoder.0.weight'].shape == (16, 4, 3, 3)   # conv: 16 x 4 channels x 3x3
