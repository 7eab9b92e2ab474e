"""The shell around the pure core: :func:`train` and :func:`train_many` load
and check the data, place the models on the devices, compile, show progress,
and write a checkpoint and metrics.json after every epoch."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gdjax import distributed, lenet
from gdjax.data import FashionMNIST, fashion_mnist, provenance
from gdjax.runs import write_json
from gdjax.train.checkpoint import CHECKPOINT, check_resume, restore, save_checkpoint
from gdjax.train.config import TrainConfig, as_list, auto_mode, check_population
from gdjax.train.core import (
    EpochOutput,
    compile_program,
    init_state,
    make_hyper,
    make_program,
    run_epoch,
)
from gdjax.train.results import (
    CurvePoints,
    EpochMetrics,
    RunResult,
    empty_table,
    from_rows,
    join_models,
)

__all__ = ["train", "train_many"]


def _describe(config: TrainConfig, row: dict) -> str:
    def f(v):
        return "diverged" if v is None else f"{v:.3f}"

    return (
        f"{config.schedule_name} loss {f(row['train_loss'])} train {f(row['train_acc'])} "
        f"test {f(row['test_acc'])}"
    )


def _check_dataset(ds: FashionMNIST, cfg: TrainConfig) -> None:
    """Refuses, before any compute, data the LeNet cannot train on as asked:
    images that are not uint8 N x 28 x 28, labels outside 0..9, or a subset
    larger than the set."""
    for split, subset in (("train", cfg.subset), ("test", cfg.test_subset)):
        images = np.asarray(getattr(ds, f"{split}_images"))
        labels = np.asarray(getattr(ds, f"{split}_labels"))
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != lenet.IMAGE_SHAPE:
            raise ValueError(
                f"{split}_images must be uint8 images of 28 x 28 (0-255), got "
                f"{images.dtype} of shape {images.shape}"
            )
        if labels.shape != images.shape[:1]:
            raise ValueError(
                f"{split}_labels must hold one label per image: shape {labels.shape} for "
                f"{images.shape[0]} images"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{split}_labels must be integers 0..9, got {labels.dtype}")
        bad = (labels < 0) | (labels >= lenet.NUM_CLASSES)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{split}_labels hold {int(bad.sum())} label(s) outside 0..9 (the first: "
                f"{labels[i]} at index {i}); the LeNet has {lenet.NUM_CLASSES} classes"
            )
        if subset is not None and subset > len(images):
            flag = "--subset" if split == "train" else "--test-subset"
            raise ValueError(
                f"{flag} {subset} is larger than the {split} set, which has {len(images)} images"
            )
    n_train = min(cfg.subset or len(ds.train_images), len(ds.train_images))
    if cfg.sharpness > n_train:
        raise ValueError(
            f"--sharpness-examples {cfg.sharpness} is larger than the {n_train} training images "
            "trained on (the sharpness is measured on a fixed batch of them)"
        )


def _model_mesh(k: int) -> Mesh:
    """The devices a population of ``k`` models is sharded over: as many as
    divide ``k`` evenly. Over several processes every process must hold a
    share (a process with no device of the mesh can neither train nor read
    the results), so the mesh takes the same number of devices from each."""
    processes = jax.process_count()
    if processes == 1:
        n = max(d for d in range(1, jax.device_count() + 1) if k % d == 0)
        return Mesh(np.asarray(jax.devices()[:n]), ("models",))
    local = jax.local_device_count()
    fits = [d for d in range(1, local + 1) if k % (d * processes) == 0]
    if not fits:
        raise ValueError(
            f"a population of {k} models cannot be shared evenly by {processes} processes: "
            f"give a number of models divisible by {processes} (schedules x seeds x settings)"
        )
    per = max(fits)
    devices = [d for p in range(processes) for d in jax.devices() if d.process_index == p]
    mine = [d for i, d in enumerate(devices) if i % local < per]
    return Mesh(np.asarray(mine), ("models",))


def _placement(population: bool, k: int):
    """(place(tree), place_data(tree), devices): a population's models sharded
    over the devices (the data replicated); one model on the default device."""
    if not population:
        return jax.device_put, jax.device_put, 1
    mesh = _model_mesh(k)
    models, replicated = (
        NamedSharding(mesh, PartitionSpec("models")),
        NamedSharding(mesh, PartitionSpec()),
    )
    return (
        lambda tree: distributed.put(tree, models),
        lambda tree: distributed.put(tree, replicated),
        mesh.size,
    )


def _with_epoch(result: RunResult, epoch: int, out: EpochOutput, seconds: float) -> None:
    """Appends one epoch of every model to ``result``'s tables."""
    k = len(out.test_acc)
    row = EpochMetrics(
        epoch=np.full(k, epoch + 1.0),
        train_loss=out.train_loss,
        train_acc=out.train_acc,
        test_acc=out.test_acc,
        lr=out.lr,
        seconds=np.full(k, seconds),
        sharpness=out.sharpness,
    )
    result.metrics = EpochMetrics(
        *(
            np.concatenate([a, np.asarray(b, np.float64)[:, None]], axis=1)
            for a, b in zip(result.metrics, row, strict=True)
        )
    )
    result.points = CurvePoints(
        *(np.concatenate([a, b], axis=1) for a, b in zip(result.points, out.points, strict=True))
    )


