"""A network of your own for the feed-forward policy, in place of the config's `ActorCritic`.

The contract (docs/your-network.md), the one `ActorCritic` follows:

    a flax module, or a factory `factory(action_spec, config) -> module`, whose
    __call__(obs [..., obs_size]) -> (pi, value)   pi a distrax distribution of batch shape [...], value [...]
    policy(obs) -> pi                               the actor alone (acting)
    value(obs) -> value                             the critic alone (bootstrapping)

pi is `distrax.Categorical` for discrete actions (`action_spec.num_actions` logits), `distrax.Independent` of
Categoricals for several discrete factors, or `distrax.MultivariateNormalDiag` of `action_spec.size` dimensions
for continuous actions: the kinds the losses and the KL objective read. An env with an action mask appends it to
the observation (`purejaxppo.core.networks.split_mask` takes it apart). A recurrent policy keeps the built-in
GRU: `recurrent=True` with a network of your own is refused.
"""

from __future__ import annotations

from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs.base import ActionSpec

CONTRACT = ("a flax module (or a factory(action_spec, config) returning one) with __call__(obs) -> (pi, value), "
            "policy(obs) -> pi and value(obs) -> value, pi a distrax Categorical, Independent or "
            "MultivariateNormalDiag of batch shape [...] and value [...] for obs [..., obs_size] "
            "(docs/your-network.md)")


RECURRENT = ("a network of your own is for feed-forward policies: with recurrent=True the built-in GRU is used; "
             "train with recurrent=False, or without network=")


class _Broken(ValueError):
    """The contract broken, found while tracing the module: told from the module's own errors, which are its
    code failing."""


def user_network(network: Any, config: PPOConfig, action_spec: ActionSpec) -> nn.Module:
    """`network` as the module to train: itself, or what the factory returns for `action_spec` and `config`."""
    module = network if isinstance(network, nn.Module) else network(action_spec, config) if callable(network) else None
    if not isinstance(module, nn.Module):
        raise ValueError(f"network={network!r} is not {CONTRACT}")
    return module


def check_network(module: nn.Module, action_spec: ActionSpec, obs_size: int) -> None:
    """ValueError (one line) unless `module` keeps the contract on a batch `[2, obs_size]` of observations:
    traced only (`jax.eval_shape`), nothing is computed."""
    name = type(module).__name__
    for method in ("policy", "value"):
        if not callable(getattr(module, method, None)):
            raise ValueError(f"network {name} has no {method}(obs): a network is {CONTRACT}")
    obs = jnp.zeros((2, obs_size), jnp.float32)
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        params = jax.eval_shape(module.init, jax.random.key(0), obs)
        jax.eval_shape(lambda p: shapes.update(_outputs(module, p, obs)), params)  # shapes are known when traced
    except _Broken as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # the user's code, failing in any way on the env's observations
        raise ValueError(f"network {name} failed on observations [2, {obs_size}] ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:160] if str(e) else ''}): a network is {CONTRACT}") from None
    pi, value = shapes["pi"], shapes["value"]
    if pi != (2,) or value != (2,):
        raise ValueError(f"network {name} returned a policy of batch shape {list(pi)} and values of shape "
                         f"{list(value)} for observations [2, {obs_size}], not [2] and [2]: a network is {CONTRACT}")
    wanted = _actions_wanted(action_spec)
    if shapes["actions"] != wanted:
        raise ValueError(f"network {name}'s policy is over {shapes['actions'][1]} actions ({shapes['actions'][0]}), "
                         f"this env's are {wanted[1]} ({wanted[0]}): a network is {CONTRACT}")


def _outputs(module: nn.Module, params: Any, obs: jax.Array) -> dict[str, Any]:
    """The batch shapes of what `module` gives for `obs` (`pi`, `value`) and what its policy is over (`actions`),
    after checking their kinds."""
    pi, value = module.apply(params, obs)
    for kind_pi in (pi, module.apply(params, obs, method="policy")):
        if not isinstance(kind_pi, (distrax.Categorical, distrax.Independent, distrax.MultivariateNormalDiag)):
            what = "an array" if isinstance(kind_pi, jax.Array) else f"a {type(kind_pi).__name__}"
            raise _Broken(f"network {type(module).__name__} returned {what} as its policy, not a distrax "
                             f"distribution: a network is {CONTRACT}")
    values = module.apply(params, obs, method="value")
    if values.shape != value.shape:
        raise _Broken(f"network {type(module).__name__}'s value(obs) is {list(values.shape)}, its __call__'s "
                         f"value {list(value.shape)}: a network is {CONTRACT}")
    return {"pi": tuple(pi.batch_shape), "value": tuple(value.shape), "actions": _actions_of(pi)}


def _actions_of(pi: distrax.Distribution) -> tuple[str, Any]:
    """What `pi` is over: ("categorical", n), ("factors", (k, n)) or ("gaussian", size)."""
    if isinstance(pi, distrax.Categorical):
        return "categorical", int(pi.logits.shape[-1])
    if isinstance(pi, distrax.Independent):
        return "factors", tuple(int(d) for d in pi.distribution.logits.shape[-2:])
    return "gaussian", int(pi.event_shape[-1])


def _actions_wanted(spec: ActionSpec) -> tuple[str, Any]:
    """What the policy of an env with action spec `spec` must be over, as `_actions_of` says it."""
    if not spec.discrete:
        return "gaussian", spec.size
    return ("factors", (len(spec.nvec), spec.num_actions)) if spec.nvec else ("categorical", spec.num_actions)
