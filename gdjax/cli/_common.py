"""Helpers shared by the commands (private to :mod:`gdjax.cli`): option
types, the :class:`Command` record, the run folder and one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import tqdm.auto

from gdjax import _format, distributed, runs, train
from gdjax.basins import use_all_cores
from gdjax.data import DatasetError
from gdjax.distributed import parse_coordinator
from gdjax.runs import command_line

SEED_LIMIT = 2**32


def seed_value(text: str, name: str = "--seed") -> int:
    """A seed: an integer in [0, 2**32), the same rule for every command."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{name} must be in [0, 2**32), got {value}")
    return value


def seed_type(name: str) -> Callable[[str], int]:
    """``type=`` for a seed option named ``name`` (its errors name the option)."""
    return lambda text: seed_value(text, name)


def _folder(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "--out is empty; name a folder (it would have written into the current one)"
        )
    return text


def add_common(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument(
        "--out",
        type=_folder,
        default=default_out,
        help="output directory (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=seed_type("--seed"),
        default=0,
        help="random seed, 0 <= N < 2**32 (default: 0)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --out (its files are deleted once this run writes "
        "its first file); without it, a folder that holds another run is refused",
    )


@dataclasses.dataclass(frozen=True)
class Command:
    """One job the CLI runs into an output folder: a command or a lesson.

    Attributes:
        name: the job's name in its folder's manifest (``basins``, ``gd_1d``).
        doc: its description; the first line is its ``--help`` line.
        add_arguments: adds its own options to a parser (``--out``,
            ``--seed`` and ``--overwrite`` are added for every job).
        run: ``run(out, **options) -> results``: computes, writes its files.
        summary: ``summary(results) -> str``, printed when it is done.
        shards: it shards over devices: one CPU device per core, set before
            JAX starts (:func:`gdjax.basins.use_all_cores`).
        trains: it trains networks and keeps checkpoints (``--resume``).
        multiprocess: it runs over several processes (``--coordinator``,
            ``--num-processes``, ``--process-id``, or ``--distributed``):
            its sharded work spans every process's devices and process 0
            writes (:mod:`gdjax.distributed`).
    """

    name: str
    doc: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[..., Any]
    summary: Callable[[Any], str]
    shards: bool = False
    trains: bool = False
    multiprocess: bool = False


class Parser(argparse.ArgumentParser):
    """argparse's parser, with two changes: a value that starts with a minus
    sign is a value, not an option (``--domain -inf 1 0 1``, ``--zoom
    -1,0.99,0.5``, ``--lr -1e300``: no gdjax option starts with a digit or
    reads inf/nan), and an error is one line that names the command and its
    ``--help`` (not argparse's usage block). Subcommands' parsers are of this
    class too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)

    UNIQUE = ("seeds", "policies", "schedule")
    """List options whose repeated values would train or count one thing twice."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        for dest in self.UNIQUE:
            values = getattr(namespace, dest, None)
            if isinstance(values, list):
                seen = set()
                for v in values:
                    if v in seen:
                        self.error(f"--{dest} lists {v} twice; give each once")
                    seen.add(v)
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_parser(sub, name: str, command: Command, default_out: str, **kwargs):
    """A subparser for ``command``: its help, the common options and its own."""
    parser = sub.add_parser(
        name,
        help=kwargs.pop("help", _format.plain_doc(command.doc.splitlines()[0])),
        description=kwargs.pop("description", _format.plain_doc(command.doc)),
        **kwargs,
    )
    add_common(parser, default_out)
    command.add_arguments(parser)
    if command.multiprocess:
        add_distributed_options(parser)
    return parser


DISTRIBUTED_OPTIONS = ("coordinator", "num_processes", "process_id", "distributed", "timeout")
JOIN_TIMEOUT = 300  # seconds every process waits for the others by default
MAX_JOIN_TIMEOUT = 7 * 24 * 3600
# options the processes of one run may give differently: they change nothing
# in the numbers (a progress bar; where each machine keeps the same data)
PER_PROCESS_OPTIONS = ("no_progress", "data_dir")


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    """``--coordinator HOST:PORT --num-processes N --process-id I`` (every
    process runs the same command with its own id), or ``--distributed``
    (JAX detects the cluster: SLURM, Open MPI, a TPU pod slice, ...)."""
    group = parser.add_argument_group(
        "several processes (JAX's multi-controller model; see docs/scaling.md)"
    )
    group.add_argument(
        "--coordinator",
        type=_coordinator,
        default=None,
        metavar="HOST:PORT",
        help="process 0's address, reachable by every process",
    )
    group.add_argument(
        "--num-processes",
        type=positive_int("--num-processes"),
        default=None,
        metavar="N",
        help="how many processes run this command",
    )
    group.add_argument(
        "--process-id",
        type=_process_id,
        default=None,
        metavar="I",
        help="this process's index, 0..N-1 (process 0 writes the outputs)",
    )
    group.add_argument(
        "--distributed",
        action="store_true",
        help="join the other processes of a cluster JAX detects (SLURM, Open MPI, TPU pod "
        "slice) instead of giving the three options above",
    )
    group.add_argument(
        "--timeout",
        type=_join_timeout,
        default=None,
        metavar="SECONDS",
        help=f"how long each process waits for all the others to join before it exits "
        f"with status 1 (default: {JOIN_TIMEOUT})",
    )


def _join_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timeout must be a number, got {text!r}") from None
    if not 0 < value <= MAX_JOIN_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"--timeout must be in (0, {MAX_JOIN_TIMEOUT}] seconds, got {text}"
        )
    return value


