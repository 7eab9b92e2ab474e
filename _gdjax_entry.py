"""The ``gdjax`` command's entry point, outside the ``gdjax`` package so that
a Ctrl-C while Python imports JAX and gdjax (a second or two) ends in one
line and status 130, as it does once the command runs: not in a traceback,
and never swallowed (an interrupt raised inside one of JAX's garbage
collection callbacks during the import is only printed by Python, and the
command then ran to the end)."""

import signal
import sys
from typing import NoReturn

INTERRUPTED = 130  # gdjax.cli._common.INTERRUPTED, not imported: this runs before gdjax is


def main() -> NoReturn:
    pressed = []
    # while importing, Ctrl-C is only noted: the import ends (a second or
    # two) and the command stops before it starts
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        from gdjax.cli import main as gdjax_main
        from gdjax.cli._common import exit_process
    finally:
        signal.signal(signal.SIGINT, previous)

    def command() -> int:
        try:
            if pressed:
                raise KeyboardInterrupt
            return gdjax_main()
        except KeyboardInterrupt:  # before a command's run took over its own Ctrl-C
            print(
                "\ngdjax: interrupted before the command started; nothing was written",
                file=sys.stderr,
            )
            return INTERRUPTED

    exit_process(command)  # after a Ctrl-C, at once (see exit_process)
