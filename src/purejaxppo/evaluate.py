"""`python -m purejaxppo.evaluate`: the evaluation command (`purejaxppo.cli.evaluate`).

`purejaxppo.evaluate` is also the library's `evaluate(policy, episodes, seed, deterministic)`
(`purejaxppo.io.evaluation`). Importing this module replaces that attribute of the package with the module, so
the module is callable and calls the function.
"""

import sys
import types

from purejaxppo.cli.entry import load_main

main = load_main("purejaxppo.cli.evaluate", as_command=__name__ == "__main__")
build_parser = sys.modules["purejaxppo.cli.evaluate"].build_parser

__all__ = ["build_parser", "main"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from purejaxppo.io.evaluation import evaluate

        return evaluate(*args, **kwargs)


def __getattr__(name: str):
    # The library's evaluation functions, imported when first asked for: the command defers gymnax's renderer
    # imports before anything imports gymnax.
    from purejaxppo.io import evaluation

    try:
        return getattr(evaluation, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