def train(
    configs: TrainConfig | Sequence[TrainConfig],
    dataset: FashionMNIST | None = None,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[RunResult], None] | None = None,
    scan_epochs: bool | None = None,
) -> RunResult:
    """Trains one LeNet, or a population of them together.

    The shell around the pure core (:func:`make_program`,
    :func:`init_state`, :func:`make_hyper`, :func:`run_epoch`): it loads and
    checks the data, places the models on the devices, compiles, shows
    progress, and writes a checkpoint and ``metrics.json`` after every epoch.

    Args:
        configs: one :class:`TrainConfig`, or a list for a population (they
            may differ only in ``schedule``, ``seed`` and the values of their
            optimizer ``settings``); a list of one is trained as a population
            of one.
        dataset: the data (default: :func:`gdjax.data.fashion_mnist`).
        out: run directory for ``metrics.json`` and the checkpoint (None: no files).
        resume: continue from ``out``'s checkpoint (its settings must match).
        progress: show a progress bar.
        on_epoch: called with the result so far after every epoch (plots).
        scan_epochs: run each epoch as one program (``lax.scan`` over its
            minibatches) rather than a Python loop over the step. None
            (default): on an accelerator, where one dispatch an epoch
            saves a launch a step; the loop on a CPU, whose progress bar
            moves every ``log_every`` minibatches (docs/lenet.md times
            both). The numbers are the same either way (tested).

    Returns:
        A :class:`RunResult`.
    """
    config_list, population = as_list(configs)
    if scan_epochs is None:
        scan_epochs = jax.default_backend() != "cpu"
    if resume and out is None:
        raise ValueError("resume needs the run directory (out)")
    cfg, k = config_list[0], len(config_list)
    out = Path(out) if out is not None else None
    if resume:
        check_resume(out, mode="population" if population else "single")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    ds = dataset if dataset is not None else fashion_mnist()
    _check_dataset(ds, cfg)
    x_train, y_train = ds.train_images[: cfg.subset], ds.train_labels[: cfg.subset]
    x_test, y_test = ds.test_images[: cfg.test_subset], ds.test_labels[: cfg.test_subset]
    program = make_program(configs, len(x_train), scan_epochs=bool(scan_epochs))
    place, place_data, n_devices = _placement(population, k)
    state, hyper = place(init_state(configs)), place(make_hyper(configs))
    data, test = place_data((x_train, y_train)), place_data((x_test, y_test))

    one_model = jax.tree_util.tree_map(lambda a: a[0], state.params) if population else state.params
    result = RunResult(
        configs=config_list,
        metrics=empty_table(EpochMetrics, k),
        points=empty_table(CurvePoints, k),
        compile_seconds=0.0,
        params=None,
        meta={
            "steps_per_epoch": program.steps_per_epoch,
            "train_examples": len(x_train),
            "test_examples": len(x_test),
            "param_count": lenet.param_count(one_model),
            "mode": "population" if population else "single",
            "devices": n_devices,
            "backend": jax.default_backend(),
            "scan_epochs": bool(scan_epochs),
            "data": provenance(ds),
        },
    )
    start_epoch = 0
    if resume:
        start_epoch, state, epochs, curves = restore(out, config_list, state)
        result.metrics, result.points = (
            from_rows(EpochMetrics, epochs),
            from_rows(CurvePoints, curves),
        )
        state = place(state)

    t0 = time.perf_counter()
    compiled = compile_program(program, state, hyper, data, test)
    result.compile_seconds = time.perf_counter() - t0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        spe = program.steps_per_epoch
        bar = tqdm(
            total=cfg.epochs * spe,
            initial=start_epoch * spe,
            unit="step",
            desc="lenet" if not population else f"lenet x{k}",
            dynamic_ncols=True,
        )
    try:
        for epoch in range(start_epoch, cfg.epochs):

            def show(done, loss, acc, epoch=epoch):
                bar.update(done)
                bar.set_postfix_str(
                    f"epoch {epoch + 1}/{cfg.epochs} loss {loss[0]:.3f} acc {acc[0]:.3f}"
                )

            t_epoch = time.perf_counter()
            state, epoch_out = run_epoch(
                compiled, state, hyper, data, test, epoch, on_progress=show if bar else None
            )
            seconds = time.perf_counter() - t_epoch
            _with_epoch(result, epoch, epoch_out, seconds)
            if bar is not None:
                rows = [
                    _describe(c, e[-1]) for c, e in zip(config_list, result.epochs, strict=True)
                ]
                bar.write(f"epoch {epoch + 1}: {'; '.join(rows)} ({seconds:.1f} s)")
            if out is not None:
                save_checkpoint(out, state, result, epoch + 1)
                write_json(out / "metrics.json", result.to_json())
            if on_epoch is not None:
                result.params = state.params
                on_epoch(result)
    finally:
        if bar is not None:
            bar.close()
    result.params = state.params
    if out is not None:
        write_json(out / "metrics.json", result.to_json())
    return result


