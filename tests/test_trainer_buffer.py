"""The segment buffer's row / column-H bookkeeping, against hand-made expectations and a plain
per-record reference implementation of the rules in pufferlib/trainer/buffer.py."""
import numpy as np
import pytest
import torch

from pufferlib.exceptions import APIUsageError
from pufferlib.trainer.buffer import RECORD_FIELDS, SegmentBuffer


def code(agent, t):
    return float(agent * 1000 + t)


def make_record(ids, t, terminals=None, truncations=None):
    """A record per agent whose every field encodes (agent, t)."""
    ids = np.asarray(ids)
    n = len(ids)
    c = torch.tensor([code(a, t[i] if np.ndim(t) else t) for i, a in enumerate(ids)])
    return {'observations': torch.stack([c, c + 0.5], dim=1), 'actions': c.long(),
            'logprobs': -c, 'values': c, 'rewards': c + 0.25,
            'terminals': torch.zeros(n) if terminals is None else torch.as_tensor(terminals, dtype=torch.float32),
            'truncations': torch.zeros(n) if truncations is None else torch.as_tensor(truncations, dtype=torch.float32)}


def make_buffer(S, H, N, state_size=0):
    return SegmentBuffer(S, H, N, (2,), torch.float32, (), torch.int64, state_size)


def test_sync_rows_and_column_h():
    """Two agents, H=3, four rows: each row holds 3 steps and its column H is the next step,
    which also opens the agent's next row; the record completing the last rows is carried."""
    buf = make_buffer(S=4, H=3, N=2)
    buf.start_rollout()
    t = 0
    while not buf.full:
        buf.add(np.array([0, 1]), None, make_record([0, 1], t))
        t += 1
    assert t == 7
    expected = {0: (0, [0, 1, 2, 3]), 1: (1, [0, 1, 2, 3]), 2: (0, [3, 4, 5, 6]), 3: (1, [3, 4, 5, 6])}
    for row, (agent, steps) in expected.items():
        assert buf.values[row].tolist() == [code(agent, s) for s in steps]
        assert buf.rewards[row].tolist() == [code(agent, s) + 0.25 for s in steps]
        assert buf.logprobs[row].tolist() == [-code(agent, s) for s in steps[:3]]
        assert buf.actions[row].tolist() == [code(agent, s) for s in steps[:3]]
        assert buf.observations[row, :, 1].tolist() == [code(agent, s) + 0.5 for s in steps[:3]]
    # the next rollout starts with the carried record (t=6) in column 0: no step is lost
    buf.start_rollout()
    assert buf.ratio.eq(1).all()
    buf.add(np.array([0, 1]), None, make_record([0, 1], 7))
    assert buf.values[0, :2].tolist() == [code(0, 6), code(0, 7)]
    assert buf.values[1, :2].tolist() == [code(1, 6), code(1, 7)]
    assert not buf.full


def test_terminals_and_truncations_land_in_the_right_columns():
    buf = make_buffer(S=1, H=3, N=1)
    buf.start_rollout()
    flags = [(0, 0), (1, 0), (0, 1), (0, 0)]   # (terminal, truncation) arriving with obs_t
    for t, (term, trunc) in enumerate(flags):
        buf.add(np.array([0]), None, make_record([0], t, [term], [trunc]))
    assert buf.full
    assert buf.terminals[0].tolist() == [0, 1, 0, 0]
    assert buf.truncations[0].tolist() == [0, 0, 1, 0]


def test_masked_agents_are_not_stored():
    buf = make_buffer(S=2, H=2, N=2)
    buf.start_rollout()
    buf.add(np.array([0, 1]), np.array([True, False]), make_record([0, 1], 0))
    buf.add(np.array([0, 1]), np.array([True, True]), make_record([0, 1], 1))
    buf.add(np.array([0, 1]), np.array([True, True]), make_record([0, 1], 2))
    assert not buf.full  # agent 1 has stored 2 steps (t=1, 2), its column H is still missing
    buf.add(np.array([0, 1]), np.array([False, True]), make_record([0, 1], 3))
    assert buf.full
    assert buf.values[0].tolist() == [code(0, 0), code(0, 1), code(0, 2)]
    assert buf.values[1].tolist() == [code(1, 1), code(1, 2), code(1, 3)]
    buf.add(np.array([0, 1]), np.array([False, False]), make_record([0, 1], 4))  # a no-op


