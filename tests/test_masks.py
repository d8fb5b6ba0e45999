"""Action masks and MultiDiscrete actions, against numpy references: invalid actions get probability 0 in
sampling, log-probs, entropy and the deterministic action; factorized categoricals sum their factors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import spaces

from purejaxppo import PPOConfig
from purejaxppo.core.envs import make_base_env, make_env
from purejaxppo.core.envs.base import ActionSpec, multi_discrete
from purejaxppo.core.networks import ActorCritic, distribution, distribution_params
from purejaxppo.core.normalization import init_stats, normalize_obs
from purejaxppo.core.policy_kinds import make_policy_kind
from purejaxppo.core.rollout import reset_envs, rollout

FEATURES = 3


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _net(spec, recurrent=False):
    return make_policy_kind(PPOConfig(recurrent=recurrent), spec).network


def _unmasked_logits(net, params, features, spec):
    """The policy head's raw output, from the same params with every action valid."""
    full = jnp.concatenate([features, jnp.ones(features.shape[:-1] + (spec.mask_size,))], -1)
    pi = net.apply(params, full, method=ActorCritic.policy)
    return np.asarray(distribution_params(pi)["logits"], np.float64)


@pytest.mark.slow
def test_masked_actions_have_zero_probability_everywhere():
    spec = ActionSpec(discrete=True, num_actions=4, mask_size=4)
    net = _net(spec)
    rng = np.random.default_rng(0)
    features = jnp.asarray(rng.normal(size=(5, FEATURES)), jnp.float32)
    mask = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 1], [0, 1, 1, 0], [1, 0, 0, 0]], np.float32)
    obs = jnp.concatenate([features, jnp.asarray(mask)], -1)
    params = net.init(jax.random.key(0), obs)
    params = jax.tree.map(lambda x: x + 0.5 * jax.random.normal(jax.random.key(1), x.shape), params)
    pi = net.apply(params, obs, method=ActorCritic.policy)
    logits = _unmasked_logits(net, params, features, spec)
    # reference: a softmax over the valid actions only
    ref_logp = np.where(mask > 0, logits, -np.inf)
    ref_logp = ref_logp - np.log(np.exp(np.where(mask > 0, logits, -np.inf) - logits.max(-1, keepdims=True)).sum(
        -1, keepdims=True)) - logits.max(-1, keepdims=True)
    probs = np.asarray(pi.probs)
    assert np.all(probs[mask == 0] == 0.0)
    np.testing.assert_allclose(probs[mask > 0], np.exp(ref_logp[mask > 0]), rtol=1e-5)
    for a in range(4):
        valid = mask[:, a] > 0
        np.testing.assert_allclose(np.asarray(pi.log_prob(jnp.full(5, a)))[valid], ref_logp[valid, a], rtol=1e-5)
    safe_logp = np.where(mask > 0, ref_logp, 0.0)
    np.testing.assert_allclose(pi.entropy(), -np.sum(np.exp(safe_logp) * safe_logp * (mask > 0), -1), rtol=1e-5)
    samples = np.asarray(pi.sample(seed=jax.random.key(2), sample_shape=(2000,)))  # [2000, 5]
    assert np.all(np.take_along_axis(np.broadcast_to(mask, (2000, 5, 4)), samples[..., None], -1) > 0)
    mode = np.asarray(pi.mode())
    np.testing.assert_array_equal(mode, np.argmax(np.where(mask > 0, logits, -np.inf), -1))


def test_recurrent_policy_honours_the_mask():
    spec = ActionSpec(discrete=True, num_actions=3, mask_size=3)
    net = _net(spec, recurrent=True)
    obs = jnp.concatenate([jnp.ones((4, FEATURES)), jnp.tile(jnp.array([0.0, 1.0, 0.0]), (4, 1))], -1)
    hidden = jnp.zeros((4, 64))
    params = net.init(jax.random.key(0), hidden, obs, jnp.ones(4, bool))
    _, pi, _ = net.apply(params, hidden, obs, jnp.ones(4, bool))
    np.testing.assert_array_equal(np.asarray(pi.probs), np.tile([0.0, 1.0, 0.0], (4, 1)))


