"""Connect4: rules on hand-built boards, the opponent against a plain Python negamax, observations
against a Python reference, determinism, episode stats, binding misuse and rendering."""
import numpy as np
import pytest

from pufferlib.exceptions import APIUsageError
from pufferlib.ocean.connect4 import binding
from pufferlib.ocean.connect4.connect4 import CELL, COLORS, Connect4

# ---------------------------------------------------------------------------------------------------
# A plain reference on a list board: board[row][col], row 0 at the top; +1 agent, -1 opponent, 0 empty.


def parse(text):
    """A board from 6 lines of 7 characters: X agent, O opponent, . empty (top line = row 0)."""
    rows = text.split()
    assert len(rows) == 6 and all(len(r) == 7 for r in rows)
    return [[{'X': 1, 'O': -1, '.': 0}[ch] for ch in row] for row in rows]


def bitboards(board):
    """(agent, opponent) bitboards: bit 7 * col + height, height 0 = bottom row."""
    agent = opponent = 0
    for row in range(6):
        for col in range(7):
            bit = 1 << (7 * col + 5 - row)
            if board[row][col] == 1:
                agent |= bit
            elif board[row][col] == -1:
                opponent |= bit
    return agent, opponent


def board_of(agent, opponent):
    return [[1 if agent >> (7 * col + 5 - row) & 1 else -1 if opponent >> (7 * col + 5 - row) & 1 else 0
             for col in range(7)] for row in range(6)]


def legal(board):
    return [c for c in range(7) if board[0][c] == 0]


def drop_row(board, col):
    """The row a piece dropped in `col` lands on."""
    return max(r for r in range(6) if board[r][col] == 0)


def wins_at(board, row, col):
    """Whether the piece at (row, col) is part of four in a row."""
    who = board[row][col]
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        count = 1
        for sign in (1, -1):
            r, c = row + sign * dr, col + sign * dc
            while 0 <= r < 6 and 0 <= c < 7 and board[r][c] == who:
                count += 1
                r, c = r + sign * dr, c + sign * dc
        if count >= 4:
            return True
    return False


def any_win(board):
    return any(board[r][c] and wins_at(board, r, c) for r in range(6) for c in range(7))


def negamax(board, to_move, last, depth):
    """The definition: -1 if the previous move won; 0 if the board is full; 0 at depth 0; else the
    max over legal moves m of -negamax(after m, depth - 1)."""
    if last is not None and wins_at(board, *last):
        return -1
    moves = legal(board)
    if not moves or depth == 0:
        return 0
    best = -2
    for col in moves:
        row = drop_row(board, col)
        board[row][col] = to_move
        best = max(best, -negamax(board, -to_move, (row, col), depth - 1))
        board[row][col] = 0
    return best


def reference_choices(board):
    """The opponent's (-1 to move) candidate columns, straight from the definition."""
    board = [row[:] for row in board]
    wins, scores = [], {}
    for col in legal(board):
        row = drop_row(board, col)
        board[row][col] = -1
        if wins_at(board, row, col):
            wins.append(col)
        scores[col] = -negamax(board, 1, (row, col), 2)
        board[row][col] = 0
    if wins:
        return wins
    best = max(scores.values())
    return [col for col, score in scores.items() if score == best]


def after(board, col, who):
    board = [row[:] for row in board]
    board[drop_row(board, col)][col] = who
    return board


def observation_of(state):
    """The observation the env must show for a state: row-major, row 0 at the top."""
    return np.array(board_of(state['agent'], state['opponent']), np.float32).reshape(42)


def make(num_envs=1, **kwargs):
    env = Connect4(num_envs=num_envs, **kwargs)
    env.reset()
    return env


def set_board(env, i, text):
    board = parse(text)
    assert not any_win(board)
    assert sum(v == 1 for row in board for v in row) == sum(v == -1 for row in board for v in row)
    agent, opponent = bitboards(board)
    env.c.set_state(i, agent=agent, opponent=opponent, tick=0)
    return board


def step(env, *actions):
    return env.step(np.array(actions, np.int32))


# ---------------------------------------------------------------------------------------------------
# Rules

AGENT_WINS = {  # board, winning column
    'horizontal': ('''
        .......
        .......
        .......
        .......
        OOO....
        XXX....''', 3),
    'vertical': ('''
        .......
        .......
        .......
        X......
        XO.....
        XOO....''', 0),
    'diagonal up-right': ('''
        .......
        .......
        .......
        ..XO...
        .XOX...
        XOOO..X''', 3),
    'diagonal up-left': ('''
        .......
        .......
        .......
        ...OX..
        ...XOX.
        X..OOOX''', 3),
}