def test_async_batches_and_waiting_agents():
    """Batches of different agents; an agent that closes a row when none are free keeps only its
    latest record, which opens its first row of the next rollout."""
    buf = make_buffer(S=3, H=2, N=2)
    buf.start_rollout()
    buf.add(np.array([1]), None, make_record([1], 0))           # agent 1: row 0
    buf.add(np.array([1]), None, make_record([1], 1))           # row 0 closed
    buf.add(np.array([0, 1]), None, make_record([0, 1], [0, 2]))  # agent 0: row 1; agent 1: col H of row 0 + row 2
    buf.add(np.array([1]), None, make_record([1], 3))           # row 2 closed
    buf.add(np.array([1]), None, make_record([1], 4))           # col H of row 2; no free row: carried
    buf.add(np.array([1]), None, make_record([1], 5))           # carried (replaces t=4)
    assert not buf.full
    buf.add(np.array([0]), None, make_record([0], 1))           # row 1 closed
    buf.add(np.array([0]), None, make_record([0], 2))           # col H of row 1: full
    assert buf.full
    assert buf.values[0].tolist() == [code(1, 0), code(1, 1), code(1, 2)]
    assert buf.values[1].tolist() == [code(0, 0), code(0, 1), code(0, 2)]
    assert buf.values[2].tolist() == [code(1, 2), code(1, 3), code(1, 4)]
    buf.start_rollout()  # carried records open rows in agent order
    assert buf.values[0, 0].item() == code(0, 2) and buf.values[1, 0].item() == code(1, 5)


def test_lstm_state_is_stored_at_row_start():
    buf = make_buffer(S=2, H=2, N=1, state_size=3)
    buf.start_rollout()
    for t in range(5):
        h = torch.full((1, 3), float(t))
        buf.add(np.array([0]), None, make_record([0], t), (h, -h))
    assert buf.full
    assert buf.start_h[:, 0].tolist() == [0.0, 2.0]
    assert buf.start_c[:, 0].tolist() == [-0.0, -2.0]
    assert buf.carry['start_h'][0, 0].item() == 4.0
    buf.start_rollout()
    assert buf.start_h[0, 0].item() == 4.0


def reference_rollout(S, H, N, batches, carry=None):
    """Plain per-record implementation of the buffer rules; returns ({row: [records]},
    {row: column-H record}, carry, number of batches consumed)."""
    rows, col_h, carry = {}, {}, dict(carry or {})
    cur, closed, next_row = {}, {}, 0
    for a in sorted(carry):
        rows[next_row], cur[a] = [carry.pop(a)], next_row
        next_row += 1
    for used, (ids, masks, recs) in enumerate(batches, 1):
        for i, a in enumerate(ids):
            if masks is not None and not masks[i]:
                continue
            rec = recs[i]
            if a in closed:
                col_h[closed.pop(a)] = rec
            if a not in cur and next_row < S:
                rows[next_row], cur[a] = [], next_row
                next_row += 1
            if a in cur:
                rows[cur[a]].append(rec)
                carry.pop(a, None)
                if len(rows[cur[a]]) == H:
                    closed[a] = cur.pop(a)
            else:
                carry[a] = rec
        if len(col_h) == S:
            return rows, col_h, carry, used
    raise AssertionError('the reference rollout did not fill the buffer')


@pytest.mark.parametrize('seed', range(6))
def test_random_async_batches_match_reference(seed):
    rng = np.random.default_rng(seed)
    N, H = 6, 3
    S = int(rng.integers(N, 3 * N))
    buf = make_buffer(S, H, N)
    clock = np.zeros(N, int)  # per-agent time: every record is unique
    batches = []
    for _ in range(400):
        size = int(rng.integers(1, N + 1))
        ids = rng.choice(N, size, replace=False)
        masks = rng.random(size) > 0.2 if rng.random() < 0.5 else None
        t = clock[ids].copy()
        clock[ids] += 1
        batches.append((ids, masks, t))
    carry, start = {}, 0
    for rollout in range(3):
        rest = [(ids, m, [code(a, t[i]) for i, a in enumerate(ids)]) for ids, m, t in batches[start:]]
        rows, col_h, carry, used = reference_rollout(S, H, N, rest, carry)
        buf.start_rollout()
        for ids, masks, t in batches[start:start + used]:
            buf.add(ids, masks, make_record(ids, t))
        start += used
        assert buf.full
        for r in range(S):
            assert buf.values[r, :H].tolist() == rows[r], (rollout, r)
            assert buf.values[r, H].item() == col_h[r], (rollout, r)
        assert sorted(carry) == sorted(np.flatnonzero(buf.has_carry).tolist())
        for a, rec in carry.items():
            assert buf.carry['values'][a].item() == rec


def test_too_few_segments_is_an_error():
    with pytest.raises(APIUsageError, match='4 segments .* 8 agents'):
        make_buffer(S=4, H=2, N=8)


def test_record_fields_cover_the_buffer():
    buf = make_buffer(S=2, H=2, N=1)
    for name in RECORD_FIELDS:
        assert getattr(buf, name).shape[:2] in ((2, 2), (2, 3))
