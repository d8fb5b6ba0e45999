"""The errors that name envs and their parameters, worded once for every kind of env: an unknown id, an unknown
parameter, an env that could not be created. Each is one line, and an unknown id is answered by one similarity
rule (`close_matches`), whichever suite it was looked up in, so that a typo is corrected alike everywhere."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, Sequence

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
