"""Maps larger than memory: a grid map computed tile by tile, streamed to disk.

A 20000^2 map has 4e8 starts: its end points alone take 3.2 GB, and
:func:`gdjax.basins.map_basins` keeps every one. :func:`map_to_disk` runs the
same compiled chunk program over horizontal bands of the grid (tiles), labels
each tile as soon as it is done, and writes only what a map is: the labels
(int8) and the convergence steps (int16, or int32 beyond 32767 steps) as
memory-mappable ``.npy`` files. What the report needs is accumulated on the
way: the counts of every outcome, a downsampled preview for figures, and the
fractal measures (in one streaming pass over the finished labels).

Minima are found without all end points at once: first from a coarse subgrid
of starts (which also times the program, for the estimate), then, tile by
tile, among converged ends that no known minimum claims; a new minimum is
appended (indices stay valid), the few unclaimed ends of earlier tiles are
kept and labelled again at the end, and a last pass over the label file
sorts the minima by value, as ``map_basins`` does.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gdjax import _chunks, _validate, fractal, runs
from gdjax._progress import Progress
from gdjax.maps.config import BasinConfig, MapConfig
from gdjax.maps.critical import discover_minima, label_ends
from gdjax.maps.runner import Runner
from gdjax.maps.summary import (
    DIVERGED,
    NOT_CONVERGED,
    BasinMap,
    CriticalPoint,
    Estimate,
    Fractions,
    Timing,
    global_minima,
    wilson_interval,
)
from gdjax.surfaces import Surface
from gdjax.surfaces import get as _get_surface

__all__ = [
    "DiskMap",
    "Plan",
    "StreamFractal",
    "map_to_disk",
    "plan",
    "preview_map",
]

PREVIEW = 1024  # the preview's side (at most), for figures
TILE_STARTS = 1 << 22  # starts per tile by default: about 130 MB of ends on the host
TILE_BYTES_PER_START = 40  # ends, starts and labels of one tile, on the host
OVERHEAD_BYTES = 700 << 20  # JAX, XLA and the program


class Plan(NamedTuple):
    """What a map to disk will take, before it runs.

    Attributes:
        starts: grid^2.
        tile_rows: grid rows per tile.
        tiles: how many tiles.
        disk_bytes: the label and step files.
        memory_bytes: the peak host memory estimated.
        seconds: the descent time estimated (None until timed on a probe).
    """

    starts: int
    tile_rows: int
    tiles: int
    disk_bytes: int
    memory_bytes: int
    seconds: float | None = None


def _step_dtype(steps: int):
    return np.int16 if steps < np.iinfo(np.int16).max else np.int32


def plan(grid: int, steps: int, *, tile_rows: int | None = None) -> Plan:
    """The tiles, disk and memory of a ``grid`` x ``grid`` map to disk."""
    grid = _validate.check_count("grid", grid)
    steps = _validate.check_count("steps", steps)
    if tile_rows is None:
        tile_rows = max(1, min(grid, TILE_STARTS // grid))
    tile_rows = _validate.check_count("tile_rows", tile_rows)
    tile_rows = min(tile_rows, grid)
    starts = grid * grid
    item = 1 + np.dtype(_step_dtype(steps)).itemsize
    preview = min(grid, PREVIEW) ** 2 * 40
    memory = OVERHEAD_BYTES + tile_rows * grid * TILE_BYTES_PER_START + preview
    return Plan(starts, tile_rows, -(-grid // tile_rows), starts * item, memory)


class DiskMap(NamedTuple):
    """The outcome of :func:`map_to_disk`.

    Attributes:
        labels_path, steps_path: the ``.npy`` files (``np.load(path,
            mmap_mode="r")``): (grid, grid) labels as in a BasinMap (int8),
            and convergence steps (-1: not converged).
        grid: the side.
        domain: the box of starts.
        minima: sorted by value, as in a BasinMap.
        global_minima: indices of the global ones.
        fractions: every outcome's fraction with its 95% interval.
        p_global: the fraction reaching a global minimum.
        preview: a downsampled label image (every ``stride``-th row and
            column), for figures.
        stride: its step.
        box_dimension, entropy: the fractal measures of the full-resolution
            labels (:mod:`gdjax.fractal`).
        plan: the tiles, disk and memory.
        seconds: descent time; ``rate`` restart-steps per second; and
        compile_seconds, total_seconds.
    """

    labels_path: Path
    steps_path: Path
    grid: int
    domain: tuple
    minima: tuple[CriticalPoint, ...]
    global_minima: tuple[int, ...]
    fractions: Fractions
    p_global: Estimate
    preview: np.ndarray
    stride: int
    box_dimension: fractal.BoxDimension
    entropy: fractal.BasinEntropy
    plan: Plan
    seconds: float
    rate: float
    compile_seconds: float
    total_seconds: float
    config: BasinConfig


def _rows(dom, grid: int, r0: int, r1: int, dtype, cols=None) -> np.ndarray:
    """The starts of grid rows r0..r1 (cell centres, row-major, y slowest),
    exactly those of :func:`gdjax.basins.grid_starts`; only the columns
    ``cols`` (an index array) when given."""
    (x0, x1), (y0, y1) = dom
    cols = np.arange(grid) if cols is None else cols
    xs = x0 + (cols + 0.5) * (x1 - x0) / grid
    ys = y0 + (np.arange(r0, r1) + 0.5) * (y1 - y0) / grid
    X, Y = np.meshgrid(xs, ys)
    return np.stack([X.ravel(), Y.ravel()], axis=1).astype(dtype)


class StreamFractal:
    """Box counts of the boundary pixels and basin entropies of a label image
    fed in bands of rows, top to bottom: equal to :func:`gdjax.fractal.
    box_dimension` and :func:`gdjax.fractal.basin_entropy` of the whole image,
    with only a band in memory. Each band comes with the row above and the
    row below it (the boundary of a pixel depends on its neighbours)."""

    def __init__(self, ny: int, nx: int, box: int = 5, sizes=None):
        if sizes is None:
            top = max(1, int(math.log2(min(ny, nx) / 8)))
            sizes = [2**k for k in range(1, top + 1)] if top >= 2 else [1, 2]
        self.ny, self.nx, self.box = ny, nx, box
        self.sizes = np.asarray(sizes, np.int64)
        self.counts = np.zeros(len(self.sizes), np.int64)
        self._open = [(-1, None)] * len(self.sizes)  # box row being filled, its columns
        self.boundary_pixels = 0
        self._entropy_sum = 0.0
        self._boxes = 0
        self._mixed = 0
        self._mixed_sum = 0.0
        self._pending = None  # label rows not yet a whole band of `box` rows

    def feed(self, above, rows, below, r0: int) -> None:
        """``rows`` (m, nx) are rows r0..r0+m; ``above`` / ``below`` the rows
        next to them (None at the image's edge)."""
        m = rows.shape[0]
        stack = [r for r in (above, rows, below) if r is not None]
        full = np.concatenate([np.atleast_2d(r) for r in stack])
        b = fractal.boundary(full) if min(full.shape) >= 2 else np.zeros(full.shape, bool)
        start = 1 if above is not None else 0
        b = b[start : start + m]
        self.boundary_pixels += int(b.sum())
        for k, s in enumerate(self.sizes):
            s = int(s)
            pad = -self.nx % s
            cols = np.pad(b, ((0, 0), (0, pad))) if pad else b
            cols = cols.reshape(m, -1, s).any(axis=2)
            ids = (r0 + np.arange(m)) // s
            for box_row in np.unique(ids):
                part = cols[ids == box_row].any(axis=0)
                open_row, acc = self._open[k]
                if box_row == open_row:
                    acc |= part
                else:
                    if acc is not None:
                        self.counts[k] += int(acc.sum())
                    self._open[k] = (int(box_row), part.copy())
        self._entropy(rows)

    def _entropy(self, rows) -> None:
        rows = rows if self._pending is None else np.concatenate([self._pending, rows])
        whole = (rows.shape[0] // self.box) * self.box
        self._pending = rows[whole:] if whole < rows.shape[0] else None
        if whole == 0:
            return
        entropy = fractal.box_entropies(rows[:whole], self.box)
        self._entropy_sum += float(entropy.sum())
        self._boxes += entropy.size
        mixed = entropy > 0
        self._mixed += int(mixed.sum())
        self._mixed_sum += float(entropy[mixed].sum())

    def result(self) -> tuple[fractal.BoxDimension, fractal.BasinEntropy]:
        counts = self.counts.copy()
        for k, (_, acc) in enumerate(self._open):
            if acc is not None:
                counts[k] += int(acc.sum())
        if self.boundary_pixels == 0:
            dim = fractal.BoxDimension(math.nan, self.sizes, counts, math.nan, 0)
        else:
            slope, intercept = np.polyfit(np.log(self.sizes), np.log(counts), 1)
            dim = fractal.BoxDimension(
                float(-slope), self.sizes, counts, float(intercept), self.boundary_pixels
            )
        sb = self._entropy_sum / self._boxes if self._boxes else 0.0
        sbb = self._mixed_sum / self._mixed if self._mixed else 0.0
        return dim, fractal.BasinEntropy(sb, sbb)


class _Tiles(NamedTuple):
    """What the tiles left besides the two files: the minima in the order
    found, the preview, the converged ends no minimum claimed when their
    tile ran (their flat indices and end points), and the descent time."""

    minima: tuple[CriticalPoint, ...]
    preview: np.ndarray
    stride: int
    unclaimed: tuple[np.ndarray, np.ndarray]
    seconds: float


def map_to_disk(
    config: MapConfig,
    out: str | Path,
    *,
    tile_rows: int | None = None,
    box: int = 5,
    progress: Progress | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    dry_run: bool = False,
) -> DiskMap | Plan:
    """A grid basin map computed tile by tile and streamed to
    ``out/labels.npy`` and ``out/converged_step.npy``.

    Args:
        config: the map (a grid, one hyperparameter set).
        out: the folder the two files are written into.
        tile_rows: grid rows per tile (default: about 4 million starts).
        box: the box size (pixels) of the streamed fractal measures.
        progress: called with (starts done, starts) after each tile.
        on_plan: called with the :class:`Plan` and its estimated
            ``seconds`` before the first tile. The minima are first looked
            for on a coarse subgrid (at most 256^2 starts), which also times
            the program.
        dry_run: return that plan without mapping.
    """
    if config.grid is None:
        raise ValueError("a map to disk maps a grid (grid=n), not random starts")
    if config.batch:
        raise ValueError("a map to disk takes one hyperparameter set (a single lr)")
    if config.attractors is not None:
        raise ValueError("a map to disk labels minima only: attractors need a map in memory")
    t_total = time.perf_counter()
    p = plan(config.grid, config.steps, tile_rows=tile_rows)
    chunk = _chunks.sharded_size(config.chunk_size, p.tile_rows * config.grid, config.devices)
    run = Runner(config, chunk)
    p, minima = _probe(config, run, p)
    compile_seconds = run.compile_seconds
    if on_plan is not None:
        on_plan(p)
    if dry_run:
        return p
    out = Path(out)
    shape, step_dtype = (config.grid, config.grid), _step_dtype(config.steps)
    with (
        runs.stream_npy(out / "labels.npy", shape, np.int8) as labels_file,
        runs.stream_npy(out / "converged_step.npy", shape, step_dtype) as steps_file,
    ):
        tiles = _write_tiles(config, run, p, minima, labels_file, steps_file, progress)
        minima, tally, dim, entropy, preview = _finish(config, p, tiles, labels_file, box)
    n = p.starts
    keys = ("diverged", "not_converged") + tuple(str(i) for i in range(len(minima)))
    glob = global_minima(minima, config.global_tol)
    reached = int(tally[[g + 2 for g in glob]].sum())
    return DiskMap(
        labels_path=out / "labels.npy",
        steps_path=out / "converged_step.npy",
        grid=config.grid,
        domain=config.domain,
        minima=minima,
        global_minima=glob,
        fractions=Fractions(keys, *wilson_interval(tally, n)),
        p_global=Estimate(*(float(v) for v in wilson_interval(reached, n))),
        preview=preview,
        stride=tiles.stride,
        box_dimension=dim,
        entropy=entropy,
        plan=p,
        seconds=tiles.seconds,
        rate=n * config.steps / tiles.seconds,
        compile_seconds=compile_seconds,
        total_seconds=time.perf_counter() - t_total,
        config=config.record(mode="grid, tiles on disk", chunk_size=chunk),
    )


def _probe(config: MapConfig, run: Runner, p: Plan) -> tuple[Plan, tuple[CriticalPoint, ...]]:
    """A coarse subgrid (at most 256^2 starts): the minima up front, and the
    plan's estimated seconds from its time."""
    grid, dom = config.grid, config.domain
    sub = max(1, grid // 256)
    picked = np.arange(sub // 2, grid, sub)  # the same rows and columns: at most 256^2
    probe = np.concatenate(
        [_rows(dom, grid, r, r + 1, config.np_dtype, cols=picked) for r in picked]
    )
    t0 = time.perf_counter()
    ends, _ = run(probe, None)
    seconds = time.perf_counter() - t0 - run.compile_seconds
    # the probe ran whole chunks (the last one padded): time per computed start
    per_start = seconds / (-(-len(probe) // run.chunk) * run.chunk)
    minima, _ = discover_minima(
        config.surface, ends.final[0], ends.converged[0], ends.diverged[0], dom
    )
    return p._replace(seconds=per_start * p.starts), minima


def _write_tiles(config, run, p: Plan, minima, labels_file, steps_file, progress) -> _Tiles:
    """Every tile descended, labelled against the minima known so far (new
    ones appended, so earlier labels stay valid) and written to the files."""
    grid, dom = config.grid, config.domain
    stride = max(1, math.ceil(grid / PREVIEW))
    keep_rows = np.arange(0, grid, stride)
    preview = np.empty((len(keep_rows), len(range(0, grid, stride))), np.int8)
    unclaimed_idx, unclaimed_final = [], []
    seconds = 0.0
    if progress is not None:
        progress(0, p.starts)
    for r0 in range(0, grid, p.tile_rows):
        r1 = min(grid, r0 + p.tile_rows)
        t0 = time.perf_counter()
        ends, _ = run(_rows(dom, grid, r0, r1, config.np_dtype), None)
        seconds += time.perf_counter() - t0
        final, conv, div = ends.final[0], ends.converged[0], ends.diverged[0]
        minima, lab = discover_minima(config.surface, final, conv, div, dom, known=minima)
        if len(minima) > 125:
            raise ValueError("more than 125 minima: labels do not fit in int8")
        orphan = np.flatnonzero(conv & ~div & (lab == NOT_CONVERGED))
        if orphan.size:
            unclaimed_idx.append(orphan + r0 * grid)
            unclaimed_final.append(final[orphan])
        block = lab.reshape(r1 - r0, grid)
        labels_file[r0:r1] = block
        steps_file[r0:r1] = ends.converged_step[0].reshape(r1 - r0, grid)
        sel = (keep_rows >= r0) & (keep_rows < r1)
        preview[sel] = block[keep_rows[sel] - r0, ::stride]
        if progress is not None:
            progress(r1 * grid, p.starts)
    unclaimed = (
        np.concatenate(unclaimed_idx) if unclaimed_idx else np.zeros(0, np.int64),
        np.concatenate(unclaimed_final) if unclaimed_final else np.zeros((0, 2)),
    )
    return _Tiles(tuple(minima), preview, stride, unclaimed, seconds)


def _finish(config, p: Plan, tiles: _Tiles, labels_file, box: int):
    """The unclaimed ends labelled against every minimum; the minima sorted
    by value (as ``map_basins`` gives them) and the file relabelled; the
    counts and the fractal measures in the same pass over the file. Returns
    (minima, counts from -2, box dimension, entropies, preview)."""
    grid, minima = config.grid, tiles.minima
    idx, fin = tiles.unclaimed
    if len(idx):
        true = np.ones(len(idx), bool)
        rows, cols = np.divmod(idx, grid)
        labels_file[rows, cols] = label_ends(fin, true, ~true, minima, config.domain)
    order = sorted(range(len(minima)), key=lambda i: minima[i].value)
    lut = np.zeros(len(minima) + 2, np.int8)  # old label + 2 -> new label
    lut[0], lut[1] = DIVERGED, NOT_CONVERGED
    for new, old in enumerate(order):
        lut[old + 2] = new
    counts: dict[int, int] = {}
    stream = StreamFractal(grid, grid, box)
    band = max(box, (p.tile_rows // box) * box)
    for r0 in range(0, grid, band):
        r1 = min(grid, r0 + band)
        block = lut[labels_file[r0:r1].astype(np.int64) + 2]
        labels_file[r0:r1] = block
        for v, c in zip(*np.unique(block, return_counts=True), strict=True):
            counts[int(v)] = counts.get(int(v), 0) + int(c)
        # the row above was remapped with its band; the row below is not yet
        above = np.asarray(labels_file[r0 - 1]) if r0 > 0 else None
        below = lut[labels_file[r1].astype(np.int64) + 2] if r1 < grid else None
        stream.feed(above, block, below, r0)
    dim, entropy = stream.result()
    tally = np.asarray([counts.get(v, 0) for v in range(-2, len(minima))], np.int64)
    preview = lut[tiles.preview.astype(np.int64) + 2]
    return tuple(minima[i] for i in order), tally, dim, entropy, preview


def preview_map(dmap: DiskMap, surface: str | Surface) -> BasinMap:
    """The preview as a :class:`gdjax.basins.BasinMap` (labels only: an
    out-of-core map keeps no end points), for :func:`gdjax.plot.basin_map`."""
    surface = _get_surface(surface)
    side = dmap.preview.shape[0]
    return BasinMap(
        surface=surface,
        domain=dmap.domain,
        starts=np.empty((0, 2)),
        grid=dmap.preview.shape,
        labels=dmap.preview.astype(np.int32).ravel(),
        converged_step=np.empty((0,), np.int32),
        final=np.empty((0, 2)),
        minima=dmap.minima,
        fractions=dmap.fractions,
        config=dataclasses.replace(dmap.config, grid=side),
        timing=Timing(dmap.seconds, dmap.compile_seconds, dmap.rate, 0),
        global_minima=dmap.global_minima,
        p_global=dmap.p_global,
    )
