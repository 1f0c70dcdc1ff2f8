"""Policies and action distributions.

A policy has `forward_step(obs, state) -> (logits, values, state)` for the rollout (one step of a
batch of agents) and `forward(obs, state) -> (logits, values)` for training on `(B, T, ...)`
observations (outputs flattened to `B * T` rows). `state` is None for a feed-forward policy and a
pair `(h, c)` of `(B, hidden)` tensors for `LSTMWrapper`. `logits` is a tensor (Discrete), a tensor
of concatenated logits (MultiDiscrete) or a pair `(mean, logstd)` (Box).

Action masks: an env may define `action_mask(observations) -> bool array (..., num_logits)`, True
where an action is allowed, computed from the observation alone with array operations that work on
NumPy arrays and torch tensors. The default policy then gives disallowed actions a logit of
MASKED_LOGIT in the rollout, in training (the mask is recomputed from the stored observation, so
the two agree) and in evaluation: they are never sampled and carry no probability or entropy.
"""
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from pufferlib.exceptions import APIUsageError
from pufferlib.trainer.defaults import image_layout
from pufferlib.trainer.normalize import RunningNorm

MASKED_LOGIT = -1e9   # not -inf: softmax, entropy and their gradients stay finite (0 * -1e9 = 0)


def layer_init(layer, std=np.sqrt(2), bias=0.0):
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


def restore_observations(emulated):
    """A function mapping a batch of flat emulated observations back to their native structure
    (a dict or tuple of tensors), or None when the env is not emulated or observes a plain Box."""
    if not emulated or isinstance(emulated['observation_space'], spaces.Box):
        return None
    from pufferlib.spaces_torch import nativize, nativize_layout
    space = emulated['observation_space']
    layout = nativize_layout(space)
    return lambda obs: nativize(obs, space, layout)


def flatten_structure(obs):
    """Concatenate the leaves of a (nested) dict/tuple of tensors into one (B, n) float tensor."""
    if isinstance(obs, dict):
        return torch.cat([flatten_structure(obs[k]) for k in obs], dim=1)
    if isinstance(obs, (tuple, list)):
        return torch.cat([flatten_structure(o) for o in obs], dim=1)
    return obs.reshape(obs.shape[0], -1).float()


class Default(nn.Module):
    """Linear + GELU encoder, an actor head initialised with std 0.01 and a value head with std 1.
    Emulated structured observations are restored with `pufferlib.emulation.nativize` (each leaf
    flattened to float) before the encoder."""

    def __init__(self, observation_space, action_space, hidden_size=128, num_layers=1,
                 emulated=None, action_mask=None, normalize_observations=False,
                 separate_critic=False):
        super().__init__()
        self.hidden_size = hidden_size
        self.action_mask = action_mask
        self.restore = restore_observations(emulated)
        self.obs_size = int(np.prod(observation_space.shape))
        if self.restore is not None:
            sample = torch.as_tensor(observation_space.sample()[None])
            self.obs_size = flatten_structure(self.restore(sample)).shape[1]
        # running mean/std of the flat observations (buffers: saved with the policy)
        self.obs_norm = RunningNorm(self.obs_size) if normalize_observations else None
        self.encoder = self.mlp(num_layers)
        self.critic = self.mlp(num_layers) if separate_critic else None   # the value's own encoder
        self.is_continuous = isinstance(action_space, spaces.Box)
        if isinstance(action_space, spaces.Discrete):
            num_logits = int(action_space.n)
        elif isinstance(action_space, spaces.MultiDiscrete):
            num_logits = int(action_space.nvec.sum())
        elif self.is_continuous:
            num_logits = int(np.prod(action_space.shape))
            self.logstd = nn.Parameter(torch.zeros(1, num_logits))
        else:
            raise TypeError(f'action space {action_space} is not supported by the default policy')
        if action_mask is not None and self.is_continuous:
            raise TypeError('an action mask needs Discrete or MultiDiscrete actions, not '
                            f'{action_space}')
        self.actor = layer_init(nn.Linear(hidden_size, num_logits), std=0.01)
        self.value = layer_init(nn.Linear(hidden_size, 1), std=1.0)

    def mlp(self, num_layers):
        layers, size = [], self.obs_size
        for _ in range(num_layers):
            layers += [layer_init(nn.Linear(size, self.hidden_size)), nn.GELU()]
            size = self.hidden_size
        return nn.Sequential(*layers)

    def flat(self, obs):
        """The observations as the encoder's (B, n) float input, before normalization."""
        if self.restore is not None:
            return flatten_structure(self.restore(obs))
        return obs.reshape(obs.shape[0], -1).float()

    def normalized(self, obs):
        x = self.flat(obs)
        return x if self.obs_norm is None else self.obs_norm(x)

    def encode(self, obs):
        return self.encoder(self.normalized(obs))

    def decode(self, hidden, critic_hidden=None):
        logits = self.actor(hidden)
        if self.is_continuous:
            logits = (logits, self.logstd.expand_as(logits))
        return logits, self.value(hidden if critic_hidden is None else critic_hidden).squeeze(-1)

    def heads(self, obs):
        if self.critic is None:
            return self.decode(self.encode(obs))
        x = self.normalized(obs)
        return self.decode(self.encoder(x), self.critic(x))

    def mask(self, logits, obs):
        """`logits` with the actions that the env's action_mask(obs) disallows set to MASKED_LOGIT."""
        if self.action_mask is None:
            return logits
        allowed = torch.as_tensor(self.action_mask(obs), device=logits.device)
        if allowed.dtype != torch.bool or allowed.shape != logits.shape:
            raise APIUsageError(
                f'action_mask(observations) returned {allowed.dtype} of shape '
                f'{tuple(allowed.shape)}: it must be bool of shape {tuple(logits.shape)} '
                '(one value per logit for each observation row, True where allowed)')
        return logits.masked_fill(~allowed, MASKED_LOGIT)

    def forward_step(self, obs, state=None):
        logits, values = self.heads(obs)
        return self.mask(logits, obs), values, None

    def forward(self, obs, state=None):
        obs = obs.reshape(-1, *obs.shape[2:])
        logits, values = self.heads(obs)
        return self.mask(logits, obs), values


