"""A network of your own: `make_train(config, network=...)`, `sweep(..., network=...)` and
`load_policy(..., network=...)` take a flax module (or a factory of one) that keeps `ActorCritic`'s contract,
and a module that does not is one line naming the contract, before anything compiles."""

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo import PPOConfig, make_train, sweep
from purejaxppo.core.networks import ActorCritic

TINY = PPOConfig(env="CartPole-v1", num_envs=4, num_steps=16, num_minibatches=2, total_timesteps=4 * 16 * 4)


class TwoTowers(nn.Module):
    """An actor and a critic of their own, each `width` wide: a user's network, flax's default initializers."""

    num_actions: int
    width: int = 64

    def setup(self):
        self.actor = nn.Sequential([nn.Dense(self.width), nn.tanh, nn.Dense(self.width), nn.tanh,
                                    nn.Dense(self.num_actions)])
        self.critic = nn.Sequential([nn.Dense(self.width), nn.tanh, nn.Dense(self.width), nn.tanh, nn.Dense(1)])

    def __call__(self, obs):
        return self.policy(obs), self.value(obs)

    def policy(self, obs):
        return distrax.Categorical(logits=self.actor(obs))

    def value(self, obs):
        return self.critic(obs)[..., 0]


def factory(action_spec, config):
    return TwoTowers(action_spec.num_actions)


@pytest.mark.slow
def test_a_users_network_is_the_one_trained_in_make_train_and_sweep():
    out = jax.jit(make_train(TINY, network=factory))(jax.random.key(0))
    assert set(out.state.params["params"]) == {"actor", "critic"}
    result = sweep(TINY, num_seeds=2, network=TwoTowers(2, width=8), lr=[1e-3, 3e-3])
    assert result.params["params"]["actor"]["layers_0"]["kernel"].shape == (2, 2, 4, 8)  # [C, S, obs, width]
    assert np.isfinite(result.metrics["policy_loss"]).all()


@pytest.mark.slow
def test_a_module_as_the_built_in_one_is_a_network_too():
    out = make_train(TINY, network=lambda s, c: ActorCritic(s, (16,)))(jax.random.key(0))
    assert np.isfinite(out.metrics["value_loss"]).all()


class ReturnsLogits(TwoTowers):
    def policy(self, obs):
        return self.actor(obs)


class NoValue(nn.Module):
    @nn.compact
    def __call__(self, obs):
        return distrax.Categorical(logits=nn.Dense(2)(obs)), nn.Dense(1)(obs)[..., 0]

    def policy(self, obs):
        return self(obs)[0]


class OneValuePerBatch(TwoTowers):
    def value(self, obs):
        return self.critic(obs).sum()


@pytest.mark.parametrize("network, message", [
    (ReturnsLogits(2), "returned an array as its policy, not a distrax distribution"),
    (NoValue(), "has no value(obs)"),
    (OneValuePerBatch(2), "values of shape [] for observations [2, 4], not [2]"),
    (42, "network=42 is not a flax module"),
    (TwoTowers(3), "policy is over 3 actions (categorical), this env's are 2 (categorical)"),
    (lambda spec, config: "a module", "is not a flax module"),
])
def test_a_network_that_breaks_the_contract_is_one_line_naming_it(network, message):
    with pytest.raises(ValueError, match="docs/your-network.md") as raised:
        make_train(TINY, network=network)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_recurrent_config_keeps_its_own_network():
    with pytest.raises(ValueError, match="a network of your own is for feed-forward policies"):
        make_train(TINY.replace(recurrent=True), network=factory)


@pytest.mark.slow
def test_a_run_of_a_users_network_loads_with_it(tmp_path):
    from purejaxppo import evaluate, load_policy
    from purejaxppo.io.checkpoint import Checkpointer
    from purejaxppo.io.run_meta import RunRecord
    from purejaxppo.scale.sweep import Sweep

    job = Sweep(TINY, network=factory)
    progress = job.advance(job.init(), TINY.num_updates)
    (tmp_path / "checkpoints").mkdir()
    Checkpointer(tmp_path).save(job.to_host(progress), progress.done, RunRecord(TINY, (0,), {}).checkpoint_meta())
    policy = load_policy(tmp_path, network=factory)
    assert set(policy.params["params"]) == {"actor", "critic"}
    assert evaluate(policy, episodes=2).shape == (2,)


@pytest.mark.slow
@pytest.mark.learning
def test_a_users_network_learns_cartpole():
    config = PPOConfig.for_env("CartPole-v1")
    out = jax.jit(jax.vmap(make_train(config, network=factory)))(jax.vmap(jax.random.key)(jnp.arange(2)))
    final = np.nanmean(np.asarray(out.metrics["episode_return"])[:, -10:], axis=1)
    assert (final > 400).all(), final
