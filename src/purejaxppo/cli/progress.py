"""Progress of a compiled training run, shown on the host while it runs.

The return it shows is the final return's statistic as if the run ended there: the mean of the episodes that
ended in the last 5% of the updates done (`scale.stats.final_returns`), so that the last line shows the final
return the run reports; where none ended in that window, the last such mean stays shown (never NaN once an
episode has ended). The CLI calls `show` between chunks of the updates (`purejaxppo.scale.schedule`: about half a
second of training each, at least 1% of the run) with that mean over its runs (`Sweep.recent_returns`); given as
`make_train(config, callback=Progress(...))`, an instance is called with every update's metrics from inside the
compiled program (a `jax.debug.callback`; JAX's persistent compilation cache then skips the program) and keeps
the window itself. It only does host work and redraws at most every `min_interval` seconds.
"""

from __future__ import annotations

import collections
import math
import sys
import time
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from purejaxppo.io.text import format_return


class Progress:
    """A progress bar on a terminal, a line every `line_interval` seconds otherwise, nothing when quiet."""

    def __init__(self, num_updates: int, batch_size: int, num_runs: int = 1, quiet: bool = False,
                 stream: TextIO | None = None, min_interval: float = 0.2, line_interval: float = 5.0):
        self.num_updates, self.batch_size, self.num_runs = num_updates, batch_size, num_runs
        self.total_steps = num_updates * batch_size * num_runs
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.min_interval = min_interval if self.interactive else line_interval
        self.recent_return = float("nan")
        self.window = max(1, math.ceil(0.05 * num_updates))  # as final_returns' 5% of the updates
        self.updates: collections.deque = collections.deque(maxlen=self.window)  # each update's (sum, count)
        self.steps = self.start_steps = 0
        self.bar: tqdm | None = None
        self.start = self.last = 0.0

    def start_timer(self, updates_done: int = 0) -> None:
        """Marks the start of training (after compilation, and after `updates_done` updates of a resumed run):
        steps/s counts from here."""
        self.start = self.last = time.perf_counter()
        self.steps = self.start_steps = updates_done * self.batch_size * self.num_runs
        if self.interactive and not self.quiet:
            self.bar = tqdm(total=self.total_steps, initial=self.steps, unit="step", unit_scale=True,
                            file=self.stream, dynamic_ncols=True, mininterval=self.min_interval)

    def __call__(self, metrics: dict[str, Any]) -> None:
        """One update's metrics, each `[runs]` or a scalar: shows the mean over its runs of the episodes that ended
        in the last `window` updates."""
        returns = np.asarray(metrics["episode_return"], np.float64).ravel()
        finite = returns[np.isfinite(returns)]
        self.updates.append((finite.sum(), finite.size))
        count = sum(c for _, c in self.updates)
        recent = sum(s for s, _ in self.updates) / count if count else math.nan
        self.show(int(np.asarray(metrics["env_steps"]).ravel()[0]) // self.batch_size, [recent])  # same in every run

    def show(self, update: int, recent_returns: Any) -> None:
        """Shows `update` of `num_updates` done and the mean of the runs' `recent_returns` (NaN: no episode ended
        in a run's window), or where none is finite, the last mean shown."""
        finite = np.asarray(recent_returns, np.float64)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            self.recent_return = float(finite.mean())
        steps = update * self.batch_size * self.num_runs
        now = time.perf_counter()
        done = steps >= self.total_steps
        if self.quiet or (now - self.last < self.min_interval and not done):
            self.steps = steps
            return
        self.last = now
        if self.bar is not None:
            self.bar.update(steps - self.steps)
            self.bar.set_postfix_str(f"update {update}/{self.num_updates}, return {format_return(self.recent_return)}",
                                     refresh=False)
        else:
            rate = (steps - self.start_steps) / max(now - self.start, 1e-9)
            print(f"update {update:>{len(str(self.num_updates))}}/{self.num_updates}  steps {steps:>10,}/"
                  f"{self.total_steps:,}  return {format_return(self.recent_return):>8}  {rate:,.0f} steps/s",
                  file=self.stream, flush=True)
        self.steps = steps

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
