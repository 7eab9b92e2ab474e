"""Fashion-MNIST, from real files, verified, with a record of which files.

:func:`fashion_mnist` returns the 60,000 training and 10,000 test images
(uint8, N x 28 x 28) and their labels (uint8, 0-9). With the default
``source="idx"`` it reads the four raw IDX files (gzipped or not) from the
``data_dir`` argument when one is given: that folder must hold them, or the
call fails naming the folder and the missing file (a typo never falls back to
another copy). Without ``data_dir`` it looks, in this order, in

1. ``$GDJAX_DATA_DIR``,
2. the user cache, ``$XDG_CACHE_HOME/gdjax/fashion-mnist`` (default
   ``~/.cache/gdjax/fashion-mnist``),
3. Debian's ``/usr/share/datasets/fashion-mnist`` (``apt-get install
   dataset-fashion-mnist`` ships the real files),

and takes the first directory that holds all four. If none does, it downloads
them from the dataset's official address into the cache (``download_missing=False``
turns that off). Every file is checked on its decompressed bytes: IDX header,
shape, and SHA-256 against the published data. Debian's ``.gz`` files differ
from upstream's only in their gzip header, so a checksum of the ``.gz`` would
wrongly reject them. The result records which files were read
(:attr:`FashionMNIST.files`, :func:`provenance`: path and SHA-256 of each),
so a run's ``metrics.json`` says what it trained on.

Downloads are written to a temporary ``.part`` file and moved into place
only once verified, so an interrupted or corrupted transfer leaves no
half-written data file. A download killed outright (``kill -9``, a power
cut) cannot remove its ``.part`` file; the next download or load through the
cache removes such files (see :func:`remove_stale_parts`).

``source="tfds"`` loads the same arrays through tensorflow-datasets (the
optional extra ``gdjax[tfds]``, about 1.3 GB with tensorflow): it prepares
TFDS's copy offline from the raw files found above, which TFDS verifies
against its own registered checksums, and returns the examples in the IDX
files' order, so both sources give identical arrays.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gdjax import _tfds

__all__ = [
    "BASE_URL",
    "CLASS_NAMES",
    "DEBIAN_DIR",
    "FILES",
    "DataFile",
    "DatasetError",
    "FashionMNIST",
    "cache_dir",
    "download",
    "fashion_mnist",
    "find_dir",
    "provenance",
    "read_idx",
    "remove_stale_parts",
    "search_dirs",
]

BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
"""The dataset's official address (github.com/zalandoresearch/fashion-mnist)."""

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the files."""

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


class _FileSpec(NamedTuple):
    name: str  # file name without .gz
    shape: tuple[int, ...]
    sha256: str  # of the decompressed bytes


FILES: dict[str, _FileSpec] = {
    "train_images": _FileSpec(
        "train-images-idx3-ubyte",
        (60000, 28, 28),
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train_labels": _FileSpec(
        "train-labels-idx1-ubyte",
        (60000,),
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "test_images": _FileSpec(
        "t10k-images-idx3-ubyte",
        (10000, 28, 28),
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "test_labels": _FileSpec(
        "t10k-labels-idx1-ubyte",
        (10000,),
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
"""The four files: name, shape and SHA-256 of the decompressed bytes."""

_HOW_TO_GET = (
    "get the real files with `apt-get install dataset-fashion-mnist` (Debian), or let "
    "gdjax download them (needs internet), or put the four files "
    f"({', '.join(s.name + '.gz' for s in FILES.values())}) in a directory and pass it as "
    "data_dir or $GDJAX_DATA_DIR"
)


class DatasetError(RuntimeError):
    """A dataset file is missing, truncated or corrupted, or could not be fetched."""


class DataFile(NamedTuple):
    """One file a :class:`FashionMNIST` was read from.

    Attributes:
        key: which array (``"train_images"``, ...).
        path: the file as read (absolute).
        sha256: SHA-256 of the file's bytes as stored (what ``sha256sum`` prints).
        data_sha256: SHA-256 of its decompressed bytes (the published checksum
            in :data:`FILES`, checked on every load).
    """

    key: str
    path: str
    sha256: str
    data_sha256: str


class FashionMNIST(NamedTuple):
    """The dataset as numpy arrays.

    Attributes:
        train_images: uint8, (60000, 28, 28).
        train_labels: uint8, (60000,), class indices into CLASS_NAMES.
        test_images: uint8, (10000, 28, 28).
        test_labels: uint8, (10000,).
        source: where the arrays came from (a directory, or "tfds:<its data dir>").
        files: the four files read, with their checksums (empty for arrays
            made in memory); see :func:`provenance`.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    files: tuple[DataFile, ...] = ()


