"""Where a run driven in chunks of updates stops between them: to show progress, to log, to checkpoint.

Each stop is a host round-trip (milliseconds), so stops come about every half a second of training, and at
least every 1% of the run; a stop is due earlier where a checkpoint or a log is.
"""

from __future__ import annotations


def one_percent(num_updates: int) -> int:
    """1% of a run's updates, rounded up (at least 1): the most a chunk lasts before progress is shown."""
    return -(-num_updates // 100)


def report_interval(seconds_per_update: float | None, num_updates: int, target_seconds: float = 0.5) -> int:
    """Updates between two progress reports: about `target_seconds` of training, and at least 1% of the run;
    1% while `seconds_per_update` is not yet known (None)."""
    if seconds_per_update is None:
        return one_percent(num_updates)
    return max(one_percent(num_updates), round(target_seconds / max(seconds_per_update, 1e-9)))


def next_stop(done: int, num_updates: int, chunk: int, *every: int) -> int:
    """The update the chunk after `done` updates ends at: `chunk` updates on, or sooner at the next multiple of
    any of `every` (e.g. the checkpoint and log intervals), and never past `num_updates`."""
    return min([done + chunk, num_updates] + [-(-(done + 1) // e) * e for e in every])
