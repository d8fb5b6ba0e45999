"""ActorCritic against a numpy forward pass and closed-form distribution formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import ActionSpec
from purejaxppo.core.networks import env_action
from purejaxppo.core.policy_kinds import make_policy_kind

DISCRETE = ActionSpec(discrete=True, num_actions=3)
CONTINUOUS = ActionSpec(discrete=False, shape=(2,), low=(-1.0, -2.0), high=(1.0, 2.0))
OBS_SIZE = 4
NP_ACT = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


def _obs(n=8, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, OBS_SIZE)), jnp.float32)


def _init(action_spec, seed=0, **config):
    net = make_policy_kind(PPOConfig(**config), action_spec).network
    return net, net.init(jax.random.PRNGKey(seed), _obs())


def _np_mlp(tree, x, activation):
    for i in range(len(tree)):
        layer = tree[f"Dense_{i}"]
        x = NP_ACT[activation](x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"]))
    return x


def _np_dense(layer, x):
    return x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"])


def _perturb(params, seed=1, scale=0.3):
    """Random non-zero perturbation of every leaf, so that heads and biases are not at their init values."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("shared", [False, True])
def test_categorical_log_prob_and_value_match_numpy(activation, shared):
    net, params = _init(DISCRETE, activation=activation, shared_torso=shared)
    params = _perturb(params)
    obs = _obs(16, seed=3)
    pi, value = net.apply(params, obs)
    p = params["params"]
    x = np.asarray(obs, np.float64)
    hidden = _np_mlp(p["actor_torso"], x, activation)
    logits = _np_dense(p["policy_head"], hidden)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    actions = np.random.default_rng(4).integers(0, 3, size=16)
    np.testing.assert_allclose(np.asarray(pi.log_prob(jnp.asarray(actions))),
                               log_softmax[np.arange(16), actions], rtol=1e-4, atol=1e-5)
    entropy = -(np.exp(log_softmax) * log_softmax).sum(-1)
    np.testing.assert_allclose(np.asarray(pi.entropy()), entropy, rtol=1e-4, atol=1e-5)

    critic_hidden = hidden if shared else _np_mlp(p["critic_torso"], x, activation)
    expected_value = _np_dense(p["value_head"], critic_hidden)[:, 0]
    assert value.shape == (16,)
    np.testing.assert_allclose(np.asarray(value), expected_value, rtol=1e-4, atol=1e-5)
    # the value method agrees with __call__
    np.testing.assert_allclose(np.asarray(net.apply(params, obs, method=type(net).value)), expected_value,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shared", [False, True])
def test_gaussian_log_prob_and_entropy_match_closed_form(shared):
    net, params = _init(CONTINUOUS, shared_torso=shared)
    params = _perturb(params)  # also moves log_std away from 0: sigma != 1
    obs = _obs(16, seed=5)
    pi, value = net.apply(params, obs)
    p = params["params"]
    mu = _np_dense(p["policy_head"], _np_mlp(p["actor_torso"], np.asarray(obs, np.float64), "tanh"))
    sigma = np.exp(np.asarray(p["log_std"], np.float64))
    assert not np.allclose(sigma, 1.0)
    np.testing.assert_allclose(np.asarray(pi.loc), mu, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pi.scale_diag), np.broadcast_to(sigma, mu.shape), rtol=1e-5)

    actions = np.random.default_rng(6).normal(scale=2.0, size=(16, 2))
    expected = (-0.5 * ((actions - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)).sum(-1)
    np.testing.assert_allclose(np.asarray(pi.log_prob(jnp.asarray(actions, jnp.float32))), expected,
                               rtol=1e-4, atol=1e-4)
    entropy = np.sum(0.5 * np.log(2 * np.pi * np.e * sigma ** 2))  # same for every obs
    np.testing.assert_allclose(np.asarray(pi.entropy()), np.full(16, entropy), rtol=1e-5)

    sample = pi.sample(seed=jax.random.PRNGKey(0))
    assert sample.shape == (16, 2) and value.shape == (16,)


def test_initial_gaussian_is_standard_around_small_means():
    net, params = _init(CONTINUOUS)
    pi, _ = net.apply(params, _obs(32))
    np.testing.assert_array_equal(np.asarray(params["params"]["log_std"]), 0.0)
    np.testing.assert_allclose(np.asarray(pi.scale_diag), 1.0)
    assert np.max(np.abs(np.asarray(pi.loc))) < 0.1


def _n_params(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def _mlp_subtrees(p):
    return [name for name, sub in p.items() if isinstance(sub, dict) and "Dense_0" in sub]


@pytest.mark.parametrize("spec,head", [(DISCRETE, 3), (CONTINUOUS, 2)])
def test_separate_vs_shared_torso_structure(spec, head):
    _, sep = _init(spec, shared_torso=False)
    _, shared = _init(spec, shared_torso=True)
    mlp = (OBS_SIZE * 64 + 64) + (64 * 64 + 64)
    heads = (64 * head + head) + (64 + 1) + (0 if spec.discrete else head)  # + log_std
    assert len(_mlp_subtrees(sep["params"])) == 2
    assert len(_mlp_subtrees(shared["params"])) == 1
    assert _n_params(sep) == 2 * mlp + heads
    assert _n_params(shared) == mlp + heads
    assert _n_params(shared) < _n_params(sep)
    assert ("log_std" in shared["params"]) == (not spec.discrete)


def test_hidden_sizes_and_depth():
    _, params = _init(DISCRETE, hidden_sizes=(32, 16, 8))
    torso = params["params"]["actor_torso"]
    assert [torso[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [(4, 32), (32, 16), (16, 8)]
    assert params["params"]["policy_head"]["kernel"].shape == (8, 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_orthogonal_init_scales(seed):
    _, params = _init(DISCRETE, seed=seed)
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params["params"])
    for torso in ("actor_torso", "critic_torso"):
        k1 = p[torso]["Dense_1"]["kernel"]  # 64 x 64, gain sqrt(2): K^T K = 2 I
        np.testing.assert_allclose(k1.T @ k1, 2.0 * np.eye(64), atol=1e-5)
        k0 = p[torso]["Dense_0"]["kernel"]  # 4 x 64: orthonormal rows times sqrt(2)
        np.testing.assert_allclose(k0 @ k0.T, 2.0 * np.eye(4), atol=1e-5)
    kp = p["policy_head"]["kernel"]  # 64 x 3, gain 0.01: orthonormal columns times 0.01
    np.testing.assert_allclose(kp.T @ kp, 1e-4 * np.eye(3), atol=1e-9)
    kv = p["value_head"]["kernel"]  # 64 x 1, gain 1
    np.testing.assert_allclose(np.linalg.norm(kv), 1.0, rtol=1e-5)
    assert np.linalg.norm(kp[:, 0]) < 0.02 * np.linalg.norm(kv)
    for path, leaf in jax.tree_util.tree_leaves_with_path(p):
        if "bias" in jax.tree_util.keystr(path):
            np.testing.assert_array_equal(leaf, 0.0)


def test_initial_categorical_policy_is_near_uniform():
    net, params = _init(DISCRETE)
    obs = jnp.asarray(np.random.default_rng(9).normal(scale=3.0, size=(256, OBS_SIZE)), jnp.float32)
    pi, _ = net.apply(params, obs)
    probs = np.asarray(pi.probs)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert np.max(np.abs(probs - 1 / 3)) < 0.05
    assert np.min(np.asarray(pi.entropy())) > 0.99 * np.log(3)


def test_env_action_clips_continuous_to_bounds():
    a = jnp.array([[5.0, -5.0], [0.5, -1.5], [-3.0, 3.0], [1.0, 2.0]])
    np.testing.assert_array_equal(np.asarray(env_action(a, CONTINUOUS)),
                                  [[1.0, -2.0], [0.5, -1.5], [-1.0, 2.0], [1.0, 2.0]])


def test_env_action_leaves_discrete_alone():
    a = jnp.array([0, 2, 1, 7], jnp.int32)  # even out-of-range ints pass through: the env decides
    out = env_action(a, DISCRETE)
    assert out.dtype == a.dtype
    np.testing.assert_array_equal(np.asarray(out), [0, 2, 1, 7])