@pytest.mark.parametrize('direction', AGENT_WINS)
def test_agent_wins_in_every_direction(direction):
    env = make()
    text, col = AGENT_WINS[direction]
    board = set_board(env, 0, text)
    final = after(board, col, 1)
    assert any_win(final)
    step(env, col)
    assert env.rewards[0] == 1 and env.terminals[0] and not env.truncations[0]
    state = env.c.get_state(0)
    assert (state['last_agent'], state['last_opponent']) == bitboards(final)
    assert state['agent'] == state['opponent'] == state['tick'] == 0  # the next episode began
    assert not env.observations[0].any()
    assert env.c.log() == {'episode_return': 1, 'episode_length': 1, 'score': 1, 'perf': 1, 'n': 1}


OPPONENT_WINS = {  # board (opponent to win), a harmless agent move, the opponent's winning column
    'horizontal': ('''
        .......
        .......
        .......
        .......
        XXX....
        OOO....''', 6, 3),
    'vertical': ('''
        .......
        .......
        .......
        O......
        OX.....
        OXX....''', 6, 0),
    'diagonal up-right': ('''
        .......
        .......
        .......
        ..OX...
        .OXO...
        OXXXO..''', 5, 3),
    'diagonal up-left': ('''
        .......
        .......
        .......
        ...XO..
        ...OXO.
        ..OXXXO''', 0, 3),
}


@pytest.mark.parametrize('direction', OPPONENT_WINS)
def test_opponent_takes_an_immediate_win_in_every_direction(direction):
    env = make()
    text, action, col = OPPONENT_WINS[direction]
    board = after(set_board(env, 0, text), action, 1)
    assert not any_win(board)
    final = after(board, col, -1)
    assert any_win(final) and reference_choices(board) == [col]
    assert env.c.opponent_choices(0, action) == [col]
    step(env, action)
    assert env.rewards[0] == -1 and env.terminals[0]
    assert (env.c.get_state(0)['last_agent'], env.c.get_state(0)['last_opponent']) == bitboards(final)
    assert env.c.log() == {'episode_return': -1, 'episode_length': 1, 'score': -1, 'perf': 0, 'n': 1}


def test_opponent_takes_its_win_rather_than_blocking():
    env = make()
    set_board(env, 0, '''
        .......
        .......
        .......
        O......
        O.X....
        O.XX...''')
    # the agent's move makes a threat in column 2; the opponent ignores it and wins in column 0
    assert env.c.opponent_choices(0, 2) == [0]
    step(env, 2)
    assert env.rewards[0] == -1 and env.terminals[0]


def test_opponent_blocks_an_immediate_loss():
    env = make(num_envs=16, seed=3)
    for i in range(16):
        board = set_board(env, i, '''
            .......
            .......
            .......
            .......
            OO.....
            XXX...O''')
    assert reference_choices(after(board, 5, 1)) == [3]
    assert all(env.c.opponent_choices(i, 5) == [3] for i in range(16))
    step(env, *[5] * 16)
    assert not env.terminals.any() and not env.rewards.any()
    for i in range(16):
        state = env.c.get_state(i)
        expected = after(after(board, 5, 1), 3, -1)
        assert (state['agent'], state['opponent']) == bitboards(expected)
        assert state['tick'] == 1
        np.testing.assert_array_equal(env.observations[i], observation_of(state))


def test_full_column_ends_the_episode_with_minus_one():
    env = make()
    set_board(env, 0, '''
        O......
        X......
        O......
        X......
        O.....X
        X.....O''')
    env.c.set_state(0, tick=5)
    assert env.c.opponent_choices(0, 0) == []
    step(env, 0)
    assert env.rewards[0] == -1 and env.terminals[0]
    state = env.c.get_state(0)
    assert state['agent'] == state['opponent'] == 0 and state['last_agent'] == bitboards(parse('''
        O......
        X......
        O......
        X......
        O.....X
        X.....O'''))[0]
    assert env.c.log() == {'episode_return': -1, 'episode_length': 6, 'score': -1, 'perf': 0, 'n': 1}


