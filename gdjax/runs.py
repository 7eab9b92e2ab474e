"""Output folders that never lose or mix up a run.

Every command that writes results (``gdjax basins``, ``gdjax lenet``, the
lessons) goes through :func:`open_run`:

* the folder is checked before any compute: a file in its place, a folder
  that cannot be written, or a read-only tree fail at once, in one line;
* a folder that holds another run (a ``.gdjax-run.json`` manifest, or the
  files an earlier run writes) is refused unless told: ``resume=True`` (a
  training run continues) or ``overwrite=True`` (the earlier run's files are
  removed when the new run writes its first file, so nothing of it stays
  beside the new one, and a run stopped before writing leaves it whole);
* a lock (``fcntl.flock`` on ``.gdjax.lock``, released by the kernel even
  after ``kill -9``) makes a second writer into the same folder fail at once;
* the manifest records the command, whether the run finished, and the files
  it wrote.

Files are written with :func:`write_bytes` / :func:`write_text`: to a
temporary file in the same folder, flushed and synced, then renamed over the
old one, so a kill or a full disk leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import math
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LOCK",
    "MANIFEST",
    "Bystander",
    "Run",
    "RunFolderError",
    "RunLockedError",
    "command_line",
    "discard_writes",
    "open_run",
    "read_manifest",
    "stream_npy",
    "to_jsonable",
    "write_bytes",
    "write_json",
    "write_text",
]

MANIFEST = ".gdjax-run.json"
LOCK = ".gdjax.lock"

# what runs of earlier gdjax versions (before the manifest) wrote
_KNOWN_OUTPUTS = (
    "report.html",
    "results.json",
    "basins.json",
    "metrics.json",
    "checkpoint.msgpack",
)


class RunFolderError(ValueError):
    """The output folder cannot be used as asked (a usage error)."""


class RunLockedError(RuntimeError):
    """Another process is writing into the same output folder."""


# --------------------------------------------------------------------------
# Atomic writes.


_ACTIVE: list[Run] = []  # the runs open in this process (see open_run)
_DISCARD = False  # a process other than 0 of a multi-process run writes nothing


def discard_writes(discard: bool = True) -> None:
    """From now on this process writes no files: :func:`write_bytes` and
    :func:`write_text` return without writing. For the processes other than
    0 of a multi-process run (:mod:`gdjax.distributed`): they compute the
    same results, process 0 writes them."""
    global _DISCARD
    _DISCARD = bool(discard)


class Bystander:
    """The run folder as a process other than 0 of a multi-process run holds
    it: no lock, no manifest, nothing written (process 0 opened the folder
    with :func:`open_run`)."""

    def __init__(self, out: Path, command: str):
        self.out, self.command, self.files, self.written = Path(out), command, [], False

    def finish(self) -> None:
        pass

    def abandon(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> Bystander:
        return self

    def __exit__(self, *exc) -> None:
        pass


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically: a temporary file beside it,
    synced, then renamed over ``path``. On any failure (a full disk, a kill)
    the old file, if any, is left as it was and the temporary file is removed.
    A file written into the folder of an open :class:`Run` is recorded in its
    manifest. Writes nothing after :func:`discard_writes`."""
    path = Path(path)
    if _DISCARD:
        return path
    recorded = _record(path) if path.name not in (MANIFEST, LOCK) else []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # as open() would make it (mkstemp's is 0600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as err:
        _unrecord(recorded)
        raise _naming(err, path) from None
    except BaseException:
        _unrecord(recorded)
        raise
    return path


def _record(path: Path) -> list[tuple[Run, str]]:
    """Records ``path`` in the open runs whose folder holds it (a file in the
    folder, or in a folder inside it: one model of several)."""
    recorded = []
    for run in _ACTIVE:
        inside = path.parent.resolve()
        if inside.is_relative_to(run.out.resolve()):
            name = str(inside.relative_to(run.out.resolve()) / path.name)
            run.record(name)
            recorded.append((run, name))
    return recorded


