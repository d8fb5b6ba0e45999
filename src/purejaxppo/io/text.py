"""Numbers and tables as text: returns to the digits they deserve, the cells of CSV files and tables, and the
ranked tables the commands print and write."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def return_decimals(x: float) -> int:
    """Decimals that show a return to 3 significant digits below 10 (0.960, 5.73: the returns of bsuite and the
    grid worlds sit in [0, 1]) and to one decimal from 10 up (500.0, -158.3)."""
    if not math.isfinite(x) or x == 0 or abs(x) >= 10:
        return 1
    return min(6, max(1, 2 - math.floor(math.log10(abs(x)))))


def format_return(x: float, like: float | None = None) -> str:
    """`x` with the decimals `return_decimals` gives `like` (default `x` itself): a spread as precise as its mean."""
    return f"{x:.{return_decimals(x if like is None else like)}f}"


def steps_label(x: float) -> str:
    """An env-step count as a figure's tick reads it: 0, 750, 100k, 1.5M, 10M."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def cell(x: Any, digits: int | None = None) -> str:
    """`x` (a Python or numpy scalar, or hidden sizes) as a cell of a CSV file or a table. Without `digits`, exact,
    for a program to read back: a float's `repr`, a boolean as 0 or 1. With `digits`, for a person: that many
    significant digits, NaN left blank, a boolean as True or False. Hidden sizes read `64x64` either way."""
    if isinstance(x, (np.generic, np.ndarray)):
        x = x.item()
    if isinstance(x, tuple):
        return "x".join(map(str, x))
    if isinstance(x, float):
        if digits is None:
            return repr(x)
        return "" if math.isnan(x) else f"{x:.{digits}g}"
    if isinstance(x, bool) and digits is None:
        return str(int(x))
    return str(x)


def ranked_table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False,
                 left: Sequence[str] = ()) -> str:
    """`rows` (cells as text, best first) under `header`, each numbered in a first column, "rank": as columns of
    text padded to a width, or as a markdown table whose columns align right but those named in `left`. No
    newline at the end."""
    header = ["rank", *header]
    lines = [header, *([str(rank), *row] for rank, row in enumerate(rows, 1))]
    if markdown:
        rule = "|" + "".join("---|" if name in left else "---:|" for name in header)
        text = ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join([text[0], rule, *text[1:]])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)
