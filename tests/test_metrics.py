"""The per-update rollout metrics against numbers worked by hand."""

import jax.numpy as jnp
import numpy as np

from purejaxppo.core.metrics import explained_variance, masked_mean, rollout_metrics


def test_explained_variance_known_numbers():
    returns = jnp.array([1.0, 2.0, 3.0, 4.0])  # Var = 1.25
    assert float(explained_variance(returns, returns)) == 1.0  # a perfect critic
    assert float(explained_variance(jnp.full(4, 7.0), returns)) == 0.0  # a constant explains nothing
    # residuals [0.5, -0.5, 0.5, -0.5]: Var 0.25, so 1 - 0.25 / 1.25 = 0.8
    np.testing.assert_allclose(explained_variance(returns - jnp.array([0.5, -0.5, 0.5, -0.5]), returns), 0.8,
                               rtol=1e-6)
    # worse than a constant: residuals [-3, -1, 1, 3] have Var 5, so 1 - 5 / 1.25 = -3
    np.testing.assert_allclose(explained_variance(returns[::-1], returns), -3.0, rtol=1e-6)
    assert np.isnan(explained_variance(returns, jnp.full(4, 2.0)))  # Var(R) = 0: undefined


def test_masked_mean_is_nan_when_nothing_is_masked_in():
    x = jnp.array([[1.0, 100.0], [3.0, 200.0]])
    assert float(masked_mean(x, jnp.array([[True, False], [True, False]]))) == 2.0
    assert np.isnan(masked_mean(x, jnp.zeros((2, 2), bool)))


def test_rollout_metrics_average_only_the_episodes_that_ended():
    done = jnp.array([[False, True], [True, False], [False, False]])  # [T, B]: two episodes ended
    episode_return = jnp.where(done, jnp.array([[0.0, 10.0], [30.0, 0.0], [0.0, 0.0]]), 0.0)
    episode_length = jnp.where(done, jnp.array([[0, 4], [8, 0], [0, 0]]), 0)
    values = jnp.zeros((3, 2))
    m = rollout_metrics(episode_return, episode_length, done, values, jnp.arange(6.0).reshape(3, 2))
    assert (float(m["episode_return"]), float(m["episode_length"]), int(m["num_episodes"])) == (20.0, 6.0, 2)
    assert float(m["explained_variance"]) == 0.0