def _unrecord(recorded: list[tuple[Run, str]]) -> None:
    for run, name in recorded:
        run.unrecord(name)


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` with the file it was writing (a full disk's error names none)."""
    if err.filename is not None:
        return err
    return type(err)(err.errno, err.strerror or str(err), str(path))


@contextlib.contextmanager
def stream_npy(path: str | os.PathLike, shape: tuple[int, ...], dtype):
    """A ``.npy`` file too large to hold in memory, written in pieces: yields
    a writable memory map of a temporary file beside ``path``; when the block
    ends without an error it is flushed, synced and renamed over ``path``
    (atomic, like :func:`write_bytes`); on an error (a full disk, Ctrl-C) the
    temporary file is removed and ``path`` is left as it was. Recorded in an
    open :class:`Run`'s manifest like any written file."""
    import numpy as np

    if _DISCARD:
        raise RuntimeError("this process writes no files (only process 0 of a run writes)")
    path = Path(path)
    recorded = _record(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _unrecord(recorded)
        if isinstance(err, OSError):
            raise _naming(err, path) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`write_bytes` for UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"))


def _remove_stale_temporaries(folder: Path) -> None:
    """Removes temporary files that a killed write left (``.NAME.*.tmp``)."""
    for tmp in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


# --------------------------------------------------------------------------
# Run folders.


def command_line() -> str:
    """The command that started this process, quoted for a shell (for
    reports), as a reader would type it: ``gdjax ...`` for the installed
    command, ``python -m gdjax ...`` for the module, wherever either lives."""
    argv = list(sys.argv)
    first = Path(argv[0]) if argv else Path()
    if first.name == "__main__.py" and first.parent.name == "gdjax":
        argv[:1] = ["python", "-m", "gdjax"]
    elif first.name == "gdjax":
        argv[0] = "gdjax"
    return " ".join(shlex.quote(a) for a in argv)


def _check_writable(out: Path) -> None:
    """Fails in one line unless ``out`` is (or can be made) a writable folder."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunFolderError(f"cannot create the output folder {out}: {err.strerror}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".gdjax-probe.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise RunFolderError(f"cannot write into the output folder {out}: {err.strerror}") from None


def read_manifest(out: str | os.PathLike) -> dict | None:
    """The manifest of the run in ``out``, or None (no manifest, or unreadable)."""
    try:
        return json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


class Run:
    """An open output folder: holds its lock, records the files written.

    Use :func:`open_run`; files written with :func:`write_bytes` /
    :func:`write_text` into the folder are recorded in the manifest, and the
    first of them first deletes what an earlier run left (``overwrite``).
    ``run.finish()`` marks the run complete; ``run.abandon()`` undoes a run
    that wrote nothing (the folder is left as it was found); ``run.close()``
    releases the lock (a ``with`` block closes).
    """

    def __init__(
        self,
        out: Path,
        command: str,
        lock_fd: int,
        files: list[str],
        *,
        stale: list[str] = (),
        prior_manifest: bytes | None = None,
        created: bool = False,
    ):
        self.out = out
        self.command = command
        self._lock_fd: int | None = lock_fd
        self.files: list[str] = list(files)
        self._stale = list(stale)  # an earlier run's files, deleted at the first write
        self._prior_manifest = prior_manifest
        self._created = created
        self.written = False  # whether this run has written a file yet

    def record(self, name: str) -> None:
        """Records an output file (a path relative to the folder) as it is
        about to be written, in the manifest at once (so a killed run's files
        are known too). The first one first deletes an earlier run's files."""
        self._clear_stale()
        if name not in self.files and name not in (MANIFEST, LOCK):
            self.files.append(name)
            self._write_manifest(complete=False)

    def unrecord(self, name: str) -> None:
        """Forgets a recorded file whose write failed and left nothing."""
        if name in self.files and not (self.out / name).exists():
            self.files.remove(name)
            with contextlib.suppress(OSError):  # the disk may still be full
                self._write_manifest(complete=False)

    def _clear_stale(self) -> None:
        if self.written:
            return
        self.written = True
        for old in self._stale:
            with contextlib.suppress(FileNotFoundError):
                (self.out / old).unlink()
            if (self.out / old).parent != self.out:  # a model's folder, now empty
                with contextlib.suppress(OSError):
                    (self.out / old).parent.rmdir()
            if old in self.files:
                self.files.remove(old)
        self._stale = []

    def _write_manifest(self, complete: bool) -> None:
        write_text(
            self.out / MANIFEST,
            json.dumps(
                {
                    "command": self.command,
                    "command_line": command_line(),
                    "complete": complete,
                    "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(
                        timespec="seconds"
                    ),
                    "pid": os.getpid(),
                    "files": sorted(set(self.files)),
                },
                indent=2,
            )
            + "\n",
        )

    def finish(self) -> None:
        """Marks the run complete in the manifest (which lists the files that
        exist: none that a failed write announced)."""
        self._clear_stale()  # an earlier run's leftovers go even if nothing was written
        self.files = [f for f in self.files if (self.out / f).exists()]
        self._write_manifest(complete=True)

    def abandon(self) -> bool:
        """A run that stopped before writing any file (bad input found late,
        Ctrl-C during compute): puts the folder back as it was (the earlier
        manifest, or none; a folder this run created is removed). Returns
        whether it did; a run that wrote files keeps its incomplete manifest."""
        if self.written:  # finish() counts as writing
            return False
        with contextlib.suppress(OSError):
            if self._prior_manifest is None:
                (self.out / MANIFEST).unlink()
            else:
                write_bytes(self.out / MANIFEST, self._prior_manifest)
        if self._created:
            with contextlib.suppress(OSError):
                if self._lock_fd is not None:
                    _unlock(self.out, self._lock_fd)
                    self._lock_fd = None
                self.out.rmdir()  # only if empty
        return True

    def close(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if self._lock_fd is not None:
            _unlock(self.out, self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lock(out: Path) -> int:
    """Takes the folder's lock (``.gdjax.lock``). The file is removed by the
    holder when it lets go (:func:`_unlock`), so a process that opened the
    file just before checks, once it holds the lock, that the path still
    names the file it locked, and otherwise tries again."""
    import fcntl

    path = out / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                other = read_manifest(out) or {}
                who = ""
                if "pid" in other:
                    who = f" (pid {other['pid']}: {other.get('command_line', '')})"
                raise RunLockedError(
                    f"another gdjax run is writing into {out}{who}; wait for it or choose "
                    "another --out"
                ) from None
            raise
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed it as we opened it: lock the new one


def _unlock(out: Path, fd: int) -> None:
    """Removes the lock file (while holding it) and lets go: a folder keeps
    no ``.gdjax.lock`` once its run has ended or was refused."""
    with contextlib.suppress(OSError):
        (out / LOCK).unlink()
    os.close(fd)


def _earlier_files(out: Path, manifest: dict | None) -> list[str]:
    if manifest is not None:
        return [f for f in manifest.get("files", []) if (out / f).exists()]
    # a folder from before manifests: its top-level files only (a folder inside
    # may be another run, never ours to delete)
    return [f for f in _KNOWN_OUTPUTS if (out / f).exists()]


def open_run(
    out: str | os.PathLike,
    command: str,
    *,
    resume: bool = False,
    overwrite: bool = False,
    resumable: bool = False,
) -> Run:
    """Opens ``out`` for a run of ``command`` (e.g. "basins", "lenet").

    Checks, before any compute, that ``out`` is a writable folder, takes its
    lock, and refuses a folder that holds another run unless ``resume`` (the
    same command continues its run: ``resumable`` commands only) or
    ``overwrite`` (the earlier run's files are deleted when the new run
    writes its first file). Writes the manifest, marked incomplete until
    :meth:`Run.finish`.

    Raises:
        RunFolderError: the folder is unusable, holds another run, or (with
            ``resume``) holds nothing to resume.
        RunLockedError: another process holds the folder's lock.
    """
    out = Path(out)
    if resume and overwrite:
        raise RunFolderError("give --resume or --overwrite, not both")
    if resume and not resumable:
        raise RunFolderError(f"gdjax {command} cannot resume a run")
    created = not out.exists()
    _check_writable(out)
    fd = _lock(out)
    try:
        _remove_stale_temporaries(out)
        manifest = read_manifest(out)
        try:
            prior = (out / MANIFEST).read_bytes()
        except OSError:
            prior = None
        earlier = _earlier_files(out, manifest)
        files: list[str] = []
        stale: list[str] = []
        if resume:
            if manifest is None and not earlier:
                raise RunFolderError(f"nothing to resume in {out}: it holds no earlier run")
            if manifest is not None and manifest.get("command") != command:
                raise RunFolderError(
                    f"{out} holds a run of gdjax {manifest.get('command')}, not of gdjax {command}"
                )
            files = list(manifest.get("files", [])) if manifest else earlier
        elif earlier or manifest is not None:
            if not overwrite:
                what = f"gdjax {manifest['command']} " if manifest else ""
                state = "" if manifest is None or manifest.get("complete") else "unfinished "
                shown = ", ".join(earlier[:4]) + (", ..." if len(earlier) > 4 else "")
                hint = " (--resume continues it)" if resumable else ""
                raise RunFolderError(
                    f"{out} holds an earlier {state}{what}run ({shown or MANIFEST}); pass "
                    f"--overwrite to replace it{hint}, or choose another --out"
                )
            # deleted at the new run's first write: a run refused later (bad
            # input found inside the command) or interrupted before writing
            # anything leaves the earlier run whole
            stale = files = earlier
        run = Run(out, command, fd, files, stale=stale, prior_manifest=prior, created=created)
        run._write_manifest(complete=False)
        _ACTIVE.append(run)
        return run
    except BaseException:
        _unlock(out, fd)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty
        raise


def to_jsonable(obj: Any) -> Any:
    """Converts a result to JSON types: numpy/jax arrays and scalars to
    (nested) lists and numbers, tuples to lists, and typed records to
    objects: a dataclass instance or a NamedTuple becomes a dict of its
    fields, in order, converted in turn. Raises ValueError on NaN or inf.

    Example:
        >>> import numpy as np
        >>> from typing import NamedTuple
        >>> class Estimate(NamedTuple):
        ...     fraction: float
        ...     ci: tuple
        >>> to_jsonable({"p": Estimate(np.float32(0.25), (0.2, 0.3)), "n": np.arange(2)})
        {'p': {'fraction': 0.25, 'ci': [0.2, 0.3]}, 'n': [0, 1]}
    """
    if hasattr(obj, "__array__") and not isinstance(obj, str | bytes):
        arr = np.asarray(obj)
        return to_jsonable(arr.tolist() if arr.ndim else arr.item())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a NamedTuple
        return {name: to_jsonable(v) for name, v in zip(obj._fields, obj, strict=True)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"refusing to write a non-finite number ({obj}) to JSON")
        return obj
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | Path, data: Any) -> Path:
    """Writes ``data`` as indented JSON (no NaN, no inf), atomically: a failed
    write leaves the previous file intact."""
    text = json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"
    return write_text(path, text)
