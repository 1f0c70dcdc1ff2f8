"""Triple Triad: the rules on hand-built states, agreement with a plain Python reference of the game
over random play, determinism, episode stats, binding misuse and rendering."""
import copy

import numpy as np
import pytest
import torch

import pufferlib.ocean
from pufferlib.exceptions import APIUsageError
from pufferlib.ocean.triple_triad import binding
from pufferlib.ocean.triple_triad.triple_triad import TripleTriad

AGENT, BOT = 1, -1
SELECT, PLACE = 0, 5       # actions: 0-4 select card k, 5-13 place on cell c
NORTH, EAST, SOUTH, WEST = range(4)


def make(num_envs=1, seed=0, **kwargs):
    env = TripleTriad(num_envs=num_envs, seed=seed, report_interval=10**9, **kwargs)
    env.reset()
    return env


def step(env, *actions):
    """Step with one action per sub-env; returns (rewards, terminals) copies."""
    env.step(np.array(actions, np.int32))
    return env.rewards.copy(), env.terminals.copy()


def blank_state(agent=None, bot=None):
    """An empty board, scores 5/5, nothing selected; cards' values default to all-4 (agent) and
    all-1 for the bot, whose 1s can never capture (capture needs a strictly higher value)."""
    agent = agent or [[4, 4, 4, 4]] * 5
    bot = bot or [[1, 1, 1, 1]] * 5
    return dict(owner=[0] * 9, card=[-1] * 9, values=[list(v) for v in agent + bot],
                location=[0] * 10, selected=[-1, -1], score=[5, 5], tick=0, episode_return=0.0)


def put(state, card, cell, owner=None):
    """Place `card` on `cell` in a hand-built state, owned by its player unless `owner` says."""
    state['owner'][cell] = owner if owner is not None else (AGENT if card < 5 else BOT)
    state['card'][cell] = card
    state['location'][card] = cell + 1


# ---- a plain Python reference of the rules and the observation ----

def neighbour(cell, side):
    row, col = divmod(cell, 3)
    row, col = row + (-1, 0, 1, 0)[side], col + (0, 1, 0, -1)[side]
    return row * 3 + col if 0 <= row < 3 and 0 <= col < 3 else None


def ref_place(s, card, cell, player):
    s['owner'][cell], s['card'][cell], s['location'][card] = player, card, cell + 1
    me = 0 if player == AGENT else 1
    for side in range(4):
        n = neighbour(cell, side)
        if n is None or s['owner'][n] != -player:
            continue
        if s['values'][s['card'][n]][(side + 2) % 4] < s['values'][card][side]:
            s['owner'][n] = player
            s['score'][me] += 1
            s['score'][1 - me] -= 1


def ref_step(s, action, after, max_steps=30, penalty=np.float32(0.1)):
    """Apply `action` to the state dict `s` in place; the bot's random choice is read from `after`
    (the C env's next state) and checked to be legal. Returns (reward, done, won)."""
    s['tick'] += 1
    reward, done, won = np.float32(0), False, False
    if s['tick'] > max_steps:
        reward, done = np.float32(-1), True
    elif action < PLACE:
        if s['location'][action]:
            reward = -penalty
        else:
            s['selected'][0] = action
    else:
        cell = action - PLACE
        if s['selected'][0] < 0 or s['owner'][cell] != 0:
            reward = -penalty
        else:
            ref_place(s, s['selected'][0], cell, AGENT)
            s['selected'][0] = -1
            if 0 not in s['owner']:
                done, won = True, s['score'][0] > s['score'][1]
                reward = np.float32(1 if won else -1 if s['score'][0] < s['score'][1] else 0)
            else:
                moved = [k for k in range(5) if s['location'][5 + k] == 0 and after['location'][5 + k]]
                assert len(moved) == 1, 'the bot must place exactly one card of its hand'
                k = moved[0]
                bot_cell = after['location'][5 + k] - 1
                assert s['owner'][bot_cell] == 0, 'the bot placed on an occupied cell'
                s['selected'][1] = k
                ref_place(s, 5 + k, bot_cell, BOT)
    s['episode_return'] = np.float32(s['episode_return'] + reward)
    return reward, done, won


