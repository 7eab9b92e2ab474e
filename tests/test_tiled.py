"""Maps larger than memory (gdjax.tiled): tile by tile, streamed to disk,
equal to the in-memory map."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from gdjax import basins, fractal, runs, tiled
from gdjax.cli import basins as cli_basins
from gdjax.cli._common import run_and_print
from gdjax.maps import critical, tiles


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiled")
    # 7 rows per tile: tiles that do not line up with the box sizes or entropy boxes
    dmap = tiled.map_to_disk(
        basins.MapConfig("peaks", grid=96, steps=300, lr=0.02), out, tile_rows=7
    )
    bmap = basins.map_basins("peaks", grid=96, steps=300, lr=0.02)
    return dmap, bmap


def test_tiles_on_disk_equal_the_map_in_memory(pair):
    dmap, bmap = pair
    labels = np.load(dmap.labels_path, mmap_mode="r")
    steps = np.load(dmap.steps_path, mmap_mode="r")
    assert labels.dtype == np.int8 and labels.shape == (96, 96)
    assert steps.dtype == np.int16
    np.testing.assert_array_equal(labels.ravel(), bmap.labels)
    np.testing.assert_array_equal(steps.ravel(), bmap.converged_step)
    assert [m.location for m in dmap.minima] == [m.location for m in bmap.minima]
    np.testing.assert_array_equal(dmap.fractions.fraction, bmap.fractions.fraction)
    assert dmap.p_global == bmap.p_global
    assert dmap.plan.tiles == 14 and dmap.stride == 1
    np.testing.assert_array_equal(dmap.preview, bmap.label_grid())


def test_streamed_fractal_measures_equal_the_whole_image(pair):
    dmap, bmap = pair
    whole = fractal.box_dimension(bmap.label_grid())
    np.testing.assert_array_equal(dmap.box_dimension.counts, whole.counts)
    assert dmap.box_dimension.dimension == pytest.approx(whole.dimension, rel=1e-12)
    ent = fractal.basin_entropy(bmap.label_grid())
    assert dmap.entropy.Sb == pytest.approx(ent.Sb, rel=1e-12)
    assert dmap.entropy.Sbb == pytest.approx(ent.Sbb, rel=1e-12)


@pytest.mark.parametrize("band", [1, 3, 16, 50])
def test_stream_fractal_any_band(band):
    rng = np.random.default_rng(band)
    img = (rng.random((64, 80)) < 0.2).astype(np.int32) + (np.arange(80) > 40)
    s = tiled.StreamFractal(64, 80, box=4, sizes=[1, 2, 4, 8])
    for r0 in range(0, 64, band):
        r1 = min(64, r0 + band)
        s.feed(img[r0 - 1] if r0 else None, img[r0:r1], img[r1] if r1 < 64 else None, r0)
    dim, ent = s.result()
    whole = fractal.box_dimension(img, sizes=[1, 2, 4, 8])
    np.testing.assert_array_equal(dim.counts, whole.counts)
    assert ent.Sbb == pytest.approx(fractal.basin_entropy(img, box=4).Sbb, rel=1e-12)


def test_discover_minima_appends_and_keeps_indices():
    bmap = basins.map_basins("peaks", grid=48, steps=400, lr=0.02)
    final, conv, div = bmap.final, bmap.labels >= 0, bmap.labels == basins.DIVERGED
    first = bmap.minima[2:]  # pretend only the shallowest was known
    minima, labels = critical.discover_minima(bmap.surface, final, conv, div, bmap.domain, first)
    assert minima[0] == bmap.minima[2]  # kept first
    assert {m.location for m in minima} == {m.location for m in bmap.minima}
    relabel = {i: [m.location for m in bmap.minima].index(m.location) for i, m in enumerate(minima)}
    np.testing.assert_array_equal(
        np.where(labels >= 0, np.vectorize(relabel.get)(np.maximum(labels, 0)), labels),
        bmap.labels,
    )


def test_simulated_best_of_k_from_the_file(pair):
    dmap, _ = pair
    import jax

    labels = np.load(dmap.labels_path, mmap_mode="r")
    sim = tiled.simulate_best_of_k(
        labels, [1, 5], key=jax.random.key(0), targets=dmap.global_minima, trials=4000
    )
    exact = basins.best_of_k(dmap.p_global.fraction, [1, 5])
    np.testing.assert_allclose(sim, exact, atol=0.03)


def test_stream_npy_is_atomic(tmp_path):
    with runs.stream_npy(tmp_path / "a.npy", (4, 3), np.int8) as a:
        a[:] = 7
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.full((4, 3), 7, np.int8))
    with pytest.raises(RuntimeError), runs.stream_npy(tmp_path / "b.npy", (4,), np.int8) as b:
        b[:] = 1
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]  # no b, no temporary


def test_plan_estimates_disk_and_tiles():
    p = tiled.plan(20000, 200)
    assert p.starts == 4 * 10**8
    assert p.disk_bytes == 4 * 10**8 * 3  # int8 labels + int16 steps
    assert p.tiles == -(-20000 // p.tile_rows) and p.tile_rows * 20000 <= tiles.TILE_STARTS
    assert p.memory_bytes < 4 * 2**30
    assert tiled.plan(100, 40000).disk_bytes == 100 * 100 * 5  # int32 steps


def test_cli_tiled_run_and_dry_run(tmp_path, capsys):
    out = tmp_path / "big"
    args = {"out": out, "seed": 0, "overwrite": False, "grid": 64, "steps": 200}
    res = run_and_print(cli_basins.COMMAND, {**args, "tiled": True, "no_progress": True})
    data = json.loads((out / "basins.json").read_text())
    assert data["files"] == {"labels": "labels.npy", "converged_step": "converged_step.npy"}
    assert data["mode"] == "grid, tiles on disk" and data == json.loads(json.dumps(res))
    assert {"basin_map.png", "best_of_k.png", "report.html"} <= {p.name for p in out.iterdir()}
    err = capsys.readouterr()
    assert "4,096 starts in 1 tiles" in err.err and "on disk: labels.npy" in err.out
    manifest = runs.read_manifest(out)
    assert {"labels.npy", "converged_step.npy", "basins.json"} <= set(manifest["files"])

    dry = tmp_path / "dry"
    with pytest.raises(SystemExit) as e:
        run_and_print(cli_basins.COMMAND, {**args, "out": dry, "grid": 65536, "dry_run": True})
    assert e.value.code == 0
    assert "4,294,967,296 starts" in capsys.readouterr().err
    assert not dry.exists()  # a dry run writes nothing

    with pytest.raises(SystemExit) as e:
        run_and_print(
            cli_basins.COMMAND,
            {**args, "out": tmp_path / "x", "grid": None, "starts": 1000, "tiled": True},
        )
    assert e.value.code == 2
    assert "--tiled, --tile-rows and --dry-run map a --grid" in capsys.readouterr().err


def test_a_dry_run_of_a_huge_grid_is_arithmetic(tmp_path, capsys):
    """--grid 10000000 --dry-run grew past 12.5 GB in 60 s: the probe kept
    every probed row whole. Now it times 256^2 starts and prints at once,
    the time in words."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    args = {"out": tmp_path / "dry", "seed": 0, "overwrite": False, "steps": 200}
    with pytest.raises(SystemExit) as e:
        run_and_print(cli_basins.COMMAND, {**args, "grid": 10_000_000, "dry_run": True})
    assert e.value.code == 0
    err = capsys.readouterr().err
    assert "100,000,000,000,000 starts in 10000000 tiles" in err
    assert re.search(r"about [\d.]+ (days|years) of descent", err), err
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    assert grown < 1 << 30  # bytes of peak memory added: the probe, not the rows
    assert not (tmp_path / "dry").exists()


def test_durations_read_as_a_person_would():
    from gdjax._format import duration

    assert [duration(s) for s in (42, 450, 11520, 10 * 86400, 1.3e8)] == [
        "42 s",
        "7.5 min",
        "3.2 h",
        "10 days",
        "4.12 years",
    ]
