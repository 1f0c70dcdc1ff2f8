"""The defaults an env without its own config gets, chosen by what the env is, not by its name.

`defaults_for(observation_space, action_space, episode_length)` returns {section: {key: value}}
laid over default.ini and emulated.ini (config.load_config's `profile`); an env's own ini, a
checkpoint's saved config and the command line all win over it. Envs with their own ini (the
Ocean games) never get a profile.
"""
import numpy as np
from gymnasium import spaces


def image_layout(space):
    """How an image observation space is laid out: 'hw' (one channel), 'chw', 'hwc', 'kchw' or
    'khwc' (a stack of k frames of either), or None when `space` is not an image (a uint8 or bool
    Box of 2 to 4 dims whose height and width are at least 5). The channel axis is the shorter of
    the first and last axes."""
    if not isinstance(space, spaces.Box) or space.dtype not in (np.uint8, np.bool_):
        return None
    shape = space.shape
    if len(shape) == 2:
        layout, (h, w) = 'hw', shape
    elif len(shape) == 3:
        layout = 'chw' if shape[0] < shape[-1] else 'hwc'
        h, w = shape[1:] if layout == 'chw' else shape[:2]
    elif len(shape) == 4:
        layout = 'kchw' if shape[1] < shape[-1] else 'khwc'
        h, w = shape[2:] if layout == 'kchw' else shape[1:3]
    else:
        return None
    return layout if min(h, w) >= 5 else None


def defaults_for(observation_space, action_space, episode_length=None):
    """{section: {key: value}} for an env observing `observation_space` and acting in
    `action_space`; `episode_length` is its time limit when known (None: unknown)."""
    if image_layout(observation_space) is not None:
        # the CNN policy (policy.CNN): measured on MinAtar Breakout and ALE Pong
        return {'train': {'learning_rate': 0.0005, 'update_epochs': 4, 'minibatch_size': 128,
                          'bptt_horizon': 32, 'ent_coef': 0.01},
                'policy': {'hidden_size': 128}}
    # Cheap vector-observation envs: many passes over small rollouts (PPO's clip then acts),
    # Adam at a standard step and eps (1e-12 let noise drive Acrobot's policy deterministic),
    # no prioritized replay, normalized observations, actor and critic apart.
    train = {'optimizer': 'adam', 'adam_eps': 1e-5, 'adam_beta1': 0.9, 'prio_alpha': 0.0,
             'vf_coef': 0.5, 'vf_clip_coef': 10.0, 'max_grad_norm': 0.5, 'ent_coef': 0.0,
             'clip_coef': 0.2, 'gae_lambda': 0.9, 'update_epochs': 10, 'anneal_lr': True}
    policy = {'normalize_observations': True, 'separate_critic': True, 'lstm': False,
              'hidden_size': 64, 'num_layers': 2}
    if isinstance(action_space, spaces.Box):
        # continuous control: longer rollouts in minibatches, rewards scaled, a horizon of about
        # a twentieth of the episode (Pendulum's 200 steps: gamma 0.9)
        length = episode_length or 1000
        gamma = min(0.99, max(0.9, 1 - 20 / length))
        train.update(learning_rate=3e-4, gamma=gamma, gae_lambda=0.95, bptt_horizon=16,
                     batch_size=2048, minibatch_size=256, normalize_rewards=True)
        vec = {'num_envs': 4}
    else:
        train.update(learning_rate=1e-3, gamma=0.99, bptt_horizon=32, minibatch_size=256,
                     normalize_rewards=False)
        vec = {'num_envs': 8}
    return {'vec': vec, 'train': train, 'policy': policy}
