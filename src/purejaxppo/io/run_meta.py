"""What a run directory records about its run (its config, seeds and sweep grid), read back and checked.

A run records itself twice: in `config.json` (every config field, `seeds` and `sweep`; written before the run
compiles, so that a run killed before its first checkpoint can start again as it was) and in each checkpoint's
metadata (`config`, `seeds`, `sweep`, `done`, `num_updates`, `format`). Both are read only through `read_record`,
which turns any file that is not what this version writes into one line naming what is wrong: an unknown key, a
wrong type, no seeds, an update count out of range.
"""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import Any

from purejaxppo.core.config import NUMERIC_FIELDS, PPOConfig
from purejaxppo.core.env_ids import is_factory_id
from purejaxppo.scale.files import UnsafeFile, read_json
from purejaxppo.scale.plan import check_grid, check_seeds

CONFIG_FILE = "config.json"
CHECKPOINT_KEYS = {"config", "seeds", "sweep", "done", "num_updates", "format"}


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A run's identity: its base config, its seeds (consecutive) and its sweep grid."""

    config: PPOConfig
    seeds: tuple[int, ...]
    sweep: dict[str, tuple[float, ...]]

    def _sweep_json(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.sweep.items()}

    def config_json(self) -> dict[str, Any]:
        """What `config.json` holds."""
        return {**self.config.to_dict(), "seeds": list(self.seeds), "sweep": self._sweep_json()}

    def checkpoint_meta(self) -> dict[str, Any]:
        """The checkpoint metadata's share (the checkpointer adds `done` and `format`)."""
        return {"config": self.config.to_dict(), "seeds": list(self.seeds), "sweep": self._sweep_json(),
                "num_updates": self.config.num_updates}


def check_env_from_file(env_id: Any, where: str, allow_env: str | None) -> None:
    """Refuses a "package.module:factory" env id read from a file (`where`): making that env imports the module
    and calls the factory, so a file could run code. It is accepted only when the user gave the same id too
    (`allow_env`: `--env` on the command line, `env=` in Python)."""
    if isinstance(env_id, str) and is_factory_id(env_id) and env_id != allow_env:
        raise ValueError(f"{where} names env {env_id!r}, which imports and runs code, and a file may not: to allow "
                         f"it, give the same id yourself (--env {env_id}, or env={env_id!r} in Python)")


def _fail(where: str, what: str) -> None:
    raise ValueError(f"{where} {what}: it is not a run this version of purejaxppo wrote (or it was edited)")


def read_record(fields: dict[str, Any], seeds: Any, sweep: Any, where: str, allow_env: str | None = None) -> RunRecord:
    """The record of a config's `fields`, `seeds` and `sweep` as read from a file described by `where`; a
    code-importing env id only if it is `allow_env` (`check_env_from_file`)."""
    if not isinstance(fields, dict):
        _fail(where, f"has a config of type {type(fields).__name__}")
    check_env_from_file(fields.get("env"), where, allow_env)
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(PPOConfig)})
    if unknown:
        _fail(where, f"has unknown config fields {', '.join(map(repr, unknown))}")
    for name in NUMERIC_FIELDS:  # PPOConfig lets non-numbers through: jax rebuilds configs with placeholders
        value = fields.get(name, 0.0)
        if not (isinstance(value, numbers.Real) and not isinstance(value, bool)) and value is not None:
            _fail(where, f"has {name}={value!r}, not a number")
    try:
        config = PPOConfig(**fields)
    except (TypeError, ValueError) as e:
        _fail(where, f"has an invalid config ({str(e).splitlines()[0]})")
    if not isinstance(seeds, list) or not seeds or any(
            not isinstance(s, int) or isinstance(s, bool) for s in seeds) or seeds != list(
            range(seeds[0], seeds[0] + len(seeds))):
        _fail(where, f"has seeds {seeds!r}, not a list of consecutive integers")
    try:
        check_seeds(seeds[0], len(seeds))
    except ValueError as e:
        _fail(where, f"has out-of-range seeds ({e})")
    if not isinstance(sweep, dict) or any(not isinstance(v, list) or not v or any(
            not isinstance(x, numbers.Real) or isinstance(x, bool) for x in v) for v in sweep.values()):
        _fail(where, f"has a sweep grid {sweep!r}, not a mapping of fields to lists of numbers")
    try:
        grid = check_grid(config, sweep)
    except ValueError as e:
        _fail(where, f"has an invalid sweep grid ({e})")
    return RunRecord(config, tuple(seeds), grid)


def read_checkpoint_meta(meta: Any, where: str, allow_env: str | None = None) -> tuple[RunRecord, int]:
    """The run record and the updates done that a checkpoint's metadata holds."""
    if not isinstance(meta, dict):
        _fail(where, "has metadata that is not a mapping")
    missing = {"config", "seeds", "sweep", "done"} - set(meta)
    if missing:
        raise ValueError(f"{where} is not a purejaxppo run's: its metadata lacks {', '.join(sorted(missing))}")
    unknown = sorted(set(meta) - CHECKPOINT_KEYS)
    if unknown:
        _fail(where, f"has unknown metadata keys {', '.join(map(repr, unknown))}")
    record = read_record(meta["config"], meta["seeds"], meta["sweep"], where, allow_env)
    done = meta["done"]
    if not isinstance(done, int) or isinstance(done, bool) or not 0 <= done <= record.config.num_updates:
        _fail(where, f"has {done!r} updates done, not an integer from 0 to {record.config.num_updates}")
    if meta.get("num_updates", record.config.num_updates) != record.config.num_updates:
        _fail(where, f"has num_updates {meta['num_updates']!r}, but its config makes {record.config.num_updates}")
    return record, done


def read_config_json(run_dir: Path, allow_env: str | None = None) -> RunRecord:
    """The record in `run_dir/config.json`; ValueError (one line) when it is missing, unreadable or invalid."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise ValueError(f"{run_dir} holds no purejaxppo run: it has no {CONFIG_FILE} and no checkpoint") from None
    except UnsafeFile as e:
        raise ValueError(f"{e}: a run's {CONFIG_FILE} is a small file of its own, so this is not a run purejaxppo "
                         "wrote") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is unreadable ({type(e).__name__}: {e}): it is not a run purejaxppo wrote"
                         ) from None
    if not isinstance(data, dict) or "seeds" not in data or "sweep" not in data:
        _fail(str(path), "lacks seeds or sweep")
    fields = {k: v for k, v in data.items() if k not in ("seeds", "sweep")}
    return read_record(fields, data["seeds"], data["sweep"], str(path), allow_env)