def test_draw_gives_zero():
    full = parse('''
        OXXOOOX
        XOOXXXO
        OOOXOXO
        XXOXOOO
        XOXOXXX
        XXOOXOX''')
    assert not any_win(full)
    env = make()
    set_board(env, 0, '''
        ..XOOOX
        XOOXXXO
        OOOXOXO
        XXOXOOO
        XOXOXXX
        XXOOXOX''')
    assert env.c.opponent_choices(0, 1) == [0]  # the only column left
    step(env, 1)
    assert env.rewards[0] == 0 and env.terminals[0]
    state = env.c.get_state(0)
    assert (state['last_agent'], state['last_opponent']) == bitboards(full)
    assert env.c.log() == {'episode_return': 0, 'episode_length': 1, 'score': 0, 'perf': 0, 'n': 1}


def test_random_opponent_option():
    with pytest.raises(APIUsageError, match='opponent_random_prob is 1.5'):
        Connect4(opponent_random_prob=1.5)
    env = make(num_envs=256, opponent_random_prob=1.0, seed=1)
    for i in range(256):
        board = set_board(env, i, '''
            .......
            .......
            .......
            .......
            OO.....
            XXX...O''')
    step(env, *[5] * 256)
    # the searching opponent always blocks at column 3; a random one only about 1 time in 7
    blocked = sum(env.c.get_state(i)['opponent'] >> (7 * 3) & 1 for i in range(256))
    assert 15 <= blocked <= 60


# ---------------------------------------------------------------------------------------------------
# The opponent against the plain negamax


def play_random_position(rng):
    """A random position with the agent to move and no four in a row, from random play."""
    while True:
        board = [[0] * 7 for _ in range(6)]
        for ply in range(2 * rng.integers(0, 21)):
            col = rng.choice(legal(board))
            row = drop_row(board, col)
            board[row][col] = 1 if ply % 2 == 0 else -1
            if wins_at(board, row, col):
                break
        else:
            return board


def test_opponent_matches_negamax_on_random_positions():
    """>= 2000 positions: sets of candidate columns equal; the move played is a candidate; ties
    are broken at random (the first candidate is picked about as often as chance says)."""
    rng = np.random.default_rng(0)
    n, compared, nontrivial = 64, 0, 0
    first_picked, first_expected, first_var, tied = 0, 0.0, 0.0, 0

    # positions random play against the env reaches
    env = make(num_envs=n, seed=11)
    for _ in range(30):
        states = [env.c.get_state(i) for i in range(n)]
        boards = [board_of(s['agent'], s['opponent']) for s in states]
        actions = [int(rng.choice(legal(b))) for b in boards]
        choices = [env.c.opponent_choices(i, a) for i, a in enumerate(actions)]
        for b, a, cs in zip(boards, actions, choices):
            position = after(b, a, 1)
            if any_win(position) or not legal(position):
                assert cs == []
                continue
            expected = reference_choices(position)
            assert cs == expected, (position, cs, expected)
            compared += 1
            nontrivial += cs != legal(position)
        step(env, *actions)
        for i in range(n):
            if not choices[i]:
                continue
            now = env.c.get_state(i)
            opponent = now['last_opponent'] if env.terminals[i] else now['opponent']
            played = (opponent ^ states[i]['opponent']).bit_length() // 7
            assert played in choices[i]
            if len(choices[i]) > 1:
                k = len(choices[i])
                tied += 1
                first_picked += played == choices[i][0]
                first_expected += 1 / k
                first_var += (1 / k) * (1 - 1 / k)

    # deeper positions set by hand (random play by both sides, up to a nearly full board)
    for _ in range(20):
        for i in range(n):
            board = play_random_position(rng)
            agent, opponent = bitboards(board)
            env.c.set_state(i, agent=agent, opponent=opponent)
            action = int(rng.choice(legal(board)))
            position = after(board, action, 1)
            got = env.c.opponent_choices(i, action)
            if any_win(position) or not legal(position):
                assert got == []
                continue
            expected = reference_choices(position)
            assert got == expected, (position, got, expected)
            compared += 1
            nontrivial += got != legal(position)

    assert compared >= 2000 and nontrivial >= 0.2 * compared, (compared, nontrivial)
    assert tied >= 500
    assert abs(first_picked - first_expected) < 5 * first_var ** 0.5, (first_picked, first_expected)


# ---------------------------------------------------------------------------------------------------
# Observations, determinism, episode stats


