"""Connect4 against a built-in depth-3 opponent (the game in C: connect4.h).

Observation: 42 float32, row-major with row 0 at the top (obs[7 * row + col]): +1 own piece, -1
opponent piece, 0 empty; with `features=True`, 5 planes of 42 more in the same layout (0/1: own
pieces, opponent pieces, playable cells, own and opponent threats; connect4.h). Action:
Discrete(7), the column. The agent moves first, then the opponent. Rewards: win +1, loss -1, draw
0; a move into a full column ends the episode with -1. Episode stats: perf = 1 for a win else 0,
score = the final reward.

The opponent (with probability `opponent_random_prob`, 0 by default, it plays a random legal column):
1. If a column wins immediately for it, it plays one of those, uniformly at random.
2. Otherwise it plays uniformly at random among the columns c maximising -negamax(position after c, 2),
   where negamax(p, d) for the side to move in p is: -1 if the previous move won; 0 if the board is
   full; 0 if d == 0; else max over legal moves m of -negamax(p after m, d - 1). So it sees wins and
   losses within 3 plies counting its own move, and blocks an immediate loss.
"""
import gymnasium
import numpy as np

from pufferlib.ocean.connect4 import binding
from pufferlib.ocean.native import NativeEnv, check_bool, check_real
from pufferlib.ocean.render import raylib

CELL = 96
BAR = 40  # status line under the board
COLORS = {'board': (0, 80, 80), 'empty': (6, 24, 24), 'agent': (0, 187, 187),
          'opponent': (187, 0, 0), 'text': (241, 241, 241)}


class Connect4(NativeEnv):
    def __init__(self, num_envs=1, opponent_random_prob=0.0, features=False, report_interval=128,
                 render_mode=None, buf=None, seed=0):
        seed = self.check_common(num_envs, seed, report_interval, render_mode)
        opponent_random_prob = check_real('Connect4', 'opponent_random_prob', opponent_random_prob,
                                          0, 1)
        features = check_bool('Connect4', 'features', features)
        self.single_observation_space = gymnasium.spaces.Box(-1, 1, (binding.obs_size(features),),
                                                             np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(binding.NUM_ACTIONS)
        self.num_agents = self.num_envs = num_envs
        self.report_interval, self.render_mode = report_interval, render_mode
        self.window = None
        super().__init__(buf)
        self.c = binding.Binding(self.buffers(), num_envs, seed,
                                 opponent_random_prob=opponent_random_prob, features=features)

    @staticmethod
    def action_mask(observations):
        """True for the columns that are not full (their top cell, obs[..., col], is empty), from
        observations of shape (..., 42) or, with the features, (..., 252): NumPy arrays or torch
        tensors."""
        return observations[..., :7] == 0

    def render(self, message=None, last_game=False):
        """Draw sub-env 0 (or, with last_game, the final position of its previous episode);
        render_mode 'rgb_array' returns the frame."""
        if self.open_window(7 * CELL, 6 * CELL + BAR, 'pufferlib connect4') is None:
            return None
        state = self.c.get_state(0)
        agent, opponent = ((state['last_agent'], state['last_opponent']) if last_game
                           else (state['agent'], state['opponent']))
        with self.window.frame() as rl:
            draw_board(rl, agent, opponent)
            if message:
                rl.draw_text(message, 10, 6 * CELL + 10, 20, rl.Color(*COLORS['text'], 255))
        return self.rendered()


def draw_board(rl, agent, opponent):
    """Cell (row, col), row 0 at the top, is bit 7 * col + (5 - row) of the bitboards."""
    for row in range(6):
        for col in range(7):
            bit = 1 << (7 * col + 5 - row)
            x, y = col * CELL, row * CELL
            rl.draw_rectangle(x, y, CELL, CELL, rl.Color(*COLORS['board'], 255))
            color = COLORS['agent'] if agent & bit else COLORS['opponent'] if opponent & bit else COLORS['empty']
            rl.draw_circle(x + CELL // 2, y + CELL // 2, CELL * 0.4, rl.Color(*color, 255))


def play(seed=None, **kwargs):
    """Play against the opponent in a window: keys 1-7 drop a piece, Esc or closing quits."""
    import time
    env = Connect4(render_mode='human', seed=time.time_ns() % 2**32 if seed is None else seed, **kwargs)
    env.reset()
    env.render()
    rl = raylib()
    keys = [rl.KEY_ONE + i for i in range(7)] + [rl.KEY_KP_1 + i for i in range(7)]
    message, last_game = 'Your move: keys 1-7', False
    try:
        while not env.window.should_close():
            pressed = [k for k in keys if rl.is_key_pressed(k)]
            if pressed:
                column = keys.index(pressed[0]) % 7
                if last_game:
                    message, last_game = 'New game. Your move: keys 1-7', False
                else:
                    state = env.c.get_state(0)
                    full = (state['agent'] | state['opponent']) >> (7 * column + 5) & 1
                    env.step(np.array([column], np.int32))
                    if env.terminals[0]:
                        result = {1: 'You win', 0: 'Draw', -1: 'You lose'}[int(env.rewards[0])]
                        result = f'Column {column + 1} is full: you lose' if full else result
                        message, last_game = f'{result}! Press 1-7 for a new game', True
            env.render(message, last_game)
    finally:
        env.close()
