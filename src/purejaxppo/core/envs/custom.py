"""A user's env: an object given in Python, or a "package.module:factory" id that names a function returning
one. Either is adapted to the `Env` protocol (`base`), and one traced reset and step (`jax.eval_shape`: nothing
runs or compiles) checks it before anything else is built, so that a wrong shape, dtype or return value is one
line naming it instead of an error deep inside the compiled program.

Accepted objects: anything implementing the `Env` protocol (it has an `action_spec`); an env with gymnax's
functional interface (`FunctionalEnv`), given alone (its `default_params` are used) or as `(env, params)`, as
`gymnax.make` returns them.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from purejaxppo.core.env_ids import is_factory_id
from purejaxppo.core.envs.base import NO_FINAL_OBSERVATION, Env, ProtocolError
from purejaxppo.core.envs.functional import LEGACY_WARNING, FunctionalEnv
from purejaxppo.core.envs.naming import check_kwarg_types, keyword_names, signature_defaults, split_env_kwargs

_REGISTERED: dict[str, Any] = {}  # name -> env object or factory, for this process (`register_env`)


def register_env(name: str, env: Any) -> None:
    """Makes `name` an env id in this process: `PPOConfig(env=name)` then trains `env` (an env object, or a
    function returning one, called with the config's env_kwargs) through `make_train`, `sweep` and `tune`.
    A name registered again is replaced. Names that gymnax, Brax or a "module:factory" id already mean are refused.
    """
    from purejaxppo.core.envs.gymnax_env import is_gymnax_env_id

    if not isinstance(name, str) or not name.strip() or is_gymnax_env_id(name) or ":" in name:
        raise ValueError(f"cannot register an env as {name!r}: give your env a name of its own, e.g. "
                         "PPOConfig(env='my-env'), not a gymnax id nor one with a colon")
    if not (hasattr(env, "step") or callable(env) or isinstance(env, tuple)):
        raise ValueError(f"env {name!r}: {type(env).__name__} is neither an env nor a function returning one")
    _REGISTERED[name] = env


def is_registered(env_id: str) -> bool:
    return env_id in _REGISTERED


def is_user_env(env_id: str) -> bool:
    """Whether `env_id` names a user's env (registered, or "module:factory"), whose code purejaxppo cannot
    fingerprint: programs that step it are not kept in the program cache."""
    return isinstance(env_id, str) and (env_id in _REGISTERED or is_factory_id(env_id))


def make_registered_env(env_id: str, env_kwargs: dict[str, Any]) -> Env:
    made = _REGISTERED[env_id]
    if not hasattr(made, "step") and not isinstance(made, tuple):
        return _call_factory(made, env_id, env_kwargs)
    if env_kwargs:
        raise ValueError(f"env {env_id!r} was registered as an env object, so env_kwargs cannot rebuild it; "
                         "register a function that returns the env instead")
    return adapt_env(made, env_id)


def make_factory_env(env_id: str, env_kwargs: dict[str, Any]) -> Env:
    """Imports `env_id`'s module, calls its factory with the `env_kwargs` the factory takes, sets the others on
    the env's params, and adapts and checks the result."""
    module_name, name = env_id.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"env {env_id!r}: cannot import {module_name} ({type(e).__name__}: {e}); is it installed "
                         "or on PYTHONPATH?") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(f"env {env_id!r}: {module_name} has no function {name}")
    return _call_factory(factory, env_id, env_kwargs)


def _call_factory(factory: Any, env_id: str, env_kwargs: dict[str, Any]) -> Env:
    """Calls `factory` with the `env_kwargs` it takes, sets the others on the env's params, adapts and checks."""
    takes = keyword_names(factory)
    to_factory = {k: v for k, v in env_kwargs.items() if takes is None or k in takes}
    check_kwarg_types(env_id, to_factory, signature_defaults(factory))
    try:
        made = factory(**to_factory)
    except Exception as e:
        raise ValueError(f"env {env_id!r}: {getattr(factory, '__name__', 'its factory')}("
                         f"{', '.join(f'{k}={v!r}' for k, v in to_factory.items())}) failed: "
                         f"{type(e).__name__}: {e}") from e
    rest = {k: v for k, v in env_kwargs.items() if k not in to_factory}
    if rest:
        env, params = _functional_parts(made, env_id)
        _, set_params = split_env_kwargs(env_id, rest, params, factory)
        made = (env, params.replace(**set_params))
    return adapt_env(made, env_id)