def random_actions(env, rng, invalid=0.05):
    """Mostly legal columns, some full ones (invalid moves)."""
    actions = []
    for i in range(env.num_envs):
        s = env.c.get_state(i)
        board = board_of(s['agent'], s['opponent'])
        full = [c for c in range(7) if board[0][c]]
        actions.append(int(rng.choice(full if full and rng.random() < invalid else legal(board))))
    return np.array(actions, np.int32)


def test_observation_matches_reference():
    env = make(num_envs=8, seed=4)
    rng = np.random.default_rng(1)
    for _ in range(300):
        step(env, *random_actions(env, rng, invalid=0.2))
        for i in range(8):
            np.testing.assert_array_equal(env.observations[i], observation_of(env.c.get_state(i)))
    assert env.observations.dtype == np.float32 and env.observations.shape == (8, 42)
    assert env.single_observation_space.low.min() == -1 and env.single_observation_space.high.max() == 1


def trajectory(env, seed, steps=200):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        step(env, *rng.integers(0, 7, env.num_envs))
        out.append((env.observations.copy(), env.rewards.copy(), env.terminals.copy()))
    return out


def same(a, b):
    return all(all(np.array_equal(x, y) for x, y in zip(sa, sb)) for sa, sb in zip(a, b))


def test_determinism():
    a, b = Connect4(num_envs=4, seed=7), Connect4(num_envs=4, seed=7)
    a.reset()
    b.reset(seed=7)
    ta, tb = trajectory(a, 0), trajectory(b, 0)
    assert same(ta, tb)
    a.reset(seed=9)
    t1 = trajectory(a, 1)
    a.reset(seed=9)
    assert same(t1, trajectory(a, 1))
    assert not same(t1, ta)
    # the same actions in every sub-env: only the opponents' random tie-breaking differs
    env = make(num_envs=4, seed=7)
    for _ in range(30):
        step(env, *[3] * 4)  # all play column 3 until it is full, then lose and start again
        step(env, *[2] * 4)
    boards = {tuple(map(tuple, t)) for t in [env.observations[i].reshape(6, 7) for i in range(4)]}
    assert len(boards) > 1


def test_episode_stats_count_every_episode_once():
    n, interval = 16, 8
    env = make(num_envs=n, seed=2, report_interval=interval)
    rng = np.random.default_rng(3)
    length = np.zeros(n, int)
    window, total_n, total_episodes = [], 0, 0
    for t in range(1, 800):
        _, rewards, terminals, truncations, infos = step(env, *random_actions(env, rng))
        assert not truncations.any()
        length += 1
        for i in np.flatnonzero(terminals):
            window.append((rewards[i], length[i]))
            length[i] = 0
        total_episodes += terminals.sum()
        if t % interval == 0:
            if not window:
                assert infos == []
                continue
            (info,) = infos
            returns = np.array([r for r, _ in window])
            assert info['n'] == len(window)
            assert info['episode_return'] == pytest.approx(returns.mean(), abs=1e-5)
            assert info['score'] == pytest.approx(returns.mean(), abs=1e-5)
            assert info['perf'] == pytest.approx((returns == 1).mean(), abs=1e-5)
            assert info['episode_length'] == pytest.approx(np.mean([l for _, l in window]), rel=1e-5)
            total_n += info['n']
            window = []
        else:
            assert infos == []
    assert total_n + len(window) == total_episodes and total_episodes > 100


# ---------------------------------------------------------------------------------------------------
# Binding misuse


def test_out_of_range_action_names_env_and_value():
    env = make(num_envs=3)
    with pytest.raises(ValueError, match='action 7 of sub-env 2 is outside 0..6'):
        step(env, 0, 1, 7)
    with pytest.raises(ValueError, match='action -1 of sub-env 0'):
        step(env, -1, 1, 2)
    assert env.c.get_state(0)['tick'] == 0  # nothing stepped


def test_close_twice_and_use_after_close():
    env = make()
    env.close()
    env.close()
    with pytest.raises(ValueError, match='closed'):
        step(env, 0)
    with pytest.raises(ValueError, match='closed'):
        env.c.get_state(0)


