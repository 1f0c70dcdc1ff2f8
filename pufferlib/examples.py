"""Small pure-NumPy envs for tests, docs and benchmarks.

`Match` is a vectorized PufferEnv: each sub-env shows a one-hot target and pays 1 when the action
matches it; an episode lasts `episode_length` steps. `MatchGym` is the same game for one agent as a
plain `gymnasium.Env`, so a trajectory of `MatchGym(seed=s + i)` equals that of sub-env i of
`Match(seed=s)`. Targets come from a counter-based hash of (sub-env seed, episode, step), so the
result does not depend on how sub-envs are grouped into env objects or processes.
"""
import gymnasium
import numpy as np

from pufferlib import PufferEnv

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x):
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64) + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _targets(seeds, episodes, ticks, num_actions):
    with np.errstate(over='ignore'):
        h = splitmix64(splitmix64(splitmix64(seeds) + episodes.astype(np.uint64)) + ticks.astype(np.uint64))
    return (h % np.uint64(num_actions)).astype(np.int64)


def _burn(scratch, work):
    """Spend CPU time proportional to `work` (benchmarks use it to make the env step dominate)."""
    for _ in range(work):
        np.sin(scratch, out=scratch)


class Match(PufferEnv):
    """`num_envs` independent sub-envs, one agent each. Observation: one-hot target (num_actions
    values) then the fraction of the episode elapsed. Reward 1 for a matching action. Reports
    episode stats (episode_return, episode_length, score, perf, n) every `report_interval` steps."""

    def __init__(self, num_envs=1, num_actions=4, episode_length=8, report_interval=32, work=0,
                 buf=None, seed=0):
        self.single_observation_space = gymnasium.spaces.Box(0, 1, (num_actions + 1,), np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(num_actions)
        self.num_agents = self.num_envs = num_envs
        super().__init__(buf)
        self.num_actions, self.episode_length = num_actions, episode_length
        self.report_interval, self.work = report_interval, work
        self._scratch = np.ones(num_envs * 64, np.float64)
        self._rows = np.arange(num_envs)
        self._reseed(seed)

    def _reseed(self, seed):
        self.seeds = np.uint64(seed) + np.arange(self.num_envs, dtype=np.uint64)
        self.episodes = np.zeros(self.num_envs, np.int64)
        self.ticks = np.zeros(self.num_envs, np.int64)
        self.returns = np.zeros(self.num_envs, np.float32)
        self.log = {'episode_return': 0.0, 'episode_length': 0.0, 'score': 0.0, 'n': 0}
        self.steps = 0

    def _observe(self):
        self.target = _targets(self.seeds, self.episodes, self.ticks, self.num_actions)
        self.observations[:] = 0
        self.observations[self._rows, self.target] = 1
        self.observations[:, -1] = self.ticks / self.episode_length

    def reset(self, seed=None):
        if seed is not None:
            self._reseed(seed)
        self.ticks[:] = 0
        self.returns[:] = 0
        self.rewards[:] = 0
        self.terminals[:] = False
        self.truncations[:] = False
        self._observe()
        return self.observations, []

    def step(self, actions):
        self.actions[:] = actions
        _burn(self._scratch, self.work)
        np.equal(self.actions, self.target, out=self.terminals)  # reuse as scratch for the match
        self.rewards[:] = self.terminals
        self.returns += self.rewards
        self.ticks += 1
        done = self.ticks >= self.episode_length
        self.terminals[:] = done
        if done.any():
            self.log['episode_return'] += float(self.returns[done].sum())
            self.log['episode_length'] += float(self.ticks[done].sum())
            self.log['score'] += float(self.returns[done].sum())
            self.log['n'] += int(done.sum())
            self.returns[done] = 0
            self.ticks[done] = 0
            self.episodes[done] += 1
        self._observe()
        self.steps += 1
        infos = []
        if self.steps % self.report_interval == 0 and self.log['n'] > 0:
            n = self.log['n']
            info = {k: v / n for k, v in self.log.items() if k != 'n'}
            info['perf'] = info['score'] / self.episode_length
            info['n'] = n
            infos.append(info)
            self.log = dict.fromkeys(self.log, 0.0)
            self.log['n'] = 0
        return self.observations, self.rewards, self.terminals, self.truncations, infos


class MatchGym(gymnasium.Env):
    """`Match` for one agent as a plain gymnasium.Env (auto-reset is left to the caller)."""

    def __init__(self, num_actions=4, episode_length=8, work=0, seed=0):
        self.observation_space = gymnasium.spaces.Box(0, 1, (num_actions + 1,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(num_actions)
        self.num_actions, self.episode_length, self.work = num_actions, episode_length, work
        self._scratch = np.ones(64, np.float64)
        self._seed, self._episode, self._tick = np.uint64(seed), -1, 0

    def _observe(self):
        self._target = int(_targets(np.array([self._seed]), np.array([self._episode]),
                                    np.array([self._tick]), self.num_actions)[0])
        obs = np.zeros(self.num_actions + 1, np.float32)
        obs[self._target] = 1
        obs[-1] = self._tick / self.episode_length
        return obs

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._seed, self._episode = np.uint64(seed), -1
        self._episode += 1
        self._tick = 0
        return self._observe(), {}

    def step(self, action):
        _burn(self._scratch, self.work)
        reward = float(int(action) == self._target)
        self._tick += 1
        terminated = self._tick >= self.episode_length
        return self._observe(), reward, terminated, False, {}