def _coordinator(text: str) -> str:
    try:
        return parse_coordinator(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _process_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--process-id must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--process-id must be >= 0, got {value}")
    return value


def join_processes(args: dict) -> bool:
    """Pops the multi-process options from ``args`` and, when given, joins
    this process to the others (before JAX starts). Returns whether this
    run spans several processes. Bad values end the program in one line.

    Each process says at once (on stderr) what it waits for; when the others
    have not all joined within ``--timeout`` seconds it exits with status 1
    and one line (JAX alone would abort with a C++ stack after 300 s)."""
    options = {k: args.pop(k, None) for k in DISTRIBUTED_OPTIONS}
    auto = bool(options.pop("distributed"))
    timeout = options.pop("timeout")
    explicit = [v is not None for v in options.values()]
    if not auto and not any(explicit):
        if timeout is not None:
            fail(
                "--timeout is for several processes: give it with --coordinator or --distributed",
                USAGE,
            )
        return False
    if auto and any(explicit):
        fail(
            "give --distributed (JAX detects the cluster) or --coordinator, --num-processes and "
            "--process-id, not both",
            USAGE,
        )
    timeout = JOIN_TIMEOUT if timeout is None else timeout
    try:
        distributed.check_options(
            options["coordinator"], options["num_processes"], options["process_id"]
        )
    except ValueError as err:
        fail(str(err), USAGE)
    if auto:
        waiting = "the processes of the cluster JAX detects"
    else:
        waiting = f"all {options['num_processes']} processes at {options['coordinator']}"
    who = "" if auto else f" process {options['process_id']}:"
    print(
        f"gdjax:{who} waiting up to {_format.duration(timeout)} for {waiting} to join",
        file=sys.stderr,
        flush=True,
    )
    joined = threading.Event()

    def give_up() -> None:
        if not joined.wait(timeout):
            print(
                f"gdjax: error: {waiting} did not all join within {_format.duration(timeout)} "
                "(is every process started, with the same --coordinator and --num-processes? "
                "--timeout waits longer)",
                file=sys.stderr,
                flush=True,
            )
            os._exit(RUNTIME)  # the main thread is blocked inside JAX's C++ join

    threading.Thread(target=give_up, daemon=True).start()
    try:
        # JAX's own deadline comes later: past it, it aborts the process
        distributed.initialize(
            options["coordinator"],
            options["num_processes"],
            options["process_id"],
            timeout=int(timeout) + 60,
        )
    except ValueError as err:
        fail(str(err), USAGE)
    finally:
        joined.set()
    return distributed.process_count() > 1


def check_agreement(command: Command, args: dict) -> None:
    """Every process of one run must run the same command with the same
    options (apart from --process-id and :data:`PER_PROCESS_OPTIONS`):
    otherwise each refuses in one line naming the first option that differs,
    before any compute. A collective: every process calls it."""
    options = {k: v for k, v in args.items() if k not in PER_PROCESS_OPTIONS}
    differs = distributed.first_difference(command.name, options)
    if differs is None:
        return
    what = (
        "the command or its set of options"
        if differs == distributed.COMMAND
        else "--" + differs.replace("_", "-")
    )
    fail(
        f"the processes of this run disagree on {what}: every process must run the same "
        "command with the same options, apart from --process-id",
        USAGE,
    )


def prepare(*commands: Command) -> None:
    """Before JAX starts: commands that shard over devices get one CPU device
    per core (see :func:`gdjax.basins.use_all_cores`)."""
    if any(c.shards for c in commands):
        use_all_cores()


USAGE = 2  # bad input: arguments, a folder that holds another run, a size that cannot fit
RUNTIME = 1  # the run could not finish: data missing, a locked folder, a full disk
INTERRUPTED = 130  # Ctrl-C


def exit_process(main: Callable[[], int]) -> NoReturn:
    """A process's end for the ``gdjax`` entry points (not for ``main``
    called in Python): runs ``main`` and exits with its status. After a
    Ctrl-C (status 130) the process ends at once, once its message is
    printed and its run folder put back: an interpreter shut down while an
    XLA compilation thread still runs crashed (exit 139) in about one
    interrupt in three."""
    try:
        status = main()
    except SystemExit as err:
        status = err.code
    if status == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    sys.exit(status)


def fail(message: str, status: int) -> NoReturn:
    """Prints ``gdjax: error: message`` (one line, no traceback) and exits."""
    print(f"gdjax: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def open_out(command: Command, args: dict):
    """Opens the run folder ``args["out"]`` for ``command`` before any compute
    (see :func:`gdjax.runs.open_run`); pops ``overwrite`` from ``args``.
    Errors end the program in one line."""
    try:
        return runs.open_run(
            Path(args["out"]),
            command.name,
            resume=bool(args.get("resume")) if command.trains else False,
            overwrite=args.pop("overwrite", False),
            resumable=command.trains,
        )
    except runs.RunFolderError as err:
        fail(str(err), USAGE)
    except runs.RunLockedError as err:
        fail(str(err), RUNTIME)


_interrupted = False  # set by Ctrl-C (SIGINT) during a command
_catching = False  # a command's Ctrl-C handler is installed
_resend = False  # a swallowed Ctrl-C is to be sent again
_unraisablehook = sys.__unraisablehook__  # the hook in place before the command


def _on_interrupt(signum, frame) -> None:
    global _interrupted, _resend
    _interrupted, _resend = True, False
    raise KeyboardInterrupt


def _on_unraisable(unraisable) -> None:
    """``sys.unraisablehook`` during a command: a KeyboardInterrupt that
    Python swallowed (raised inside a garbage-collection callback, a weakref
    callback or a ``__del__``) prints nothing, since the Ctrl-C is remembered,
    and is delivered again a moment later, outside the callback; anything
    else goes to the hook in place before the command."""
    global _resend
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        _resend = True
        threading.Timer(0.01, _interrupt_again).start()
        return
    _unraisablehook(unraisable)


def _interrupt_again() -> None:
    """Sends the swallowed Ctrl-C again, unless the command already stopped
    (then the signal would land in the clean-up that puts the folder back)."""
    if _catching and _resend:
        os.kill(os.getpid(), signal.SIGINT)


def _stop_resending() -> None:
    global _resend
    _resend = False


@contextlib.contextmanager
def _catching_ctrl_c():
    """Ctrl-C raises KeyboardInterrupt as usual, and is also remembered: when
    the exception is swallowed (raised inside a garbage-collection callback
    or a ``__del__``, whose exceptions Python only prints), nothing is
    printed, the signal is sent again a moment later, and the next progress
    update and the end of the command raise it too, so a run cut short never
    ends as if it had finished."""
    global _interrupted, _catching, _unraisablehook, _resend
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _interrupted = _resend = False
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    _unraisablehook, sys.unraisablehook = sys.unraisablehook, _on_unraisable
    _catching = True
    try:
        yield
    finally:
        _catching = False
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = _unraisablehook
        _interrupted = False


def check_interrupted() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed during this command."""
    if _interrupted:
        _stop_resending()
        raise KeyboardInterrupt


def run_and_print(command: Command, args: dict, *, run=None) -> Any:
    """Runs one command: opens its folder (unless ``run`` is open already),
    runs ``command.run``, prints its summary, marks the run complete.

    Errors end the program in one line: status 2 for bad input (ValueError),
    1 for a run that could not finish (missing data, a locked folder, a full
    disk); Ctrl-C prints what was kept and exits with 130."""
    prepare(command)
    several = join_processes(args) if command.multiprocess else False
    if several:
        check_agreement(command, args)
        run = _open_out_together(command, args)
    run = run if run is not None else open_out(command, args)
    args.pop("overwrite", None)
    out = Path(args.pop("out"))
    start = time.perf_counter()
    try:
        with run, _catching_ctrl_c():
            try:
                results = command.run(out, **args)
                check_interrupted()  # a Ctrl-C swallowed on the way
            except BaseException:
                _stop_resending()
                run.abandon()  # nothing written: the folder is left as it was
                raise
            run.finish()
    except KeyboardInterrupt:
        print(f"\ngdjax: interrupted; {_kept(command, out, run)}", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except (ValueError, FileNotFoundError) as err:
        fail(str(err), USAGE)
    except (DatasetError, OSError, MemoryError) as err:
        fail(_describe_runtime(err), RUNTIME)
    if isinstance(run, runs.Bystander):
        return results  # process 0 prints and writes
    print(command.summary(results))
    print(f"[{time.perf_counter() - start:.1f} s] wrote {out}/ (report.html, JSON, *.png)")
    return results


def _open_out_together(command: Command, args: dict):
    """Process 0 opens the run folder (refusing one that holds another run,
    as alone); the others learn whether it could and write nothing. Every
    process ends with the same status when the folder is refused."""
    if distributed.is_main():
        try:
            run = open_out(command, args)
        except SystemExit:
            distributed.agree(False)  # the message is printed; the others stop too
            raise
        distributed.agree(True)
        return run
    args.pop("overwrite", None)
    if "no_progress" in args:
        args["no_progress"] = True  # one progress bar: process 0's
    if not distributed.agree(False):
        raise SystemExit(USAGE)
    runs.discard_writes()
    return runs.Bystander(Path(args["out"]), command.name)


def _describe_runtime(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    if isinstance(err, MemoryError):
        return "out of memory" + (f" ({err})" if str(err) else "")
    return str(err)


def _kept(command: Command, out: Path, run) -> str:
    """What an interrupted run left in ``out``, and how to go on."""
    if command.trains:
        epochs = []  # a single model or population in out/, sequential models in out/NAME/
        for folder in [out, *sorted(p.parent for p in out.glob(f"*/{train.CHECKPOINT}"))]:
            try:
                epochs.append(train.load_checkpoint(folder)["epoch"])
            except (OSError, ValueError, KeyError):
                pass
        if epochs:
            again = command_line()
            if "--resume" not in sys.argv:
                again += " --resume"
            done = f"epoch {epochs[0]}" if len(epochs) == 1 else f"{len(epochs)} models' epochs"
            return f"the checkpoint of {done} is kept in {out}; resume with:\n  {again}"
        return f"no epoch had finished, so there is nothing to resume in {out}"
    if not run.written:
        return f"nothing was written; {out} is as it was"
    return f"{out} holds an unfinished run (each file in it is whole); rerun with --overwrite"


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``, for every command with a progress bar
    (:func:`progress_bar`)."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_descent_options(parser: argparse.ArgumentParser) -> None:
    """``--lr``, ``--steps`` and ``--tol``, shared by every descent command."""
    parser.add_argument(
        "--lr",
        type=positive_float("--lr"),
        default=0.01,
        help="learning rate (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int("--steps"),
        default=1000,
        help="descent steps (default: %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=positive_float("--tol"),
        default=1e-3,
        help="converged: |grad| < tol at the last step (default: %(default)s)",
    )


def setting_type(text: str) -> tuple[str, float]:
    """argparse type of ``--setting NAME=VALUE`` (an optimizer's float setting)."""
    name, eq, value = text.partition("=")
    try:
        if not eq or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--setting takes NAME=VALUE with a number, got {text!r}"
        ) from None


def add_uncertainty_option(
    parser: argparse.ArgumentParser,
    default: int,
    where: str,
    runs: str,
    flag: str = "--uncertainty",
) -> None:
    """``--uncertainty N`` (or ``flag``): the uncertainty exponent ``where``,
    its ``runs`` re-run from N random starts per perturbation size (0 skips
    it)."""
    parser.add_argument(
        flag,
        type=_uncertainty_type(flag),
        default=default,
        metavar="N",
        help=f"the uncertainty exponent {where}: {runs} re-run from N random starts per "
        "perturbation size (drawn from --seed) and from their perturbations; 0 to skip; "
        "auto: as many as cost about what the map costs, up to the full size "
        "(default: %(default)s)",
    )


def _uncertainty_type(flag: str) -> Callable[[str], int | str]:
    def parse(text: str) -> int | str:
        if text == "auto":
            return text
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} takes a whole number or auto, got {text!r}"
            ) from None

    return parse


