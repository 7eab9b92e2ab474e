"""``python -m gdjax``: the ``gdjax`` command (e.g. under ``srun`` or ``mpirun``)."""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    sys.exit(main())
