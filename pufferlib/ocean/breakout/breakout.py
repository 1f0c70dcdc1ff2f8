"""Breakout (rules and our decisions: the header of breakout.h). `python -m pufferlib.ocean.breakout`
plays it with LEFT/RIGHT or A/D."""
import gymnasium
import numpy as np

from pufferlib.ocean import render
from pufferlib.ocean.breakout import binding
from pufferlib.ocean.native import NativeEnv, check_bool, check_int, check_real

WIDTH, HEIGHT = 576, 330
COLS, BRICK_W, BRICK_H, WALL_TOP = 18, 32, 12, 50
PADDLE_Y, PADDLE_H, BALL = 312, 8, 32
ROW_COLORS = [(255, 0, 0), (255, 128, 0), (255, 255, 0), (0, 228, 48), (102, 191, 255), (0, 82, 172)]
MAX_FRAMESKIP = 1000         # ticks per step; more makes one step a long stall
PADDLE_COLOR, BALL_COLOR, TEXT_COLOR = (0, 255, 255), (255, 255, 255), (255, 255, 255)


class Breakout(NativeEnv):
    def __init__(self, num_envs=1, frameskip=4, continuous=False, reward_scale=1.0,
                 max_episode_steps=27000, report_interval=128, render_mode=None, buf=None, seed=0):
        seed = self.check_common(num_envs, seed, report_interval, render_mode)
        frameskip = check_int('Breakout', 'frameskip', frameskip, 1, MAX_FRAMESKIP)
        max_episode_steps = check_int('Breakout', 'max_episode_steps', max_episode_steps, 0)  # 0: none
        continuous = check_bool('Breakout', 'continuous', continuous)
        reward_scale = check_real('Breakout', 'reward_scale', reward_scale)
        self.single_observation_space = gymnasium.spaces.Box(-1, 1, (binding.obs_size(),), np.float32)
        self.single_action_space = (gymnasium.spaces.Box(-1, 1, (1,), np.float32) if continuous
                                    else gymnasium.spaces.Discrete(binding.NUM_ACTIONS))
        self.num_agents = self.num_envs = num_envs
        self.report_interval, self.render_mode = report_interval, render_mode
        self.frameskip = frameskip
        super().__init__(buf)
        self.c = binding.Binding(self.buffers(), num_envs, seed, frameskip=frameskip,
                                 continuous=continuous, reward_scale=reward_scale,
                                 max_episode_steps=max_episode_steps)

    def render(self):
        """Draw sub-env 0 (render_mode 'human': in a window; 'rgb_array': returns the frame)."""
        # one agent step per frame at the game's own pace: 60 ticks per second
        window = self.open_window(WIDTH, HEIGHT, 'pufferlib: Breakout', max(1, round(60 / self.frameskip)))
        if window is not None:
            draw(window, self.c.get_state(0))
        return self.rendered()


def draw(window, state):
    """One frame of a Breakout state (a dict from Binding.get_state)."""
    with window.frame() as rl:
        for i, standing in enumerate(state['bricks']):
            if standing:
                row, col = divmod(i, COLS)
                rl.draw_rectangle(col * BRICK_W, WALL_TOP + row * BRICK_H, BRICK_W - 1, BRICK_H - 1,
                                  rl.Color(*ROW_COLORS[row], 255))     # 1 px of mortar
        rl.draw_rectangle(round(state['paddle_x']), PADDLE_Y, round(state['paddle_width']), PADDLE_H,
                          rl.Color(*PADDLE_COLOR, 255))
        # The ball collides as a 32x32 box; it is drawn as the disc inscribed in that box.
        rl.draw_circle(round(state['ball_x'] + BALL / 2), round(state['ball_y'] + BALL / 2), BALL / 2,
                       rl.Color(*BALL_COLOR, 255))
        rl.draw_text(f'Score: {state["score"]}', 10, 10, 20, rl.Color(*TEXT_COLOR, 255))
        rl.draw_text(f'Balls: {state["balls_left"]}', WIDTH - 100, 10, 20, rl.Color(*TEXT_COLOR, 255))


def play(**kwargs):
    """Play in a window: LEFT/RIGHT or A/D move the paddle; close the window (or ESC) to stop."""
    env = Breakout(render_mode='human', **kwargs)
    env.reset()
    try:
        env.render()
        rl = render.raylib()
        while not env.window.should_close():
            left = rl.is_key_down(rl.KEY_LEFT) or rl.is_key_down(rl.KEY_A)
            right = rl.is_key_down(rl.KEY_RIGHT) or rl.is_key_down(rl.KEY_D)
            env.actions[0] = 1 if left and not right else 2 if right and not left else 0
            env.step(env.actions)
            env.render()
    finally:
        env.close()
