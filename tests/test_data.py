"""gdjax.data: the real Fashion-MNIST files, the search order, integrity checks,
and downloads from a server on 127.0.0.1 (complete, corrupted, cut off)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gdjax import data


@pytest.fixture(scope="module")
def real_dir() -> Path:
    """The directory holding the real files (Debian's package, or $GDJAX_DATA_DIR)."""
    directory = data.find_dir()
    if directory is None:
        pytest.fail(
            "Fashion-MNIST files not found; run ./setup.sh (installs Debian's "
            "dataset-fashion-mnist) or set GDJAX_DATA_DIR"
        )
    return directory


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No cache, no $GDJAX_DATA_DIR, no Debian directory: only what a test puts there."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GDJAX_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    return tmp_path


def _copy_real(real_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for spec in data.FILES.values():
        shutil.copy(data._file_in(real_dir, spec), dest / (spec.name + ".gz"))
    return dest


def _rewrite_labels(directory: Path, change) -> Path:
    """Rewrites the test labels file through ``change(bytes) -> bytes``, gzipped."""
    path = directory / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(change(gzip.decompress(path.read_bytes()))))
    return path


def test_real_files_are_fashion_mnist(real_dir):
    ds = data.fashion_mnist(real_dir)
    assert ds.train_images.shape == (60000, 28, 28) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (10000, 28, 28) and ds.test_images.dtype == np.uint8
    assert ds.train_labels.shape == (60000,) and ds.test_labels.shape == (10000,)
    # Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [1000] * 10)
    # Published facts: the first training label is 9 (ankle boot), the first test one 9 too.
    assert ds.train_labels[0] == 9 and ds.test_labels[0] == 9
    assert 0 < ds.train_images.mean() < 255
    assert ds.source == str(real_dir)
    assert len(data.CLASS_NAMES) == 10


def test_checksums_are_of_decompressed_bytes(real_dir):
    for spec in data.FILES.values():
        raw = gzip.decompress(data._file_in(real_dir, spec).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == spec.sha256


def test_uncompressed_files_are_accepted(real_dir, isolated):
    plain = isolated / "plain"
    plain.mkdir()
    for spec in data.FILES.values():
        (plain / spec.name).write_bytes(gzip.decompress(data._file_in(real_dir, spec).read_bytes()))
    ds = data.fashion_mnist(plain, download_missing=False)
    np.testing.assert_array_equal(ds.test_labels, data.fashion_mnist(real_dir).test_labels)


def test_search_order(real_dir, isolated, monkeypatch):
    explicit = _copy_real(real_dir, isolated / "explicit")
    env = _copy_real(real_dir, isolated / "env")
    monkeypatch.setenv("GDJAX_DATA_DIR", str(env))
    # a folder given is the only place looked in; without one, the search order
    assert data.search_dirs(explicit) == [explicit]
    assert data.search_dirs() == [
        env,
        isolated / "cache" / "gdjax" / "fashion-mnist",
        isolated / "no-debian",
    ]
    assert data.find_dir(explicit) == explicit
    assert data.find_dir() == env
    assert data.fashion_mnist(explicit).source == str(explicit)
    assert data.fashion_mnist().source == str(env)
    # A searched directory missing a file is passed over.
    (env / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.find_dir() is None  # the isolated cache and Debian folder are empty


def test_a_folder_given_must_hold_the_files(real_dir, isolated, monkeypatch):
    """A typo'd --data-dir, or one missing a file, used to fall back silently to
    another copy of the data ($GDJAX_DATA_DIR, the cache, Debian's)."""
    env = _copy_real(real_dir, isolated / "env")
    monkeypatch.setenv("GDJAX_DATA_DIR", str(env))
    typo = isolated / "fashoin-mnist"
    with pytest.raises(data.DatasetError, match="does not exist") as info:
        data.fashion_mnist(typo)
    assert str(typo) in str(info.value) and "\n" not in str(info.value)
    partial = _copy_real(real_dir, isolated / "partial")
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    assert data.find_dir(partial) is None
    with pytest.raises(data.DatasetError, match="has no t10k-labels-idx1-ubyte.gz") as info:
        data.fashion_mnist(partial)
    assert str(partial) in str(info.value)
    # no download into (or instead of) a folder given
    with pytest.raises(data.DatasetError, match="has no"):
        data.fashion_mnist(isolated / "env" / "..", base_url="http://127.0.0.1:9/")
    file_instead = isolated / "a-file"
    file_instead.write_text("")
    with pytest.raises(data.DatasetError, match="is not a folder"):
        data.fashion_mnist(file_instead)


def test_the_dataset_records_its_files(real_dir):
    ds = data.fashion_mnist(real_dir)
    assert [f.key for f in ds.files] == list(data.FILES)
    for f in ds.files:
        path = Path(f.path)
        assert path.is_absolute() and path.parent == real_dir.absolute()
        assert f.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert f.data_sha256 == data.FILES[f.key].sha256
    record = data.provenance(ds)
    assert json.loads(json.dumps(record)) == record
    assert record["source"] == str(real_dir) and len(record["files"]) == 4
    assert record["train_images"] == 60000 and record["test_images"] == 10000
    # arrays made in memory have no files, and still build as before
    made = data.FashionMNIST(*ds[:4], source="mine")
    assert made.files == () and data.provenance(made)["files"] == []


def test_nothing_found_without_download_is_a_clear_error(isolated):
    with pytest.raises(data.DatasetError, match="apt-get install dataset-fashion-mnist"):
        data.fashion_mnist(download_missing=False)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda b: b[:-10], "truncated or corrupted: its header promises 10000 bytes"),
        (lambda b: b[:6], "header cut short"),
        (lambda b: b"\x00\x00\x0d\x01" + b[4:], "bad magic number"),
        (lambda b: b[:-1] + bytes([(b[-1] + 1) % 10]), "corrupted: SHA-256"),
    ],
    ids=["truncated-data", "truncated-header", "bad-magic", "one-label-changed"],
)
def test_corrupted_file_names_the_file(real_dir, isolated, change, match):
    bad = _copy_real(real_dir, isolated / "bad")
    path = _rewrite_labels(bad, change)
    with pytest.raises(data.DatasetError, match=match) as info:
        data.fashion_mnist(bad, download_missing=False)
    assert str(path) in str(info.value) and "delete it" in str(info.value)


