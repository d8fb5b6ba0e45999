"""Recurrent policies (`PPOConfig.recurrent`): the GRU's resets, the one-step alignment of resets and bootstraps
with GAE, the update's exact recomputation of the rollout from whole env sequences, training under jit and vmap,
memory on MemoryChain where a feed-forward policy is at chance, and a loaded policy that carries its memory.

The MemoryChain runs go through the training command, called in this process (`conftest.run_main`). That the
recurrent run solves it where the feed-forward one is at chance is a learning check (`make test-learning`); the
loaded recurrent policy's memory is checked in every `make test`, on the recurrent run alone.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_main

from purejaxppo.cli.args import build_parser
from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import ActionSpec, EpisodeStatistics, make_env
from purejaxppo.core.policy_kinds import Recurrent, make_policy_kind
from purejaxppo.core.records import Batch
from purejaxppo.core.recurrent import RecurrentActorCritic
from purejaxppo.core.rollout import reset_envs, rollout
from purejaxppo.core.train import make_components, make_train
from purejaxppo.core.update import update
from purejaxppo.io.evaluation import evaluate
from purejaxppo.io.policy import load_policy

DISCRETE = ActionSpec(discrete=True, num_actions=2)
CONTINUOUS = ActionSpec(discrete=False, shape=(2,), low=(-1.0, -1.0), high=(1.0, 1.0))
# MemoryChain's default: the context bit is shown at the first two steps and rewarded (+1 if the action matches,
# else -1) at the sixth and last, so its episodes end inside rollouts and hidden states cross rollouts.
MEMORY_STEPS = 20_480  # 40 updates of the MemoryChain defaults, 16 envs x 32 steps


def _perturb(params, scale=0.5, seed=1):
    """Every leaf moved at random, so that the policy and value depend strongly on the hidden state (at init the
    policy head's gain of 0.01 makes every policy nearly uniform, which would hide a misaligned reset)."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def _setup(env, config, seed=0):
    """The recurrent policy kind of `config` on `env`, perturbed params and `config.num_envs` fresh envs."""
    policy = make_policy_kind(config, env.action_spec)
    assert isinstance(policy, Recurrent)

    @jax.jit
    def init(key):
        key_env, key_net = jax.random.split(key)
        envs = reset_envs(env, policy, key_env, config.num_envs)
        return _perturb(policy.init_params(key_net, envs)), envs

    return policy, *init(jax.random.key(seed))


def _two_rollouts(env, policy, params, envs, num_steps):
    """Two successive rollouts; returns the second's carry in and out, and its Transition (`tr.memory` holds
    what the update reruns the GRU from)."""
    roll = jax.jit(lambda envs, key: rollout(env, policy, params, envs, key, num_steps))
    envs, _ = roll(envs, jax.random.key(10))
    after, tr = roll(envs, jax.random.key(11))
    return envs, after, tr


def _batch(tr, memory=None, advantages=None):
    """The update's batch of whole sequences from `tr` (with `memory` in place of the recorded one)."""
    advantages = jnp.zeros_like(tr.reward) if advantages is None else advantages
    return Batch(tr.obs, tr.action, tr.log_prob, tr.value, advantages, advantages + tr.value,
                 memory=tr.memory if memory is None else memory)


def test_config_field_cli_flag_and_minibatches_that_split_envs():
    assert PPOConfig().recurrent is False
    assert PPOConfig.for_env("MemoryChain-bsuite").recurrent is True
    assert build_parser().parse_args(["--recurrent"]).recurrent is True
    assert build_parser().parse_args(["--no-recurrent"]).recurrent is False
    PPOConfig(num_envs=4, num_steps=6, num_minibatches=3)  # feed-forward: 3 divides the batch of 24
    with pytest.raises(ValueError, match=r"^PPOConfig\.num_minibatches=3 is invalid: with recurrent=True it must "
                                         r"divide num_envs = 4, .* \(change num_minibatches or num_envs\)\.$"):
        PPOConfig(num_envs=4, num_steps=6, num_minibatches=3, recurrent=True)
    with pytest.raises(ValueError, match="PPOConfig.recurrent=1 is invalid"):
        PPOConfig(recurrent=1)


@pytest.mark.slow
@pytest.mark.parametrize("spec", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_network_step_resets_the_hidden_state_where_first(spec):
    network = make_policy_kind(PPOConfig(recurrent=True, hidden_sizes=(8, 16)), spec).network
    assert isinstance(network, RecurrentActorCritic)
    hidden = jax.random.normal(jax.random.key(0), (5, 8))
    obs = jax.random.normal(jax.random.key(1), (5, 3))
    first = jnp.array([True, False, True, False, False])
    params = jax.jit(lambda key: _perturb(network.init(key, hidden, obs, first)))(jax.random.key(2))

    @jax.jit
    def outputs(hidden, first):
        hidden, pi, value = network.apply(params, hidden, obs, first)
        action = pi.sample(seed=jax.random.key(3))
        return hidden, value, action, pi.log_prob(action)

    new_hidden, value, action, log_prob = outputs(hidden, first)
    from_zero, value_zero, _, _ = outputs(jnp.zeros_like(hidden), jnp.ones(5, bool))
    assert new_hidden.shape == (5, 8) and value.shape == (5,) and log_prob.shape == (5,)
    assert action.shape == ((5,) if spec.discrete else (5, 2)) and np.all(np.isfinite(log_prob))
    np.testing.assert_array_equal(new_hidden[first], from_zero[first])
    np.testing.assert_array_equal(value[first], value_zero[first])
    assert np.all(np.abs(new_hidden[~first] - from_zero[~first]).max(-1) > 1e-2)  # the others remember
    p = params["params"]
    assert p["gru"]["hr"]["kernel"].shape == (8, 8) and ("log_std" in p["heads"]) == (not spec.discrete)
    assert p["heads"]["actor_torso"]["Dense_0"]["kernel"].shape == (8, 16)  # hidden_sizes[1:] after the GRU


MEMORY_CHAIN = PPOConfig(env="MemoryChain-bsuite", recurrent=True, num_envs=8, num_steps=16, num_minibatches=4)


@pytest.fixture(scope="module")
def memory_chain_rollouts():
    """Two rollouts of `MEMORY_CHAIN`'s recurrent policy with perturbed params: the policy, its params, the
    second rollout's carry in and out, and its Transition (compiled once for the tests that read them)."""
    env = make_env(MEMORY_CHAIN.env)
    policy, params, envs = _setup(env, MEMORY_CHAIN)
    return policy, params, *_two_rollouts(env, policy, params, envs, MEMORY_CHAIN.num_steps)


@pytest.mark.slow
def test_update_recomputes_the_rollout_exactly_and_would_not_with_misaligned_resets(memory_chain_rollouts):
    """With the params the rollout used, rerunning the GRU over the recorded sequences gives the recorded
    log-probs and values (ratio 1): resets at first_t = done_t-1, and the hidden state recorded at the start."""
    policy, params, before, after, tr = memory_chain_rollouts
    seq = tr.memory

    # The second rollout starts mid-episode (episodes last 6 steps) from a remembered state, and ends some.
    assert np.any(np.asarray(before.hidden) != 0) and not np.any(before.first)
    assert 8 * 2 <= tr.done.sum() <= 8 * 3 and not np.any(tr.done[0])
    np.testing.assert_array_equal(seq.hidden[0], before.hidden)
    np.testing.assert_array_equal(seq.first[0], before.first)
    np.testing.assert_array_equal(seq.first[1:], tr.done[:-1])  # the very done_t GAE cuts A_t+1 at
    np.testing.assert_array_equal(after.first, tr.done[-1])

    @jax.jit
    def recompute(batch):  # log pi(a_t | history) and V, [T, B] each
        pi, value = policy.evaluate(params, batch)
        return pi.log_prob(batch.action), value

    log_prob, value = recompute(_batch(tr))
    np.testing.assert_allclose(log_prob, tr.log_prob, atol=1e-5)
    np.testing.assert_allclose(jnp.exp(log_prob - tr.log_prob), 1.0, atol=1e-5)
    np.testing.assert_allclose(value, tr.value, atol=1e-5)
    envs_subset = jnp.array([5, 0, 3])  # a minibatch of whole env sequences recomputes alone
    log_prob, _ = recompute(jax.tree.map(lambda x: x[0], policy.take(_batch(tr), envs_subset[None])))
    np.testing.assert_allclose(log_prob, tr.log_prob[:, envs_subset], atol=1e-5)

    for wrong in (seq.replace(first=tr.done),  # reset one step early, at the episode's last observation
                  seq.replace(first=jnp.zeros_like(seq.first)),  # never reset
                  seq.replace(hidden=jnp.zeros_like(seq.hidden))):  # not the hidden state the rollout started from
        assert np.abs(recompute(_batch(tr, wrong))[0] - tr.log_prob).max() > 0.05


@pytest.mark.slow
def test_update_minibatches_are_whole_env_sequences(memory_chain_rollouts):
    """`update` on a recurrent batch with an imperceptible learning rate: every minibatch is [T, B / M] whole
    sequences whose recomputed ratio is 1 (no clipping); shuffling steps or misaligning resets would not be."""
    config = MEMORY_CHAIN.replace(update_epochs=2, lr=1e-30)
    policy, params, _, _, tr = memory_chain_rollouts
    advantages = jax.random.normal(jax.random.key(4), tr.reward.shape)
    shapes = []

    class Recorded(Recurrent):
        def evaluate(self, params, batch):
            shapes.append(jax.tree.map(jnp.shape, (batch.obs, batch.memory)))
            return super().evaluate(params, batch)

    parts = make_components(config)._replace(policy=Recorded(policy.network))
    run = lambda memory: update(params, parts.tx.init(params), _batch(tr, memory, advantages), jax.random.key(5),
                                loss=parts.loss(jnp.float32(1.0)), policy=parts.policy, tx=parts.tx,
                                epochs=config.update_epochs, num_minibatches=config.num_minibatches,
                                early_stop=parts.early_stop)
    new_params, _, metrics = jax.jit(run)(tr.memory)
    obs_shape, memory_shapes = shapes[0]
    assert obs_shape == (16, 2, 3) and memory_shapes.first == (16, 2) and memory_shapes.hidden == (1, 2, 64)
    assert metrics["clip_fraction"] == 0 and metrics["approx_kl"] < 1e-9
    jax.tree.map(np.testing.assert_array_equal, new_params, params)
    _, _, misaligned = jax.jit(run)(tr.memory.replace(first=tr.done))
    assert misaligned["clip_fraction"] > 0.05


class TimeLimitedEnv:
    """Episodes truncated after 3 steps (never terminated): obs `[k / 3, sign]` after k steps, `sign` drawn per
    episode; the final observation `[1, sign]` is never an input to the policy, only the truncation's bootstrap."""

    action_spec = DISCRETE

    def reset(self, key):
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        return jnp.stack([0.0, sign]), (jnp.int32(0), sign)

    def step(self, key, state, action):
        steps, sign = state[0] + 1, state[1]
        final = jnp.stack([steps / 3.0, sign])
        truncated = steps == 3
        obs, state = jax.tree.map(lambda a, b: jnp.where(truncated, a, b), self.reset(key), (final, (steps, sign)))
        return obs, state, action.astype(jnp.float32), jnp.bool_(False), truncated, {"final_observation": final}


@pytest.mark.slow
def test_next_value_of_a_truncated_episode_reads_its_final_observation_with_its_own_hidden_state():
    config = PPOConfig(recurrent=True, num_envs=4, hidden_sizes=(8, 8))
    env = EpisodeStatistics(TimeLimitedEnv())
    policy, params, envs = _setup(env, config)
    network = policy.network
    _, after, tr = _two_rollouts(env, policy, params, envs, num_steps=10)

    assert not np.any(tr.terminated)
    np.testing.assert_array_equal(tr.done, np.broadcast_to((np.arange(10, 20) % 3 == 2)[:, None], (10, 4)))
    final_obs = tr.obs + jnp.array([1 / 3, 0.0])  # s_t+1, or the final observation where truncated at t

    def recur(hidden, inputs):
        hidden = network.apply(params, hidden, *inputs, method=RecurrentActorCritic.recur)
        return hidden, hidden

    _, hidden = jax.lax.scan(recur, tr.memory.hidden[0], (tr.obs, tr.memory.first))  # h_t, after step t

    expected = network.apply(params, hidden, final_obs, method=RecurrentActorCritic.value)
    np.testing.assert_allclose(tr.next_value, expected, atol=1e-5)
    continuing = ~np.asarray(tr.done[:-1])
    np.testing.assert_allclose(tr.next_value[:-1][continuing], tr.value[1:][continuing], atol=1e-5)
    truncated = np.asarray(tr.done)
    from_reset = network.apply(params, jnp.zeros_like(hidden), final_obs, method=RecurrentActorCritic.value)
    assert np.all(np.abs(tr.next_value - from_reset)[truncated] > 1e-3)  # a reset state would be wrong here


@pytest.mark.slow
def test_recurrent_continuous_training_jits_and_vmaps_over_seeds():
    config = PPOConfig(env="Pendulum-v1", recurrent=True, num_envs=4, num_steps=8, num_minibatches=2,
                       update_epochs=2, total_timesteps=4 * 8 * 3, hidden_sizes=(16, 16))
    train = make_train(config)
    keys = jax.random.split(jax.random.key(0), 2)
    batched = jax.jit(jax.vmap(train))(keys)
    single = jax.jit(train)(keys[1])
    for name, m in single.metrics.items():
        np.testing.assert_allclose(batched.metrics[name][1], m, rtol=1e-5, atol=1e-6, err_msg=name)
    jax.tree.map(lambda b, s: np.testing.assert_allclose(b[1], s, rtol=1e-5, atol=1e-6), batched.params,
                 single.params)
    assert np.all(np.isfinite(batched.metrics["policy_loss"])) and np.all(batched.metrics["approx_kl"] > 0)
    assert batched.state.env.hidden.shape == (2, 4, 16) and np.any(batched.state.env.hidden != 0)
    assert "log_std" in single.params["params"]["heads"]


def _memory_chain_run(out, *flags: str):
    """A run of the training command's MemoryChain defaults for `MEMORY_STEPS`, with `flags`: its folder."""
    result = run_main("--env", "MemoryChain-bsuite", "--total-timesteps", str(MEMORY_STEPS), *flags, "--quiet",
                      "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory):
    """The CLI's MemoryChain defaults (recurrent)."""
    return _memory_chain_run(tmp_path_factory.mktemp("memory") / "recurrent")


@pytest.mark.slow
@pytest.mark.learning
def test_recurrent_policy_solves_memory_chain_where_feedforward_is_at_chance(recurrent_run, tmp_path):
    dirs = {"recurrent": recurrent_run, "feedforward": _memory_chain_run(tmp_path / "feedforward", "--no-recurrent")}
    summary = {name: json.loads((d / "summary.json").read_text()) for name, d in dirs.items()}
    recurrent, feedforward = summary["recurrent"]["final_return"], summary["feedforward"]["final_return"]
    print(f"MemoryChain, {MEMORY_STEPS} steps, seed 0: recurrent {recurrent:.3f}, feed-forward {feedforward:.3f}")
    assert recurrent >= 0.9, summary["recurrent"]  # the optimum is 1: the right answer every episode
    assert abs(feedforward) <= 0.3, summary["feedforward"]  # chance is 0: the context is invisible at the answer
    assert json.loads((dirs["recurrent"] / "config.json").read_text())["recurrent"] is True


@pytest.fixture(scope="module")
def short_recurrent_run(tmp_path_factory):
    """Two updates of the CLI's MemoryChain defaults (recurrent): a recurrent policy to load, not one that learned."""
    return _memory_chain_run(tmp_path_factory.mktemp("memory") / "short", "--total-timesteps", "1024")


@pytest.mark.slow
def test_a_loaded_recurrent_policy_steps_with_its_memory(short_recurrent_run):
    policy = load_policy(short_recurrent_run)
    assert policy.config.recurrent and policy.initial_state().shape == (64,)
    obs = make_env("MemoryChain-bsuite").reset(jax.random.key(0))[0]
    with pytest.raises(ValueError, match=r"policy\.step\(hidden, obs, first, key\)"):
        policy(obs)
    hidden, action = jax.jit(policy.step)(policy.initial_state((3,)), jnp.stack([obs] * 3), jnp.ones(3, bool))
    assert hidden.shape == (3, 64) and action.shape == (3,) and action.dtype == jnp.int32
    assert np.all(np.isfinite(evaluate(policy, episodes=8)))


@pytest.mark.slow
@pytest.mark.learning
def test_loaded_recurrent_policy_carries_its_memory_through_episodes(recurrent_run):
    policy = load_policy(recurrent_run)
    assert evaluate(policy, episodes=200).mean() >= 0.9

    class Forgetful:
        """The same policy with its memory reset at every step."""

        env_id = policy.env_id
        initial_state = policy.initial_state

        def step(self, hidden, obs, first, key=None):
            return policy.step(hidden, obs, True, key)

    assert abs(evaluate(Forgetful(), episodes=200).mean()) <= 0.3
