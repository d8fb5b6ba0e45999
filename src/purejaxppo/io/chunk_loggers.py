"""Loggers with no extra to install, for `sweep(..., loggers=[...])` as much as for the command line: the CLI's
metrics CSV written as training goes, and a progress bar for a terminal or a notebook. Each follows
`purejaxppo.io.loggers.Logger`: `log(result, start, stop)` after every chunk of updates, `close()` at the end."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np

from purejaxppo.io.report import metrics_header, metrics_rows
from purejaxppo.scale.results import SweepResult


class CSVLogger:
    """metrics.csv as the command writes it (`purejaxppo.io.report`), a row per configuration, seed and update,
    appended chunk by chunk, so that a run cut short keeps what it logged. `path` must not exist yet: a logger
    never overwrites a file (nor writes through a link)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if os.path.lexists(self.path):
            raise ValueError(f"{self.path} exists already: give a CSVLogger a new file's path")
        self._file: Any = None

    def log(self, result: SweepResult, start: int, stop: int) -> None:
        if self._file is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            self._file = os.fdopen(fd, "w", newline="")
            csv.writer(self._file).writerow(metrics_header(result))
        csv.writer(self._file).writerows(metrics_rows(result, start, stop))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ProgressBar:
    """A bar over the run's updates (tqdm's: in a notebook its widget, else text), with the mean over runs of
    the episode returns of the last `window` updates logged. `tqdm_kwargs` go to tqdm (`desc`, `leave`, ...)."""

    def __init__(self, window: int = 5, **tqdm_kwargs: Any):
        self.window, self.tqdm_kwargs = window, tqdm_kwargs
        self._bar: Any = None

    def log(self, result: SweepResult, start: int, stop: int) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=result.config.num_updates, initial=start, unit="update", **self.tqdm_kwargs)
        self._bar.update(stop - self._bar.n)
        recent = np.asarray(result.metrics["episode_return"][..., max(0, stop - self.window):stop], np.float64)
        if np.isfinite(recent).any():  # before any episode ends there is no return to show
            self._bar.set_postfix(ret=f"{np.nanmean(recent):.4g}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
