"""Policy kinds: what makes a feed-forward policy and a recurrent one differ, as a value that `rollout`,
`make_trainer`, `update` and `Policy` are given instead of flags they branch on.

A kind says
- how to reset: the carry every env starts with (`reset`, `init_params`, `initial_memory`);
- how to act: the keys a rollout step draws (`step_keys`), one step of the network (`act`, given the memory
  `memory` reads from the carry), the carry after it (`next_carry`), and what the step keeps for the critic
  (`critic_step`);
- how the critic reads a rollout (`values`) and what else the update needs to rerun it (`rollout_memory`);
- what batch the update sees (`batch`), how the network reads it (`evaluate`), and how minibatches split it
  (`units`, `take`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import distrax
import jax
import jax.numpy as jnp
from flax import struct

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs.base import ActionSpec
from purejaxppo.core.networks import ActorCritic, CNNTorso, MLPTorso
from purejaxppo.core.records import Batch, EnvCarry, RecurrentCarry, SequenceStart, Step, Transition
from purejaxppo.core.recurrent import RecurrentActorCritic, initial_hidden
from purejaxppo.core.user_network import RECURRENT, user_network

Preprocess = Callable[[jax.Array], jax.Array]


class Act(NamedTuple):
    """One step of the policy on observations `[..., obs_size]`."""

    pi: distrax.Distribution  # batch shape [...]
    value: jax.Array | None  # V(obs) [...], where the step computes it (recurrent); None: read after the loop
    hidden: Any  # the policy's memory after the step ([..., H]; passed through by a feed-forward policy)


class PolicyKind(Protocol):
    network: Any

    def reset(self, envs: EnvCarry) -> EnvCarry: ...
    def init_params(self, key: jax.Array, carry: EnvCarry) -> Any: ...
    def initial_memory(self, batch_shape: tuple[int, ...] = ()) -> Any: ...
    def step_keys(self, key: jax.Array, num_envs: int) -> tuple[jax.Array, jax.Array]: ...
    def memory(self, carry: EnvCarry) -> tuple[Any, Any]: ...
    def act(self, params: Any, obs: jax.Array, hidden: Any, first: Any) -> Act: ...
    def next_carry(self, state: Any, obs: jax.Array, act: Act, done: jax.Array) -> EnvCarry: ...
    def critic_step(self, params: Any, carry: EnvCarry, act: Act, final_obs: jax.Array, bootstrap: jax.Array,
                    preprocess: Preprocess) -> Any: ...
    def values(self, params: Any, steps: Step, end: EnvCarry, preprocess: Preprocess
               ) -> tuple[jax.Array, jax.Array]: ...
    def rollout_memory(self, start: EnvCarry, steps: Step) -> Any: ...
    def batch(self, tr: Transition, obs: jax.Array, advantages: jax.Array, returns: jax.Array) -> Batch: ...
    def evaluate(self, params: Any, batch: Batch) -> tuple[distrax.Distribution, jax.Array]: ...
    def units(self, batch: Batch) -> int: ...
    def take(self, batch: Batch, order: jax.Array) -> Batch: ...


class FeedForward:
    """A policy of the current observation alone (an `ActorCritic`). Its batch is the rollout's transitions
    flattened to `[T * B]`, and minibatches are drawn from them one by one."""

    def __init__(self, network: ActorCritic):
        self.network = network

    def reset(self, envs: EnvCarry) -> EnvCarry:
        return envs

    def init_params(self, key: jax.Array, carry: EnvCarry) -> Any:
        return self.network.init(key, carry.obs)

    def initial_memory(self, batch_shape: tuple[int, ...] = ()) -> Any:
        return ()

    def step_keys(self, key: jax.Array, num_envs: int) -> tuple[jax.Array, jax.Array]:
        # one split gives the action's key and every env's: each split is a loop of threefry rounds
        keys = jax.random.split(key, num_envs + 1)
        return keys[0], keys[1:]

    def memory(self, carry: EnvCarry) -> tuple[Any, Any]:
        """No memory: `(hidden, first)` are `(None, None)`."""
        return None, None

    def act(self, params: Any, obs: jax.Array, hidden: Any, first: Any) -> Act:
        return Act(self.network.apply(params, obs, method="policy"), None, hidden)

    def next_carry(self, state: Any, obs: jax.Array, act: Act, done: jax.Array) -> EnvCarry:
        return EnvCarry(state, obs)

    def critic_step(self, params, carry, act, final_obs, bootstrap, preprocess) -> jax.Array:
        """V(final observation) `[B]` where an episode was truncated, else 0. Steps without a truncation (nearly
        all) skip the critic pass (under vmap the cond becomes a select, and the pass is always made)."""
        return jax.lax.cond(
            bootstrap.any(),
            lambda: self.network.apply(params, preprocess(final_obs), method="value"),
            lambda: jnp.zeros(bootstrap.shape, jnp.float32))

    def values(self, params, steps, end, preprocess) -> tuple[jax.Array, jax.Array]:
        """V(s_t) and V(s_t+1), `[T, B]`. The critic runs once over the whole batch and the envs' last
        observations, `[T + 1, B]`, not step by step: one large pass costs less than T small ones. V(s_t+1) is
        the next step's V(s_t), or the bootstrap `critic_step` read, or 0 at a termination."""
        obs = jnp.concatenate([steps.obs, end.obs[None]])
        values = self.network.apply(params, preprocess(obs), method="value")
        next_value = jnp.where(steps.bootstrap, steps.critic, jnp.where(steps.terminated, 0.0, values[1:]))
        return values[:-1], next_value

    def rollout_memory(self, start: EnvCarry, steps: Step) -> None:
        return None

    def batch(self, tr: Transition, obs: jax.Array, advantages: jax.Array, returns: jax.Array) -> Batch:
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # [T, B, ...] -> [T * B, ...]
        return Batch(obs=flat(obs), action=flat(tr.action), log_prob=flat(tr.log_prob), value=flat(tr.value),
                     advantages=flat(advantages), returns=flat(returns), dist_params=jax.tree.map(flat, tr.dist_params))

    def evaluate(self, params: Any, batch: Batch) -> tuple[distrax.Distribution, jax.Array]:
        return self.network.apply(params, batch.obs)

    def units(self, batch: Batch) -> int:
        """What minibatches are drawn from: the `[N]` transitions."""
        return batch.returns.shape[0]

    def take(self, batch: Batch, order: jax.Array) -> Batch:
        """The minibatches `order` `[M, N / M]` selects, leading: `[M, N / M, ...]`."""
        return jax.tree.map(lambda x: x[order], batch)


