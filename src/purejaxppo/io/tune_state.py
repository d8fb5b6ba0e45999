"""What a tuner keeps in its folder to resume (`python -m purejaxppo.tune --resume DIR`): tune_state.json, the
spec that decides the search and its state (`purejaxppo.scale.tune.Tuner.state`), rewritten whole after every
rung; and `groups/<g>/checkpoints/`, the rows of group g's trials still in after its last rung, checkpointed as
a run's are (`purejaxppo.io.checkpoint`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purejaxppo.io.run_meta import RunRecord

# For the types alone: importing the program imports gymnax, which starts JAX's backend, and the command must
# choose its devices before that.
if TYPE_CHECKING:
    from purejaxppo.scale.plan import SweepPlan
    from purejaxppo.scale.program import SweepState

STATE = "tune_state.json"


class TunerFolder:
    """A tuner's folder `out`, for the search `spec` (JSON) decides; its checkpoints' metadata may name the
    "module:factory" env `allow_env` (`purejaxppo.io.run_meta.check_env_from_file`). Its `save`, `save_rung` and
    `restore_rung` are a `purejaxppo.scale.tune.Tuner`'s hooks."""

    def __init__(self, out: Path, spec: dict[str, Any], allow_env: str | None = None):
        self.out, self.spec, self.allow_env = Path(out), spec, allow_env
        self._checkpointers: dict[int, Any] = {}

    def read_state(self) -> dict[str, Any] | None:
        """The state saved here, without its spec; None where nothing was saved yet."""
        path = self.out / STATE
        if not path.is_file():
            return None
        state = json.loads(path.read_text())
        state.pop("spec", None)
        return state

    def save(self, state: dict[str, Any]) -> None:
        """tune_state.json, written whole or not at all."""
        tmp = self.out / f".{STATE}.tmp"
        tmp.write_text(json.dumps({"spec": self.spec, **state}, indent=1) + "\n")
        tmp.replace(self.out / STATE)

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
