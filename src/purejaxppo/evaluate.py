"""`python -m purejaxppo.evaluate`: the evaluation command (`purejaxppo.cli.evaluate`).

This module is the command, to run, not to import: the library's function is `from purejaxppo import evaluate`
(`purejaxppo.io.evaluation.evaluate`), and the command in Python is `purejaxppo.cli.evaluate.main`. Python binds
an imported submodule to its package's attribute of the same name, so `import purejaxppo.evaluate` would put
this module where the package exports the function; `python -m` runs it without importing it.
"""

import sys

from purejaxppo.cli.entry import load_main

main = load_main("purejaxppo.cli.evaluate", as_command=__name__ == "__main__")

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
