"""make_train: jit/vmap equivalence, metrics, the progress callback, learning and per-env smoke runs.

A compile costs seconds, so the tests share runs: one run per key of TINY, one batched run with a callback, one run
with several episodes per update. That CartPole is learned is a learning-quality check (`make test-learning`).
"""

import jax
import numpy as np
import pytest

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.metrics import METRICS
from purejaxppo.core.train import make_train

TINY = dict(env="CartPole-v1", num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2,
            total_timesteps=4 * 16 * 3)
KEYS = jax.random.split(jax.random.PRNGKey(42), 3)


def _allclose(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, equal_nan=True)


def _assert_same_run(batched, i, single):
    """Seed i of a batched TrainOutput equals the single-seed TrainOutput."""
    assert set(batched.metrics) == set(single.metrics)
    for name in single.metrics:
        _allclose(batched.metrics[name][i], single.metrics[name])
    jax.tree.map(lambda b, s: _allclose(b[i], s), batched.params, single.params)


@pytest.fixture(scope="module")
def tiny_runs():
    """TINY's train, and one plain jitted run per key of KEYS: typed keys (jax.random.key's), which draw the same
    bits as the raw keys they wrap, so they are the reference of both kinds of batch."""
    train = make_train(PPOConfig(**TINY))
    single = [jax.jit(train)(k) for k in jax.random.wrap_key_data(KEYS)]
    return train, single


@pytest.fixture(scope="module")
def batched_with_callback():
    """TINY trained on the [3, 2] raw keys KEYS at once (train vmaps itself), with a progress callback: the
    output and the callback's calls."""
    calls = []
    train = make_train(PPOConfig(**TINY), callback=lambda metrics: calls.append(jax.tree.map(np.asarray, metrics)))
    out = train(KEYS)
    jax.block_until_ready(out)
    jax.effects_barrier()
    return out, calls


# vmapped multi-seed training has deadlocked on CPU with some jax versions: fail instead of hanging
@pytest.mark.slow
def test_vmap_over_seeds_equals_single_jitted_runs(tiny_runs):
    train, single = tiny_runs
    vmapped = jax.jit(jax.vmap(train))(KEYS)  # jitted: an eager vmap dispatches the setup op by op, twice the cost
    for i in range(len(KEYS)):
        _assert_same_run(vmapped, i, single[i])
    # the seeds are different runs
    assert not np.allclose(np.asarray(single[0].metrics["value_loss"]), np.asarray(single[1].metrics["value_loss"]))


@pytest.mark.slow
def test_train_given_batch_of_keys_vmaps_itself(tiny_runs, batched_with_callback):
    _, single = tiny_runs
    batched, _ = batched_with_callback
    for name in METRICS:
        assert batched.metrics[name].shape == (len(KEYS), PPOConfig(**TINY).num_updates)
    for i in range(len(KEYS)):
        _assert_same_run(batched, i, single[i])


@pytest.mark.slow
def test_new_style_typed_keys(tiny_runs):
    """A typed key (jax.random.key) is one run; a [N] array of typed keys is N runs, like [N, 2] raw keys."""
    cfg = PPOConfig(**TINY)
    train, single = tiny_runs  # each run of a typed key
    assert single[1].metrics["env_steps"].shape == (cfg.num_updates,)
    assert np.all(np.isfinite(np.asarray(single[1].metrics["value_loss"])))
    keys = jax.random.wrap_key_data(KEYS[:2])
    batched = jax.jit(train)(keys)
    assert batched.metrics["env_steps"].shape == (2, cfg.num_updates)
    _assert_same_run(batched, 1, single[1])


def test_metrics_shapes_env_steps_and_annealed_lr(tiny_runs):
    cfg = PPOConfig(**TINY)
    _, single = tiny_runs
    m = jax.tree.map(np.asarray, single[0].metrics)
    assert set(METRICS) <= set(m)
    for name in METRICS:
        assert m[name].shape == (cfg.num_updates,), name
    np.testing.assert_array_equal(m["env_steps"], (np.arange(cfg.num_updates) + 1) * cfg.batch_size)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance"):
        assert np.all(np.isfinite(m[name])), name
    assert np.all(m["approx_kl"] >= 0)
    assert np.all((m["clip_fraction"] >= 0) & (m["clip_fraction"] <= 1))
    assert np.all((m["entropy"] > 0) & (m["entropy"] <= np.log(2) + 1e-6))  # 2 actions
    assert single[0].state.update_count == cfg.num_updates

    # anneal_lr: linear from lr towards 0 over the run, each update's lr at its start
    lr = m["learning_rate"]
    np.testing.assert_allclose(lr, cfg.lr * (1 - np.arange(cfg.num_updates) / cfg.num_updates), rtol=1e-5)
    assert np.all(np.diff(lr) < 0)


SEVERAL_EPISODES = PPOConfig(env="CartPole-v1", num_envs=8, num_steps=32, num_minibatches=2, update_epochs=1,
                             total_timesteps=8 * 32 * 3, anneal_lr=False, lr=1e-3)
"""8 envs x 32 steps: several random episodes end in every update; a constant learning rate."""


@pytest.fixture(scope="module")
def several_episodes():
    return jax.tree.map(np.asarray, jax.jit(make_train(SEVERAL_EPISODES))(KEYS[1]).metrics)