def provenance(ds: FashionMNIST) -> dict:
    """Which data a dataset holds, as JSON: ``source``, the number of training
    and test images, and per file its array, path and SHA-256s.

    Example:
        >>> provenance(fashion_mnist())["files"][0]["key"]
        'train_images'
    """
    return {
        "source": ds.source,
        "train_images": len(ds.train_images),
        "test_images": len(ds.test_images),
        "files": [f._asdict() for f in getattr(ds, "files", ())],
    }


# --------------------------------------------------------------------------
# Where to look.


def cache_dir() -> Path:
    """The user cache for downloads: ``$XDG_CACHE_HOME/gdjax/fashion-mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gdjax" / "fashion-mnist"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories :func:`fashion_mnist` looks in, in order: only
    ``data_dir`` when one is given (it must hold the files), else
    ``$GDJAX_DATA_DIR``, the cache and Debian's directory."""
    if data_dir is not None:
        return [Path(data_dir)]
    dirs = []
    if os.environ.get("GDJAX_DATA_DIR"):
        dirs.append(Path(os.environ["GDJAX_DATA_DIR"]))
    dirs += [cache_dir(), DEBIAN_DIR]
    return dirs


def _file_in(directory: Path, spec: _FileSpec) -> Path | None:
    for candidate in (directory / (spec.name + ".gz"), directory / spec.name):
        if candidate.is_file():
            return candidate
    return None


