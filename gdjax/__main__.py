"""``python -m gdjax``: the ``gdjax`` command (e.g. under ``srun`` or ``mpirun``)."""

from gdjax.cli import main
from gdjax.cli._common import exit_process

if __name__ == "__main__":
    exit_process(main)