@pytest.mark.slow
def test_learning_rate_anneals_to_near_zero_or_stays_constant(tiny_runs, several_episodes):
    cfg = PPOConfig(**TINY)
    lr = np.asarray(tiny_runs[1][0].metrics["learning_rate"])
    np.testing.assert_allclose(lr[0], cfg.lr, rtol=1e-6)
    assert np.all(np.diff(lr) < 0)
    np.testing.assert_allclose(np.diff(lr), -cfg.lr / cfg.num_updates, rtol=1e-3)  # linear
    assert lr[-1] <= cfg.lr / cfg.num_updates * (1 + 1e-5)  # near 0 at the end

    const = SEVERAL_EPISODES  # anneal_lr=False, lr=1e-3
    np.testing.assert_allclose(several_episodes["learning_rate"], np.full(const.num_updates, 1e-3), rtol=1e-6)


@pytest.mark.slow
def test_episode_return_nan_without_finished_episode_else_mean_of_finished():
    # One CartPole env, 4 steps per update: no episode can end in the first update (they last >= ~8 steps),
    # and at most one ends in any update.
    cfg = PPOConfig(env="CartPole-v1", num_envs=1, num_steps=4, num_minibatches=1, update_epochs=1,
                    total_timesteps=4 * 60)
    m = jax.tree.map(np.asarray, jax.jit(make_train(cfg))(KEYS[0]).metrics)
    n, ret, length = m["num_episodes"], m["episode_return"], m["episode_length"]
    assert n[0] == 0 and np.isnan(ret[0]) and np.isnan(length[0])
    assert n.max() <= 1 and n.sum() >= 3
    ended = n > 0
    assert np.all(np.isnan(ret[~ended])) and np.all(np.isnan(length[~ended]))
    assert np.all(np.isfinite(ret[ended]))
    assert np.all((ret[ended] >= 1) & (ret[ended] <= 500))
    np.testing.assert_array_equal(ret[ended], length[ended])  # CartPole: reward 1 per step
    # The finished episodes tile the env's steps up to the last one's end, which lies inside its update.
    last = np.flatnonzero(ended)[-1]
    total = ret[ended].sum()
    assert m["env_steps"][last] - cfg.batch_size < total <= m["env_steps"][last]
    # Consecutive episode ends are one episode length apart.
    for a, b in zip(np.flatnonzero(ended)[:-1], np.flatnonzero(ended)[1:]):
        assert m["env_steps"][b] - m["env_steps"][a] - 3 <= ret[b] <= m["env_steps"][b] - m["env_steps"][a] + 3


@pytest.mark.slow
def test_episode_return_is_mean_over_several_finished_episodes(several_episodes):
    m = several_episodes
    assert np.all(m["num_episodes"] > 1)  # random CartPole episodes last ~22 steps
    np.testing.assert_allclose(m["episode_return"], m["episode_length"], rtol=1e-6)
    assert np.all((m["episode_return"] >= 1) & (m["episode_return"] <= 500))
    # The mean over the episodes ending in an update: the sum of their lengths is at most the steps taken.
    assert np.all(m["episode_return"] * m["num_episodes"] <= np.asarray(m["env_steps"]))


@pytest.mark.slow
def test_callback_called_once_per_update_with_batched_metrics(batched_with_callback):
    cfg = PPOConfig(**TINY)
    out, calls = batched_with_callback
    calls = list(calls)
    assert len(calls) == cfg.num_updates
    for c in calls:
        assert set(METRICS) <= set(c)
        for name in METRICS:
            assert c[name].shape == (len(KEYS),), name
    calls.sort(key=lambda c: int(c["env_steps"][0]))
    for u, c in enumerate(calls):
        np.testing.assert_array_equal(c["env_steps"], [(u + 1) * cfg.batch_size] * len(KEYS))
        for name in METRICS:
            _allclose(c[name], np.asarray(out.metrics[name])[:, u])


@pytest.mark.slow
@pytest.mark.learning
def test_learns_cartpole():
    cfg = PPOConfig(total_timesteps=100_000)
    m = jax.tree.map(np.asarray, jax.jit(make_train(cfg))(jax.random.PRNGKey(0)).metrics)
    first = m["episode_return"][0]
    last10 = np.nanmean(m["episode_return"][-10:])
    assert np.isfinite(first) and first < 50  # a random policy gets ~22
    assert last10 > 100, f"mean return over the last 10 updates {last10:.1f} (first update: {first:.1f})"
    assert last10 > 3 * first


def _bias_leaves(params):
    return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
            if "bias" in jax.tree_util.keystr(path) or "log_std" in jax.tree_util.keystr(path)]


@pytest.mark.parametrize("env_id,extra", [
    pytest.param("Acrobot-v1", {}, marks=pytest.mark.slow),
    pytest.param("Pendulum-v1", {"clip_value": False, "ent_coef": 0.0}, marks=pytest.mark.slow),
    pytest.param("Breakout-MinAtar", {"activation": "relu"}, marks=pytest.mark.slow),
    pytest.param("Catch-bsuite", {}, marks=pytest.mark.slow),
    ("CartPole-v1", {"shared_torso": True}),
])
def test_smoke_runs(env_id, extra):
    cfg = PPOConfig(env=env_id, num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2,
                    total_timesteps=4 * 16 * 3, **extra)
    out = jax.jit(make_train(cfg))(jax.random.PRNGKey(1))
    m = jax.tree.map(np.asarray, out.metrics)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance"):
        assert m[name].shape == (cfg.num_updates,)
        assert np.all(np.isfinite(m[name])), (name, m[name])
    assert np.all(m["approx_kl"] > 0)  # the policy moved between minibatches
    for leaf in jax.tree.leaves(out.params):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # Biases (and log_std) start at exactly 0 (see test_networks): after training every one has moved.
    biases = _bias_leaves(out.params)
    assert len(biases) >= 4
    for b in biases:
        assert np.any(np.asarray(b) != 0)
    p = out.params["params"]
    assert ("critic_torso" in p) == (not cfg.shared_torso)
    assert ("log_std" in p) == (env_id == "Pendulum-v1")
