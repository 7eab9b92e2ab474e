"""``python -m gdjax.cli``: the ``gdjax`` command."""

from gdjax.cli import main
from gdjax.cli._common import exit_process

exit_process(main)