def ref_obs(s):
    obs = np.zeros(114, np.float32)
    obs[0:9] = s['owner']
    obs[9:14] = [loc != 0 for loc in s['location'][:5]]
    obs[14:23] = [owner != 0 for owner in s['owner']]
    obs[23] = s['selected'][0] < 0
    obs[24:26] = [(k + 1) / 5 for k in s['selected']]
    obs[26:28] = [score / 10 for score in s['score']]
    for cell, card in enumerate(s['card']):
        if card >= 0:
            obs[28 + 4 * cell:32 + 4 * cell] = np.array(s['values'][card]) / 7
    obs[64:104] = np.array(s['values']).ravel() / 7
    obs[104:114] = np.array(s['location']) / 9
    return obs


def assert_fresh_episode(env, i=0):
    s = env.c.get_state(i)
    assert s['owner'] == [0] * 9 and s['card'] == [-1] * 9 and s['location'] == [0] * 10
    assert s['score'] == [5, 5] and s['selected'] == [-1, -1] and s['tick'] == 0
    assert s['episode_return'] == 0
    assert all(1 <= v <= 7 for card in s['values'] for v in card)
    np.testing.assert_allclose(env.observations[i], ref_obs(s), atol=1e-6)


# ---- rules on hand-built states ----

# For each side of the centre cell (4): the neighbour cell and the neighbour's facing side.
SIDES = [(NORTH, 1, SOUTH), (EAST, 5, WEST), (SOUTH, 7, NORTH), (WEST, 3, EAST)]


@pytest.mark.parametrize('side, cell, facing', SIDES)
def test_capture_on_each_side(side, cell, facing):
    env = make()
    s = blank_state()
    s['values'][0] = [2, 2, 2, 2]
    s['values'][0][side] = 6                 # only the side that faces the enemy is strong
    s['values'][5] = [7, 7, 7, 7]
    s['values'][5][facing] = 5               # the enemy's facing value is lower
    put(s, 5, cell)
    env.c.set_state(0, **s)
    assert step(env, SELECT + 0)[0][0] == 0
    reward, terminal = step(env, PLACE + 4)
    after = env.c.get_state(0)
    assert after['owner'][cell] == AGENT and after['card'][cell] == 5
    assert after['owner'][4] == AGENT
    assert after['score'] == [6, 4]
    assert reward[0] == 0 and not terminal[0]
    # the other enemy-adjacent sides are weak (2): an enemy card there is not flipped
    for other, other_cell, other_facing in SIDES:
        if other != side:
            s2 = copy.deepcopy(s)
            put(s2, 6, other_cell)
            s2['values'][6] = [1, 1, 1, 1]
            s2['values'][6][other_facing] = 2    # equal to the placed card's 2: no capture
            env.c.set_state(0, **s2)
            step(env, SELECT + 0)
            step(env, PLACE + 4)
            after = env.c.get_state(0)
            assert after['owner'][other_cell] == BOT and after['owner'][cell] == AGENT
            assert after['score'] == [6, 4]


@pytest.mark.parametrize('side, cell, facing', SIDES)
def test_bot_captures_on_each_side(side, cell, facing):
    # Two empty cells are left for the bot: the centre, whose `side` neighbour is the agent's card
    # 0 (weaker on `facing`), and another where it can capture nothing. Its two cards are identical.
    # Over several seeds the bot plays both cells; the flip happens exactly when it plays the centre.
    s = blank_state(agent=[[7, 7, 7, 7]] * 5, bot=[[7, 7, 7, 7]] * 5)
    s['values'][0][facing] = 6
    for k in (8, 9):
        s['values'][k] = [1, 1, 1, 1]
        s['values'][k][side] = 7
    put(s, 0, cell)
    free = [c for c in range(9) if c not in (4, cell)]
    agent_cell, other = free.pop(), free.pop()
    for card, c in zip((1, 2, 5, 6, 7), free):
        put(s, card, c)
    env = make()
    seen = set()
    for seed in range(100):
        env.reset(seed=seed)
        env.c.set_state(0, **s)
        step(env, SELECT + 3)
        reward, terminal = step(env, PLACE + agent_cell)
        assert reward[0] == 0 and not terminal[0]
        after = env.c.get_state(0)
        bot_card = [k for k in (8, 9) if after['location'][k]]
        assert len(bot_card) == 1
        bot_cell = after['location'][bot_card[0]] - 1
        assert bot_cell in (4, other) and after['card'][bot_cell] == bot_card[0]
        assert after['owner'][bot_cell] == BOT and after['selected'][1] == bot_card[0] - 5
        if bot_cell == 4:
            assert after['owner'][cell] == BOT and after['score'] == [4, 6]
        else:
            assert after['owner'][cell] == AGENT and after['score'] == [5, 5]
        seen.add((bot_cell, bot_card[0]))
    assert seen == {(4, 8), (4, 9), (other, 8), (other, 9)}


