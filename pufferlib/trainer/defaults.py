"""The defaults an env without its own config gets, chosen by what the env is, not by its name.

`defaults_for(observation_space, action_space, episode_length)` returns {section: {key: value}}
laid over default.ini and emulated.ini (config.load_config's `profile`); an env's own ini, a
checkpoint's saved config and the command line all win over it. Envs with their own ini (the
Ocean games) never get a profile.
"""
import numpy as np
from gymnasium import spaces


def is_image(space):
    """uint8 observations of rank 3 (HxWxC or CxHxW)."""
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def defaults_for(observation_space, action_space, episode_length=None):
    """{section: {key: value}} for an env observing `observation_space` and acting in
    `action_space`; `episode_length` is its time limit when known (None: unknown)."""
    if is_image(observation_space):
        return {}   # the CNN profile (issue 10, items 2-3)
    # Small batches of cheap vector-observation envs: several passes over each rollout with
    # small minibatches (PPO's clip then acts), Adam at a standard step, normalized inputs.
    train = {'update_epochs': 4, 'optimizer': 'adam', 'adam_eps': 1e-5, 'adam_beta1': 0.9,
             'prio_alpha': 0.0, 'vf_coef': 0.5, 'max_grad_norm': 0.5, 'vf_clip_coef': 10.0,
             'anneal_lr': True}
    policy = {'normalize_observations': True, 'lstm': False}
    vec, env = {}, {}
    if isinstance(action_space, spaces.Box):
        # continuous control: a longer horizon per env, reward scaling, a critic of its own
        train.update(learning_rate=3e-4, ent_coef=0.0, gamma=0.99, gae_lambda=0.95,
                     bptt_horizon=64, minibatch_size=256, update_epochs=10,
                     normalize_rewards=True)
        policy.update(separate_critic=True, hidden_size=64, num_layers=2)
        vec.update(num_envs=4)
    else:
        train.update(learning_rate=2.5e-3, ent_coef=0.0, gamma=0.99, gae_lambda=0.95,
                     bptt_horizon=32, minibatch_size=256, normalize_rewards=False)
        policy.update(hidden_size=64, num_layers=1)
        vec.update(num_envs=8)
    if episode_length is not None and episode_length >= 500:
        train.update(gamma=0.995 if isinstance(action_space, spaces.Box) else 0.99)
    return {'env': env, 'vec': vec, 'train': train, 'policy': policy}
