"""Breakout: the rules of docs/games.md on hand-built states (set through the test-only state accessor),
no tunnelling against an exact reference sweep, the observation against a Python reference,
determinism, episode stats, binding misuse and (marker `render`) the drawn pixels."""
import math

import numpy as np
import pytest
from gymnasium import spaces

from pufferlib.exceptions import APIUsageError
from pufferlib.ocean.breakout import binding
from pufferlib.ocean.breakout.breakout import Breakout

W, H, BALL = 576, 330, 32
COLS, WALL_TOP, BRICK_W, BRICK_H = 18, 50, 32, 12
PADDLE_Y, PADDLE_H, PADDLE_STEP = 312, 8, 620 / 60
POINTS = [7, 7, 4, 4, 1, 1]
NOOP, LEFT, RIGHT = 0, 1, 2


def make(num_envs=1, frameskip=1, seed=0, **kwargs):
    env = Breakout(num_envs=num_envs, frameskip=frameskip, seed=seed, **kwargs)
    env.reset()
    return env


def place(env, i=0, bricks=(), **fields):
    """Sub-env i gets only the bricks listed as (row, col), plus the given state fields."""
    wall = [0] * 108
    for row, col in bricks:
        wall[row * COLS + col] = 1
    env.c.set_state(i, bricks=wall, **fields)


def step(env, action=NOOP, times=1):
    for _ in range(times):
        out = env.step(np.full(env.actions.shape, action, env.actions.dtype))
    return out


def state(env, i=0):
    return env.c.get_state(i)


def brick_box(i):
    row, col = divmod(i, COLS)
    return col * BRICK_W, WALL_TOP + row * BRICK_H, (col + 1) * BRICK_W, WALL_TOP + (row + 1) * BRICK_H


def entry_time(x, y, dx, dy, box, grow=0.0):
    """Reference sweep in float64: the first t >= 0 at which the 32x32 ball at (x, y) moving by
    t * (dx, dy) overlaps the open box (grown by `grow` px on every side); None if never."""
    x0, y0, x1, y1 = box
    t_in, t_out = 0.0, math.inf
    for p, d, lo, hi in ((x, dx, x0 - BALL - grow, x1 + grow), (y, dy, y0 - BALL - grow, y1 + grow)):
        if d == 0:
            if not lo < p < hi:
                return None
            continue
        a, b = (lo - p) / d, (hi - p) / d
        t_in, t_out = max(t_in, min(a, b)), min(t_out, max(a, b))
    return t_in if t_in < t_out else None


def overlaps(x, y, box, eps=1e-3):
    x0, y0, x1, y1 = box
    return x + BALL > x0 + eps and x < x1 - eps and y + BALL > y0 + eps and y < y1 - eps


def inside(x, y, boxes, eps=1e-3):
    """(balls, boxes) bool: ball k at (x[k], y[k]) overlaps boxes[j] by more than eps."""
    x, y = np.asarray(x, np.float64)[:, None], np.asarray(y, np.float64)[:, None]
    x0, y0, x1, y1 = np.asarray(boxes, np.float64).T
    return (x + BALL > x0 + eps) & (x < x1 - eps) & (y + BALL > y0 + eps) & (y < y1 - eps)


def crosses(x, y, dx, dy, boxes, eps=1e-3):
    """(boxes,) bool: the straight move (dx, dy) of the ball at (x, y) overlaps a box (shrunk by
    eps) at some t in [0, 1]: the exact sweep, vectorised over boxes."""
    x0, y0, x1, y1 = np.asarray(boxes, np.float64).T
    t_in, t_out = np.zeros(len(x0)), np.ones(len(x0))
    for p, d, lo, hi in ((x, dx, x0 - BALL + eps, x1 - eps), (y, dy, y0 - BALL + eps, y1 - eps)):
        if d == 0:
            t_out = np.where((lo < p) & (p < hi), t_out, -1.0)
            continue
        a, b = (lo - p) / d, (hi - p) / d
        t_in, t_out = np.maximum(t_in, np.minimum(a, b)), np.minimum(t_out, np.maximum(a, b))
    return t_in < t_out


# ---- rules on hand-built states ----