def test_no_capture_of_own_cards():
    env = make()
    s = blank_state()
    s['values'][0] = [7, 7, 7, 7]
    for k, cell in zip((1, 2, 3, 4), (1, 3, 5, 7)):
        s['values'][k] = [1, 1, 1, 1]
        put(s, k, cell)
    env.c.set_state(0, **s)
    step(env, SELECT + 0)
    step(env, PLACE + 4)
    after = env.c.get_state(0)
    assert [after['owner'][c] for c in (1, 3, 4, 5, 7)] == [AGENT] * 5
    assert after['score'] == [5, 5]


@pytest.mark.parametrize('side, cell, facing', SIDES)
def test_equal_values_do_not_capture(side, cell, facing):
    env = make()
    s = blank_state()
    s['values'][0] = [5, 5, 5, 5]
    s['values'][5] = [5, 5, 5, 5]
    put(s, 5, cell)
    env.c.set_state(0, **s)
    step(env, SELECT + 0)
    step(env, PLACE + 4)
    after = env.c.get_state(0)
    assert after['owner'][cell] == BOT and after['score'] == [5, 5]


def test_several_captures_move_one_point_each():
    env = make()
    s = blank_state()
    s['values'][0] = [7, 7, 7, 7]
    for k, cell in zip((5, 6, 7), (1, 3, 5)):
        s['values'][k] = [6, 6, 6, 6]
        put(s, k, cell)
    s['values'][8] = [7, 7, 7, 7]                # cell 7: stronger, not flipped
    put(s, 8, 7)
    env.c.set_state(0, **s)
    step(env, SELECT + 0)
    step(env, PLACE + 4)
    after = env.c.get_state(0)
    assert [after['owner'][c] for c in (1, 3, 5, 7)] == [AGENT, AGENT, AGENT, BOT]
    assert after['score'] == [8, 2] and sum(after['score']) == 10


@pytest.mark.parametrize('agent_score, reward, perf', [(6, 1.0, 1.0), (4, -1.0, 0.0), (5, 0.0, 0.0)])
def test_end_of_game_reward(agent_score, reward, perf):
    # 8 cells full; the agent's last card (no captures possible) fills the board.
    env = make()
    s = blank_state(agent=[[1, 1, 1, 1]] * 5)
    for card, cell in zip((0, 1, 2, 3, 5, 6, 7, 8), range(8)):
        put(s, card, cell)
    s['score'] = [agent_score, 10 - agent_score]
    s['tick'], s['episode_return'] = 12, -0.5
    env.c.set_state(0, **s)
    r, terminal = step(env, SELECT + 4)
    assert r[0] == 0 and not terminal[0]
    r, terminal = step(env, PLACE + 8)
    assert r[0] == reward and terminal[0] and not env.truncations[0]
    log = env.c.log()
    assert log['n'] == 1 and log['perf'] == perf and log['score'] == agent_score
    assert log['episode_length'] == 14
    assert log['episode_return'] == pytest.approx(-0.5 + reward)
    assert_fresh_episode(env)                    # auto-reset in the same step
    assert env.c.log() == {}                     # counted once


def test_select_used_card_is_a_penalised_no_op():
    env = make()
    s = blank_state()
    put(s, 2, 0)
    s['selected'][0] = 1
    env.c.set_state(0, **s)
    obs = env.observations[0].copy()
    r, terminal = step(env, SELECT + 2)
    assert r[0] == np.float32(-0.1) and not terminal[0]
    after = env.c.get_state(0)
    assert after['selected'][0] == 1 and after['tick'] == 1
    assert after['episode_return'] == np.float32(-0.1)
    np.testing.assert_array_equal(env.observations[0], obs)


def test_place_without_selection_is_a_penalised_no_op():
    env = make()
    s0 = env.c.get_state(0)
    r, terminal = step(env, PLACE + 4)
    assert r[0] == np.float32(-0.1) and not terminal[0]
    after = env.c.get_state(0)
    assert after['owner'] == [0] * 9 and after['location'] == [0] * 10
    assert after['tick'] == 1 and after['values'] == s0['values']


