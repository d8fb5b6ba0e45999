"""The errors that name envs and their parameters, worded once for every kind of env: an unknown id, an unknown
parameter, an env that could not be created. Each is one line, and an unknown id is answered by one similarity
rule (`close_matches`), whichever suite it was looked up in, so that a typo is corrected alike everywhere. Beside
them, the checks of env kwargs that raise them: names a constructor or a params dataclass takes, numbers where
the default is one, step counts that are positive integers."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import numbers
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from purejaxppo.core import env_ids

SUGGESTIONS = 3
CUTOFF = 0.6  # difflib's own default: low enough for a typo or a missing character, high enough to stay relevant


def close_matches(name: str, names: Sequence[str]) -> list[str]:
    """The one similarity rule: up to `SUGGESTIONS` of `names` like `name`, best first, case ignored (ids are
    typed by hand: "pendulum-v1" means "Pendulum-v1")."""
    by_lower: dict[str, str] = {}
    for known in names:
        by_lower.setdefault(known.lower(), known)
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), SUGGESTIONS, CUTOFF)]


def unknown_env_id(env_id: str, names: Sequence[str], suite: str, prefix: str = "") -> ValueError:
    """The error for `env_id`, which is `prefix` and a name not among `names`, the envs `suite` knows."""
    name = env_id.removeprefix(prefix)
    close = close_matches(name, names)
    where = f"{suite} has no env {name!r}; " if prefix else ""  # without a prefix, the id is the name
    hint = (f"did you mean {', '.join(prefix + c for c in close)}?" if close
            else f"known {suite} ids: {', '.join(prefix + n for n in names)}")
    return ValueError(f"unknown env id {env_id!r}: {where}{hint}")


def unknown_parameter(env_id: str, name: str, valid: Iterable[str]) -> ValueError:
    """The error for an env kwarg `name` that is none of `valid`, the names `env_id`'s env takes."""
    valid = sorted(set(valid))
    return ValueError(f"env {env_id!r} has no parameter {name!r}; valid names: "
                      f"{', '.join(valid) if valid else 'none'}")


def could_not_create(env_id: str, error: Exception) -> ValueError:
    return ValueError(f"could not create env {env_id!r}: {type(error).__name__}: {error}")


def create(env_id: str, make: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`make(*args, **kwargs)`; whatever it raises (a suite's constructor can raise anything: a bad backend, a
    failed download) becomes `could_not_create`."""
    try:
        return make(*args, **kwargs)
    except Exception as e:
        raise could_not_create(env_id, e) from e


def keyword_names(function: Any) -> set[str] | None:
    """The names `function` takes by keyword (`self` aside); None if it takes any (**kwargs) or cannot be
    inspected."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}


def signature_defaults(function: Any) -> dict[str, Any]:
    """The default of each of `function`'s parameters that has one ({} if it cannot be inspected)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not p.empty}


def _is_number(value: Any) -> bool:
    if isinstance(value, (numbers.Number, np.number)):
        return True
    return hasattr(value, "dtype") and np.ndim(value) == 0 and np.issubdtype(value.dtype, np.number)


def step_counts(env_id: str) -> set[str]:
    """The env kwargs that declare an episode's length in steps for `env_id`: gymnax's name, which every env
    takes, and its suite's own (its row's `max_steps_field`)."""
    return {"max_steps_in_episode", *(s.max_steps_field for s in env_ids.SUITES
                                      if s.max_steps_field and env_id.startswith(s.prefix))}


def check_kwarg_types(env_id: str, kwargs: dict[str, Any], defaults: dict[str, Any]) -> None:
    """ValueError (one line) for the first of `kwargs` whose default is a number and whose value is not (a string
    given for it would otherwise fail deep inside the traced program), or that counts steps (`step_counts`) and is
    not a positive integer (a negative limit would train on one-step episodes)."""
    for name, value in kwargs.items():
        if name in defaults and _is_number(defaults[name]) and not _is_number(value):
            default = defaults[name].item() if hasattr(defaults[name], "item") else defaults[name]
            raise ValueError(f"env {env_id!r}: {name}={value!r} is not a number (its default is {default!r}); "
                             f"give a number, e.g. {name}={default!r}")
        counts = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
        if name in step_counts(env_id) and not counts:
            raise ValueError(f"env {env_id!r}: {name}={value!r} is invalid: it counts an episode's steps, so it must "
                             "be a positive integer, e.g. 500")


def check_constructor_kwargs(env_id: str, constructor: Callable, kwargs: dict[str, Any], also: tuple[str, ...] = ()
                             ) -> None:
    """ValueError (one line) for the first of `kwargs` that `constructor` does not take by name (naming the valid
    ones, with `also`, the names the adapter takes itself), or that is not a number where its default is."""
    takes = keyword_names(constructor) or set()
    for name in kwargs:
        if name not in takes:
            raise unknown_parameter(env_id, name, [*takes, *also])
    check_kwarg_types(env_id, kwargs, signature_defaults(constructor))


def split_env_kwargs(env_id: str, kwargs: dict[str, Any], params: Any, constructor: Callable | None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(constructor arguments, params fields) of `kwargs`; ValueError naming the valid names for any other, or
    the first given a non-number where its default is a number."""
    fields = [f.name for f in dataclasses.fields(params)] if dataclasses.is_dataclass(params) else []
    takes = keyword_names(constructor) if constructor is not None else set()
    built, set_params = {}, {}
    for name, value in kwargs.items():
        if name in fields:
            set_params[name] = value
        elif takes is None or name in takes:
            built[name] = value
        else:
            raise unknown_parameter(env_id, name, [*fields, *takes])
    check_kwarg_types(env_id, set_params, {name: getattr(params, name) for name in set_params})
    check_kwarg_types(env_id, built, signature_defaults(constructor) if constructor is not None else {})
    return built, set_params
