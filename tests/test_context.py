"""`with` on every env and vector env: the block gets the object itself, and leaving the block closes
it, also when the block raises (the exception propagates)."""
import gymnasium
import pytest

from pufferlib import ClosedError, adapters, emulation, ocean
from pufferlib.examples import Match
from tests.helpers import BACKENDS, make, pz


class Recorder(Match):
    """A PufferEnv that counts its close() calls."""
    closes = 0

    def close(self):
        self.closes += 1


class RecordingGym(gymnasium.Wrapper):
    """A Gymnasium env that counts its close() calls."""
    closes = 0

    def close(self):
        self.closes += 1
        super().close()


def raises(call, error):
    try:
        call()
    except error:
        return True
    return False


def check_with(make_one, closed):
    """`make_one()` in a `with` block that ends normally, then in one that raises."""
    obj = make_one()
    with obj as entered:
        assert entered is obj and not closed(obj)
    assert closed(obj)
    obj = make_one()
    with pytest.raises(KeyError, match='raised in the block'):
        with obj:
            raise KeyError('raised in the block')
    assert closed(obj)


def test_puffer_env():
    check_with(lambda: Recorder(num_envs=2), lambda env: env.closes == 1)


@pytest.mark.parametrize('name', sorted(ocean.ENVS))
def test_ocean_envs(name):
    check_with(lambda: ocean.make(name, num_envs=2), lambda env: raises(env.reset, ValueError))


def test_emulated_gymnasium_env():
    check_with(lambda: emulation.GymnasiumPufferEnv(RecordingGym(gymnasium.make('CartPole-v1'))),
               lambda env: env.env.closes == 1)


def test_emulated_pettingzoo_env():
    def make_one():
        env = emulation.PettingZooPufferEnv(pz('classic/rps-v2'))
        inner, close = env.env, env.env.close
        inner.closes = 0

        def counted():
            inner.closes += 1
            close()
        inner.close = counted
        return env
    check_with(make_one, lambda env: env.env.closes == 1)


@pytest.mark.parametrize('adapter, agents', [(adapters.GymnasiumEnv, 1),
                                             (adapters.GymnasiumVectorEnv, 2),
                                             (adapters.PettingZooEnv, 2)])
def test_adapters(adapter, agents):
    check_with(lambda: adapter(Recorder(num_envs=agents)), lambda a: a.env.closes == 1)


def test_vector_backends(vecs, backend):
    """Closed: later calls raise ClosedError, and (the vecs fixture checks) no process or actor is
    left."""
    check_with(lambda: make(vecs, Match, **BACKENDS[backend]),
               lambda vec: raises(vec.reset, ClosedError))