def test_place_on_occupied_cell_is_a_penalised_no_op_keeping_the_selection():
    env = make()
    s = blank_state()
    put(s, 5, 4)
    s['selected'][0] = 3
    env.c.set_state(0, **s)
    r, terminal = step(env, PLACE + 4)
    assert r[0] == np.float32(-0.1) and not terminal[0]
    after = env.c.get_state(0)
    assert after['selected'][0] == 3 and after['card'][4] == 5 and after['location'][3] == 0


def test_valid_select_and_place_are_free_and_placing_clears_the_selection():
    env = make()
    assert step(env, SELECT + 3)[0][0] == 0
    assert step(env, SELECT + 1)[0][0] == 0          # reselecting is allowed
    assert env.c.get_state(0)['selected'][0] == 1
    r, _ = step(env, PLACE + 0)
    after = env.c.get_state(0)
    assert after['card'][0] == 1 and after['location'][1] == 1 and after['selected'][0] == -1
    assert r[0] == 0 and after['episode_return'] == 0
    assert sum(1 for k in range(5, 10) if after['location'][k]) == 1   # the bot answered


@pytest.mark.parametrize('max_steps', [30, 5])
def test_step_limit_ends_the_episode_with_minus_one(max_steps):
    env = make(max_steps=max_steps) if max_steps != 30 else make()
    for t in range(max_steps):
        r, terminal = step(env, SELECT + t % 5)          # free, never ends the game
        assert r[0] == 0 and not terminal[0]
    assert env.c.get_state(0)['tick'] == max_steps
    r, terminal = step(env, SELECT + 0)
    assert r[0] == -1 and terminal[0] and not env.truncations[0]
    log = env.c.log()
    assert log == {'episode_return': -1.0, 'episode_length': max_steps + 1, 'score': 5.0,
                   'perf': 0.0, 'n': 1}
    assert_fresh_episode(env)


def test_step_limit_ignores_the_last_action():
    env = make()
    s = blank_state()
    s['tick'], s['selected'][0] = 30, 0
    env.c.set_state(0, **s)
    r, terminal = step(env, PLACE + 4)                   # would be a valid placement
    assert r[0] == -1 and terminal[0]
    assert env.c.log()['score'] == 5


def test_bot_only_places_its_own_unused_cards_on_empty_cells():
    env = make(num_envs=8, seed=3)
    rng = np.random.default_rng(0)
    placements = 0
    for _ in range(400):
        before = [env.c.get_state(i) for i in range(8)]
        actions = [smart_action(s, rng) for s in before]
        step(env, *actions)
        for i, (s, a) in enumerate(zip(before, actions)):
            if env.terminals[i] or a < PLACE or s['selected'][0] < 0 or s['owner'][a - PLACE]:
                continue
            after = env.c.get_state(i)
            new_bot = [k for k in range(5, 10) if after['location'][k] and not s['location'][k]]
            assert len(new_bot) == 1
            cell = after['location'][new_bot[0]] - 1
            assert s['owner'][cell] == 0 and cell != a - PLACE
            assert after['card'][cell] == new_bot[0]
            assert all(after['location'][k] == s['location'][k] for k in range(5, 10) if k != new_bot[0])
            placements += 1
    assert placements > 300


# ---- random play against the reference ----

def smart_action(s, rng):
    """Half uniform random, half a legal move, so that random play reaches full boards."""
    if rng.random() < 0.5:
        return int(rng.integers(0, 14))
    if s['selected'][0] < 0:
        return SELECT + int(rng.choice([k for k in range(5) if s['location'][k] == 0]))
    return PLACE + int(rng.choice([c for c in range(9) if s['owner'][c] == 0]))


def test_random_play_matches_the_reference():
    n = 4
    env = make(num_envs=n, seed=11)
    rng = np.random.default_rng(1)
    outcomes = set()
    episodes = 0
    for t in range(3000):
        before = [env.c.get_state(i) for i in range(n)]
        actions = [smart_action(s, rng) for s in before]
        step(env, *actions)
        finished = []
        for i in range(n):
            s = copy.deepcopy(before[i])
            after = env.c.get_state(i)
            reward, done, won = ref_step(s, actions[i], after)
            assert env.rewards[i] == reward and env.terminals[i] == done and not env.truncations[i]
            assert sum(after['score']) == 10
            if done:
                finished.append((s['episode_return'], s['tick'], s['score'][0], float(won)))
                outcomes.add(float(reward))
                assert_fresh_episode(env, i)
            else:
                assert after['episode_return'] == pytest.approx(s['episode_return'], abs=1e-5)
                s['episode_return'] = after['episode_return']
                assert after == s
                np.testing.assert_allclose(env.observations[i], ref_obs(after), atol=1e-6)
        log = env.c.log()
        if finished:
            episodes += len(finished)
            expected = np.mean(finished, axis=0)
            assert log['n'] == len(finished)
            got = [log['episode_return'], log['episode_length'], log['score'], log['perf']]
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        else:
            assert log == {}
    assert outcomes == {-1.0, 0.0, 1.0} and episodes > 200


