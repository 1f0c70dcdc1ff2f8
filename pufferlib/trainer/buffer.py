"""The segment buffer: `segments` rows of `horizon` consecutive steps of one agent each.

A record of agent `a` at time t is (obs_t, action_t, logprob_t, value_t) plus the (reward,
terminal, truncation) that arrived with obs_t, i.e. the outcome of action t-1. Each agent appends
records to its current row. When a row holds `horizon` records it is closed, and the agent's next
record is written twice: as column `horizon` of the closed row (value, reward, terminal and
truncation only: what the advantage of the row's last step needs) and as column 0 of a new row.
The rollout is complete when every row holds `horizon` records plus its column `horizon`.

A record that cannot open a row (none left in this rollout) is kept per agent as `carry` and
opens that agent's first row of the next rollout: the record completing the last row is never
discarded and no extra env step is needed. Records of absent agents (mask False) are not stored.
Per-agent bookkeeping is vectorised with NumPy over the agent ids of each batch.
"""
import numpy as np
import torch

from pufferlib.exceptions import APIUsageError

RECORD_FIELDS = ('observations', 'actions', 'logprobs', 'values', 'rewards', 'terminals',
                 'truncations')


class SegmentBuffer:
    def __init__(self, segments, horizon, num_agents, obs_shape, obs_dtype, action_shape,
                 action_dtype, state_size=0, device='cpu'):
        if segments < num_agents:
            raise APIUsageError(
                f'the buffer has {segments} segments (batch_size // bptt_horizon) but the env has '
                f'{num_agents} agents: every agent needs a row, so raise batch_size to at least '
                f'{num_agents * horizon} or lower bptt_horizon')
        S, H, N = segments, horizon, num_agents
        self.segments, self.horizon, self.num_agents, self.device = S, H, N, device
        zeros = lambda *shape, dtype=torch.float32: torch.zeros(shape, dtype=dtype, device=device)
        self.observations = zeros(S, H, *obs_shape, dtype=obs_dtype)
        self.actions = zeros(S, H, *action_shape, dtype=action_dtype)
        self.logprobs = zeros(S, H)
        self.values = zeros(S, H + 1)
        self.rewards = zeros(S, H + 1)
        self.terminals = zeros(S, H + 1)
        self.truncations = zeros(S, H + 1)
        self.ratio = torch.ones(S, H, device=device)      # importance ratio, per step
        self.advantages = zeros(S, H)
        self.state_size = state_size
        if state_size:                                     # LSTM state at each row's column 0
            self.start_h = zeros(S, state_size)
            self.start_c = zeros(S, state_size)
        # Per-agent bookkeeping (NumPy: these are many tiny operations per step).
        self.row = np.full(N, -1, np.int64)       # row being filled, -1: none
        self.col = np.zeros(N, np.int64)          # next column in that row
        self.closed = np.full(N, -1, np.int64)    # full row waiting for its column H, -1: none
        self.has_carry = np.zeros(N, bool)
        self.carry = {
            'observations': zeros(N, *obs_shape, dtype=obs_dtype),
            'actions': zeros(N, *action_shape, dtype=action_dtype),
            'logprobs': zeros(N), 'values': zeros(N), 'rewards': zeros(N),
            'terminals': zeros(N), 'truncations': zeros(N)}
        if state_size:
            self.carry['start_h'] = zeros(N, state_size)
            self.carry['start_c'] = zeros(N, state_size)
        self.next_row = 0      # rows [0, next_row) have been opened in this rollout
        self.completed = 0     # rows holding all H + 1 columns
        self.rollouts = 0

    @property
    def full(self):
        return self.completed == self.segments

    def start_rollout(self):
        """Begin filling the buffer again; carried records open the first rows."""
        if self.rollouts and not self.full:
            raise APIUsageError('start_rollout() before the previous rollout filled the buffer')
        self.rollouts += 1
        self.next_row = self.completed = 0
        self.ratio.fill_(1.0)
        self.row[:] = -1
        self.col[:] = 0
        agents = np.flatnonzero(self.has_carry)
        if len(agents):
            rows = np.arange(len(agents))
            self.next_row = len(agents)
            r = torch.from_numpy(rows).to(self.device)
            a = torch.from_numpy(agents).to(self.device)
            for name in RECORD_FIELDS:
                getattr(self, name)[r, 0] = self.carry[name][a]
            if self.state_size:
                self.start_h[r] = self.carry['start_h'][a]
                self.start_c[r] = self.carry['start_c'][a]
            self.row[agents] = rows
            self.col[agents] = 1
            self.has_carry[agents] = False

    def add(self, agent_ids, masks, record, state=None):
        """Store one record per agent of a batch. `agent_ids` (NumPy ints) names the agents,
        `masks` (NumPy bool or None) says which are present; `record` maps each of RECORD_FIELDS
        to a tensor with one row per agent of the batch; `state` is the LSTM state `(h, c)` that
        was the input of this step (stored for rows that start here)."""
        ids = np.asarray(agent_ids, dtype=np.int64)
        batch = np.arange(len(ids))
        if masks is not None and not masks.all():
            batch = np.flatnonzero(masks)
            ids = ids[batch]
            if len(ids) == 0:
                return
        H = self.horizon

        # 1. the record is column H of the agent's last closed row
        closed = self.closed[ids]
        k = np.flatnonzero(closed >= 0)
        if len(k):
            r, _, b = self.index(closed[k], None, batch[k])
            for name in ('values', 'rewards', 'terminals', 'truncations'):
                getattr(self, name)[r, H] = record[name][b]
            self.closed[ids[k]] = -1
            self.completed += len(k)

        # 2. agents without a row open one, while rows are left
        rows = self.row[ids]
        need = np.flatnonzero(rows < 0)
        if len(need):
            need = need[:self.segments - self.next_row]
            rows[need] = self.row[ids[need]] = np.arange(self.next_row, self.next_row + len(need))
            self.col[ids[need]] = 0
            self.next_row += len(need)
            if self.state_size and len(need):
                r, _, b = self.index(rows[need], None, batch[need])
                self.start_h[r] = state[0][b]
                self.start_c[r] = state[1][b]

        # 3. store the record in the agent's row; a row holding H records is closed
        w = np.flatnonzero(rows >= 0)
        if len(w):
            a, r = ids[w], rows[w]
            c = self.col[a]
            rt, ct, bt = self.index(r, c, batch[w])
            for name in RECORD_FIELDS:
                getattr(self, name)[rt, ct] = record[name][bt]
            self.col[a] = c + 1
            done = c + 1 == H
            self.closed[a[done]] = r[done]
            self.row[a[done]] = -1
            self.has_carry[a] = False

        # 4. a record that opened no row is kept for the next rollout
        nw = np.flatnonzero(rows < 0)
        if len(nw):
            at, _, bt = self.index(ids[nw], None, batch[nw])
            a = ids[nw]
            for name in RECORD_FIELDS:
                self.carry[name][at] = record[name][bt]
            if self.state_size:
                self.carry['start_h'][at] = state[0][bt]
                self.carry['start_c'][at] = state[1][bt]
            self.has_carry[a] = True

    def index(self, rows, cols, batch):
        """Indices for (rows, cols) of the buffer and the batch: slices and an int when the rows
        and batch entries are contiguous ranges and the column is shared (the usual synchronous
        case: plain copies instead of gathers and scatters), else index tensors."""
        if is_range(rows) and is_range(batch) and (cols is None or (cols == cols[0]).all()):
            return (slice(int(rows[0]), int(rows[-1]) + 1), None if cols is None else int(cols[0]),
                    slice(int(batch[0]), int(batch[-1]) + 1))
        tensor = lambda x: None if x is None else torch.from_numpy(x).to(self.device)
        return tensor(rows), tensor(cols), tensor(batch)


def is_range(x):
    n = len(x)
    return n > 0 and x[-1] - x[0] == n - 1 and (n == 1 or bool((np.diff(x) == 1).all()))
