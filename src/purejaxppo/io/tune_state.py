"""What a tuner keeps in its folder to resume (`python -m purejaxppo.tune --resume DIR`): tune_state.json, the
spec that decides the search and its state (`purejaxppo.scale.tune.Tuner.state`), rewritten whole after every
rung; and `groups/<g>/checkpoints/`, the rows of group g's trials still in after its last rung, checkpointed as
a run's are (`purejaxppo.io.checkpoint`).

tune_state.json is read only as a regular file of bounded size and replaced whole, never written through a link
(`purejaxppo.scale.files`): a tuner's folder may come from someone else."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from purejaxppo.io.run_meta import RunRecord
from purejaxppo.scale.files import UnsafeFile, dumps, read_json, write_file

# For the types alone: importing the program imports gymnax, which starts JAX's backend, and the command must
# choose its devices before that.
if TYPE_CHECKING:
    from purejaxppo.scale.plan import SweepPlan
    from purejaxppo.scale.program import SweepState

STATE = "tune_state.json"
STATE_LIMIT = 64 << 20
"""The cap on tune_state.json (64 MiB): it grows with the trials, about 100 bytes each, so that only a file no
tuner wrote comes near it."""


def read_saved(out: Path) -> dict[str, Any] | None:
    """tune_state.json in `out` (its spec and state); None where there is none. `purejaxppo.scale.files.UnsafeFile`
    where it is a link, a FIFO, a device or over STATE_LIMIT; ValueError where it is not a JSON object."""
    try:
        saved = read_json(Path(out) / STATE, STATE_LIMIT, nan=True)  # a tuner before 2026-12-07 wrote NaN scores
    except FileNotFoundError:
        return None
    if not isinstance(saved, dict):
        raise ValueError(f"it holds a {type(saved).__name__}, not an object")
    return saved


def resumed_spec(folder: Path) -> dict[str, Any]:
    """The spec `folder`'s tune_state.json holds, for `--resume`; ValueError (one line) where it holds none this
    version wrote."""
    try:
        saved = read_saved(folder)
        if saved is not None:
            check_spec(saved.get("spec"))
    except UnsafeFile as e:  # a FIFO would hang the read, a link to /dev/zero fill memory
        raise ValueError(f"--resume: {e.strerror}: a tuner writes {STATE} as a small file of its own; resume a "
                         "folder a tuner wrote") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--resume: {folder} holds no tuner this version wrote ({type(e).__name__}: {e})") from None
    if saved is None:
        raise ValueError(f"--resume: {folder} holds no tuner: it has no {STATE}; resume a folder a tuner wrote")
    return saved["spec"]


def check_spec(spec: Any) -> None:
    """ValueError unless `spec` is what `purejaxppo.cli.tune.spec_from_args` writes."""
    from purejaxppo.core.config import PPOConfig

    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ValueError("no spec")
    PPOConfig(**spec["config"])
    for key in ("trials", "num_seeds", "rungs", "eta", "confirm", "confirm_seeds", "seed"):
        if not isinstance(spec.get(key), int):
            raise ValueError(f"{key} is not an integer")
    fraction = spec.get("search_fraction", 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError("search_fraction is not a number in (0, 1]")
    if not isinstance(spec.get("params"), list) or not all(isinstance(p, str) for p in spec["params"]):
        raise ValueError("params is not a list of strings")
    if not isinstance(spec.get("only"), bool):
        raise ValueError("only is not true or false")


class TunerFolder:
    """A tuner's folder `out`, for the search `spec` (JSON) decides; its checkpoints' metadata may name the
    "module:factory" env `allow_env` (`purejaxppo.io.run_meta.check_env_from_file`). Its `save`, `save_rung` and
    `restore_rung` are a `purejaxppo.scale.tune.Tuner`'s hooks."""

    def __init__(self, out: Path, spec: dict[str, Any], allow_env: str | None = None):
        self.out, self.spec, self.allow_env = Path(out), spec, allow_env
        self._checkpointers: dict[int, Any] = {}

    def read_state(self) -> dict[str, Any] | None:
        """The state saved here, without its spec; None where nothing was saved yet (`read_saved`'s errors)."""
        state = read_saved(self.out)
        if state is not None:
            state.pop("spec", None)
        return state

    def save(self, state: dict[str, Any]) -> None:
        """tune_state.json, written whole or not at all; ValueError for a value JSON cannot hold (NaN)."""
        write_file(self.out / STATE, dumps({"spec": self.spec, **state}, indent=1))

    def save_rung(self, group: int, plan: SweepPlan, rows: SweepState) -> None:
        record = RunRecord(plan.config, plan.seeds, plan.grid)
        self._checkpointer(group).save(rows, rows.done, record.checkpoint_meta())

    def restore_rung(self, group: int, template: SweepState, updates: int) -> SweepState:
        restored, done = self._checkpointer(group).restore(template, step=updates)
        return restored.replace(done=done)

    def _checkpointer(self, group: int):
        from purejaxppo.io.checkpoint import Checkpointer  # orbax: imported once there is a rung to save

        if group not in self._checkpointers:
            self._checkpointers[group] = Checkpointer(self.out / "groups" / str(group), allow_env=self.allow_env)
        return self._checkpointers[group]
