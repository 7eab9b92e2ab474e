"""Output folders: checked before compute, locked, never mixing two runs;
atomic writes; one line and exit 130 on Ctrl-C."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gdjax import runs
from gdjax.cli import main


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    """A write that fails (a full disk, an interrupt) leaves the old file whole
    and no temporary file behind."""
    path = tmp_path / "basins.json"
    runs.write_text(path, '{"old": true}\n')

    def full_disk(fd):  # fsync is the last step before the rename
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        runs.write_text(path, '{"new": true}\n' * 10000)
    assert path.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basins.json"]

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runs.write_bytes(tmp_path / "curves.png", b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basins.json"]


def test_report_and_json_go_through_atomic_writes(tmp_path, monkeypatch):
    from gdjax.report import Report, write_json

    written = []
    real = runs.write_bytes
    monkeypatch.setattr(runs, "write_bytes", lambda p, d: written.append(p.name) or real(p, d))
    write_json(tmp_path / "a.json", {"x": 1})
    import matplotlib.pyplot as plt

    rep = Report("t")
    rep.figure(plt.figure(), "fig")
    rep.write(tmp_path)
    assert written == ["a.json", "fig.png", "report.html"]


def test_folder_holding_a_run_is_refused_then_overwritten(tmp_path):
    out = tmp_path / "run"
    with runs.open_run(out, "basins") as run:
        runs.write_text(out / "basins.json", "{}")
        runs.write_text(out / "basin_map.png", "png")
        run.finish()
    manifest = runs.read_manifest(out)
    assert manifest["complete"] and manifest["files"] == ["basin_map.png", "basins.json"]
    with pytest.raises(runs.RunFolderError, match="holds an earlier gdjax basins run"):
        runs.open_run(out, "basins")
    with pytest.raises(runs.RunFolderError, match="cannot resume"):
        runs.open_run(out, "basins", resume=True)
    with runs.open_run(out, "basins", overwrite=True) as run:
        assert (out / "basin_map.png").exists()  # kept until the new run writes
        runs.write_text(out / "report.html", "x")
        # the earlier run's files are gone once the new one writes
        assert not (out / "basin_map.png").exists() and not (out / "basins.json").exists()
        runs.write_text(out / "basins.json", "{}")
        run.finish()
    assert runs.read_manifest(out)["files"] == ["basins.json", "report.html"]
    (tmp_path / "mine.txt").write_text("a user's file")
    with runs.open_run(tmp_path, "basins") as run:  # a folder with other files is fine
        run.finish()
    with runs.open_run(tmp_path, "basins", overwrite=True):
        pass
    assert (tmp_path / "mine.txt").read_text() == "a user's file"  # never ours to delete


def test_resume_needs_a_run_of_the_same_command(tmp_path):
    with pytest.raises(runs.RunFolderError, match="nothing to resume"):
        runs.open_run(tmp_path / "empty", "lenet", resume=True, resumable=True)
    with runs.open_run(tmp_path / "b", "basins") as run:
        runs.write_text(tmp_path / "b" / "basins.json", "{}")
        run.finish()
    with pytest.raises(runs.RunFolderError, match="not of gdjax lenet"):
        runs.open_run(tmp_path / "b", "lenet", resume=True, resumable=True)


def test_unusable_folders_fail_before_compute(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(runs.RunFolderError, match="is a file, not a folder"):
        runs.open_run(afile, "basins")
    with pytest.raises(runs.RunFolderError, match="cannot create the output folder"):
        runs.open_run(afile / "sub", "basins")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(runs.RunFolderError, match="cannot (write|create)"):
            runs.open_run(ro / "out", "basins")


def test_second_writer_fails_at_once(tmp_path):
    out = tmp_path / "run"
    first = runs.open_run(out, "basins")
    start = time.monotonic()
    with pytest.raises(runs.RunLockedError, match="another gdjax run is writing into"):
        runs.open_run(out, "basins", overwrite=True)
    assert time.monotonic() - start < 1.0
    first.close()
    runs.open_run(out, "basins", overwrite=True).close()  # free again


def test_lock_is_released_when_the_writer_is_killed(tmp_path):
    out = tmp_path / "run"
    code = (
        "import sys, time; from gdjax import runs; runs.open_run(sys.argv[1], 'basins'); "
        "print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(runs.RunLockedError, match=f"pid {proc.pid}"):
            runs.open_run(out, "basins", overwrite=True)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    runs.open_run(out, "basins", overwrite=True).close()


def test_cli_refuses_a_used_folder_and_overwrite_leaves_no_stale_files(tmp_path, capsys):
    out = str(tmp_path / "b")
    base = ["basins", "--steps", "50", "--out", out, "--no-progress"]
    assert main([*base, "--grid", "16"]) == 0
    assert (tmp_path / "b" / "convergence_time.png").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        main([*base, "--starts", "300"])
    assert err.value.code == 2
    assert "pass --overwrite to replace it" in capsys.readouterr().err
    assert main([*base, "--starts", "300", "--overwrite"]) == 0
    data = json.loads((tmp_path / "b" / "basins.json").read_text())
    assert data["mode"] == "random"
    written = set(runs.read_manifest(out)["files"])
    present = {p.name for p in (tmp_path / "b").iterdir()} - {runs.MANIFEST, runs.LOCK}
    assert present == written  # nothing from the grid run stayed
    assert "convergence_time.png" not in present and "basin_map.png" not in present
    assert "basin_scatter.png" in present  # what a random-start run can show


def test_cli_out_is_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(SystemExit) as err:
        main(["basins", "--grid", "8", "--out", str(afile), "--no-progress"])
    assert err.value.code == 2
    assert capsys.readouterr().err.strip().endswith("is a file, not a folder")


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    out = tmp_path / "b"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gdjax.cli", "basins", "--grid", "4096", "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    seen = b""
    deadline = time.monotonic() + 120
    while b"start/s]" not in seen and time.monotonic() < deadline:  # the descent is running
        seen += proc.stderr.read1(4096)
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    err = (seen + err).decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("gdjax:")]
    assert lines == [f"gdjax: interrupted; nothing was written; {out} is as it was"]
    assert not out.exists()  # the folder this run made is gone again


@pytest.mark.parametrize("after", [0.2, 0.6, 1.2])
def test_ctrl_c_while_starting_prints_one_line_and_exits_130(tmp_path, after):
    """Ctrl-C while Python imported JAX printed a raw traceback."""
    gdjax = Path(sys.executable).parent / "gdjax"  # the installed command
    out = tmp_path / "b"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [str(gdjax), "basins", "--grid", "4096", "--out", str(out)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gdjax: interrupted"), err
    assert not out.exists()


def test_overwrite_keeps_the_earlier_run_until_the_new_one_writes(tmp_path, capsys):
    """A refused or interrupted --overwrite run leaves the earlier run whole."""
    out = tmp_path / "b"
    base = ["basins", "--steps", "50", "--out", str(out), "--no-progress"]
    assert main([*base, "--grid", "8"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:  # refused inside the command, after the folder check
        main([*base, "--starts", "1e10", "--overwrite"])
    assert err.value.code == 2 and "GiB of memory" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a refused run into a new folder leaves nothing behind
    with pytest.raises(SystemExit):
        main(["basins", "--starts", "1e10", "--out", str(tmp_path / "new"), "--no-progress"])
    assert not (tmp_path / "new").exists()


def test_abandon_restores_the_prior_manifest(tmp_path):
    with runs.open_run(tmp_path, "basins") as run:
        runs.write_text(tmp_path / "basins.json", "{}")
        run.finish()
    prior = (tmp_path / runs.MANIFEST).read_bytes()
    with runs.open_run(tmp_path, "basins", overwrite=True) as run:
        assert run.abandon()
    assert (tmp_path / runs.MANIFEST).read_bytes() == prior
    assert (tmp_path / "basins.json").exists()
    with runs.open_run(tmp_path, "basins", overwrite=True) as run:
        runs.write_text(tmp_path / "report.html", "x")
        assert not run.abandon()  # it wrote: its manifest stays, marked unfinished
    assert not (tmp_path / "basins.json").exists()
    assert runs.read_manifest(tmp_path)["complete"] is False


def test_written_files_have_the_usual_permissions(tmp_path):
    """Atomic writes make files as open() would (0666 less the umask), not 0600."""
    old = os.umask(0o022)
    try:
        path = runs.write_text(tmp_path / "report.html", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_files_in_model_folders_are_recorded_and_replaced(tmp_path):
    """Several models trained one after another write into out/NAME/: those
    files belong to the run too, and --overwrite removes them."""
    with runs.open_run(tmp_path, "lenet", resumable=True) as run:
        runs.write_bytes(tmp_path / "constant" / "checkpoint.msgpack", b"c")
        runs.write_text(tmp_path / "metrics.json", "{}")
        run.finish()
    assert runs.read_manifest(tmp_path)["files"] == ["constant/checkpoint.msgpack", "metrics.json"]
    with runs.open_run(tmp_path, "lenet", overwrite=True, resumable=True) as run:
        runs.write_text(tmp_path / "metrics.json", "{}")
        run.finish()
    assert not (tmp_path / "constant").exists()
    # another run's folder inside --out is never taken for part of this one
    with runs.open_run(tmp_path / "inner", "basins") as run:
        runs.write_text(tmp_path / "inner" / "basins.json", "{}")
        run.finish()
    with runs.open_run(tmp_path, "lenet", overwrite=True, resumable=True) as run:
        runs.write_text(tmp_path / "metrics.json", "{}")
        run.finish()
    assert (tmp_path / "inner" / "basins.json").exists()


def test_the_command_line_is_written_as_a_reader_types_it(monkeypatch):
    cases = [
        (
            ["/x/venv/lib/site-packages/gdjax/__main__.py", "basins", "--out", "a b"],
            "python -m gdjax basins --out 'a b'",
        ),
        (["/x/venv/bin/gdjax", "lessons"], "gdjax lessons"),
        (["experiments/run.py", "--grid", "8"], "experiments/run.py --grid 8"),
    ]
    for argv, expected in cases:
        monkeypatch.setattr(sys, "argv", argv)
        assert runs.command_line() == expected


def test_the_progress_bar_labels_each_stage_and_restarts_each_task(monkeypatch):
    """A new total is the next stage: it ran under the previous stage's label
    on a bar that restarted (continuation's uncertainty under "maps"; the
    landscapes of high-dim after a full "GOE samples" bar). A count that goes
    back, or a 0, restarts the bar, so its count and rate are the task's."""
    import tqdm.auto

    from gdjax.cli._common import progress_bar

    seen = []

    class Bar:
        def __init__(self, total=None, desc=None, **_):
            self.n, self.total = 0, total
            seen.append(("new", desc, total))

        def reset(self, total=None):
            self.n, self.total = 0, total
            seen.append(("reset", total))

        def update(self, k):
            self.n += k
            seen.append(("at", self.n))

        def close(self):
            seen.append(("closed",))

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    steps = [(0, 8), (4, 8), (8, 8), (3, 6), (6, 6), (3, 6), (6, 6), (1, 2)]
    with progress_bar("maps", "start", stages=["uncertainty"]) as update:
        for done, total in steps:
            update(done, total)
    assert seen == [
        ("new", "maps", 8), ("reset", 8), ("at", 0), ("at", 4), ("at", 8), ("closed",),
        ("new", "uncertainty", 6), ("at", 3), ("at", 6),
        ("reset", 6), ("at", 3), ("at", 6), ("closed",),
        ("new", "maps (3)", 2), ("at", 1), ("closed",),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "argv, message",
    [
        # values with a minus sign are values, not options
        (["basins", "--domain", "-inf", "1", "0", "1"], "finite low < high"),
        (["basins", "--lr", "-1e300"], "--lr must be finite and > 0"),
        # one line, naming the command's --help
        (["basins", "--grid"], "argument --grid: expected one argument (see gdjax basins --help)"),
        (["basins", "--bogus"], "unrecognized arguments: --bogus (see gdjax --help)"),
    ],
)
def test_cli_errors_are_one_line_and_read_negative_values(tmp_path, capsys, argv, message):
    from gdjax.cli import main

    with pytest.raises(SystemExit) as e:
        main([*argv, "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["lenet", "--seeds", "1", "1"], "--seeds lists 1 twice"),
        (
            ["lenet", "--schedule", "constant", "--schedule", "constant"],
            "--schedule lists constant",
        ),
        (["lesson", "lr-scheduling", "--policies", "constant", "constant"], "--policies lists"),
        (["basins", "--out", ""], "--out is empty"),
    ],
)
def test_cli_refuses_repeated_values_and_an_empty_folder(tmp_path, capsys, argv, message):
    """--seeds 1 1 trained one seed twice and reported runs = 2; --out ''
    wrote into the current folder."""
    from gdjax.cli import main

    out = [] if "--out" in argv else ["--out", str(tmp_path / "x")]
    with pytest.raises(SystemExit) as e:
        main([*argv, *out])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_swallowed_ctrl_c_stops_the_work_at_the_next_progress_update():
    """A KeyboardInterrupt raised inside a garbage-collection callback is only
    printed by Python (a run of gdjax optimizers then ended with exit 0): the
    Ctrl-C is remembered and raised again at the next progress update."""
    from gdjax.cli import _common

    with _common._catching_ctrl_c():
        try:
            _common._on_interrupt(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass  # swallowed, as Python does in a __del__ or a gc callback
        with pytest.raises(KeyboardInterrupt):
            with _common.progress_bar("work", "step", enabled=False) as update:
                update(1, 2)
    _common.check_interrupted()  # reset once the command is over


def test_a_ctrl_c_in_a_gc_callback_prints_nothing_and_arrives_outside_it(capfd):
    """A Ctrl-C that landed in jax's garbage-collection callback printed
    "Exception ignored in: <function _xla_gc_callback ...>" and a traceback
    above gdjax's one line: it is now silent there and raised again a moment
    later, outside the callback."""
    import gc

    from gdjax.cli import _common

    calls, hook = [], sys.unraisablehook

    def callback(phase, info):
        if not calls:
            calls.append(phase)
            _common._on_interrupt(signal.SIGINT, None)

    with _common._catching_ctrl_c():
        gc.callbacks.append(callback)
        try:
            with pytest.raises(KeyboardInterrupt):
                gc.collect()  # the callback's exception is swallowed here
                for _ in range(200):  # ... and delivered again within 2 s
                    time.sleep(0.01)
        finally:
            gc.callbacks.remove(callback)
    assert calls
    assert capfd.readouterr().err == ""
    assert sys.unraisablehook is hook


def test_a_swallowed_ctrl_c_raised_at_a_progress_update_is_not_sent_again():
    """Once the remembered Ctrl-C has stopped the work, the signal scheduled
    to arrive again is not sent: it would land in the clean-up that puts the
    run folder back."""
    import types

    from gdjax.cli import _common

    with _common._catching_ctrl_c():
        try:
            _common._on_interrupt(signal.SIGINT, None)
        except KeyboardInterrupt as err:
            swallowed = types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=err)
        _common._on_unraisable(swallowed)  # as Python reports it: the signal is due again
        with pytest.raises(KeyboardInterrupt):
            _common.check_interrupted()
        time.sleep(0.2)  # no second KeyboardInterrupt arrives here


