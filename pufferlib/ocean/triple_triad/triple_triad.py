"""Triple Triad against a random bot (rules and observation layout: triple_triad.h)."""
import gymnasium
import numpy as np

from pufferlib.ocean.native import NativeEnv
from pufferlib.ocean.triple_triad import binding

# Window layout (pixels): the agent's hand on the left, the 3x3 board, the bot's hand on the right.
WIDTH, HEIGHT = 990, 720
HAND_X = (30, 810)              # agent, bot
HAND_Y, HAND_W, HAND_H, HAND_GAP = 80, 150, 110, 12
BOARD_X, BOARD_Y, CELL_W, CELL_H = 225, 80, 180, 200
AGENT_COLOR, BOT_COLOR = (0, 120, 200), (190, 40, 40)
EMPTY_COLOR, USED_COLOR, TEXT_COLOR = (20, 60, 60), (40, 40, 40), (240, 240, 240)
SELECTED_COLOR = (255, 220, 0)
# For each cell, the neighbouring cell to the N, E, S, W (the C game's table, with 9 for off the
# board), and for each side the neighbour's side that faces it.
NEIGHBOUR = np.where(np.array(binding.NEIGHBOUR) < 0, 9, np.array(binding.NEIGHBOUR))
OPPOSITE = np.array([2, 3, 0, 1])