def to_chw(obs, layout):
    """A batch of images (B, *shape) as float (B, channels, H, W), uint8 scaled by 1/255."""
    if layout == 'hwc':
        obs = obs.permute(0, 3, 1, 2)
    elif layout == 'khwc':
        obs = obs.permute(0, 1, 4, 2, 3)
    if layout == 'hw':
        obs = obs.unsqueeze(1)
    elif layout in ('kchw', 'khwc'):
        obs = obs.reshape(obs.shape[0], -1, *obs.shape[-2:])
    return obs.float() / 255 if obs.dtype == torch.uint8 else obs.float()


class CNN(Default):
    """The default policy's heads over a convolutional encoder, for image observations (see
    image_layout). Images of at least 36x36 get the NatureCNN encoder (DQN, Mnih et al. 2015:
    8x8/4, 4x4/2, 3x3/1 convolutions, then hidden_size units), smaller grids such as MinAtar's
    10x10 one 3x3 convolution of 16 channels (Young & Tian 2019) before hidden_size units."""

    def __init__(self, observation_space, action_space, hidden_size=512, num_layers=1,
                 emulated=None, action_mask=None):
        super().__init__(observation_space, action_space, hidden_size, 0, emulated, action_mask)
        self.layout = image_layout(observation_space)
        if self.layout is None:
            raise TypeError(f'{observation_space} is not an image observation space')
        channels, h, w = to_chw(torch.zeros(1, *observation_space.shape), self.layout).shape[1:]
        if min(h, w) >= 36:
            convs = [layer_init(nn.Conv2d(channels, 32, 8, stride=4)), nn.ReLU(),
                     layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
                     layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(), nn.Flatten()]
        else:
            convs = [layer_init(nn.Conv2d(channels, 16, 3, padding=1)), nn.ReLU(), nn.Flatten()]
        with torch.no_grad():
            size = nn.Sequential(*convs)(torch.zeros(1, channels, h, w)).shape[1]
        self.encoder = nn.Sequential(*convs, layer_init(nn.Linear(size, hidden_size)), nn.ReLU())

    def encode(self, obs):
        return self.encoder(to_chw(obs, self.layout))


class LSTMWrapper(nn.Module):
    """Puts an LSTM between `policy.encode` and `policy.decode`. Training runs `nn.LSTM` over whole
    rows `(B, T)`; the rollout steps an `nn.LSTMCell` that shares the same weight tensors. Only the
    LSTM's own weights are initialised here: the wrapped policy keeps its initialisation (its 0.01
    actor head in particular)."""

    def __init__(self, policy, input_size=None, hidden_size=None):
        super().__init__()
        self.policy = policy
        input_size = input_size or policy.hidden_size
        self.hidden_size = hidden_size = hidden_size or policy.hidden_size
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        for name, param in self.lstm.named_parameters():
            if 'weight' in name:
                nn.init.orthogonal_(param, 1.0)
            else:
                nn.init.constant_(param, 0.0)
        self.cell = nn.LSTMCell(input_size, hidden_size)
        # Share, not copy: both modules hold the very same Parameter objects.
        self.cell.weight_ih = self.lstm.weight_ih_l0
        self.cell.weight_hh = self.lstm.weight_hh_l0
        self.cell.bias_ih = self.lstm.bias_ih_l0
        self.cell.bias_hh = self.lstm.bias_hh_l0

    def forward_step(self, obs, state):
        h, c = self.cell(self.policy.encode(obs), state)
        logits, values = self.policy.decode(h)
        return self.policy.mask(logits, obs), values, (h, c)

    def forward(self, obs, state, starts=None):
        """`starts` (B, T) bool, optional: True where a step begins a new episode. The state is
        zeroed there before the step, as the rollout does; steps 0 already start from their
        stored state."""
        B, T = obs.shape[:2]
        obs = obs.reshape(B * T, *obs.shape[2:])
        hidden = self.policy.encode(obs).reshape(B, T, -1)
        h0, c0 = state
        if starts is not None and starts[:, 1:].any():
            keep = (~starts).to(hidden.dtype).unsqueeze(-1)
            h, c, outs = h0, c0, []
            for t in range(T):
                if t:
                    h, c = h * keep[:, t], c * keep[:, t]
                h, c = self.cell(hidden[:, t], (h, c))
                outs.append(h)
            out = torch.stack(outs, dim=1)
        else:
            out, _ = self.lstm(hidden, (h0.unsqueeze(0).contiguous(), c0.unsqueeze(0).contiguous()))
        logits, values = self.policy.decode(out.reshape(B * T, -1))
        return self.policy.mask(logits, obs), values