def find_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first directory of :func:`search_dirs` that holds all four files, or None."""
    for directory in search_dirs(data_dir):
        if all(_file_in(directory, spec) for spec in FILES.values()):
            return directory
    return None


# --------------------------------------------------------------------------
# Reading and checking.


def _decompressed(path: Path, raw: bytes) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(
            f"{path} is truncated or corrupted (not a complete gzip file: {err}); "
            f"delete it and {_HOW_TO_GET}"
        ) from None


def _parse_idx(data: bytes, where: str) -> np.ndarray:
    """Parses IDX bytes (big-endian header: 0, 0, type 0x08 = uint8, ndim; dims)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{where} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{where} is truncated (header cut short)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    size = int(np.prod(shape))
    if len(data) != header + size:
        raise DatasetError(
            f"{where} is truncated or corrupted: its header promises {size} bytes of data "
            f"for shape {shape}, the file has {len(data) - header}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Reads one IDX file (gzipped or not) of unsigned bytes.

    Args:
        path: the file.
        expected_sha256: if given, the SHA-256 the decompressed bytes must have.

    Returns:
        The array, uint8, with the shape the header gives.

    Raises:
        DatasetError: the file is not IDX, is truncated or has the wrong checksum.
    """
    return _read_checked(Path(path), expected_sha256)[0]


def _read_checked(path: Path, expected_sha256: str | None) -> tuple[np.ndarray, str, str]:
    """(array, SHA-256 of the file's bytes, SHA-256 of the decompressed bytes)."""
    raw = path.read_bytes()
    data = _decompressed(path, raw)
    try:
        arr = _parse_idx(data, str(path))
    except DatasetError as err:  # a structural problem says more than a checksum
        raise DatasetError(f"{err}; delete it and {_HOW_TO_GET}") from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise DatasetError(
            f"{path} is corrupted: SHA-256 of its decompressed bytes is {digest}, "
            f"expected {expected_sha256} (shape {arr.shape}); delete it and {_HOW_TO_GET}"
        )
    file_digest = digest if raw is data else hashlib.sha256(raw).hexdigest()
    return arr.copy(), file_digest, digest


def _load_dir(directory: Path, *, given: bool = False) -> FashionMNIST:
    """Reads the four files of ``directory``; ``given``: it was named by the
    caller (data_dir, --data-dir), so the message says so."""
    where = "the data folder you gave" if given else "the data folder"
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise DatasetError(f"{where}, {directory}, {what}; {_HOW_TO_GET}")
    missing = [spec for spec in FILES.values() if _file_in(directory, spec) is None]
    if missing:
        names = ", ".join(f"{spec.name}.gz" for spec in missing)
        raise DatasetError(
            f"{where}, {directory}, has no {names} (nor the uncompressed "
            f"{'file' if len(missing) == 1 else 'files'}); {_HOW_TO_GET}"
        )
    arrays, files = {}, []
    for key, spec in FILES.items():
        path = _file_in(directory, spec).absolute()
        arrays[key], file_sha, data_sha = _read_checked(path, spec.sha256)
        files.append(DataFile(key, str(path), file_sha, data_sha))
    return FashionMNIST(**arrays, source=str(directory), files=tuple(files))


# --------------------------------------------------------------------------
# Downloading.


STALE_PART_SECONDS = 60.0
"""A ``.part`` file no live download holds, untouched for this long, is stale."""


def _is_locked(path: Path) -> bool:
    """Whether a live process holds ``path``'s lock (a running download)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): age alone decides
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # gone or unreadable: leave it alone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the lock if we took it
    return False


def remove_stale_parts(folder: str | os.PathLike, *, min_age: float | None = None) -> list[Path]:
    """Removes the ``.part`` files that killed downloads left in ``folder``.

    A download holds an exclusive ``flock`` on its ``.part`` file from creating
    it to renaming it into place, and the kernel drops that lock when the
    process dies, even by ``kill -9``. A ``.part`` file is stale when no
    process holds its lock and it has not been written for ``min_age``
    seconds (the age covers the instant between creating a file and locking
    it, and downloads of gdjax versions that did not lock). Only files named
    as :func:`download` names them (``.FILE.XXXX.part`` for the four data
    files) are touched.

    Args:
        folder: where to look (the cache, or a :func:`download` destination).
        min_age: seconds (default :data:`STALE_PART_SECONDS`).

    Returns:
        The files removed.
    """
    folder = Path(folder)
    min_age = STALE_PART_SECONDS if min_age is None else min_age
    removed = []
    now = time.time()
    for spec in FILES.values():
        for part in folder.glob(f".{spec.name}.*.part"):
            try:
                age = now - part.stat().st_mtime
            except OSError:
                continue
            if age < min_age or _is_locked(part):
                continue
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
                removed.append(part)
    return removed


def download(
    dest: str | os.PathLike | None = None,
    *,
    base_url: str = BASE_URL,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Downloads the four files into ``dest`` (default: the cache), verified.

    Each file is streamed to a temporary ``.part`` file in ``dest`` (locked
    while this process writes it), checked (complete transfer, gzip, IDX
    header, SHA-256 of the decompressed bytes) and only then renamed into
    place, so a failure leaves nothing half-written. Files already present
    and valid are kept; ``.part`` files of killed downloads are removed first
    (:func:`remove_stale_parts`).

    Returns:
        ``dest``.

    Raises:
        DatasetError: a transfer failed or a file did not verify.
    """
    dest = Path(dest) if dest is not None else cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(dest)
    for spec in FILES.values():
        final = dest / (spec.name + ".gz")
        if final.is_file():
            try:
                read_idx(final, spec.sha256)
                continue
            except DatasetError:
                final.unlink()
        url = base_url.rstrip("/") + "/" + spec.name + ".gz"
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{spec.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            _lock_part(fd)
            with os.fdopen(fd, "wb", closefd=False) as out:
                _fetch(url, out, timeout=timeout, progress=progress)
            try:
                read_idx(tmp, spec.sha256)
            except DatasetError as err:
                raise DatasetError(
                    f"downloaded {url} but it did not verify: "
                    f"{str(err).replace(str(tmp), spec.name + '.gz')}"
                ) from None
            os.replace(tmp, final)
        finally:
            os.close(fd)  # and with it the lock
            tmp.unlink(missing_ok=True)
    return dest


def _lock_part(fd: int) -> None:
    """Marks a ``.part`` file as being written by a live process."""
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _fetch(url: str, out, *, timeout: float, progress: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total is not None else None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], leave=False
                )
            received = 0
            try:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
    except urllib.error.HTTPError as err:
        raise DatasetError(f"could not download {url}: HTTP {err.code} {err.reason}") from None
    except http.client.HTTPException as err:  # IncompleteRead, RemoteDisconnected
        raise DatasetError(f"download of {url} was cut off: {err!r}") from None
    except (urllib.error.URLError, OSError) as err:
        raise DatasetError(f"could not download {url}: {err}; {_HOW_TO_GET}") from None
    if total is not None and received != total:
        raise DatasetError(f"download of {url} was cut off: got {received} of {total} bytes")


# --------------------------------------------------------------------------
# The entry point.


def fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    source: str = "idx",
    download_missing: bool = True,
    base_url: str = BASE_URL,
    tfds_dir: str | os.PathLike | None = None,
) -> FashionMNIST:
    """Fashion-MNIST's train and test sets, verified.

    Args:
        data_dir: the directory that holds the four files (it must: a missing
            folder or file is an error, never a fallback to another copy);
            None searches (see the module docstring for the order).
        source: ``"idx"`` (parse the raw files) or ``"tfds"`` (through
            tensorflow-datasets: ``pip install 'gdjax[tfds]'``).
        download_missing: download into the cache when no directory holds the
            files (only when no ``data_dir`` is given).
        base_url: where to download from.
        tfds_dir: TFDS's data directory for ``source="tfds"`` (default:
            ``$XDG_CACHE_HOME/gdjax/tfds``; preparing takes about 30 s once).

    Returns:
        A :class:`FashionMNIST` of uint8 numpy arrays.

    Raises:
        DatasetError: missing, truncated or corrupted files, or a failed
            download; the message names the file and how to get it.
        ValueError: an unknown source.

    Example:
        >>> ds = fashion_mnist()
        >>> ds.train_images.shape, ds.test_labels.shape
        ((60000, 28, 28), (10000,))
    """
    if source not in ("idx", "tfds"):
        raise ValueError(f"unknown source {source!r}; use 'idx' or 'tfds'")
    if cache_dir().is_dir():
        remove_stale_parts(cache_dir())
    if data_dir is not None:
        directory = Path(data_dir)
        ds = _load_dir(directory, given=True)  # the files are there, or an error names them
    else:
        directory = find_dir()
        if directory is None:
            if not download_missing:
                looked = ", ".join(str(d) for d in search_dirs())
                raise DatasetError(f"Fashion-MNIST not found (looked in {looked}); {_HOW_TO_GET}")
            directory = download(cache_dir(), base_url=base_url)
        ds = _load_dir(directory)
    if source == "tfds":
        tfds_dir = Path(tfds_dir) if tfds_dir is not None else cache_dir().parent / "tfds"
        try:
            arrays = _tfds.load(directory, tfds_dir)
        except _tfds.SourceError as err:
            raise DatasetError(str(err)) from None
        return FashionMNIST(*arrays, source=f"tfds:{tfds_dir}", files=ds.files)
    return ds