@pytest.mark.parametrize('row', range(6))
def test_brick_points_by_row_and_top_rows_set_the_cap(row):
    env = make()
    place(env, bricks=[(row, 8)], ball_x=8 * BRICK_W, ball_y=WALL_TOP + 12 * row + 14, ball_vx=0,
          ball_vy=-256, ball_speed=256, score=10)
    _, rewards, terminals, truncations, _ = step(env)
    s = state(env)
    assert rewards[0] == POINTS[row] and s['score'] == 10 + POINTS[row]
    assert sum(s['bricks']) == 0 and env.observations[0, 10:].sum() == 0
    assert not terminals[0] and not truncations[0]
    speed = 448 if row < 3 else 256
    assert s['ball_speed'] == speed and s['ball_vx'] == 0 and s['ball_vy'] == pytest.approx(speed)
    assert s['ball_y'] > WALL_TOP + 12 * row + 12    # bounced back down, outside the brick


def test_reward_scale():
    env = make(reward_scale=0.25)
    place(env, bricks=[(0, 3)], ball_x=96, ball_y=64, ball_vx=0, ball_vy=-256)
    assert step(env)[1][0] == 7 * 0.25 and state(env)['score'] == 7


@pytest.mark.parametrize('offset, broken', [(12, 8), (20, 9)])
def test_one_brick_per_contact_the_most_overlapped(offset, broken):
    """Straddling two bricks, the ball breaks only the one it overlaps most, and bounces once."""
    env = make()
    place(env, bricks=[(5, 8), (5, 9)], ball_x=8 * BRICK_W + offset, ball_y=124, ball_vx=0,
          ball_vy=-256)
    assert step(env)[1][0] == 1
    s = state(env)
    assert [i % COLS for i in range(108) if s['bricks'][i]] == [{8: 9, 9: 8}[broken]]
    assert s['ball_vy'] > 0


