"""The feed-forward rollout's next values: V(s_t+1), V(final observation) at a truncation, 0 at a termination.

The rollout reuses the next step's V(s_t) and runs the critic on final observations only on steps where some
episode was truncated; each next value is checked against the critic applied to an independently computed state.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo import PPOConfig
from purejaxppo.core.envs import make_env
from purejaxppo.core.networks import ActorCritic
from purejaxppo.core.policy_kinds import make_policy_kind
from purejaxppo.core.rollout import reset_envs, rollout


def run(env_id: str, num_envs: int, num_steps: int, batched: bool = False):
    """One rollout with freshly initialized params -> (network, params, envs' last obs, Transition); with
    `batched`, vmapped over two keys (the second returned)."""
    env = make_env(env_id)
    policy = make_policy_kind(PPOConfig(env=env_id), env.action_spec)
    network = policy.network

    def one(key):
        key_env, key_net, key_roll = jax.random.split(key, 3)
        envs = reset_envs(env, policy, key_env, num_envs)
        params = policy.init_params(key_net, envs)
        after, tr = rollout(env, policy, params, envs, key_roll, num_steps)
        return params, after.obs, tr

    keys = jax.random.split(jax.random.key(3), 2)
    if batched:
        out = jax.tree.map(lambda x: x[1], jax.jit(jax.vmap(one))(keys))
    else:
        out = jax.jit(one)(keys[1])
    return (network, *out)


@pytest.mark.slow
@pytest.mark.parametrize("batched", [False, True])
def test_pendulum_truncations_bootstrap_from_the_final_observation(batched):
    """Pendulum never terminates and is truncated at 200 steps: the step 199 of every env bootstraps."""
    network, params, last_obs, tr = run("Pendulum-v1", num_envs=3, num_steps=210, batched=batched)
    assert not np.any(tr.terminated)
    done = np.asarray(tr.done)
    assert done[199].all() and done.sum() == 3
    value = lambda obs: network.apply(params, obs, method=ActorCritic.value)
    # Where the episode went on: the next step's own value estimate; after the last step, V of the envs' observation.
    np.testing.assert_allclose(tr.next_value[-1], value(last_obs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(tr.next_value[:-1])[~done[:-1]], np.asarray(tr.value[1:])[~done[:-1]],
                               rtol=1e-5, atol=1e-5)
    # At the truncation: V of Pendulum's final state, not of the reset state that step 200 starts from.
    # Pendulum's dynamics (gymnax's default params) from step 199's [cos, sin, thetadot] and action.
    max_torque, dt, g, m, length = 2.0, 0.05, 10.0, 1.0, 1.0
    cos, sin, thdot = tr.obs[199][:, 0], tr.obs[199][:, 1], tr.obs[199][:, 2]
    th = jnp.arctan2(sin, cos)
    u = jnp.clip(tr.action[199][:, 0], -max_torque, max_torque)
    new_thdot = jnp.clip(thdot + (3 * g / (2 * length) * jnp.sin(th) + 3.0 / (m * length**2) * u) * dt, -8.0, 8.0)
    new_th = th + new_thdot * dt
    final_obs = jnp.stack([jnp.cos(new_th), jnp.sin(new_th), new_thdot], axis=-1)
    np.testing.assert_allclose(tr.next_value[199], value(final_obs), rtol=1e-4, atol=1e-4)
    assert np.all(np.abs(tr.next_value[199] - tr.value[200]) > 1e-4)  # the reset state's value would be wrong


def test_cartpole_terminations_bootstrap_nothing():
    network, params, _, tr = run("CartPole-v1", num_envs=4, num_steps=128)
    terminated, done = np.asarray(tr.terminated), np.asarray(tr.done)
    assert terminated.any() and np.array_equal(terminated, done)  # random play falls long before 500 steps
    np.testing.assert_array_equal(np.asarray(tr.next_value)[terminated], 0.0)
    np.testing.assert_allclose(np.asarray(tr.next_value[:-1])[~done[:-1]], np.asarray(tr.value[1:])[~done[:-1]],
                               rtol=1e-5, atol=1e-5)