def make_policy(env, hidden_size=128, num_layers=1, lstm=True, action_mask=True,
                normalize_observations=False, separate_critic=False):
    """The default policy for a (vector) env (CNN for image observations, which take neither
    normalize_observations nor separate_critic), LSTM-wrapped if `lstm`. With `action_mask`, the env's
    `action_mask(observations)` (looked up on the vector env's driver env) masks the logits."""
    if separate_critic and lstm:
        raise APIUsageError('policy.separate_critic needs policy.lstm = False (the LSTM feeds '
                            'both heads)')
    driver = getattr(env, 'driver_env', env)
    mask = getattr(driver, 'action_mask', None) if action_mask else None
    args = (env.single_observation_space, env.single_action_space, hidden_size, num_layers,
            getattr(env, 'emulated', None), mask)
    if image_layout(env.single_observation_space):
        policy = CNN(*args)
    else:
        policy = Default(*args, normalize_observations, separate_critic)
    return LSTMWrapper(policy) if lstm else policy


def state_size(policy):
    """The size of the LSTM state `policy` carries per agent: its hidden_size when it has an
    `lstm` (LSTMWrapper, or any policy built the same way), 0 for a feed-forward policy."""
    return getattr(policy, 'hidden_size', 0) if hasattr(policy, 'lstm') else 0


# ---- action distributions: a tensor of logits, split logits, or (mean, logstd) -----------------

def split_sizes(action_space):
    return [int(n) for n in action_space.nvec.reshape(-1)]


def sample_actions(logits, action_space):
    """(actions, logprobs) sampled from the policy's output. Discrete actions use the Gumbel-max
    trick (one fused op chain, much cheaper than torch.multinomial on small batches)."""
    if isinstance(action_space, spaces.Box):
        mean, logstd = logits
        actions = mean + logstd.exp() * torch.randn_like(mean)
        return actions, normal_logprob(actions, mean, logstd)
    if isinstance(action_space, spaces.Discrete):
        logp = torch.log_softmax(logits, dim=-1)
        actions = gumbel_argmax(logp)
        return actions, logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    actions, logprob = [], 0
    for part in torch.split(logits, split_sizes(action_space), dim=-1):
        logp = torch.log_softmax(part, dim=-1)
        a = gumbel_argmax(logp)
        actions.append(a)
        logprob = logprob + logp.gather(-1, a.unsqueeze(-1)).squeeze(-1)
    return torch.stack(actions, dim=-1), logprob


def greedy_actions(logits, action_space):
    """The most likely action: argmax (per part for MultiDiscrete), the mean for Box."""
    if isinstance(action_space, spaces.Box):
        return logits[0]
    if isinstance(action_space, spaces.Discrete):
        return logits.argmax(-1)
    return torch.stack([part.argmax(-1) for part in torch.split(logits, split_sizes(action_space),
                                                                 dim=-1)], dim=-1)


def gumbel_argmax(logp):
    noise = torch.rand_like(logp).clamp_(min=1e-20)
    return torch.argmax(logp - torch.log(-torch.log(noise)), dim=-1)


def normal_logprob(actions, mean, logstd):
    var = torch.exp(2 * logstd)
    logp = -((actions - mean) ** 2) / (2 * var) - logstd - 0.5 * np.log(2 * np.pi)
    return logp.sum(-1)


def logprob_entropy(logits, actions, action_space):
    """Log-probability of `actions` and the entropy of the distribution, per row."""
    if isinstance(action_space, spaces.Box):
        mean, logstd = logits
        entropy = (0.5 + 0.5 * np.log(2 * np.pi) + logstd).sum(-1)
        return normal_logprob(actions, mean, logstd), entropy
    if isinstance(action_space, spaces.Discrete):
        parts, actions = [logits], actions.unsqueeze(-1)
    else:
        parts = torch.split(logits, split_sizes(action_space), dim=-1)
    logprob, entropy = 0, 0
    for i, part in enumerate(parts):
        logp = torch.log_softmax(part, dim=-1)
        logprob = logprob + logp.gather(-1, actions[..., i:i + 1].long()).squeeze(-1)
        entropy = entropy - (logp.exp() * logp).sum(-1)
    return logprob, entropy