def test_speed_up_every_4_paddle_hits_capped():
    env = make()
    speed = 256.0
    for hit in range(1, 18):
        # ball centred over the paddle, 2 px above it, falling
        place(env, paddle_x=257, ball_x=272, ball_y=278, ball_vx=0, ball_vy=speed, ball_speed=speed,
              paddle_hits=hit - 1)
        step(env)
        s = state(env)
        expected = min(256 + 64 * (hit // 4), 448)
        assert s['paddle_hits'] == hit and s['ball_speed'] == expected
        assert s['ball_vx'] == 0 and s['ball_vy'] == -expected
        speed = s['ball_speed']
    assert speed == 448


@pytest.mark.parametrize('offset', [-46.9, -30, -10, 0, 5, 23.5, 46.9])
def test_paddle_bounce_angle_from_contact_point(offset):
    """Angle off vertical = (ball centre - paddle centre) / 47 * 45 degrees (47 = the largest
    offset at which the 32-px ball still meets the 62-px paddle)."""
    env = make()
    place(env, paddle_x=257, ball_x=257 + 31 + offset - 16, ball_y=278, ball_vx=0, ball_vy=320,
          ball_speed=320)
    step(env)
    s = state(env)
    assert s['paddle_hits'] == 1 and s['ball_vy'] < 0
    assert math.atan2(s['ball_vx'], -s['ball_vy']) == pytest.approx(offset / 47 * math.pi / 4, abs=1e-5)
    assert math.hypot(s['ball_vx'], s['ball_vy']) == pytest.approx(320, rel=1e-6)


def test_top_wall_halves_the_paddle_once_for_the_episode():
    env = make()
    place(env, paddle_x=100, ball_x=300, ball_y=2, ball_vx=0, ball_vy=-256)
    step(env)
    s = state(env)
    assert s['paddle_width'] == 31 and s['paddle_x'] == 115.5     # about its centre
    assert s['ball_vy'] == 256 and s['ball_y'] >= 0
    assert env.observations[0, 9] == np.float32(31) / np.float32(62)
    place(env, paddle_x=115.5, paddle_width=31, ball_x=300, ball_y=2, ball_vx=0, ball_vy=-256)
    step(env)
    assert state(env)['paddle_width'] == 31 and state(env)['paddle_x'] == 115.5
    # still 31 for the next ball (served with the paddle re-centred) ...
    place(env, paddle_x=115.5, paddle_width=31, ball_x=0, ball_y=297, ball_vx=0, ball_vy=256)
    step(env)
    s = state(env)
    assert s['balls_left'] == 4 and s['paddle_width'] == 31 and s['paddle_x'] == (W - 31) / 2
    # ... and 62 again in the next episode
    env.reset()
    assert state(env)['paddle_width'] == 62


def test_wall_rebuilt_once_when_the_score_reaches_432():
    env = make()
    place(env, bricks=[(5, 3)], score=431, ball_x=96, ball_y=124, ball_vx=0, ball_vy=-256)
    _, rewards, terminals, _, _ = step(env)
    s = state(env)
    assert rewards[0] == 1 and s['score'] == 432 and not terminals[0]
    assert s['wall_rebuilt'] == 1 and sum(s['bricks']) == 108 and env.observations[0, 10:].all()
    # after the rebuild an empty wall stays empty
    place(env, score=600, wall_rebuilt=1, ball_x=96, ball_y=150, ball_vx=100, ball_vy=-256)
    for _ in range(200):
        step(env)
        assert sum(state(env)['bricks']) == 0


def test_wall_rebuild_waits_until_the_ball_is_clear_of_the_brick_rows():
    env = make()
    # the ball, inside the brick rows, meets the last brick's side: 428 + 4 = 432
    place(env, bricks=[(2, 9)], score=428, ball_x=9 * BRICK_W - BALL - 2, ball_y=60, ball_vx=300,
          ball_vy=300)
    assert step(env)[1][0] == 4
    rebuilt_at = None
    for t in range(40):
        s = state(env)
        assert s['score'] == 432
        # rebuilt exactly when the ball has left the brick rows (it is moving down)
        assert s['wall_rebuilt'] == (s['ball_y'] >= WALL_TOP + 6 * BRICK_H)
        assert sum(s['bricks']) == 108 * s['wall_rebuilt']
        if s['wall_rebuilt'] and rebuilt_at is None:
            rebuilt_at = t
        step(env)
    assert rebuilt_at is not None and rebuilt_at > 5


def test_clearing_the_second_wall_ends_the_episode_in_the_same_step():
    env = make()
    place(env, bricks=[(5, 3)], score=863, wall_rebuilt=1, ball_x=96, ball_y=124, ball_vx=0,
          ball_vy=-256, steps=99, episode_return=863.0, balls_left=3, balls_fired=3)
    _, rewards, terminals, truncations, _ = step(env)
    assert rewards[0] == 1 and terminals[0] and not truncations[0]
    assert env.c.log() == {'episode_return': 864.0, 'episode_length': 100.0, 'score': 864.0,
                           'perf': 1.0, 'n': 1}
    assert_first_observation(env)


def assert_first_observation(env, i=0):
    """Sub-env i is at the start of an episode, and its observation says so."""
    s = state(env, i)
    assert s['score'] == 0 and s['balls_left'] == 5 and s['balls_fired'] == 1 and s['steps'] == 0
    assert s['wall_rebuilt'] == 0 and sum(s['bricks']) == 108 and s['paddle_width'] == 62
    assert (s['ball_x'], s['ball_y'], s['ball_speed']) == (272, 135, 256)
    assert s['paddle_x'] == (W - 62) / 2
    np.testing.assert_array_equal(env.observations[i], reference_observation(s))
    assert env.observations[i, 7] == 0 and env.observations[i, 8] == 1
    assert env.observations[i, 6] == np.float32(0.2)


def test_life_loss_then_episode_end_after_the_last_ball():
    env = make()
    place(env, paddle_x=400, ball_x=50, ball_y=297, ball_vx=0, ball_vy=448, ball_speed=448,
          paddle_hits=9, balls_left=2, balls_fired=4, score=30, steps=10, episode_return=30.0)
    _, rewards, terminals, truncations, _ = step(env)
    s = state(env)
    assert rewards[0] == 0 and not terminals[0] and not truncations[0]
    assert s['balls_left'] == 1 and s['balls_fired'] == 5 and s['score'] == 30
    # a new ball: served from (272, 135) downwards within 45 degrees at 256 px/s, paddle centred
    assert (s['ball_x'], s['ball_y'], s['ball_speed'], s['paddle_hits']) == (272, 135, 256, 0)
    assert s['ball_vy'] > 0 and abs(s['ball_vx']) <= s['ball_vy']
    assert math.hypot(s['ball_vx'], s['ball_vy']) == pytest.approx(256, rel=1e-6)
    assert s['paddle_x'] == 257 and env.observations[0, 8] == np.float32(0.2)
    assert env.c.log() == {}
    place(env, paddle_x=400, ball_x=50, ball_y=297, ball_vx=0, ball_vy=256, balls_left=1,
          balls_fired=5, score=30, steps=11, episode_return=30.0)
    _, rewards, terminals, truncations, _ = step(env)
    assert rewards[0] == 0 and terminals[0] and not truncations[0]
    assert env.c.log() == {'episode_return': 30.0, 'episode_length': 12.0, 'score': 30.0,
                           'perf': pytest.approx(30 / 864), 'n': 1}
    assert_first_observation(env)


def test_final_reward_and_terminal_come_in_the_same_step():
    """With frameskip 4, a (very fast) ball breaks a brick in the first tick and is lost in the
    fourth: the last step carries the brick's reward and terminal=1."""
    env = make(frameskip=4)
    place(env, bricks=[(5, 3)], paddle_x=400, ball_x=96, ball_y=124, ball_vx=0, ball_vy=-3000,
          ball_speed=448, balls_left=1, balls_fired=5)
    _, rewards, terminals, _, _ = step(env)
    assert rewards[0] == 1 and terminals[0]
    assert env.c.log()['score'] == 1
    assert_first_observation(env)


def test_truncation_after_max_episode_steps():
    env = make(max_episode_steps=5)
    for t in range(1, 6):
        _, _, terminals, truncations, _ = step(env)
        assert not terminals[0] and truncations[0] == (t == 5)
    assert env.c.log() == {'episode_return': 0.0, 'episode_length': 5.0, 'score': 0.0, 'perf': 0.0,
                           'n': 1}
    assert_first_observation(env)
    with pytest.raises(APIUsageError, match='max_episode_steps is -1'):
        Breakout(max_episode_steps=-1)


def test_paddle_speed_and_walls():
    for frameskip in (1, 4):
        env = make(frameskip=frameskip)
        place(env, paddle_x=257, ball_x=272, ball_y=150, ball_vx=0, ball_vy=0)   # a ball at rest
        step(env, RIGHT)
        assert state(env)['paddle_x'] == pytest.approx(257 + frameskip * PADDLE_STEP, abs=1e-4)
        step(env, NOOP, 3)
        assert state(env)['paddle_x'] == pytest.approx(257 + frameskip * PADDLE_STEP, abs=1e-4)
        step(env, LEFT, 2)
        assert state(env)['paddle_x'] == pytest.approx(257 - frameskip * PADDLE_STEP, abs=1e-4)
        step(env, RIGHT, 60)
        assert state(env)['paddle_x'] == W - 62
        step(env, LEFT, 60)
        assert state(env)['paddle_x'] == 0


def test_the_paddle_stops_at_a_ball_beside_it():
    env = make()
    place(env, paddle_x=300, ball_x=400, ball_y=290, ball_vx=0, ball_vy=0)
    step(env, RIGHT, 20)
    assert state(env)['paddle_x'] == 400 - 62
    place(env, paddle_x=300, ball_x=100, ball_y=290, ball_vx=0, ball_vy=0)
    step(env, LEFT, 30)
    assert state(env)['paddle_x'] == 100 + BALL


def test_frameskip_repeats_the_action_for_that_many_ticks():
    fast, slow = make(frameskip=4, seed=3), make(frameskip=1, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = int(rng.integers(0, 3))
        _, reward, terminal, _, _ = step(fast, a)
        total = sum(float(step(slow, a)[1][0]) for _ in range(4))
        if terminal[0]:
            break
        f, s = state(fast), state(slow)
        assert total == reward[0]
        f.pop('steps'), s.pop('steps')
        assert f == s
    else:
        pytest.fail('no episode ended in 300 random steps')


# ---- no tunnelling ----

def test_no_tunnelling_through_a_brick_exact_sweep():
    """Balls aimed at one brick from a grid of positions and angles, at 448 px/s and at 4480 px/s
    (75 px per tick, more than the brick and ball together): the brick breaks exactly when the
    exact float64 sweep says the ball's path meets it, corner clips included."""
    box = brick_box(3 * COLS + 8)                      # x 256..288, y 86..98
    cases = [(speed, x, math.radians(a)) for speed in (448, 4480)
             for x in np.linspace(180, 332, 77) for a in np.linspace(-50, 50, 41)]
    env = make(num_envs=len(cases))
    expected = []
    corner_clips = 0
    for i, (speed, x, a) in enumerate(cases):
        vx, vy = speed * math.sin(a), -speed * math.cos(a)
        place(env, i, bricks=[(3, 8)], ball_x=x, ball_y=140, ball_vx=vx, ball_vy=vy, ball_speed=448)
        s = state(env, i)                              # the float32 values the game starts from
        hits = [entry_time(s['ball_x'], s['ball_y'], s['ball_vx'], s['ball_vy'], box, g) is not None
                for g in (-1e-3, 1e-3)]
        expected.append(hits[0] if hits[0] == hits[1] else None)   # None: too close to call
        # a hit that no tick's end position overlaps: only a swept test catches it
        ends = [(s['ball_x'] + s['ball_vx'] * k / 60, s['ball_y'] + s['ball_vy'] * k / 60)
                for k in range(30)]
        corner_clips += bool(hits[0] and not any(overlaps(px, py, box, 0) for px, py in ends))
    assert corner_clips > 20
    decided = np.zeros(len(cases), bool)
    broken = np.zeros(len(cases), bool)
    for _ in range(40):
        obs = step(env)[0]
        now = ~decided & ((obs[:, 5] > 0) | (obs[:, 3] * H < 40))   # bounced, or past the brick
        broken[now] = obs[now, 10 + 3 * COLS + 8] == 0
        decided |= now
    assert decided.all()
    for i, hit in enumerate(expected):
        if hit is not None:
            assert broken[i] == hit, cases[i]
    assert 0.2 < np.mean(broken) < 0.8


def test_no_tunnelling_through_the_paddle_exact_sweep():
    """Balls falling at 448 px/s from a grid of positions and angles onto a still paddle: the top
    face is met exactly when the ball's x range overlaps the paddle's at the paddle's height."""
    cases = [(x, math.radians(a)) for x in np.linspace(150, 400, 101) for a in np.linspace(-50, 50, 21)]
    env = make(num_envs=len(cases))
    expected = []
    for i, (x, a) in enumerate(cases):
        place(env, i, paddle_x=257, ball_x=x, ball_y=200, ball_vx=448 * math.sin(a),
              ball_vy=448 * math.cos(a), ball_speed=448)
        s = state(env, i)
        at = s['ball_x'] + s['ball_vx'] * (PADDLE_Y - BALL - s['ball_y']) / s['ball_vy']
        gap = min(at + BALL - 257, 257 + 62 - at)      # > 0: x ranges overlap at contact height
        expected.append(None if abs(gap) < 1e-3 else gap > 0)
    bounced = np.zeros(len(cases), bool)
    paddle = np.array([[257, PADDLE_Y, 257 + 62, PADDLE_Y + PADDLE_H]], np.float64)
    for _ in range(30):
        obs = step(env)[0]
        bounced |= obs[:, 5] < 0           # only the paddle's top face sends a falling ball up
        assert not inside(obs[:, 2] * W, obs[:, 3] * H, paddle).any()
    lost = env.observations[:, 8] == np.float32(0.8)
    assert np.array_equal(lost, ~bounced)
    for i, hit in enumerate(expected):
        if hit is not None:
            assert bounced[i] == hit, cases[i]


def test_no_tunnelling_at_max_speed_in_play():
    """Many ticks of play with the ball kept at 448 px/s: after every tick the ball is inside the
    field and overlaps no standing brick and not the paddle, its straight moves cross none of them
    (exact sweep), and it leaves the paddle within 45 degrees of vertical."""
    n = 6
    env = make(num_envs=n, seed=11)
    rng = np.random.default_rng(1)
    boxes = np.array([brick_box(i) for i in range(108)], np.float64)
    prev = [state(env, i) for i in range(n)]
    broken = straight = 0
    for t in range(2000):
        actions = np.zeros(n, np.int32)
        for i, s in enumerate(prev):
            centre = s['paddle_x'] + s['paddle_width'] / 2
            target = s['ball_x'] + BALL / 2 + (i - n / 2) * 6
            actions[i] = LEFT if centre > target + 6 else RIGHT if centre < target - 6 else NOOP
            if rng.random() < 0.15:
                actions[i] = rng.integers(0, 3)
        env.step(actions)
        for i in range(n):
            p, s = prev[i], state(env, i)
            x, y = s['ball_x'], s['ball_y']
            assert 0 <= x <= W - BALL and 0 <= y <= H - BALL, (t, i, s)
            assert 0 <= s['paddle_x'] and s['paddle_x'] + s['paddle_width'] <= W
            paddle = (s['paddle_x'], PADDLE_Y, s['paddle_x'] + s['paddle_width'], PADDLE_Y + PADDLE_H)
            solid = np.vstack([boxes[np.array(s['bricks'], bool)], [paddle]])
            assert not inside([x], [y], solid).any(), (t, i, s)
            assert abs(s['ball_vx']) <= abs(s['ball_vy']) * (1 + 1e-5)
            quiet = (p['ball_vx'], p['ball_vy'], p['bricks'], p['balls_left']) == \
                    (s['ball_vx'], s['ball_vy'], s['bricks'], s['balls_left'])
            if quiet:   # one straight move: it must not cross a standing brick or the paddle
                assert not crosses(p['ball_x'], p['ball_y'], x - p['ball_x'], y - p['ball_y'],
                                   solid).any(), (t, i, p, s)
                straight += 1
            broken += sum(p['bricks']) - sum(s['bricks']) if p['balls_left'] == s['balls_left'] else 0
            if s['ball_speed'] < 448:     # keep the ball at the cap (a new ball starts at 256)
                scale = 448 / s['ball_speed']
                env.c.set_state(i, ball_speed=448, ball_vx=s['ball_vx'] * scale,
                                ball_vy=s['ball_vy'] * scale)
                s = state(env, i)
            prev[i] = s
    assert broken > 100 and straight > 5000


# ---- observation, determinism, stats ----

def reference_observation(s):
    f = np.float32
    head = [f(s['paddle_x']) / f(W), f(PADDLE_Y) / f(H), f(s['ball_x']) / f(W), f(s['ball_y']) / f(H),
            f(s['ball_vx']) / f(512), f(s['ball_vy']) / f(512), f(s['balls_fired']) / f(5),
            f(s['score']) / f(864), f(s['balls_left']) / f(5), f(s['paddle_width']) / f(62)]
    return np.array(head + list(s['bricks']), np.float32)


def test_spaces():
    env = make(num_envs=3)
    assert env.single_observation_space == spaces.Box(-1, 1, (118,), np.float32)
    assert env.single_action_space == spaces.Discrete(3)
    assert env.observations.shape == (3, 118) and env.actions.dtype == np.int32
    env = make(num_envs=3, continuous=True)
    assert env.single_action_space == spaces.Box(-1, 1, (1,), np.float32)
    assert env.actions.shape == (3, 1) and env.actions.dtype == np.float32


def test_observation_matches_python_reference_in_random_play():
    n = 8
    env = make(num_envs=n, frameskip=4, seed=5)
    rng = np.random.default_rng(2)
    seen = set()
    for t in range(1500):
        actions = rng.integers(0, 3, n).astype(np.int32)
        for i in range(n // 2):     # half the sub-envs follow the ball, to reach later states
            s = state(env, i)
            centre = s['paddle_x'] + s['paddle_width'] / 2
            target = s['ball_x'] + BALL / 2
            actions[i] = LEFT if centre > target + 10 else RIGHT if centre < target - 10 else NOOP
        env.step(actions)
        for i in range(n):
            s = state(env, i)
            np.testing.assert_array_equal(env.observations[i], reference_observation(s))
            seen.add((s['balls_left'], s['paddle_width'], s['ball_speed']))
    assert {b for b, _, _ in seen} == {1, 2, 3, 4, 5}
    assert {w for _, w, _ in seen} == {31, 62} and {v for _, _, v in seen} >= {256, 448}


def rollout(env, steps=300, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        actions = rng.integers(0, 3, env.num_agents).astype(np.int32)
        obs, rewards, terminals, truncations, _ = env.step(actions)
        out.append((obs.copy(), rewards.copy(), terminals.copy(), truncations.copy()))
    return [np.stack(x) for x in zip(*out)]


def test_determinism():
    a, b = make(num_envs=4, seed=7), make(num_envs=4, seed=7)
    for x, y in zip(rollout(a), rollout(b)):
        np.testing.assert_array_equal(x, y)
    # sub-envs differ from each other (each is served its own way)
    first = make(num_envs=4, seed=7).observations
    assert len({tuple(row) for row in first}) == 4
    # reset(seed) reproduces, and equals a fresh env built with that seed
    c = make(num_envs=4, seed=0)
    c.reset(seed=7)
    one = rollout(c)
    c.reset(seed=7)
    for x, y, z in zip(one, rollout(c), rollout(make(num_envs=4, seed=7))):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    assert not np.array_equal(rollout(make(num_envs=4, seed=8))[0], one[0])


def test_episode_stats_each_episode_once():
    n, interval, scale = 4, 5, 0.5
    env = make(num_envs=n, frameskip=4, seed=2, reward_scale=scale, report_interval=interval,
               max_episode_steps=150)
    rng = np.random.default_rng(3)
    ret, length = np.zeros(n), np.zeros(n, int)
    pending, episodes, reported = [], 0, 0
    for t in range(1, 3001):
        _, rewards, terminals, truncations, infos = env.step(rng.integers(0, 3, n).astype(np.int32))
        ret += rewards
        length += 1
        for i in np.flatnonzero(terminals | truncations):
            assert not (terminals[i] and truncations[i])
            pending.append((ret[i], length[i], ret[i] / scale, ret[i] / scale / 864))
            ret[i], length[i] = 0, 0
            episodes += 1
        assert len(infos) == (1 if t % interval == 0 and pending else 0)
        if infos:
            info = infos[0]
            mean = np.mean(pending, axis=0)
            assert info['n'] == len(pending)
            assert [info['episode_return'], info['episode_length'], info['score'], info['perf']] == \
                pytest.approx(list(mean), rel=1e-5)
            reported += info['n']
            pending = []
    assert episodes > 50 and reported + len(pending) == episodes


# ---- binding misuse ----

def test_out_of_range_action_names_sub_env_and_value():
    env = make(num_envs=3)
    before = env.observations.copy()
    with pytest.raises(ValueError, match='action 3 of sub-env 0 is outside 0..2'):
        env.step(np.array([3, 0, 0], np.int32))
    with pytest.raises(ValueError, match='action -1 of sub-env 2 is outside 0..2'):
        env.step(np.array([0, 1, -1], np.int32))
    np.testing.assert_array_equal(env.observations, before)    # nothing stepped


def test_close_twice_step_after_close_bad_index():
    env = make(num_envs=2)
    with pytest.raises(IndexError, match='env_id 2 is out of range for 2 sub-envs'):
        env.c.get_state(2)
    with pytest.raises(IndexError):
        env.c.set_state(-1, score=1)
    with pytest.raises(KeyError, match='unknown state fields'):
        env.c.set_state(0, lives=3)
    env.close()
    env.close()
    with pytest.raises(ValueError, match='^closed$'):
        step(env)
    with pytest.raises(ValueError, match='^closed$'):
        env.reset()


def buffers(n=2, **change):
    arrays = {'observations': np.zeros((n, 118), np.float32), 'actions': np.zeros(n, np.int32),
              'rewards': np.zeros(n, np.float32), 'terminals': np.zeros(n, bool),
              'truncations': np.zeros(n, bool)}
    arrays.update(change)
    return arrays


@pytest.mark.parametrize('change, message', [
    ({'observations': np.zeros((2, 118), np.float64)}, 'observations has dtype float64'),
    ({'observations': np.zeros((2, 236), np.float32)[:, ::2]},
     'observations must be a writeable C-contiguous'),
    ({'observations': np.zeros((1, 118), np.float32)}, 'observations has 1 rows, expected at least 2'),
    ({'observations': np.zeros((2, 117), np.float32)},
     'observations rows hold 117 values, expected 118'),
    ({'actions': np.zeros(2, np.int64)}, 'actions has dtype int64'),
    ({'actions': np.zeros(2, np.float32)}, 'actions has dtype float32, expected int32'),
    ({'rewards': np.zeros(1, np.float32)}, 'rewards has 1 rows'),
    ({'terminals': np.zeros(2, np.uint8)}, 'terminals has dtype uint8'),
    ({'truncations': [False, False]}, 'truncations must be a numpy array'),
])
def test_bad_buffers_are_named(change, message):
    b = buffers(**change)
    with pytest.raises(ValueError, match=message):
        binding.Binding(b, 2, 0)


def test_continuous_needs_float_actions_and_bad_kwargs():
    b = buffers()
    with pytest.raises(ValueError, match='actions has dtype int32, expected float32'):
        binding.Binding(b, 2, 0, continuous=True)
    with pytest.raises(APIUsageError, match='frameskip is 0'):
        Breakout(frameskip=0)


def test_continuous_paddle_velocity_clamped_nan_is_noop():
    env = make(continuous=True)
    place(env, paddle_x=257, ball_x=272, ball_y=150, ball_vx=0, ball_vy=0)
    for action, moved in [(0.5, 0.5), (-0.25, -0.25), (3.0, 1.0), (-np.inf, -1.0), (np.nan, 0.0),
                          (0.0, 0.0), (np.inf, 1.0), (-1.0, -1.0)]:
        x = state(env)['paddle_x']
        env.step(np.array([[action]], np.float32))
        assert state(env)['paddle_x'] - x == pytest.approx(moved * PADDLE_STEP, abs=1e-4), action
    step(env, 1.0, 80)
    assert state(env)['paddle_x'] == W - 62


# ---- vector backends ----

def test_native_equals_multiprocessing():
    vector = pytest.importorskip('pufferlib.vector')
    from pufferlib import ocean
    n, seed = 8, 4
    native = Breakout(num_envs=n, seed=seed)
    multi = vector.make(ocean.env_creator('breakout'), env_kwargs={'num_envs': n // 2},
                        backend='Multiprocessing', num_envs=2, num_workers=2, seed=seed)
    try:
        obs_n, _ = native.reset(seed)
        obs_m, _ = multi.reset(seed)
        np.testing.assert_array_equal(obs_n, obs_m)
        rng = np.random.default_rng(0)
        for _ in range(300):
            actions = rng.integers(0, 3, n).astype(np.int32)
            for x, y in zip(native.step(actions)[:4], multi.step(actions)[:4]):
                np.testing.assert_array_equal(x, y)
    finally:
        multi.close()
        native.close()


# ---- render ----

@pytest.mark.render
def test_render_draws_the_state():
    from pufferlib.ocean.breakout.breakout import BALL_COLOR, PADDLE_COLOR, ROW_COLORS
    env = make(render_mode='human')
    wall = [(r, c) for r in range(6) for c in range(COLS) if (r, c) not in ((0, 0), (3, 5))]
    place(env, bricks=wall, paddle_x=100, ball_x=400, ball_y=200, ball_vx=0, ball_vy=0, score=123,
          balls_left=3)
    try:
        env.render()
        env.render()
        img = env.window.screenshot()
        assert img.shape == (H, W, 3)
        background = (6, 24, 24)
        assert tuple(img[316, 130]) == PADDLE_COLOR and tuple(img[316, 100 + 61]) == PADDLE_COLOR
        assert tuple(img[316, 95]) == background and tuple(img[316, 170]) == background
        for row in range(6):
            assert tuple(img[WALL_TOP + 12 * row + 6, 10 * BRICK_W + 16]) == ROW_COLORS[row]
        assert tuple(img[WALL_TOP + 6, 16]) == background                    # brick (0, 0) broken
        assert tuple(img[WALL_TOP + 36 + 6, 5 * BRICK_W + 16]) == background  # brick (3, 5) broken
        assert tuple(img[216, 416]) == BALL_COLOR
        # "Score: 123" at the top left, "Balls: 3" at the top right: text pixels there only
        text = np.any(img != background, axis=2)
        assert text[5:35, 5:150].sum() > 50 and text[5:35, W - 110:W - 5].sum() > 30
        assert not text[5:35, 200:400].any()
    finally:
        env.close()


@pytest.mark.render
def test_play_moves_the_paddle_with_the_keys(monkeypatch):
    """play() with raylib's key state and window-close patched: one frame per agent step (4 ticks),
    the keys held changing from frame to frame; LEFT/A move left, RIGHT/D right, both: no move."""
    from pufferlib.ocean import render
    from pufferlib.ocean.breakout import breakout as module
    rl = render.raylib()
    held = [{'KEY_RIGHT'}, {'KEY_D'}, {'KEY_LEFT'}, {'KEY_A'}, {'KEY_LEFT', 'KEY_D'},
            {'KEY_A', 'KEY_RIGHT'}, set()]
    moves = [1, 1, -1, -1, 0, 0, 0]
    frame = [-1]

    def should_close(window):
        frame[0] += 1
        return frame[0] == len(held)

    monkeypatch.setattr(render.Window, 'should_close', should_close)
    monkeypatch.setattr(rl, 'is_key_down', lambda key: key in {getattr(rl, k) for k in held[frame[0]]})
    drawn = []
    draw = module.Breakout.render
    monkeypatch.setattr(module.Breakout, 'render', lambda self: (drawn.append(state(self)), draw(self)))
    module.play()
    assert len(drawn) == len(held) + 1 and drawn[-1]['steps'] == len(held)
    deltas = np.diff([s['paddle_x'] for s in drawn])
    np.testing.assert_allclose(deltas, np.array(moves) * 4 * PADDLE_STEP, atol=1e-3)
