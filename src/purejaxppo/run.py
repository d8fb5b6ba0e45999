"""`python -m purejaxppo.run`: the training command (`purejaxppo.cli.run`)."""

import sys

from purejaxppo.cli.run import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