class TripleTriad(NativeEnv):
    def __init__(self, num_envs=1, max_steps=30, invalid_penalty=0.1, report_interval=128,
                 render_mode=None, buf=None, seed=0):
        if max_steps < 1:
            raise ValueError(f'max_steps is {max_steps}: it must be at least 1')
        self.single_observation_space = gymnasium.spaces.Box(-1, 1, (binding.OBS_SIZE,), np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(binding.NUM_ACTIONS)
        self.num_agents = self.num_envs = num_envs
        self.report_interval, self.render_mode = report_interval, render_mode
        self.window, self.message = None, ''
        super().__init__(buf)
        self.c = binding.Binding(self.observations, self.actions, self.rewards, self.terminals,
                                 self.truncations, num_envs, seed, max_steps=max_steps,
                                 invalid_penalty=invalid_penalty)

    @staticmethod
    def observation_features(observations):
        """The default policy's input, from observations of shape (N, 114) (torch tensors): the
        observation, then
          the agent's selected card, one-hot (5), and its N, E, S, W values (4);
          for each of the agent's cards and each cell (5 x 9): flips, the bot cards that placing
          it there would flip, and exposure, the sides facing an empty cell, each weighted by the
          fraction of the bot's cards in hand that would flip it from there;
          the exposure of each cell's agent card (9);
          the selected card's flips and exposure per cell (9 + 9);
          per card, the best flips minus exposure over the free cells (5, 0 for a played card).
        Counts are divided by 4. A 2-layer MLP learns much faster from these than from the raw
        observation, where it must pair each card with each cell itself."""
        import torch
        obs = torch.as_tensor(observations)
        n = obs.shape[0]
        hand, bot_hand = obs[:, 64:84].reshape(n, 5, 4), obs[:, 84:104].reshape(n, 5, 4)
        selected = torch.round(obs[:, 24] * 5) - 1
        pick = (selected.unsqueeze(1) == torch.arange(5, device=obs.device)).to(obs.dtype)
        off_board = obs.new_zeros(n, 1)          # cell 9, the neighbour beyond an edge
        board = torch.cat([obs[:, 28:64], off_board.expand(n, 4)], 1).reshape(n, 10, 4)
        owner = torch.cat([obs[:, 0:9], off_board], 1)
        empty = torch.cat([1 - obs[:, 14:23], off_board], 1)
        facing = board[:, NEIGHBOUR, OPPOSITE]                        # (n, 9, 4)
        enemy = (owner[:, NEIGHBOUR] < 0).to(obs.dtype)
        flips = ((hand.unsqueeze(2) > facing.unsqueeze(1)) * enemy.unsqueeze(1)).sum(-1) / 4
        bot_left = (obs[:, 109:114] == 0).to(obs.dtype)               # the bot's cards in hand
        bot_facing = bot_hand[:, :, OPPOSITE]  # side s: the bot card's value that would face it

        def beaten(values):   # (n, M, 4): the fraction of the bot's cards in hand beating each side
            beats = (values.unsqueeze(1) < bot_facing.unsqueeze(2)) * bot_left[:, :, None, None]
            return beats.sum(1) / bot_left.sum(1).clamp(min=1)[:, None, None]

        open_side = empty[:, NEIGHBOUR]                               # (n, 9, 4)
        exposure = (beaten(hand).unsqueeze(2) * open_side.unsqueeze(1)).sum(-1) / 4
        exposed = (beaten(board[:, :9]) * open_side).sum(-1) * (obs[:, 0:9] > 0) / 4
        best = (flips - exposure - 9 * obs[:, 14:23].unsqueeze(1)).amax(-1).clamp(min=-1)
        picked = pick.unsqueeze(2)
        return torch.cat([obs, pick, (picked * hand).sum(1), flips.reshape(n, 45),
                          exposure.reshape(n, 45), exposed, (picked * flips).sum(1),
                          (picked * exposure).sum(1), best * (1 - obs[:, 9:14])], 1)

    @staticmethod
    def action_mask(observations):
        """True for the actions that are not no-ops, from observations of shape (..., 114) (NumPy
        arrays or torch tensors): select k unless the card is on the board (obs[9 + k]), place on
        cell c unless it is occupied (obs[14 + c]) or no card is selected (obs[23])."""
        noop = observations[..., 9:23] * 1      # a copy, in either library
        noop[..., 5:] += observations[..., 23:24]
        return noop == 0

    def render(self):
        """Draw sub-env 0 (render_mode='human'; the window opens on the first call)."""
        if self.render_mode != 'human':
            return
        from pufferlib.ocean.render import Window
        if self.window is None:
            self.window = Window(WIDTH, HEIGHT, 'Triple Triad')
        with self.window.frame() as rl:
            draw(rl, self.c.get_state(0), self.message)

    def close(self):
        if self.window is not None:
            self.window.close()
            self.window = None
        super().close()


def hand_rect(player, k):
    """(x, y, w, h) of card k of the hand of player 0 (agent) or 1 (bot)."""
    return HAND_X[player], HAND_Y + k * (HAND_H + HAND_GAP), HAND_W, HAND_H


def cell_rect(cell):
    return BOARD_X + (cell % 3) * CELL_W, BOARD_Y + (cell // 3) * CELL_H, CELL_W, CELL_H


def cell_at(x, y):
    """The board cell under the point (x, y), or None."""
    col, row = (x - BOARD_X) // CELL_W, (y - BOARD_Y) // CELL_H
    return int(row * 3 + col) if 0 <= col < 3 and 0 <= row < 3 else None


def draw_card(rl, rect, values, color, label=None):
    x, y, w, h = (int(v) for v in rect)
    rl.draw_rectangle(x + 3, y + 3, w - 6, h - 6, rl.Color(*color, 255))
    text = rl.Color(*TEXT_COLOR, 255)
    size = 28
    north, east, south, west = (str(v) for v in values)
    rl.draw_text(north, x + w // 2 - rl.measure_text(north, size) // 2, y + 8, size, text)
    rl.draw_text(south, x + w // 2 - rl.measure_text(south, size) // 2, y + h - 8 - size, size, text)
    rl.draw_text(west, x + 12, y + h // 2 - size // 2, size, text)
    rl.draw_text(east, x + w - 12 - rl.measure_text(east, size), y + h // 2 - size // 2, size, text)
    if label:
        rl.draw_text(label, x + 8, y + h - 22, 14, text)


def draw(rl, state, message=''):
    """One frame of `state` (a dict from Binding.get_state): board cards coloured by owner, both
    hands with their four numbers (cards already played greyed), the agent's selected card
    outlined, both scores."""
    colors = {1: AGENT_COLOR, -1: BOT_COLOR}
    for cell in range(9):
        x, y, w, h = cell_rect(cell)
        rl.draw_rectangle(x + 2, y + 2, w - 4, h - 4, rl.Color(*EMPTY_COLOR, 255))
        card = state['card'][cell]
        if card >= 0:
            draw_card(rl, (x, y, w, h), state['values'][card], colors[state['owner'][cell]])
    for player in (0, 1):
        for k in range(5):
            card = 5 * player + k
            in_hand = state['location'][card] == 0
            color = (AGENT_COLOR, BOT_COLOR)[player] if in_hand else USED_COLOR
            draw_card(rl, hand_rect(player, k), state['values'][card], color, f'Card {k + 1}')
    if state['selected'][0] >= 0:
        x, y, w, h = hand_rect(0, state['selected'][0])
        rl.draw_rectangle_lines_ex(rl.Rectangle(x, y, w, h), 6, rl.Color(*SELECTED_COLOR, 255))
    text = rl.Color(*TEXT_COLOR, 255)
    rl.draw_text(f'Agent {state["score"][0]}', HAND_X[0], 20, 40, rl.Color(*AGENT_COLOR, 255))
    bot = f'Bot {state["score"][1]}'
    rl.draw_text(bot, HAND_X[1] + HAND_W - rl.measure_text(bot, 40), 20, 40, rl.Color(*BOT_COLOR, 255))
    if message:
        rl.draw_text(message, WIDTH // 2 - rl.measure_text(message, 24) // 2, 30, 24, text)


def play(seed=None, **kwargs):
    """A person plays: keys 1-5 select a card, a left click places it on the cell under the mouse.
    Runs until the window is closed (or ESC)."""
    from pufferlib.ocean.render import raylib
    seed = int(np.random.randint(2**31)) if seed is None else seed
    env = TripleTriad(num_envs=1, render_mode='human', seed=seed, **kwargs)
    env.reset()
    env.message = 'Keys 1-5 select a card, click a cell to place it'
    results = {1.0: 'You won!', -1.0: 'You lost', 0.0: 'A tie'}
    try:
        env.render()
        rl = raylib()
        while not env.window.should_close():
            action = None
            for k in range(5):
                if rl.is_key_pressed(rl.KEY_ONE + k):
                    action = k
            if rl.is_mouse_button_pressed(rl.MOUSE_BUTTON_LEFT):
                mouse = rl.get_mouse_position()
                cell = cell_at(mouse.x, mouse.y)
                if cell is not None:
                    action = 5 + cell
            if action is not None:
                env.step(np.array([action], np.int32))
                if env.terminals[0]:
                    env.message = results.get(float(env.rewards[0]), 'Game over') + ': new game'
                elif env.rewards[0] < 0:
                    env.message = 'Not allowed: select an unplayed card, then an empty cell'
                else:
                    env.message = ''
            env.render()
    finally:
        env.close()