@pytest.mark.slow
def test_multi_discrete_is_factorized_categoricals():
    spec = multi_discrete((2, 3))
    assert spec.size == 6 and spec.shape == (2,)
    net = _net(spec)
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(6, FEATURES)), jnp.float32)
    params = net.init(jax.random.key(0), obs)
    params = jax.tree.map(lambda x: x + 0.5 * jax.random.normal(jax.random.key(1), x.shape), params)
    pi = net.apply(params, obs, method=ActorCritic.policy)
    raw = np.asarray(net.apply(params, obs, method=lambda m, o: m.policy_head(m.actor_torso(o))), np.float64)
    first, second = _log_softmax(raw[:, :2]), _log_softmax(raw[:, 3:6])  # factor 0's third entry is padding
    actions = np.array([[0, 0], [1, 2], [0, 1], [1, 0], [0, 2], [1, 1]])
    np.testing.assert_allclose(pi.log_prob(jnp.asarray(actions)),
                               first[np.arange(6), actions[:, 0]] + second[np.arange(6), actions[:, 1]], rtol=1e-5)
    entropy = -(np.exp(first) * first).sum(-1) - (np.exp(second) * second).sum(-1)
    np.testing.assert_allclose(pi.entropy(), entropy, rtol=1e-5)
    samples = np.asarray(pi.sample(seed=jax.random.key(3), sample_shape=(1000,)))
    assert samples.shape == (1000, 6, 2) and samples[..., 0].max() == 1 and samples[..., 1].max() == 2
    rebuilt = distribution(distribution_params(pi))
    np.testing.assert_allclose(rebuilt.kl_divergence(pi), 0.0, atol=1e-6)


def test_normalization_leaves_the_mask_as_it_is():
    stats = init_stats((4,)).replace(mean=jnp.array([1.0, 2.0, 0.5, 0.5]), var=jnp.array([4.0, 4.0, 0.25, 0.25]))
    out = normalize_obs(jnp.array([[3.0, 2.0, 1.0, 0.0]]), stats, raw_tail=2)
    np.testing.assert_allclose(out, [[1.0, 0.0, 1.0, 0.0]], atol=1e-6)


@struct.dataclass
class _Params:
    max_steps_in_episode: int = 20


class MaskedWalk:
    """A gymnax-style env whose dict observation carries an action mask: action 2 is never valid, action 0
    only on even steps. Without the mask a fresh policy would pick every action."""

    default_params = _Params()

    def action_space(self, params):
        return spaces.Discrete(3)

    def observation_space(self, params):
        return spaces.Dict({"t": spaces.Box(0, 20, (1,)), "action_mask": spaces.Box(0, 1, (3,))})

    def _obs(self, t):
        return {"t": jnp.array([t], jnp.float32), "action_mask": jnp.array([t % 2 == 0, True, False])}

    def reset(self, key, params):
        return self._obs(0), jnp.int32(0)

    def step(self, key, t, action, params):
        t = t + 1
        truncated = t >= params.max_steps_in_episode
        obs = self._obs(t)
        return (self._obs(jnp.where(truncated, 0, t)), jnp.where(truncated, 0, t), (action == 1).astype(jnp.float32),
                jnp.bool_(False), truncated, {"final_observation": obs})


def test_rollouts_never_take_a_masked_action():
    env = make_env(MaskedWalk())
    assert env.action_spec.mask_size == 3 and env.observation_size == 4
    config = PPOConfig(num_envs=8, num_steps=40)
    policy = make_policy_kind(config, env.action_spec)
    carry = reset_envs(env, policy, jax.random.key(0), 8)
    params = policy.init_params(jax.random.key(1), carry)
    _, tr = rollout(env, policy, params, carry, jax.random.key(2), 40)
    t = np.asarray(tr.obs[..., 0])
    actions = np.asarray(tr.action)
    assert not np.any(actions == 2)
    assert not np.any((actions == 0) & (t % 2 == 1))
    assert np.any(actions == 0) and np.any(actions == 1)  # the valid ones are still explored


