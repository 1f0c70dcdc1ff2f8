"""Triple Triad against a random bot (rules and observation layout: triple_triad.h). With
`features=True` the observation also holds 131 features per card and cell (flips, exposure)."""
import gymnasium
import numpy as np

from pufferlib.ocean.native import NativeEnv, check_bool, check_int, check_real
from pufferlib.ocean.triple_triad import binding

# Window layout (pixels): the agent's hand on the left, the 3x3 board, the bot's hand on the right.
WIDTH, HEIGHT = 990, 720
HAND_X = (30, 810)              # agent, bot
HAND_Y, HAND_W, HAND_H, HAND_GAP = 80, 150, 110, 12
BOARD_X, BOARD_Y, CELL_W, CELL_H = 225, 80, 180, 200
AGENT_COLOR, BOT_COLOR = (0, 120, 200), (190, 40, 40)
EMPTY_COLOR, USED_COLOR, TEXT_COLOR = (20, 60, 60), (40, 40, 40), (240, 240, 240)
SELECTED_COLOR = (255, 220, 0)


class TripleTriad(NativeEnv):
    def __init__(self, num_envs=1, max_steps=30, invalid_penalty=0.1, features=False,
                 report_interval=128, render_mode=None, buf=None, seed=0):
        seed = self.check_common(num_envs, seed, report_interval, render_mode)
        max_steps = check_int('TripleTriad', 'max_steps', max_steps, 1)
        invalid_penalty = check_real('TripleTriad', 'invalid_penalty', invalid_penalty)
        features = check_bool('TripleTriad', 'features', features)
        self.single_observation_space = gymnasium.spaces.Box(-1, 1, (binding.obs_size(features),),
                                                             np.float32)
        self.single_action_space = gymnasium.spaces.Discrete(binding.NUM_ACTIONS)
        self.num_agents = self.num_envs = num_envs
        self.report_interval, self.render_mode = report_interval, render_mode
        self.window, self.message = None, ''
        super().__init__(buf)
        self.c = binding.Binding(self.buffers(), num_envs, seed, max_steps=max_steps,
                                 invalid_penalty=invalid_penalty, features=features)

    @staticmethod
    def action_mask(observations):
        """True for the actions that are not no-ops, from observations of shape (..., 114) or, with
        the features, (..., 245) (NumPy arrays or torch tensors): select k unless the card is on
        the board (obs[9 + k]), place on cell c unless it is occupied (obs[14 + c]) or no card is
        selected (obs[23])."""
        noop = observations[..., 9:23] * 1      # a copy, in either library
        noop[..., 5:] += observations[..., 23:24]
        return noop == 0

    def render(self):
        """Draw sub-env 0 (render_mode 'human': in a window; 'rgb_array': returns the frame)."""
        window = self.open_window(WIDTH, HEIGHT, 'Triple Triad')
        if window is not None:
            with window.frame() as rl:
                draw(rl, self.c.get_state(0), self.message)
        return self.rendered()


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
