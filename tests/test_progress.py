"""What a user watches: the progress display (the return it shows is the final return's statistic so far, and
never NaN once an episode has ended) and the figures' step axis."""

import io
import re

from purejaxppo.cli.progress import Progress


def shown(num_updates: int, returns_per_update: list[list[float]]) -> list[str]:
    """The return each update's line shows, called as `make_train`'s callback calls it (every update)."""
    stream = io.StringIO()
    progress = Progress(num_updates, batch_size=10, num_runs=len(returns_per_update[0]), stream=stream,
                        line_interval=0.0)
    progress.start_timer()
    for update, returns in enumerate(returns_per_update, 1):
        progress({"episode_return": returns, "env_steps": [update * 10] * len(returns)})
    return re.findall(r"return\s+(\S+)", stream.getvalue())


NAN = float("nan")


def test_the_return_is_the_mean_over_the_last_five_percent_of_updates_and_stays_once_an_episode_ended():
    # 40 updates: the window is 2 updates; two runs, NaN where a run's update ended no episode
    assert shown(40, [[NAN, NAN], [10.0, NAN], [NAN, NAN], [NAN, NAN], [30.0, 50.0], [20.0, NAN]]) == [
        "nan", "10.0", "10.0", "10.0", "40.0", "33.3"]


def test_the_cli_shows_the_mean_over_runs_of_their_recent_returns():
    stream = io.StringIO()
    progress = Progress(4, batch_size=10, num_runs=2, stream=stream, line_interval=0.0)
    progress.start_timer()
    progress.show(1, [NAN, NAN])
    progress.show(2, [12.0, NAN])
    progress.show(3, [NAN, NAN])
    progress.show(4, [12.0, 18.0])
    assert re.findall(r"return\s+(\S+)", stream.getvalue()) == ["nan", "12.0", "12.0", "15.0"]


def test_a_figure_reads_its_steps_as_100k_and_1m():
    """The figures' env-step ticks (the CLI's learning curve, the reference curves) in k and M, not run together."""
    import numpy as np
    from matplotlib.figure import Figure

    from purejaxppo.io.report import step_ticks
    from purejaxppo.io.text import steps_label

    assert [steps_label(x) for x in (0, 750, 1e5, 1.5e6, 1e7)] == ["0", "750", "100k", "1.5M", "10M"]
    fig = Figure()
    ax = fig.subplots()
    ax.plot(np.linspace(0, 2e6, 50), np.arange(50.0))
    step_ticks(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "1M" in labels and all(len(label) <= 5 for label in labels), labels
