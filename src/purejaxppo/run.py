"""`python -m purejaxppo.run`: the training command (`purejaxppo.cli.run`)."""

import sys

from purejaxppo.cli.entry import load_main

main = load_main("purejaxppo.cli.run", as_command=__name__ == "__main__")

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
