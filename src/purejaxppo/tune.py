"""`python -m purejaxppo.tune`: the tuning command (`purejaxppo.cli.tune`). In Python, `purejaxppo.tune.tune`
(with `Range` and `Choices` to describe a search space) is the tuner itself (`purejaxppo.scale.tune`), and
`Tuner` with a `SearchPlan` the same search, resumable from its saved state."""

import sys

from purejaxppo.cli.entry import load_main

main = load_main("purejaxppo.cli.tune", as_command=__name__ == "__main__")


def __getattr__(name: str):
    # Imported when first asked for: the command chooses the CPU devices before gymnax's import computes.
    if name in ("tune", "TuneResult", "Tuner", "SearchPlan"):
        from purejaxppo.scale import tune

        return getattr(tune, name)
    if name in ("Range", "Choices", "DEFAULT_SPACE"):
        from purejaxppo.scale import search

        return getattr(search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