def test_truncated_gzip_names_the_file(real_dir, isolated):
    bad = _copy_real(real_dir, isolated / "bad")
    path = bad / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(data.DatasetError, match="not a complete gzip file") as info:
        data.fashion_mnist(bad, download_missing=False)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------
# Downloads from a local server.


class _Server:
    """Serves ``files`` (name -> bytes) on 127.0.0.1; ``cut`` names files whose
    transfer stops halfway with the connection closed, ``stall`` files whose
    transfer stops halfway and hangs until the server closes."""

    def __init__(
        self,
        files: dict[str, bytes],
        cut: frozenset[str] = frozenset(),
        stall: frozenset[str] = frozenset(),
    ):
        self.files, self.cut, self.stall, self.requests = files, cut, stall, []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append(name)
                if name not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in outer.cut or name in outer.stall:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if name in outer.stall:  # hangs, as a slow network does
                        outer.release.wait(60)
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def real_files(real_dir) -> dict[str, bytes]:
    return {
        spec.name + ".gz": data._file_in(real_dir, spec).read_bytes()
        for spec in data.FILES.values()
    }


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_into_cache_then_load(real_files, isolated):
    with _Server(real_files) as server:
        ds = data.fashion_mnist(base_url=server.url)
    cache = data.cache_dir()
    assert ds.source == str(cache)
    assert _leftovers(cache) == sorted(real_files)
    assert ds.train_images.shape == (60000, 28, 28)
    # A second call finds the cache and asks the server for nothing.
    with _Server(real_files) as server:
        again = data.fashion_mnist(base_url=server.url)
        assert server.requests == []
    np.testing.assert_array_equal(again.test_images, ds.test_images)


def test_download_of_a_corrupted_file_leaves_nothing(real_files, isolated):
    files = dict(real_files)
    labels = bytearray(gzip.decompress(files["t10k-labels-idx1-ubyte.gz"]))
    labels[100] = (labels[100] + 1) % 10
    files["t10k-labels-idx1-ubyte.gz"] = gzip.compress(bytes(labels))
    dest = isolated / "dl"
    with _Server(files) as server, pytest.raises(data.DatasetError) as info:
        data.download(dest, base_url=server.url, progress=False)
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value) and "SHA-256" in str(info.value)
    # The files before it verified and stay; the corrupted one and any .part are gone.
    assert "t10k-labels-idx1-ubyte.gz" not in _leftovers(dest)
    assert not [n for n in _leftovers(dest) if n.endswith(".part")]
    # Once the server is fixed, only the missing file is fetched again.
    with _Server(real_files) as server:
        data.download(dest, base_url=server.url, progress=False)
        assert server.requests == ["t10k-labels-idx1-ubyte.gz"]
    assert _leftovers(dest) == sorted(real_files)


def test_connection_cut_mid_transfer_leaves_nothing(real_files, isolated):
    dest = isolated / "dl"
    with (
        _Server(real_files, cut=frozenset({"train-images-idx3-ubyte.gz"})) as server,
        pytest.raises(data.DatasetError, match="cut off"),
    ):
        data.download(dest, base_url=server.url, progress=False)
    assert _leftovers(dest) == []  # train images is the first file fetched


def _part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.part"))