@struct.dataclass
class RecurrentCritic:
    """What a recurrent rollout step keeps for its values and for the update's rerun, `[B, ...]`."""

    value: jax.Array  # V(s_t), read with h_t
    hidden: jax.Array  # h_t, after the step
    first: jax.Array  # s_t is its episode's first: h was zeroed before the step
    final_obs: jax.Array  # s_t+1, or the ended episode's last observation


class Recurrent:
    """A policy with memory (a `RecurrentActorCritic`).

    One-step alignment with GAE: `done_t` (the episode ended at step t) both cuts A_t+1 from A_t and makes
    `first_t+1` true, so step t+1 starts from a zero hidden state. `next_value_t` is V(s_t+1) read with h_t,
    which continues s_t's episode: after a truncation, V(final observation) is not read with a reset state.

    The rollout records the hidden state every env starts it with and `first` at every step; from those the
    update reruns the GRU over each env's sequence exactly as the rollout did. The batch stays time-major
    `[T, B]`, and minibatches are whole env sequences (`[T, B / M]`): the update shuffles envs, never steps.
    """

    def __init__(self, network: RecurrentActorCritic):
        self.network = network

    def reset(self, envs: EnvCarry) -> RecurrentCarry:
        """Each env at its episode's first observation, with a zero hidden state."""
        num_envs = envs.obs.shape[0]
        return RecurrentCarry(envs.state, envs.obs, initial_hidden(self.network, (num_envs,)),
                              jnp.ones(num_envs, bool))

    def init_params(self, key: jax.Array, carry: RecurrentCarry) -> Any:
        return self.network.init(key, carry.hidden, carry.obs, carry.first)

    def initial_memory(self, batch_shape: tuple[int, ...] = ()) -> jax.Array:
        return initial_hidden(self.network, batch_shape)

    def step_keys(self, key: jax.Array, num_envs: int) -> tuple[jax.Array, jax.Array]:
        key_action, key_env = jax.random.split(key)
        return key_action, jax.random.split(key_env, num_envs)

    def memory(self, carry: RecurrentCarry) -> tuple[jax.Array, jax.Array]:
        """`(hidden, first)`: h after each env's last step, and whether obs starts an episode (h is reset)."""
        return carry.hidden, carry.first

    def act(self, params: Any, obs: jax.Array, hidden: Any, first: Any) -> Act:
        hidden, pi, value = self.network.apply(params, hidden, obs, first)
        return Act(pi, value, hidden)

    def next_carry(self, state: Any, obs: jax.Array, act: Act, done: jax.Array) -> RecurrentCarry:
        return RecurrentCarry(state, obs, act.hidden, done)

    def critic_step(self, params, carry, act, final_obs, bootstrap, preprocess) -> RecurrentCritic:
        return RecurrentCritic(act.value, act.hidden, carry.first, final_obs)

    def values(self, params, steps, end, preprocess) -> tuple[jax.Array, jax.Array]:
        """V(s_t) as each step read it, and V(s_t+1) `[T, B]`: h_t continues s_t's episode into final_obs_t
        (s_t+1 unless the episode ended at t), so one batched pass after the loop gives every next value,
        truncated episodes' bootstrap included, with the state it belongs to (GAE ignores it at terminations)."""
        c = steps.critic
        return c.value, self.network.apply(params, c.hidden, preprocess(c.final_obs),
                                           method=RecurrentActorCritic.value)

    def rollout_memory(self, start: RecurrentCarry, steps: Step) -> SequenceStart:
        return SequenceStart(start.hidden[None], steps.critic.first)

    def batch(self, tr: Transition, obs: jax.Array, advantages: jax.Array, returns: jax.Array) -> Batch:
        return Batch(obs=obs, action=tr.action, log_prob=tr.log_prob, value=tr.value, advantages=advantages,
                     returns=returns, dist_params=tr.dist_params, memory=tr.memory)

    def evaluate(self, params: Any, batch: Batch) -> tuple[distrax.Distribution, jax.Array]:
        """Reruns the GRU over `[T, B]` sequences from their first hidden state: the policy (batch shape `[T, B]`)
        and values `[T, B]` at every step, as the rollout computed them for the same params."""

        def step(hidden, inputs):
            hidden = self.network.apply(params, hidden, *inputs, method=RecurrentActorCritic.recur)
            return hidden, hidden

        _, hidden = jax.lax.scan(step, batch.memory.hidden[0], (batch.obs, batch.memory.first))
        return self.network.apply(params, hidden, batch.obs, method=RecurrentActorCritic.policy_value)

    def units(self, batch: Batch) -> int:
        """What minibatches are drawn from: the `[B]` env sequences."""
        return batch.returns.shape[1]

    def take(self, batch: Batch, order: jax.Array) -> Batch:
        """The minibatches of whole sequences `order` `[M, B / M]` selects, leading: `[M, T, B / M, ...]`."""
        return jax.tree.map(lambda x: jnp.moveaxis(x[:, order], 1, 0), batch)


def make_torso(config: PPOConfig, image_shape: tuple[int, ...] | None) -> MLPTorso | CNNTorso:
    """The torso `config.torso` names: a CNN needs the env's `image_shape`."""
    if config.torso == "mlp":
        return MLPTorso()
    if image_shape is None:
        raise ValueError(f"torso='cnn' needs image observations, and {config.env} has none (it declares no "
                         "image_shape): use torso='mlp'")
    return CNNTorso(tuple(image_shape))


def make_policy_kind(config: PPOConfig, action_spec: ActionSpec, image_shape: tuple[int, ...] | None = None,
                     network: Any = None) -> FeedForward | Recurrent:
    """The config's policy: `Recurrent` with `config.recurrent`, else `FeedForward`, with its network and
    `make_torso`'s torso; or `FeedForward` with a user's `network` (`core.user_network`)."""
    if network is not None:
        if config.recurrent:
            raise ValueError(RECURRENT)
        return FeedForward(user_network(network, config, action_spec))
    args = (action_spec, config.hidden_sizes, config.activation, config.shared_torso, make_torso(config, image_shape))
    if config.recurrent:
        return Recurrent(RecurrentActorCritic(*args))
    return FeedForward(ActorCritic(*args))