def positive_float(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be finite and > 0, got {text}")
        return value

    return parse


def positive_int(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            try:  # 1e6 is an integer too
                as_float = float(text)
            except ValueError:
                as_float = math.nan
            if not (math.isfinite(as_float) and as_float.is_integer()):
                raise argparse.ArgumentTypeError(
                    f"{name} must be an integer, got {text!r}"
                ) from None
            value = int(as_float)
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse


@contextlib.contextmanager
def progress_bar(desc: str, unit: str, enabled: bool = True, stages=()):
    """A tqdm bar for a command's long work: yields ``update(done, total)``
    (a library function's progress callback). The bar appears with the first
    update (a command refused before any work draws none); ``done == 0``
    restarts it (after compiling, so its rate is the work's). Another total
    is the next stage of the work: the finished bar stays on screen and a new
    one starts, labelled ``stages[k]`` for the (k+2)-th stage (``desc``
    again, with its number, past the names given), so no stage runs
    unlabelled under its predecessor's name. Counts are whole numbers (k, M
    for large ones). Closed on the way out, before any message, Ctrl-C's
    included."""
    bar = None
    stage = 0

    def update(done, total):
        nonlocal bar, stage
        check_interrupted()  # a Ctrl-C swallowed on the way stops the work here
        if not enabled:
            return
        if bar is not None and bar.total != total:  # the next stage
            bar.close()
            bar, stage = None, stage + 1
        if bar is None:
            label = (
                desc
                if stage == 0
                else (stages[stage - 1] if stage <= len(stages) else f"{desc} ({stage + 1})")
            )
            bar = tqdm.auto.tqdm(total=total, unit=unit, unit_scale=total >= 10_000, desc=label)
        if done == 0 or done < bar.n:  # a restart (after compiling) or the same task again
            bar.reset(total=total)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
