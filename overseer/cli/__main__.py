"""``python -m overseer.cli``: the same command as the ``overseer`` script."""

import sys

from overseer.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
