"""PPO's policy objectives as values. An objective says what it carries from one update to the next (`init`), what
a rollout step keeps of the policy it acted with (`record`), its loss on a minibatch (`policy_loss`), and what
follows an update (`after_update`). `make_objective` chooses one from the config, once; nothing else branches on
which it is.

Adding an objective is one class with these members and its row in `OBJECTIVES`, which `PPOConfig` reads the
names it accepts from: this module imports no network or distribution library at its top, so that a config can be
made and checked without them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Protocol

import jax
import jax.numpy as jnp

from purejaxppo.core.losses import adapt_kl_beta, clipped_surrogate_loss, kl_penalty_loss

if TYPE_CHECKING:
    import distrax

    from purejaxppo.core.records import Batch

Metrics = dict[str, jax.Array]


class Objective(Protocol):
    metrics: tuple[str, ...]  # what it adds to every update's metrics, beside METRICS

    def init(self) -> jax.Array: ...
    def record(self, pi: distrax.Distribution) -> Any: ...
    def policy_loss(self, pi: distrax.Distribution, log_prob: jax.Array, batch: Batch, advantages: jax.Array,
                    state: jax.Array) -> tuple[jax.Array, Metrics]: ...
    def after_update(self, state: jax.Array, new_policy: Callable[[], distrax.Distribution], batch: Batch
                     ) -> tuple[jax.Array, Metrics]: ...


@dataclasses.dataclass(frozen=True)
class Clip:
    """The clipped surrogate (`clipped_surrogate_loss`): it carries nothing and records nothing."""

    clip_eps: float | jax.Array
    metrics = ()

    def init(self) -> jax.Array:
        # Every objective's state is one float32 scalar (`TrainState.kl_beta`), so that checkpoints of runs with
        # either objective restore into one training state.
        return jnp.float32(1.0)

    def record(self, pi: distrax.Distribution) -> None:
        return None

    def policy_loss(self, pi, log_prob, batch, advantages, state) -> tuple[jax.Array, Metrics]:
        return clipped_surrogate_loss(log_prob, batch.log_prob, advantages, self.clip_eps), {}

    def after_update(self, state, new_policy, batch) -> tuple[jax.Array, Metrics]:
        return state, {}


@dataclasses.dataclass(frozen=True)
class KLPenalty:
    """The surrogate minus an adaptive KL penalty (`kl_penalty_loss`). Its state is the penalty's coefficient; the
    rollout records the acting policy's parameters so that the loss and the adaptation use the exact KL."""

    kl_target: float | jax.Array
    initial_beta: float | jax.Array
    metrics = ("kl", "kl_beta")  # the update's exact KL, and the coefficient it was trained with

    def init(self) -> jax.Array:
        return jnp.asarray(self.initial_beta, jnp.float32)

    def record(self, pi: distrax.Distribution) -> dict[str, jax.Array]:
        from purejaxppo.core.networks import distribution_params

        return distribution_params(pi)

    def policy_loss(self, pi, log_prob, batch, advantages, state) -> tuple[jax.Array, Metrics]:
        from purejaxppo.core.networks import distribution

        kl = distribution(batch.dist_params).kl_divergence(pi)  # exact, per state
        return kl_penalty_loss(log_prob, batch.log_prob, advantages, kl, state), {"kl": jnp.mean(kl)}

    def after_update(self, state, new_policy, batch) -> tuple[jax.Array, Metrics]:
        """The exact KL of the whole update, old policy to new, sets the next coefficient."""
        from purejaxppo.core.networks import distribution

        kl = jnp.mean(distribution(batch.dist_params).kl_divergence(new_policy()))
        return adapt_kl_beta(state, kl, self.kl_target), {"kl": kl, "kl_beta": state}


OBJECTIVES: dict[str, Callable[[Any], Objective]] = {
    "clip": lambda config: Clip(config.clip_eps),
    "kl_penalty": lambda config: KLPenalty(config.kl_target, config.kl_beta),
}
"""Each `PPOConfig.objective` name and how it is made from the config."""


def make_objective(config: Any) -> Objective:
    """The objective `config.objective` names, with its hyperparameters from `config`."""
    return OBJECTIVES[config.objective](config)