def test_killed_download_leaves_a_part_file_that_the_next_one_removes(
    real_files, isolated, monkeypatch
):
    """A download killed by SIGKILL cannot clean up its .part file; the next
    download (or load through the cache) removes it, but never the .part file
    of a download still running, nor files it does not name."""
    cache = data.cache_dir()
    cache.mkdir(parents=True)
    other = cache / ".my-notes.part"  # not a name download() uses
    other.write_text("mine")
    old = time.time() - 3600
    os.utime(other, (old, old))
    name = "train-images-idx3-ubyte.gz"
    script = (
        "import sys; from gdjax import data; "
        "data.download(sys.argv[1], base_url=sys.argv[2], progress=False)"
    )
    with _Server(real_files, stall=frozenset({name})) as server:
        procs = [
            subprocess.Popen([sys.executable, "-c", script, str(cache), server.url])
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 60
            while len([p for p in _part_files(cache) if p != other and p.stat().st_size]) < 2:
                assert all(p.poll() is None for p in procs)
                assert time.monotonic() < deadline, "the downloads did not start"
                time.sleep(0.05)
            killed, running = procs
            killed.send_signal(signal.SIGKILL)
            killed.wait()
            parts = [p for p in _part_files(cache) if p != other]
            assert len(parts) == 2  # the killed download could not clean up
            monkeypatch.setattr(data, "STALE_PART_SECONDS", 0.0)
            removed = data.remove_stale_parts(cache)
            assert len(removed) == 1  # the killed one's; the running one holds its lock
            (live,) = [p for p in _part_files(cache) if p != other]
            assert live in parts and live not in removed
            # a load through the cache removes stale ones too, before searching
            stale = cache / ".t10k-labels-idx1-ubyte.abcd1234.part"
            stale.write_bytes(b"half")
            os.utime(stale, (old, old))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
    with _Server(real_files) as server:
        ds = data.fashion_mnist(base_url=server.url)
    assert ds.source == str(cache)
    assert _leftovers(cache) == sorted([*real_files, other.name])


def test_a_recent_part_file_is_kept(isolated):
    """A .part file written in the last minute may belong to a download that has
    not locked it yet: kept."""
    dest = isolated / "dl"
    dest.mkdir()
    fresh = dest / ".train-labels-idx1-ubyte.xyz.part"
    fresh.write_bytes(b"x")
    assert data.remove_stale_parts(dest) == []
    old = time.time() - 2 * data.STALE_PART_SECONDS
    os.utime(fresh, (old, old))
    assert data.remove_stale_parts(dest) == [fresh]


def test_missing_on_server_is_a_clear_error(isolated):
    with _Server({}) as server, pytest.raises(data.DatasetError, match="HTTP 404"):
        data.download(isolated / "dl", base_url=server.url, progress=False)
    assert _leftovers(isolated / "dl") == []


def test_unreachable_server_is_a_clear_error(isolated):
    with pytest.raises(data.DatasetError, match="could not download"):
        data.download(isolated / "dl", base_url="http://127.0.0.1:9/", timeout=5, progress=False)


def test_unknown_source():
    with pytest.raises(ValueError, match="unknown source"):
        data.fashion_mnist(source="kaggle")


def test_tfds_source_gives_the_same_arrays(real_dir, tmp_path):
    """Prepares TFDS's copy offline from the real files (TFDS checks its own
    checksums) and compares every array with the IDX source."""
    idx = data.fashion_mnist(real_dir)
    via_tfds = data.fashion_mnist(real_dir, source="tfds", tfds_dir=tmp_path / "tfds")
    assert via_tfds.source == f"tfds:{tmp_path / 'tfds'}"
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        a, b = getattr(idx, name), getattr(via_tfds, name)
        assert a.dtype == b.dtype == np.uint8, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    # Prepared once: the downloads are gone, the TFRecords stay.
    assert not (tmp_path / "tfds" / "downloads").exists()
    assert list((tmp_path / "tfds" / "fashion_mnist").iterdir())


def test_tfds_rebuilds_upstream_gzip_headers(real_dir):
    from gdjax import _tfds

    for fname in _tfds._MTIMES:
        raw = (real_dir / fname).read_bytes()
        rebuilt = _tfds.upstream_bytes(raw, fname)
        assert gzip.decompress(rebuilt) == gzip.decompress(raw)
        assert rebuilt[3] == 0x08 and fname.removesuffix(".gz").encode() in rebuilt[:60]
        # rebuilding an upstream file changes nothing
        assert _tfds.upstream_bytes(rebuilt, fname) == rebuilt


def test_a_file_tfds_does_not_register_is_a_dataset_error(real_dir, isolated):
    """Recompressed files hold the same bytes (gdjax accepts them) but not
    upstream's gzip stream, which TFDS checks: the error is gdjax's
    DatasetError, naming the file (gdjax._tfds raises its own SourceError and
    does not import gdjax.data back)."""
    import ast

    from gdjax import _tfds

    d = _copy_real(real_dir, isolated / "recompressed")
    path = d / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    data.fashion_mnist(d)  # the same bytes: the IDX source reads them
    with pytest.raises(data.DatasetError, match=f"{path} does not match the file TFDS registers"):
        data.fashion_mnist(d, source="tfds", tfds_dir=isolated / "tfds")
    tree = ast.parse(Path(_tfds.__file__).read_text())
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        )
    }
    assert not any(name and name.startswith("gdjax") for name in imported), imported
