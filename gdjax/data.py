"""Fashion-MNIST, from real files, verified.

:func:`fashion_mnist` returns the 60,000 training and 10,000 test images
(uint8, N x 28 x 28) and their labels (uint8, 0-9). With the default
``source="idx"`` it looks for the four raw IDX files (gzipped or not) in, in
this order:

1. the ``data_dir`` argument,
2. ``$GDJAX_DATA_DIR``,
3. the user cache, ``$XDG_CACHE_HOME/gdjax/fashion-mnist`` (default
   ``~/.cache/gdjax/fashion-mnist``),
4. Debian's ``/usr/share/datasets/fashion-mnist`` (``apt-get install
   dataset-fashion-mnist`` ships the real files),

and takes the first directory that holds all four. If none does, it downloads
them from the dataset's official address into the cache (``download_missing=False``
turns that off). Every file is checked on its decompressed bytes: IDX header,
shape, and SHA-256 against the published data. Debian's ``.gz`` files differ
from upstream's only in their gzip header, so a checksum of the ``.gz`` would
wrongly reject them. Downloads are written to a temporary file and moved into
place only once verified, so an interrupted or corrupted transfer leaves
nothing behind.

``source="tfds"`` loads the same arrays through tensorflow-datasets (the
optional extra ``gdjax[tfds]``, about 1.3 GB with tensorflow): it prepares
TFDS's copy offline from the raw files found above, which TFDS verifies
against its own registered checksums, and returns the examples in the IDX
files' order, so both sources give identical arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "BASE_URL",
    "CLASS_NAMES",
    "DEBIAN_DIR",
    "FILES",
    "DatasetError",
    "FashionMNIST",
    "cache_dir",
    "download",
    "fashion_mnist",
    "find_dir",
    "read_idx",
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


class FashionMNIST(NamedTuple):
    """The dataset as numpy arrays.

    Attributes:
        train_images: uint8, (60000, 28, 28).
        train_labels: uint8, (60000,), class indices into CLASS_NAMES.
        test_images: uint8, (10000, 28, 28).
        test_labels: uint8, (10000,).
        source: where the arrays came from (a directory, or "tfds:<its data dir>").
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


# --------------------------------------------------------------------------
# Where to look.


def cache_dir() -> Path:
    """The user cache for downloads: ``$XDG_CACHE_HOME/gdjax/fashion-mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gdjax" / "fashion-mnist"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories :func:`fashion_mnist` looks in, in order."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir))
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


def _decompressed(path: Path) -> bytes:
    raw = path.read_bytes()
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
    path = Path(path)
    data = _decompressed(path)
    try:
        arr = _parse_idx(data, str(path))
    except DatasetError as err:  # a structural problem says more than a checksum
        raise DatasetError(f"{err}; delete it and {_HOW_TO_GET}") from None
    if expected_sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise DatasetError(
                f"{path} is corrupted: SHA-256 of its decompressed bytes is {digest}, "
                f"expected {expected_sha256} (shape {arr.shape}); delete it and {_HOW_TO_GET}"
            )
    return arr.copy()


def _load_dir(directory: Path) -> FashionMNIST:
    arrays = {}
    for key, spec in FILES.items():
        path = _file_in(directory, spec)
        if path is None:
            raise DatasetError(f"{directory / (spec.name + '.gz')} is missing; {_HOW_TO_GET}")
        arrays[key] = read_idx(path, spec.sha256)
    return FashionMNIST(**arrays, source=str(directory))


# --------------------------------------------------------------------------
# Downloading.


def download(
    dest: str | os.PathLike | None = None,
    *,
    base_url: str = BASE_URL,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Downloads the four files into ``dest`` (default: the cache), verified.

    Each file is streamed to a temporary file in ``dest``, checked (complete
    transfer, gzip, IDX header, SHA-256 of the decompressed bytes) and only
    then renamed into place, so a failure leaves nothing half-written. Files
    already present and valid are kept.

    Returns:
        ``dest``.

    Raises:
        DatasetError: a transfer failed or a file did not verify.
    """
    dest = Path(dest) if dest is not None else cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
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
            with os.fdopen(fd, "wb") as out:
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
            tmp.unlink(missing_ok=True)
    return dest


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
        data_dir: a directory to look in first (see the module docstring for
            the search order).
        source: ``"idx"`` (parse the raw files) or ``"tfds"`` (through
            tensorflow-datasets: ``pip install 'gdjax[tfds]'``).
        download_missing: download into the cache when no directory holds the
            files.
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
    directory = find_dir(data_dir)
    if directory is None:
        if not download_missing:
            looked = ", ".join(str(d) for d in search_dirs(data_dir))
            raise DatasetError(f"Fashion-MNIST not found (looked in {looked}); {_HOW_TO_GET}")
        directory = download(cache_dir(), base_url=base_url)
    if source == "tfds":
        from gdjax import _tfds

        tfds_dir = Path(tfds_dir) if tfds_dir is not None else cache_dir().parent / "tfds"
        arrays = _tfds.load(directory, tfds_dir)
        return FashionMNIST(*arrays, source=f"tfds:{tfds_dir}")
    return _load_dir(directory)