def _functional_parts(made: Any, env_id: str) -> tuple[Any, Any]:
    if isinstance(made, tuple) and len(made) == 2:
        return made
    params = getattr(made, "default_params", None)
    if params is None:
        raise ValueError(f"env {env_id!r}: {type(made).__name__} has no default_params to set parameters on")
    return made, params


def adapt_env(made: Any, env_id: str) -> Env:
    """`made` (an `Env`, a functional env, or `(env, params)`) as a checked `Env`."""
    if _is_gymnasium(made):
        raise ValueError(f"env {env_id!r}: {type(made).__name__} is a gymnasium env, and gymnasium envs are not JAX "
                         "envs: training steps its envs inside one jitted program, so give a JAX env (gymnax, Brax, "
                         "a suite, or your own: docs/your-env.md)")
    if hasattr(made, "action_spec") and not isinstance(made, tuple):
        env = made
    else:
        env = FunctionalEnv(*_functional_parts(made, env_id), env_id)
    check_env(env, env_id)
    if getattr(env, "legacy", False):  # known once check_env has traced its step
        warnings.warn(LEGACY_WARNING.format(env_id=env_id), stacklevel=3)
    return env


def _is_gymnasium(made: Any) -> bool:
    """Whether `made` is a gymnasium (or gym) env, which steps in Python: named by its classes' modules, so that
    neither package need be imported."""
    return any(c.__module__.split(".")[0] in ("gymnasium", "gym") for c in type(made).__mro__)


def _example_action(env: Env) -> jax.Array:
    spec = env.action_spec
    return jnp.zeros(spec.shape, jnp.int32 if spec.discrete else jnp.float32)  # shape () for one categorical


def check_env(env: Env, env_id: str) -> None:
    """Traces one reset and one step of `env`; ValueError naming the first thing that breaks the protocol."""
    for attribute in ("action_spec", "observation_size", "params", "reset", "step"):
        if not hasattr(env, attribute):
            raise ValueError(f"env {env_id!r} ({type(env).__name__}) has no {attribute}: see purejaxppo's Env "
                             "protocol (purejaxppo.core.envs.base)")
    if not hasattr(env.params, "max_steps_in_episode"):
        raise ValueError(f"env {env_id!r}: env.params has no max_steps_in_episode, the time limit that bounds an "
                         "episode")
    key = jax.random.key(0)
    try:
        obs, state = jax.eval_shape(env.reset, key)
        out = jax.eval_shape(env.step, key, state, _example_action(env))
    except ProtocolError:
        raise
    except Exception as e:
        raise ValueError(f"env {env_id!r}: reset then step fails: {type(e).__name__}: {e}") from e
    flat = (env.observation_size,)
    _expect(env_id, "reset's observation", obs, flat, "float32")
    if not isinstance(out, tuple) or len(out) != 6:
        raise ValueError(f"env {env_id!r}: step returns {type(out).__name__} of length "
                         f"{len(out) if isinstance(out, tuple) else '-'}; the Env protocol returns (obs, state, "
                         "reward, terminated, truncated, info)")
    obs2, state2, reward, terminated, truncated, info = out
    _expect(env_id, "step's observation", obs2, flat, "float32")
    _expect(env_id, "step's reward", reward, (), "float32")
    _expect(env_id, "step's terminated", terminated, (), "bool")
    _expect(env_id, "step's truncated", truncated, (), "bool")
    if not isinstance(info, dict) or "final_observation" not in info:
        raise ValueError(f"env {env_id!r}: {NO_FINAL_OBSERVATION}")
    _expect(env_id, "info['final_observation']", info["final_observation"], flat, "float32")
    same = jax.tree.structure(state) == jax.tree.structure(state2) and all(
        a.shape == b.shape and a.dtype == b.dtype for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(state2)))
    if not same:
        raise ValueError(f"env {env_id!r}: step's state differs from reset's in structure, shapes or dtypes; "
                         "rollouts carry it through lax.scan, which needs them equal")


def _expect(env_id: str, what: str, value: Any, shape: tuple[int, ...], dtype: str) -> None:
    if getattr(value, "shape", None) != shape or str(getattr(value, "dtype", None)) != dtype:
        raise ValueError(f"env {env_id!r}: {what} is {getattr(value, 'dtype', type(value).__name__)}"
                         f"{list(getattr(value, 'shape', []))}; the Env protocol needs {dtype}{list(shape)}")