def test_a_mask_that_does_not_fit_the_actions_is_one_line():
    class Wrong(MaskedWalk):
        def _obs(self, t):
            return {"t": jnp.array([t], jnp.float32), "action_mask": jnp.array([True, True])}

    with pytest.raises(ValueError, match=r"action_mask \[2\] does not match"):
        make_base_env(Wrong())


def test_cnn_torso_convolves_the_image_and_needs_one():
    env = make_base_env("Breakout-MinAtar")
    assert env.image_shape == (10, 10, 4)
    net = make_policy_kind(PPOConfig(env="Breakout-MinAtar", torso="cnn"), env.action_spec, env.image_shape).network
    obs = jnp.zeros((2, env.observation_size))
    params = net.init(jax.random.key(0), obs)
    assert params["params"]["actor_torso"]["CNN_0"]["Dense_0"]["kernel"].shape == (3 * 3 * 4, 8)  # per patch
    image = jax.random.bernoulli(jax.random.key(1), 0.3, (2, 400)).astype(jnp.float32)
    moved = jnp.roll(image.reshape(2, 10, 10, 4), 3, axis=1).reshape(2, 400)  # same pixels, elsewhere
    v1, v2 = net.apply(params, image, method=ActorCritic.value), net.apply(params, moved, method=ActorCritic.value)
    assert not np.allclose(v1, v2)
    with pytest.raises(ValueError, match="torso='cnn' needs image observations"):
        make_policy_kind(PPOConfig(torso="cnn"), make_base_env("CartPole-v1").action_spec, None)
    with pytest.raises(ValueError, match="torso"):
        PPOConfig(torso="resnet")


@pytest.mark.parametrize("shape", [(10, 10, 4), (7, 9, 3), (48, 48, 1)])
def test_the_cnn_is_a_padded_strided_convolution(shape):
    """Against XLA's own convolution of the same kernel, "SAME" padding: the layer is that convolution, every pixel
    reaches a feature (the last row and column too), and its features are flat HWC."""
    from purejaxppo.core.networks import CNN, CNN_CHANNELS, cnn_stride

    size = int(np.prod(shape))
    x = jax.random.normal(jax.random.key(0), (5, size + 3))  # the image, then 3 more features kept as they are
    cnn = CNN(shape, "relu")
    params = cnn.init(jax.random.key(1), x)
    dense = params["params"]["Dense_0"]
    dense = {"kernel": jax.random.normal(jax.random.key(2), dense["kernel"].shape), "bias": dense["bias"] + 0.1}
    out = cnn.apply({"params": {"Dense_0": dense}}, x)
    stride = cnn_stride(shape)
    expected = jax.lax.conv_general_dilated(
        x[:, :size].reshape((5,) + shape), dense["kernel"].reshape(3, 3, shape[2], CNN_CHANNELS), (stride, stride),
        "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest")
    expected = jax.nn.relu(expected + dense["bias"]).reshape(5, -1)
    assert expected.shape[1] == -(-shape[0] // stride) * -(-shape[1] // stride) * CNN_CHANNELS
    np.testing.assert_allclose(out[:, :-3], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out[:, -3:], x[:, size:])
    corner = x.at[:, size - 1].add(5.0)  # the last pixel's last channel: at the bottom-right edge
    assert not np.allclose(cnn.apply({"params": {"Dense_0": dense}}, corner), out)


def test_mlp_parameters_keep_their_names():
    """Checkpoints of MLP policies saved before the CNN torso existed still load: the tree is unchanged."""
    net = ActorCritic(ActionSpec(discrete=True, num_actions=2))
    params = net.init(jax.random.key(0), jnp.zeros(4))["params"]
    assert sorted(params["actor_torso"]) == ["Dense_0", "Dense_1"]