def test_no_lock_file_is_left_by_a_refused_finished_or_abandoned_run(tmp_path):
    """Refused runs left `.gdjax.lock` in a folder they did not touch."""
    out = tmp_path / "run"
    with runs.open_run(out, "basins") as run:
        runs.write_text(out / "basins.json", "{}")
        run.finish()
    assert sorted(p.name for p in out.iterdir()) == [runs.MANIFEST, "basins.json"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(runs.RunFolderError, match="holds an earlier"):
        runs.open_run(out, "basins")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with runs.open_run(out, "basins", overwrite=True) as run:
        assert (out / runs.LOCK).exists()  # held while the run is open
        run.abandon()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with runs.open_run(tmp_path / "new", "basins") as run:
        run.abandon()
    assert not (tmp_path / "new").exists()


def test_a_lock_file_removed_under_a_waiting_opener_is_locked_afresh(tmp_path, monkeypatch):
    """The holder removes the lock file as it lets go; a process that had
    opened the old file must not believe it holds the folder."""
    stale = tmp_path / "stale"
    stale.write_text("")
    real_open, calls = os.open, []

    def opened_just_before_the_removal(path, flags, mode=0o777, **kw):
        if not str(path).endswith(runs.LOCK):
            return real_open(path, flags, mode, **kw)
        calls.append(path)
        if len(calls) == 1:  # the old lock file, removed by its holder since
            fd = real_open(stale, os.O_RDWR)
            stale.unlink()
            return fd
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", opened_just_before_the_removal)
    with runs.open_run(tmp_path / "run", "basins") as run:
        monkeypatch.setattr(os, "open", real_open)
        assert len(calls) == 2  # it tried again
        assert os.stat(tmp_path / "run" / runs.LOCK).st_ino == os.fstat(run._lock_fd).st_ino
        with pytest.raises(runs.RunLockedError):
            runs.open_run(tmp_path / "run", "basins", overwrite=True)


def test_a_failed_write_names_its_file_and_leaves_the_manifest_true(tmp_path, monkeypatch):
    """A full disk said "No space left on device" without the file, and the
    manifest listed files that were never written."""
    out = tmp_path / "run"
    real_fsync = os.fsync
    with runs.open_run(out, "basins") as run:
        runs.write_text(out / "basins.json", "{}")

        def full_disk(fd):  # for the outputs (the manifest still fits)
            if ".gdjax-run.json" in os.readlink(f"/proc/self/fd/{fd}"):
                return real_fsync(fd)
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "fsync", full_disk)
        with pytest.raises(OSError) as info:
            runs.write_bytes(out / "basin_map.png", b"png")
        assert info.value.filename == str(out / "basin_map.png")
        assert str(out / "basin_map.png") in str(info.value)
        with pytest.raises(OSError) as info, runs.stream_npy(out / "labels.npy", (4,), "i1"):
            pass
        assert info.value.filename == str(out / "labels.npy")
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert runs.read_manifest(out)["files"] == ["basins.json"]
        run.finish()
    assert runs.read_manifest(out)["files"] == ["basins.json"]


def test_cli_names_the_file_a_full_disk_stopped(tmp_path, monkeypatch, capsys):
    real_fsync = os.fsync

    def full_disk_for_pngs(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".basin_map.png"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_for_pngs)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["basins", "--grid", "8", "--steps", "20", "--no-progress", "--out", str(out)])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gdjax: error: {out / 'basin_map.png'}: No space left on device"), err
    manifest = runs.read_manifest(out)
    assert not manifest["complete"] and "basin_map.png" not in manifest["files"]
    assert all((out / f).exists() for f in manifest["files"])


@pytest.mark.parametrize("after", [2.5, 3.0])
def test_ctrl_c_while_compiling_exits_130_not_a_crash(tmp_path, after):
    """An interpreter shut down while an XLA compilation thread ran crashed
    (exit -11, after the one line) in about one interrupt in three."""
    gdjax = Path(sys.executable).parent / "gdjax"
    out = tmp_path / "c"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    args = ["continuation", "--grid", "64", "--lrs", "8", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(
        [str(gdjax), *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gdjax: interrupted"), err
    assert not out.exists()