def test_observation_bounds_and_mask_meaning():
    env = make(num_envs=16, seed=5)
    rng = np.random.default_rng(2)
    for _ in range(500):
        states = [env.c.get_state(i) for i in range(16)]
        obs = env.observations.copy()
        assert obs.min() >= -1 and obs.max() <= 1
        actions = [smart_action(s, rng) for s in states]
        step(env, *actions)
        for i, a in enumerate(actions):
            # the 15 mask values say exactly which actions are penalised no-ops
            invalid = obs[i, 9 + a] if a < PLACE else max(obs[i, 14 + a - PLACE], obs[i, 23])
            if states[i]['tick'] < 30:
                assert (env.rewards[i] == np.float32(-0.1)) == bool(invalid)
        # action_mask (for the policy) is the same rule over all 14 actions, in NumPy and torch
        allowed = TripleTriad.action_mask(obs)
        assert allowed.dtype == bool and allowed.shape == (16, 14) and allowed.any(axis=1).all()
        for i, a in enumerate(actions):
            if states[i]['tick'] < 30:
                assert allowed[i, a] == (env.rewards[i] != np.float32(-0.1))
        np.testing.assert_array_equal(TripleTriad.action_mask(torch.from_numpy(obs)).numpy(), allowed)


# ---- determinism and seeding ----

def rollout(env, actions):
    out = []
    for a in actions:
        env.step(a)
        out.append((env.observations.copy(), env.rewards.copy(), env.terminals.copy()))
    return out


def test_same_seed_same_trajectory_and_subenvs_differ():
    actions = np.random.default_rng(3).integers(0, 14, (500, 8), dtype=np.int32)
    a, b = make(num_envs=8, seed=42), make(num_envs=8, seed=42)
    ra, rb = rollout(a, actions), rollout(b, actions)
    for x, y in zip(ra, rb):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    obs = a.reset(seed=1)[0]
    assert len({row.tobytes() for row in obs}) == 8
    c = make(num_envs=8, seed=43)
    assert not np.array_equal(c.observations, b.reset(seed=42)[0])


def test_reset_seed_reproduces_and_subenv_i_is_seeded_from_seed_plus_i():
    actions = np.random.default_rng(4).integers(0, 14, (300, 4), dtype=np.int32)
    env = make(num_envs=4)
    env.reset(seed=7)
    first = rollout(env, actions)
    env.reset(seed=7)
    second = rollout(env, actions)
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x[0], y[0])
    single = make(num_envs=1, seed=9)                   # == sub-env 2 of an env seeded 7
    third = rollout(single, actions[:, 2:3])
    for x, y in zip(first, third):
        np.testing.assert_array_equal(x[0][2], y[0][0])
        assert x[1][2] == y[1][0]


def test_episode_stats_each_episode_counted_once():
    env = TripleTriad(num_envs=16, seed=8, report_interval=7)
    env.reset()
    rng = np.random.default_rng(5)
    returns, lengths = np.zeros(16), np.zeros(16)
    finished_returns, finished_lengths, wins, infos = [], [], 0, []
    for _ in range(7 * 300):
        infos += env.step(rng.integers(0, 14, 16, dtype=np.int32))[4]
        returns += env.rewards
        lengths += 1
        for i in np.flatnonzero(env.terminals):
            finished_returns.append(returns[i])
            finished_lengths.append(lengths[i])
            wins += env.rewards[i] == 1
            returns[i] = lengths[i] = 0
    for info in infos:
        assert set(info) == {'episode_return', 'episode_length', 'score', 'perf', 'n'}
        assert info['n'] > 0
    n = sum(info['n'] for info in infos)
    assert n == len(finished_returns) > 100
    mean = lambda key: sum(info[key] * info['n'] for info in infos) / n
    assert mean('episode_return') == pytest.approx(np.mean(finished_returns), rel=1e-4)
    assert mean('episode_length') == pytest.approx(np.mean(finished_lengths), rel=1e-5)
    assert mean('perf') == pytest.approx(wins / n, rel=1e-5)