def train_many(
    configs: Sequence[TrainConfig],
    dataset: FashionMNIST | None = None,
    *,
    names: Sequence[str] | None = None,
    mode: str = "auto",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[RunResult], None] | None = None,
    scan_epochs: bool | None = None,
) -> RunResult:
    """Trains several models, together or one after another.

    Args:
        configs: the models (for ``"population"`` they may differ only in
            schedule and seed).
        dataset: the data (default: :func:`gdjax.data.fashion_mnist`).
        names: a directory name per model for ``"sequential"`` (default: the
            model's index).
        mode: ``"population"`` (one vmapped program, sharded over devices),
            ``"sequential"`` (one run per model, each in ``out/NAME``), or
            ``"auto"``: population on an accelerator, sequential on a CPU, where
            vmapping convolutions over models measured slower than running
            them one after another.
        out, resume, progress, on_epoch, scan_epochs: as for :func:`train`; in
            sequential mode ``on_epoch`` sees the models finished so far plus
            the current one.

    Returns:
        One :class:`RunResult` over all models (params stacked on a first axis).
    """
    configs = list(configs)
    if mode == "auto":
        mode = auto_mode()
    if mode not in ("population", "sequential"):
        raise ValueError(f"mode must be 'auto', 'population' or 'sequential', got {mode!r}")
    if mode == "sequential" and distributed.process_count() > 1:
        raise ValueError(
            f"with {distributed.process_count()} processes the models train as one population "
            "sharded over all of them (--mode population); one after another, every process "
            "would train every model"
        )
    names = list(names) if names is not None else [str(i) for i in range(len(configs))]
    if len(names) != len(configs):
        raise ValueError(f"give one name per config: {len(names)} names, {len(configs)} configs")
    if resume:
        if out is None:
            raise ValueError("resume needs the run directory (out)")
        check_resume(out, mode=mode, names=names)
    if mode == "population":
        check_population(configs)
        return train(
            configs,
            dataset,
            out=out,
            resume=resume,
            progress=progress,
            on_epoch=on_epoch,
            scan_epochs=scan_epochs,
        )
    ds = dataset if dataset is not None else fashion_mnist()
    done: list[RunResult] = []

    def merged(current: RunResult | None = None) -> RunResult:
        parts = done + ([current] if current is not None else [])
        return RunResult(
            configs=[c for r in parts for c in r.configs],
            metrics=join_models([r.metrics for r in parts]),
            points=join_models([r.points for r in parts]),
            compile_seconds=sum(r.compile_seconds for r in parts),
            params=None,
            meta={**parts[-1].meta, "mode": "sequential", "names": names[: len(parts)]},
        )

    for name, config in zip(names, configs, strict=True):
        sub = Path(out) / name if out is not None else None
        sub_resume = resume and sub is not None and (sub / CHECKPOINT).is_file()
        result = train(
            config,
            ds,
            out=sub,
            resume=sub_resume,
            progress=progress,
            on_epoch=(lambda r: on_epoch(merged(r))) if on_epoch is not None else None,
            scan_epochs=scan_epochs,
        )
        done.append(result)
    total = merged()
    total.params = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *[r.params for r in done])
    if out is not None:
        write_json(Path(out) / "metrics.json", total.to_json())
    return total