def test_state_accessor_checks():
    env = make(num_envs=2)
    with pytest.raises(IndexError, match='env_id 2 is out of range'):
        env.c.get_state(2)
    with pytest.raises(IndexError):
        env.c.opponent_choices(-1, 0)
    with pytest.raises(KeyError, match='unknown state fields'):
        env.c.set_state(0, board=1)
    with pytest.raises(ValueError, match='overlap'):
        env.c.set_state(0, agent=1, opponent=1)
    with pytest.raises(ValueError, match='outside'):
        env.c.set_state(0, agent=1 << 6)  # a sentinel bit
    with pytest.raises(ValueError, match='column 1 has a gap'):
        env.c.set_state(0, agent=1 << 8)
    assert env.c.opponent_choices(0, 9) == []


def buffers(n=2):
    return dict(observations=np.zeros((n, 42), np.float32), actions=np.zeros(n, np.int32),
                rewards=np.zeros(n, np.float32), terminals=np.zeros(n, bool),
                truncations=np.zeros(n, bool))


@pytest.mark.parametrize('name, bad, match', [
    ('observations', np.zeros((2, 42), np.float64), 'observations has dtype float64'),
    ('observations', np.zeros((2, 84), np.float32)[:, ::2], 'observations must be a writeable C-contiguous'),
    ('observations', np.zeros((1, 42), np.float32), 'observations has 1 rows, expected at least 2'),
    ('observations', np.zeros((2, 41), np.float32), 'observations rows hold 41 values, expected 42'),
    ('actions', np.zeros(2, np.int64), 'actions has dtype int64'),
    ('rewards', np.zeros(1, np.float32), 'rewards has 1 rows'),
    ('terminals', np.zeros(2, np.uint8), 'terminals has dtype uint8'),
    ('truncations', np.zeros((2, 2), bool), 'truncations rows hold 2 values'),
])
def test_bad_buffers_name_the_array(name, bad, match):
    bufs = buffers()
    bufs[name] = bad
    with pytest.raises(ValueError, match=match):
        binding.Binding(bufs, num_envs=2)


# ---------------------------------------------------------------------------------------------------
# Rendering