# ---- binding misuse ----

def test_out_of_range_action_names_subenv_and_value():
    env = make(num_envs=4)
    for bad in (14, -1, 2**31 - 1):
        actions = np.zeros(4, np.int32)
        actions[3] = bad
        with pytest.raises(ValueError, match=f'action {bad} of sub-env 3 is outside 0..13'):
            env.step(actions)


def test_close_twice_and_use_after_close():
    env = make(num_envs=2)
    env.close()
    env.close()
    with pytest.raises(ValueError, match='closed'):
        env.step(np.zeros(2, np.int32))
    with pytest.raises(ValueError, match='closed'):
        env.c.get_state(0)


def test_get_state_bad_index():
    env = make(num_envs=2)
    for i in (2, -1):
        with pytest.raises(IndexError, match=f'env_id {i} is out of range for 2 sub-envs'):
            env.c.get_state(i)
    with pytest.raises(KeyError, match='unknown state fields'):
        env.c.set_state(0, bogus=1)


def buffers(n=4, obs=None, actions=None, rewards=None, terminals=None, truncations=None):
    return dict(observations=obs if obs is not None else np.zeros((n, 114), np.float32),
                actions=actions if actions is not None else np.zeros(n, np.int32),
                rewards=rewards if rewards is not None else np.zeros(n, np.float32),
                terminals=terminals if terminals is not None else np.zeros(n, bool),
                truncations=truncations if truncations is not None else np.zeros(n, bool))


@pytest.mark.parametrize('kwargs, match', [
    (dict(obs=np.zeros((4, 114), np.float64)), 'observations has dtype float64, expected float32'),
    (dict(obs=np.zeros((4, 228), np.float32)[:, ::2]), 'observations must be a writeable C-contiguous'),
    (dict(obs=np.zeros((3, 114), np.float32)), 'observations has 3 rows, expected at least 4'),
    (dict(obs=np.zeros((4, 113), np.float32)), 'observations rows hold 113 values, expected 114'),
    (dict(obs=np.zeros((4, 114), np.float32), features=True),
     'observations rows hold 114 values, expected 245'),
    (dict(actions=np.zeros(4, np.int64)), 'actions has dtype int64, expected int32'),
    (dict(actions=np.zeros(2, np.int32)), 'actions has 2 rows'),
    (dict(rewards=np.zeros(4, np.float64)), 'rewards has dtype float64'),
    (dict(terminals=np.zeros((4, 2), bool)), 'terminals rows hold 2 values, expected 1'),
    (dict(truncations=np.zeros(8, bool)[::2]), 'truncations must be a writeable C-contiguous'),
])
def test_bad_buffers_name_the_array(kwargs, match):
    features = kwargs.pop('features', False)
    with pytest.raises(ValueError, match=match):
        binding.Binding(buffers(**kwargs), 4, features=features)


def test_registry_and_spaces():
    env = pufferlib.ocean.make('triple_triad', num_envs=3)
    assert isinstance(env, TripleTriad) and env.num_agents == 3
    assert env.single_observation_space.shape == (114,) and env.single_action_space.n == 14
    assert env.observation_space.shape == (3, 114)


# ---- rendering ----

