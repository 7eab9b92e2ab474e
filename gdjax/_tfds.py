"""Fashion-MNIST through tensorflow-datasets (TFDS), offline.

TFDS's ``fashion_mnist`` builder (version 3.0.1) downloads four files whose
size and SHA-256 it registers (``url_checksums/fashion_mnist.txt``). Before
any network access its download manager looks in ``manual_dir`` for a file of
the registered name and checks its checksum. Debian's files differ from
upstream's only in the 10-byte gzip header (no file name, mtime 2020-06-05;
upstream's names the file and has mtime 2017-08-31 10:50:06 UTC for train,
10:50:27 UTC for t10k). Rewriting that header gives upstream's bytes exactly,
so TFDS verifies them itself; an upstream file passes through unchanged.

TFDS stores the examples of a split ordered by ``md5(split + str(index))``
(``core/shuffle.py``); that permutation is fixed, and undoing it gives the
arrays in the IDX files' order, so both sources return identical arrays.

This module is imported lazily by :mod:`gdjax.data` and never imports it
back: its errors are :class:`SourceError`, which ``gdjax.data`` turns into a
``DatasetError``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# file name -> upstream gzip mtime
_MTIMES = {
    "train-images-idx3-ubyte.gz": 1504176606,
    "train-labels-idx1-ubyte.gz": 1504176606,
    "t10k-images-idx3-ubyte.gz": 1504176627,
    "t10k-labels-idx1-ubyte.gz": 1504176627,
}


class SourceError(RuntimeError):
    """A raw file TFDS is prepared from is missing or is not the file TFDS
    registers."""


def _import_tfds():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ info lines
    try:
        import tensorflow_datasets as tfds
        from tensorflow_datasets.image_classification.mnist import FashionMNIST
    except ImportError as err:
        raise ImportError(
            "source='tfds' needs tensorflow-datasets and tensorflow: "
            "pip install 'gdjax[tfds]' (about 1.3 GB)"
        ) from err
    return tfds, FashionMNIST


def _gzip_header_len(data: bytes) -> int:
    """Where the deflate data of a gzip member starts (RFC 1952)."""
    if data[:3] != b"\x1f\x8b\x08":
        raise ValueError("not a gzip file")
    flags, pos = data[3], 10
    if flags & 4:  # FEXTRA
        pos += 2 + int.from_bytes(data[pos : pos + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            pos = data.index(b"\x00", pos) + 1
    if flags & 2:  # FHCRC
        pos += 2
    return pos


def upstream_bytes(data: bytes, fname: str) -> bytes:
    """The same gzip member with upstream's header (FNAME, upstream mtime, OS=Unix)."""
    header = (
        b"\x1f\x8b\x08\x08"
        + _MTIMES[fname].to_bytes(4, "little")
        + b"\x00\x03"
        + fname.removesuffix(".gz").encode()
        + b"\x00"
    )
    return header + data[_gzip_header_len(data) :]


def _tfds_order(split: str, n: int) -> np.ndarray:
    """Original indices in TFDS's storage order (sorted by md5(split + str(i)))."""
    salt = hashlib.md5(split.encode())
    keys = []
    for i in range(n):
        h = salt.copy()
        h.update(str(i).encode())
        keys.append(h.digest())
    return np.asarray(sorted(range(n), key=keys.__getitem__), np.int64)


def prepare(raw_dir: Path, data_dir: Path):
    """Prepares TFDS's ``fashion_mnist`` into ``data_dir`` from the raw .gz files
    in ``raw_dir`` without network; returns the builder."""
    tfds, builder_cls = _import_tfds()
    builder = tfds.builder("fashion_mnist", data_dir=os.fspath(data_dir))
    if builder.is_prepared():
        return builder
    download_dir = data_dir / "downloads"
    manual_dir = download_dir / "manual"
    manual_dir.mkdir(parents=True, exist_ok=True)
    infos = builder_cls.url_infos
    for fname in _MTIMES:
        src = raw_dir / fname
        if not src.is_file():
            raise SourceError(f"source='tfds' prepares from the gzipped files; {src} is missing")
        data = upstream_bytes(src.read_bytes(), fname)
        if hashlib.sha256(data).hexdigest() != infos[_URL + fname].checksum:
            raise SourceError(
                f"{src} does not match the file TFDS registers for {_URL + fname}, "
                "even with upstream's gzip header"
            )
        tmp = manual_dir / (fname + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, manual_dir / fname)
    builder.download_and_prepare(
        download_dir=os.fspath(download_dir),
        download_config=tfds.download.DownloadConfig(
            manual_dir=os.fspath(manual_dir),
            try_download_gcs=False,
            compute_stats=tfds.download.ComputeStatsMode.SKIP,
        ),
    )
    shutil.rmtree(download_dir, ignore_errors=True)  # ~82 MB not read again
    return builder


def load(raw_dir: Path, data_dir: Path) -> tuple[np.ndarray, ...]:
    """(train_images, train_labels, test_images, test_labels) through TFDS, in
    the IDX files' order."""
    tfds, _ = _import_tfds()
    builder = prepare(Path(raw_dir), Path(data_dir))
    out = []
    for split in ("train", "test"):
        batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
        images = np.asarray(batch["image"])[..., 0]
        labels = np.asarray(batch["label"]).astype(np.uint8)
        order = _tfds_order(split, len(labels))
        restored_images, restored_labels = np.empty_like(images), np.empty_like(labels)
        restored_images[order] = images
        restored_labels[order] = labels
        out += [restored_images, restored_labels]
    return tuple(out)