@pytest.mark.render
def test_render_draws_pieces_in_their_cells():
    env = make(render_mode='human')
    set_board(env, 0, '''
        .......
        .......
        .......
        .......
        O......
        X..X..O''')
    env.render()
    env.render()
    image = env.window.screenshot()
    assert image.shape == (6 * CELL + 40, 7 * CELL, 3)

    def center(row, col):
        return tuple(image[row * CELL + CELL // 2, col * CELL + CELL // 2])

    assert center(5, 0) == COLORS['agent'] and center(5, 3) == COLORS['agent']
    assert center(4, 0) == COLORS['opponent'] and center(5, 6) == COLORS['opponent']
    assert center(3, 0) == COLORS['empty'] and center(5, 1) == COLORS['empty']
    assert tuple(image[5 * CELL + 2, 2]) == COLORS['board']  # a cell's corner, outside the circle
    env.close()
    assert env.window is None


# ---------------------------------------------------------------------------------------------------
# Vector backends


def test_native_equals_multiprocessing():
    """2 workers x 4 sub-envs give the same trajectories as one env of 8 sub-envs (object k is
    seeded with seed + 4 * k, so every sub-env gets the seed of its global index)."""
    import pufferlib.vector
    native = pufferlib.vector.make(Connect4, env_kwargs={'num_envs': 8}, backend='Native', seed=5)
    multi = pufferlib.vector.make(Connect4, env_kwargs={'num_envs': 4}, backend='Multiprocessing',
                                  num_envs=2, num_workers=2, seed=5)
    try:
        rng = np.random.default_rng(0)
        obs_n, _ = native.reset(seed=5)
        obs_m, _ = multi.reset(seed=5)
        np.testing.assert_array_equal(obs_n, obs_m)
        ended = 0
        for _ in range(100):
            actions = rng.integers(0, 7, 8, dtype=np.int32)
            out_n = native.step(actions)
            out_m = multi.step(actions)
            for a, b in zip(out_n[:4], out_m[:4]):
                np.testing.assert_array_equal(a, b)
            ended += out_n[2].sum()
        assert ended > 10
    finally:
        native.close()
        multi.close()


def test_action_mask_allows_exactly_the_columns_that_are_not_full():
    """A masked column ends the episode with -1 (the invalid-move rule); an allowed one adds a piece
    to its column. Actions lean on column 0 so that full columns are common."""
    torch = pytest.importorskip('torch')
    env = make(num_envs=32, seed=4)
    rng = np.random.default_rng(0)
    masked = allowed_moves = 0
    for _ in range(400):
        obs = env.observations.copy()
        allowed = Connect4.action_mask(obs)
        assert allowed.dtype == bool and allowed.shape == (32, 7) and allowed.any(axis=1).all()
        np.testing.assert_array_equal(Connect4.action_mask(torch.from_numpy(obs)).numpy(), allowed)
        actions = np.where(rng.random(32) < 0.6, 0, rng.integers(0, 7, 32)).astype(np.int32)
        env.step(actions)
        for i, a in enumerate(actions):
            if not allowed[i, a]:
                masked += 1
                assert env.terminals[i] and env.rewards[i] == -1
            elif not env.terminals[i]:
                allowed_moves += 1
                before = np.count_nonzero(obs[i].reshape(6, 7)[:, a])
                assert np.count_nonzero(env.observations[i].reshape(6, 7)[:, a]) > before
    assert masked > 100 and allowed_moves > 1000


def reference_features(board):
    """The 5 feature planes by hand: pieces of each side, the cell each legal column's piece lands
    on, and the empty cells where a piece of each side would make four (whether reachable or not)."""
    planes = np.zeros((5, 6, 7), np.float32)
    for row in range(6):
        for col in range(7):
            planes[0, row, col] = board[row][col] == 1
            planes[1, row, col] = board[row][col] == -1
            if board[row][col] == 0:
                for plane, who in ((3, 1), (4, -1)):
                    trial = [r[:] for r in board]
                    trial[row][col] = who
                    planes[plane, row, col] = wins_at(trial, row, col)
    for col in legal(board):
        planes[2, drop_row(board, col), col] = 1
    return planes.reshape(-1)


def test_feature_planes_follow_the_board_in_every_step():
    """features=True: the observation is the board, then the reference's 5 planes, after every step
    of random play (full columns, wins and losses included: the step that ends an episode shows the
    next one's empty board and its planes). The board part and the game are those of features=False."""
    n = 16
    plain, featured = make(num_envs=n, seed=4), make(num_envs=n, seed=4, features=True)
    assert featured.single_observation_space.shape == (42 + 5 * 42,)
    assert featured.observations.shape == (n, 252)
    np.testing.assert_array_equal(featured.observations[:, 42:],
                                  np.tile(reference_features(parse('.......\n' * 6)), (n, 1)))
    rng = np.random.default_rng(1)
    ended = threats = 0
    for _ in range(400):
        actions = random_actions(featured, rng, invalid=0.1)
        step(plain, *actions)
        step(featured, *actions)
        np.testing.assert_array_equal(featured.observations[:, :42], plain.observations)
        np.testing.assert_array_equal(featured.rewards, plain.rewards)
        np.testing.assert_array_equal(featured.terminals, plain.terminals)
        for i in range(n):
            s = featured.c.get_state(i)
            board = board_of(s['agent'], s['opponent'])
            np.testing.assert_array_equal(featured.observations[i, 42:], reference_features(board))
            if featured.terminals[i]:
                assert not any(map(any, board))
        ended += featured.terminals.sum()
        threats += featured.observations[:, 42 + 3 * 42:].sum()
    assert ended > 200 and threats > 1000


def test_feature_planes_of_a_hand_built_position():
    env = make(features=True)
    board = set_board(env, 0, '''.......
                                .......
                                ...O...
                                ...O...
                                .XXXO..
                                XOOXOX.''')
    planes = env.observations[0, 42:].reshape(5, 6, 7)
    np.testing.assert_array_equal(planes.reshape(-1), reference_features(board))
    np.testing.assert_array_equal(planes[0] - planes[1], np.array(board))
    assert [tuple(cell) for cell in np.argwhere(planes[3])] == [(4, 0)]        # X's row of four
    assert [tuple(cell) for cell in np.argwhere(planes[2])] == [(1, 3), (3, 1), (3, 2), (3, 4), (4, 0),
                                                               (4, 5), (5, 6)]
    assert not planes[4].any()
    board = set_board(env, 0, '''.......
                                 .......
                                 .......
                                 .......
                                 ..X....
                                 .XOOO.X''')
    planes = env.observations[0, 42:].reshape(5, 6, 7)
    np.testing.assert_array_equal(planes.reshape(-1), reference_features(board))
    assert [tuple(cell) for cell in np.argwhere(planes[4])] == [(5, 5)]        # O's row of four
    assert not planes[3].any()