@pytest.mark.render
def test_render_draws_the_state():
    from pufferlib.ocean.triple_triad import triple_triad as tt
    env = make(render_mode='human')
    s = blank_state()
    put(s, 0, 0)                      # agent card on cell 0
    put(s, 6, 4)                      # bot card on cell 4
    put(s, 1, 8, owner=BOT)           # an agent card captured by the bot on cell 8
    s['selected'][0] = 2
    s['score'] = [4, 6]
    env.c.set_state(0, **s)
    env.render()
    env.render()
    img = env.window.screenshot()
    assert img.shape == (tt.HEIGHT, tt.WIDTH, 3)

    def centre(rect):
        x, y, w, h = rect
        return tuple(img[y + h // 2, x + w // 2])

    assert centre(tt.cell_rect(0)) == tt.AGENT_COLOR
    assert centre(tt.cell_rect(4)) == tt.BOT_COLOR
    assert centre(tt.cell_rect(8)) == tt.BOT_COLOR
    assert centre(tt.cell_rect(1)) == tt.EMPTY_COLOR
    assert centre(tt.hand_rect(0, 0)) == tt.USED_COLOR          # played
    assert centre(tt.hand_rect(0, 2)) == tt.AGENT_COLOR          # in hand
    assert centre(tt.hand_rect(1, 1)) == tt.USED_COLOR
    assert centre(tt.hand_rect(1, 0)) == tt.BOT_COLOR
    x, y, w, h = tt.hand_rect(0, 2)
    assert tuple(img[y + h // 2, x + 1]) == tt.SELECTED_COLOR    # the selected card's outline
    x, y, w, h = tt.hand_rect(0, 3)
    assert tuple(img[y + h // 2, x + 1]) != tt.SELECTED_COLOR
    # the values are drawn: text pixels near the top centre of the agent card on cell 0
    x, y, w, h = tt.cell_rect(0)
    top = img[y + 8:y + 36, x + w // 2 - 12:x + w // 2 + 12]
    assert (top == tt.TEXT_COLOR).all(axis=-1).any()
    env.close()


@pytest.mark.render
def test_play_maps_keys_and_clicks_to_actions(monkeypatch):
    """Human play, with raylib's input functions replaced by a script of frames: key 3 selects
    card 2, a click on the centre cell places it there (action 5 + 4), then the window closes."""
    import types
    from pufferlib.ocean.render import Window, raylib
    from pufferlib.ocean.triple_triad import triple_triad as tt
    rl = raylib()
    x, y, w, h = tt.cell_rect(4)
    script = iter([('key', rl.KEY_ONE + 2), ('nothing',), ('click', (x + w // 2, y + h // 2)),
                   ('click', (5, 5)), ('close',)])
    frame = {}

    def should_close(self):
        frame['event'] = next(script)
        return frame['event'][0] == 'close'

    monkeypatch.setattr(Window, 'should_close', should_close)
    monkeypatch.setattr(rl, 'is_key_pressed', lambda key: frame['event'] == ('key', key))
    monkeypatch.setattr(rl, 'is_mouse_button_pressed', lambda button: frame['event'][0] == 'click')
    monkeypatch.setattr(rl, 'get_mouse_position',
                        lambda: types.SimpleNamespace(x=frame['event'][1][0], y=frame['event'][1][1]))
    actions, states = [], []
    original_step = tt.TripleTriad.step

    def recording_step(self, a):
        actions.append(int(a[0]))
        out = original_step(self, a)
        states.append(self.c.get_state(0))
        return out

    monkeypatch.setattr(tt.TripleTriad, 'step', recording_step)
    pufferlib.ocean.play('triple_triad', seed=1)
    assert actions == [2, 9]                          # the click outside the board did nothing
    assert states[0]['selected'][0] == 2
    assert states[1]['card'][4] == 2 and states[1]['location'][2] == 5   # (the bot may flip it)


def test_bad_config():
    with pytest.raises(APIUsageError, match=r'max_steps is 0: it must be an integer in \[1, '):
        TripleTriad(max_steps=0)


# ---- the observation option `features` ----

FEATURES = 114                  # where the features start in the observation row


def reference_features(s):
    """The observation with features=True by hand from a state (triple_triad.h lists the layout)."""
    values, owner = s['values'], s['owner']
    bot_hand = [k for k in range(5, 10) if s['location'][k] == 0]

    def flips(card, cell):
        return sum(1 for side in range(4) if (n := neighbour(cell, side)) is not None
                   and owner[n] == BOT and values[card][side] > values[s['card'][n]][(side + 2) % 4])

    def exposure(card, cell):  # sides facing an empty cell, weighted by the bot cards beating them
        total = 0.0
        for side in range(4):
            n = neighbour(cell, side)
            if n is not None and owner[n] == 0 and bot_hand:
                beat = sum(values[k][(side + 2) % 4] > values[card][side] for k in bot_hand)
                total += beat / len(bot_hand)
        return total

    selected = s['selected'][0]
    flip = np.array([[flips(k, c) for c in range(9)] for k in range(5)]) / 4
    expo = np.array([[exposure(k, c) for c in range(9)] for k in range(5)]) / 4
    exposed = [exposure(s['card'][c], c) / 4 if owner[c] == AGENT else 0 for c in range(9)]
    pick = np.eye(5)[selected] if selected >= 0 else np.zeros(5)
    free = [c for c in range(9) if owner[c] == 0]
    best = [max([-1] + [flip[k, c] - expo[k, c] for c in free]) if s['location'][k] == 0 else 0
            for k in range(5)]
    return np.concatenate([ref_obs(s), pick, pick @ np.array(values[:5]) / 7, flip.ravel(),
                           expo.ravel(), exposed, pick @ flip, pick @ expo, best]).astype(np.float32)


def test_features_follow_the_state_in_every_step():
    """features=True: after every step of random play (no-ops, the bot's moves, finished games: the
    step that ends an episode shows the next one's features) the observation is the reference's; the
    first 114 values and the game are those of features=False."""
    n = 16
    plain, featured = make(num_envs=n, seed=9), make(num_envs=n, seed=9, features=True)
    assert featured.single_observation_space.shape == (FEATURES + 131,)
    assert featured.observations.shape == (n, 245)
    rng = np.random.default_rng(4)
    checked, ended = np.zeros(5), 0
    for _ in range(400):
        states = [featured.c.get_state(i) for i in range(n)]
        expected = np.array([reference_features(s) for s in states])
        np.testing.assert_allclose(featured.observations, expected, atol=1e-6)
        checked += [(expected[:, a:b] != 0).sum() for a, b in ((123, 168), (168, 213), (213, 222),
                                                              (222, 231), (240, 245))]
        actions = [smart_action(s, rng) for s in states]
        step(plain, *actions)
        step(featured, *actions)
        np.testing.assert_array_equal(featured.observations[:, :FEATURES], plain.observations)
        np.testing.assert_array_equal(featured.rewards, plain.rewards)
        np.testing.assert_array_equal(featured.terminals, plain.terminals)
        ended += featured.terminals.sum()
    assert (checked > 50).all()     # flips, exposure, exposed cards, selected card's flips, best
    assert ended > 100


def test_features_of_a_hand_built_state():
    """Agent card 0 (N 6, E S W 2) selected; a bot card of 3s on cell 1; the agent's card 1 (4s) on
    cell 8; the bot's hand: one card of 7s and three of 1s. On the centre cell card 0 flips the
    bot card above it (1 side of 4) and faces three empty cells, each beaten by 1 of the 4 bot
    cards: exposure 3 * 1/4 / 4. Card 1 on cell 8 faces two empty cells, each beaten by the 7s."""
    env = make(features=True)
    state = blank_state(agent=[[6, 2, 2, 2]] + [[4, 4, 4, 4]] * 4,
                        bot=[[3, 3, 3, 3], [7, 7, 7, 7]] + [[1, 1, 1, 1]] * 3)
    put(state, 5, 1)
    put(state, 1, 8)
    state['selected'] = [0, -1]
    env.c.set_state(0, **state)
    obs = env.observations[0]
    np.testing.assert_allclose(obs, reference_features(env.c.get_state(0)), atol=1e-6)
    f = obs[FEATURES:]
    np.testing.assert_array_equal(f[0:5], [1, 0, 0, 0, 0])                  # card 0 selected
    np.testing.assert_allclose(f[5:9], np.array([6, 2, 2, 2]) / 7)
    flips, exposure = f[9:54].reshape(5, 9), f[54:99].reshape(5, 9)
    np.testing.assert_array_equal(flips[0], [0, 0, 0, 0, 0.25, 0, 0, 0, 0])
    # the 4s beat the bot card's 3s from below (cell 4) and beside it (cells 0 and 2)
    np.testing.assert_array_equal(flips[1:], np.tile([0.25, 0, 0.25, 0, 0.25, 0, 0, 0, 0], (4, 1)))
    assert exposure[0, 4] == 0.1875 and exposure[0, 0] == exposure[0, 2] == 0.0625
    np.testing.assert_array_equal(f[99:108], [0] * 8 + [0.125])            # card 1 on cell 8
    np.testing.assert_array_equal(f[108:117], flips[0])
    np.testing.assert_array_equal(f[117:126], exposure[0])
    # best: card 0 on the centre (0.25 - 0.1875), the 4s on cell 0 or 2 (0.25 - 0.0625); card 1 is played
    np.testing.assert_array_equal(f[126:131], [0.0625, 0, 0.1875, 0.1875, 0.1875])
    env.c.set_state(0, selected=[-1, -1])
    assert not env.observations[0, FEATURES:FEATURES + 9].any()
    assert not env.observations[0, FEATURES + 108:FEATURES + 126].any()
