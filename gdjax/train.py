"""Training the LeNet on Fashion-MNIST: one model, or a population of models
trained together in one compiled program.

:func:`train` runs a Python loop over a jitted step (progress every
``log_every`` minibatches), or each epoch as one ``lax.scan`` program
(``scan_epochs``: one dispatch an epoch, the default on accelerators; the
same numbers bit for bit), with the training set held on the device and each epoch's
example order drawn from the seed. It logs the chapter's metrics (train loss
and accuracy, averaged over the epoch so far, every ``log_every``
minibatches; test accuracy every epoch), shows a progress bar, writes
``metrics.json`` (with the data files' paths and SHA-256s) and a checkpoint
into the run directory after every epoch, each atomically, and resumes a
killed run from its last complete epoch, ending with the same numbers as an
uninterrupted run. A checkpoint carries the SHA-256 of its contents: a
corrupted or truncated one is refused, naming the file, never resumed.

A population (:func:`train` with several configs) vmaps the step over the
model axis: every model has its own seed (initialisation and data order),
its own schedule and its own optimizer settings, and the models are sharded
over all devices when there are several.

A pure core and a thin shell (after purejaxrl's ``make_train(config)`` and
flax's mnist example):

* :func:`make_program` closes over what fixes the compiled programs (batch
  size, steps per epoch, the kind of optimizer and of schedule) and returns
  the pure step, evaluation and example order; :func:`init_state` and
  :func:`make_hyper` give every number as arrays (seeds, schedules,
  optimizer settings), so new values never recompile;
  :func:`compile_program` compiles it; :func:`run_epoch` trains one epoch
  and returns its metrics as arrays. None of them reads or writes files.
* :func:`train` is the shell: data, placement on the devices, compile,
  progress bar, checkpoints and metrics.json. Its :class:`RunResult` holds
  typed tables of arrays (:class:`EpochMetrics`, :class:`CurvePoints`, shape
  (models, epochs or points)); the JSON rows are produced from them.

A config holds a :class:`gdjax.schedules.Schedule` (or an optax
``count -> lr`` callable), never a spec string: specs are parsed once, at
the edge (the CLI parses ``--schedule`` with the chapter's values, in
:mod:`gdjax.lessons.chapter`). metrics.json and checkpoints store each
schedule's canonical ``spec``, and resuming compares specs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import math
import os
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float

from gdjax import _validate, distributed, lenet, runs
from gdjax import schedules as S
from gdjax.data import FashionMNIST, fashion_mnist, provenance
from gdjax.report import write_json

__all__ = [
    "OPTIMIZERS",
    "SEED_LIMIT",
    "CheckpointError",
    "CurvePoints",
    "EpochMetrics",
    "EpochOutput",
    "Program",
    "RunResult",
    "TrainConfig",
    "check_resume",
    "compile_program",
    "init_state",
    "load_checkpoint",
    "make_hyper",
    "make_program",
    "run_epoch",
    "train",
    "train_many",
]

OPTIMIZERS: dict[str, lenet.Optimizer] = {
    "sgd": lenet.SGD,
    "nesterov": lenet.Optimizer(optax.sgd, (("nesterov", True),)),
    "adam": lenet.Optimizer(optax.adam),
    "rmsprop": lenet.Optimizer(optax.rmsprop),
}
"""The LeNet's optimizers by name: optax factories; their float settings
(momentum, b1, decay, ...) are given in TrainConfig.settings."""

SEED_LIMIT = 2**32
"""Seeds are integers in [0, SEED_LIMIT): JAX's PRNG keys hold 32 bits, and the
state keeps the seed as uint32."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        schedule: a :class:`gdjax.schedules.Schedule` (default: the
            chapter's constant rate 0.3), or any optax schedule (a
            ``count -> lr`` callable, e.g. ``optax.cosine_decay_schedule(0.3,
            20)``); counted in epochs or updates by ``per``. Not a spec: parse
            one with :func:`gdjax.schedules.parse_spec` (or
            :func:`gdjax.lessons.chapter.chapter_schedule`, the chapter's
            values filling the rest). Models of a population need gdjax
            schedules, whose numbers are arrays that vmap.
        epochs: passes over the training set.
        batch_size: examples per minibatch (the last one of an epoch is partial).
        seed: initialisation and data order: an integer in [0, 2**32).
        per: step the schedule once per ``"epoch"`` (the PyTorch edition) or
            per ``"update"`` (MXNet, optax).
        subset: train on the first N training images (None: all 60,000).
        test_subset: test on the first N test images (None: all 10,000).
        log_every: minibatches between train-metric points (the chapter's 50).
        optimizer: the kind of update, one of :data:`OPTIMIZERS` (``"sgd"``:
            the chapter's plain SGD; ``"nesterov"``: SGD with Nesterov
            momentum; ``"adam"``, ``"rmsprop"``).
        settings: the optimizer's float settings as (name, value) pairs, e.g.
            ``(("momentum", 0.9),)`` for SGD with momentum; data, not program:
            models of a population may differ in their values (not in their
            names).
        sharpness: track the top eigenvalue of the training loss's Hessian
            after every epoch, on the fixed batch of the first ``sharpness``
            training examples (0: not tracked; ``gdjax lenet --sharpness``
            uses 1000); see :mod:`gdjax.sharpness`.
        sharpness_iters: Lanczos steps (Hessian-vector products) per measure.
    """

    schedule: S.Schedule | Callable[[Any], Any] = dataclasses.field(
        default_factory=lambda: S.constant(0.3)
    )
    epochs: int = 30
    batch_size: int = 256
    seed: int = 0
    per: str = "epoch"
    subset: int | None = None
    test_subset: int | None = None
    log_every: int = 50
    optimizer: str = "sgd"
    settings: tuple[tuple[str, float], ...] = ()
    sharpness: int = 0
    sharpness_iters: int = 20

    def __post_init__(self):
        for name in ("epochs", "batch_size", "log_every", "sharpness_iters"):
            _validate.check_count(name, getattr(self, name))
        if self.sharpness != 0:
            _validate.check_count("sharpness", self.sharpness)
        for name in ("subset", "test_subset"):
            if getattr(self, name) is not None:
                _validate.check_count(name, getattr(self, name))
        if self.per not in ("epoch", "update"):
            raise ValueError(f"per must be 'epoch' or 'update', got {self.per!r}")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int | np.integer)
            or not 0 <= self.seed < SEED_LIMIT
        ):
            raise ValueError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))  # a numpy integer -> int
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        settings = dict(self.settings)
        accepted = set(inspect.signature(OPTIMIZERS[self.optimizer].factory).parameters)
        unknown = set(settings) - (accepted - {"learning_rate", "nesterov"})
        if unknown:
            raise ValueError(
                f"optimizer {self.optimizer!r} has no setting {', '.join(sorted(unknown))}"
            )
        for name, value in settings.items():
            _validate.check_nonnegative(name, value)
        object.__setattr__(
            self, "settings", tuple(sorted((k, float(v)) for k, v in settings.items()))
        )
        if isinstance(self.schedule, str):
            raise ValueError(
                f"schedule must be a gdjax Schedule or an optax schedule (count -> lr), not the "
                f"spec {self.schedule!r}: parse it once with gdjax.schedules.parse_spec, or "
                "gdjax.lessons.chapter.chapter_schedule for the chapter's values"
            )
        if not callable(self.schedule):
            raise ValueError(
                f"schedule must be a gdjax Schedule or an optax schedule (count -> lr), got "
                f"{self.schedule!r}"
            )

    def build_optimizer(self) -> lenet.Optimizer:
        """The optimizer's kind (static)."""
        return OPTIMIZERS[self.optimizer]

    def build_schedule(self) -> S.Schedule | Callable[[Any], Any]:
        """The schedule as given (a config holds it built; kept for readers of
        earlier versions, where the config held a spec)."""
        return self.schedule

    @property
    def schedule_name(self) -> str:
        """The schedule as text, for JSON, reports and resume checks: a gdjax
        schedule's canonical spec, or ``optax:NAME`` for an optax callable."""
        if isinstance(self.schedule, S.Schedule):
            return self.schedule.spec
        return f"optax:{getattr(self.schedule, '__qualname__', type(self.schedule).__name__)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "schedule": self.schedule_name,
            "schedule_resolved": repr(self.schedule)
            if isinstance(self.schedule, S.Schedule)
            else None,
            "settings": [[k, v] for k, v in self.settings],  # as JSON reads it back
        }


# --------------------------------------------------------------------------
# Typed results.


class EpochMetrics(NamedTuple):
    """Every model's per-epoch metrics, each an array of shape (models, epochs).

    A NaN metric at an epoch a model ran means it diverged there. Models that
    ran fewer epochs than the longest (a sequential run still going, or models
    of different lengths) are padded with NaN, their ``epoch`` too.

    Attributes:
        epoch: the epoch number, 1-based.
        train_loss: the mean train loss over the epoch.
        train_acc: the train accuracy over the epoch.
        test_acc: the test accuracy at the end of the epoch.
        lr: the rate of the epoch's first update.
        seconds: the epoch's wall time (shared by a population's models),
            the sharpness measure included.
        sharpness: the top Hessian eigenvalue of the training loss on the
            fixed batch at the end of the epoch (NaN where not tracked:
            ``TrainConfig.sharpness``).
    """

    epoch: Float[np.ndarray, "models epochs"]
    train_loss: Float[np.ndarray, "models epochs"]
    train_acc: Float[np.ndarray, "models epochs"]
    test_acc: Float[np.ndarray, "models epochs"]
    lr: Float[np.ndarray, "models epochs"]
    seconds: Float[np.ndarray, "models epochs"]
    sharpness: Float[np.ndarray, "models epochs"]


class CurvePoints(NamedTuple):
    """Every model's train metrics every ``log_every`` minibatches, each an
    array of shape (models, points), averaged over the epoch so far; padded
    with NaN as :class:`EpochMetrics` is.

    Attributes:
        epoch: where the point lies, in (fractional) epochs.
        train_loss: the mean train loss over the epoch so far.
        train_acc: the train accuracy over the epoch so far.
    """

    epoch: Float[np.ndarray, "models points"]
    train_loss: Float[np.ndarray, "models points"]
    train_acc: Float[np.ndarray, "models points"]


def _empty(cls, models: int):
    return cls(*(np.zeros((models, 0)) for _ in cls._fields))


def _num(x) -> float | None:
    """A metric as a float; None where training diverged (JSON has no NaN)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _rows(table: EpochMetrics | CurvePoints) -> list[list[dict[str, Any]]]:
    """Per model, one dict per epoch (or point): metrics.json's form."""
    whole = isinstance(table, EpochMetrics)  # epochs are counted; points lie between
    out = []
    for m in range(table.epoch.shape[0]):
        rows = []
        for j in np.flatnonzero(~np.isnan(table.epoch[m])):
            row = {k: _num(v[m, j]) for k, v in table._asdict().items()}
            if whole:
                row["epoch"] = int(table.epoch[m, j])
            rows.append(row)
        out.append(rows)
    return out


def _from_rows(cls, rows: Sequence[Sequence[dict[str, Any]]]):
    """The table of ``rows`` (metrics.json's form; None for NaN)."""
    length = max((len(r) for r in rows), default=0)
    arrays = {k: np.full((len(rows), length), np.nan) for k in cls._fields}
    for m, model_rows in enumerate(rows):
        for j, row in enumerate(model_rows):
            for k in cls._fields:  # a key missing (sharpness not tracked) reads as NaN
                value = row.get(k)
                arrays[k][m, j] = np.nan if value is None else value
    return cls(**arrays)


def _models(tables: Sequence[EpochMetrics | CurvePoints]):
    """Tables of different models side by side (padded with NaN to the longest)."""
    length = max(t.epoch.shape[1] for t in tables)

    def pad(a):
        return np.pad(a, ((0, 0), (0, length - a.shape[1])), constant_values=np.nan)

    return type(tables[0])(
        *(np.concatenate([pad(a) for a in arrays]) for arrays in zip(*tables, strict=True))
    )


@dataclasses.dataclass
class RunResult:
    """What :func:`train` returns (and writes to ``metrics.json``).

    Attributes:
        configs: one per model.
        metrics: every model's per-epoch metrics, arrays of shape (models,
            epochs) (an :class:`EpochMetrics`).
        points: every model's train points every ``log_every`` minibatches,
            arrays of shape (models, points) (a :class:`CurvePoints`).
        compile_seconds: time to compile the step and the evaluation.
        params: the final parameters (stacked over models for a population).
        meta: steps per epoch, devices, parameter count, mode, and ``data``:
            where the data came from (:func:`gdjax.data.provenance`).

    ``metrics`` and ``points`` may also be given as rows (per model, a list
    of dicts: :attr:`epochs` and :attr:`curves`), as metrics.json holds them.
    """

    configs: list[TrainConfig]
    metrics: EpochMetrics
    points: CurvePoints
    compile_seconds: float
    params: Any
    meta: dict[str, Any]

    def __post_init__(self):
        if not isinstance(self.metrics, EpochMetrics):
            self.metrics = _from_rows(EpochMetrics, self.metrics)
        if not isinstance(self.points, CurvePoints):
            self.points = _from_rows(CurvePoints, self.points)

    @property
    def epochs(self) -> list[list[dict[str, Any]]]:
        """Per model, one dict per epoch ({"epoch", "train_loss", "train_acc",
        "test_acc", "lr", "seconds"}, and "sharpness" where tracked; None
        where it diverged), from :attr:`metrics`: metrics.json's ``epochs``."""
        rows = _rows(self.metrics)
        for config, model_rows in zip(self.configs, rows, strict=True):
            if not config.sharpness:
                for row in model_rows:
                    del row["sharpness"]
        return rows

    @property
    def curves(self) -> list[list[dict[str, Any]]]:
        """Per model, one dict per train point ({"epoch" (fractional),
        "train_loss", "train_acc"}), from :attr:`points`: metrics.json's
        ``curve``."""
        return _rows(self.points)

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [
                {"config": c.to_dict(), "epochs": e, "curve": k}
                for c, e, k in zip(self.configs, self.epochs, self.curves, strict=True)
            ],
            "compile_seconds": self.compile_seconds,
            **self.meta,
        }


# --------------------------------------------------------------------------
# Checkpoints.

CHECKPOINT = "checkpoint.msgpack"
_RESUME_KEYS = (
    "schedule",
    "batch_size",
    "seed",
    "per",
    "subset",
    "test_subset",
    "log_every",
    "optimizer",
    "settings",
    "sharpness",
    "sharpness_iters",
)
_RESUME_DEFAULTS = {"sharpness": 0, "sharpness_iters": 20}
"""What a checkpoint written before a key existed meant by it."""

# A checkpoint is a header, then the msgpack payload. The header: the magic, the
# format version, the payload's length and its SHA-256, so a flipped byte or a
# cut-off file is refused, never resumed.
_MAGIC = b"GDJAXCKP"
_FORMAT = 1
_HEADER = struct.Struct("<8sIQ32s")  # magic, version, payload bytes, SHA-256


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupted or of another format, or
    cannot continue this run; the message names the file."""


def _checkpoint_bytes(payload: bytes) -> bytes:
    digest = hashlib.sha256(payload).digest()
    return _HEADER.pack(_MAGIC, _FORMAT, len(payload), digest) + payload


def _plain_state(state: lenet.TrainState) -> dict:
    """The state as nested dicts of arrays (the optimizer state by leaf index:
    optax's NamedTuples, empty ones included, do not round-trip through
    msgpack)."""
    leaves = jax.tree_util.tree_leaves(state.opt_state)
    return {**state._asdict(), "opt_state": {str(i): a for i, a in enumerate(leaves)}}


def _save_checkpoint(out: Path, state: lenet.TrainState, result: RunResult, epoch: int) -> None:
    """The state's arrays, and the configs and metrics so far as JSON text (which
    keeps lists, floats and None exactly as they are), behind a checksummed
    header; written atomically (a kill leaves the previous checkpoint)."""
    record = {
        "configs": [c.to_dict() for c in result.configs],
        "epochs": result.epochs,
        "curves": result.curves,
    }
    payload = {
        "epoch": epoch,
        "state": flax.serialization.to_state_dict(_plain_state(distributed.fetch(state))),
        "record": json.dumps(record),
    }
    data = _checkpoint_bytes(flax.serialization.msgpack_serialize(payload))
    runs.write_bytes(out / CHECKPOINT, data)


def _verified_payload(path: Path) -> bytes:
    """The payload of the checkpoint at ``path``, after checking its header,
    length and SHA-256."""
    raw = path.read_bytes()
    refuse = "; it cannot be resumed (start the run afresh with --overwrite)"
    if raw[: len(_MAGIC)] != _MAGIC:
        if len(raw) < len(_MAGIC) and _MAGIC.startswith(raw):
            raise CheckpointError(f"{path} is truncated ({len(raw)} bytes){refuse}")
        raise CheckpointError(
            f"{path} is not a gdjax checkpoint of format {_FORMAT} (no header with a checksum: "
            f"corrupted, or written by an older gdjax){refuse}"
        )
    if len(raw) < _HEADER.size:
        raise CheckpointError(f"{path} is truncated: its header is cut short{refuse}")
    _, version, length, digest = _HEADER.unpack_from(raw)
    if version != _FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {version}; this gdjax reads format {_FORMAT}{refuse}"
        )
    payload = raw[_HEADER.size :]
    if len(payload) < length:
        raise CheckpointError(
            f"{path} is truncated: its header promises {length} bytes, it holds {len(payload)}"
            f"{refuse}"
        )
    if len(payload) > length or hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(
            f"{path} is corrupted: its contents do not match the SHA-256 in its header{refuse}"
        )
    return payload


def load_checkpoint(out: str | os.PathLike) -> dict[str, Any]:
    """Reads ``out/checkpoint.msgpack``: ``epoch``, ``state`` (arrays), and the
    ``configs``, ``epochs`` and ``curves`` so far.

    Raises:
        CheckpointError: (a ValueError) no checkpoint, or a truncated,
            corrupted or foreign one; the message names the file.
    """
    path = Path(out) / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"no checkpoint to resume from: {path} does not exist")
    payload = _verified_payload(path)
    try:
        ckpt = flax.serialization.msgpack_restore(payload)
        return {
            "epoch": int(ckpt["epoch"]),
            "state": ckpt["state"],
            **json.loads(ckpt["record"]),
        }
    except Exception as err:  # a valid checksum over a payload this gdjax cannot read
        raise CheckpointError(f"{path} cannot be read as a checkpoint: {err}") from None


def _restore(out: Path, configs: Sequence[TrainConfig], template: lenet.TrainState):
    path = out / CHECKPOINT
    ckpt = load_checkpoint(out)
    saved = ckpt["configs"]
    if len(saved) != len(configs):
        raise CheckpointError(f"{path} holds {len(saved)} models, this run has {len(configs)}")
    for i, (old, new) in enumerate(zip(saved, configs, strict=True)):
        now = new.to_dict()
        diff = [
            f"{k}: {old.get(k, _RESUME_DEFAULTS.get(k))!r} in the checkpoint, {now[k]!r} now"
            for k in _RESUME_KEYS
            if old.get(k, _RESUME_DEFAULTS.get(k)) != now[k]
        ]
        if diff:
            raise CheckpointError(
                f"{out}: cannot resume model {i} with other settings ({'; '.join(diff)})"
            )
    done, epochs = ckpt["epoch"], configs[0].epochs
    if done > epochs:
        raise CheckpointError(
            f"{out} holds a run with {done} epochs done; cannot resume it with --epochs {epochs} "
            f"(give --epochs {done} or more)"
        )
    state_dict = flax.serialization.to_state_dict(_plain_state(distributed.fetch(template)))
    try:
        restored = flax.serialization.from_state_dict(state_dict, ckpt["state"])
        shapes = jax.tree_util.tree_map(np.shape, (state_dict, restored))
        if shapes[0] != shapes[1]:
            raise ValueError("the arrays' shapes differ from this run's")
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} does not fit this model: {err}") from None
    restored = jax.tree_util.tree_map(
        lambda a, t: np.asarray(a, np.asarray(t).dtype), restored, state_dict
    )
    # the optimizer state's arrays back into its own structure (optax NamedTuples)
    opt_leaves = [restored["opt_state"][str(i)] for i in range(len(restored["opt_state"]))]
    opt_state = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(template.opt_state), opt_leaves
    )
    state = lenet.TrainState(**{**restored, "opt_state": opt_state})
    return done, state, ckpt["epochs"], ckpt["curves"]


def _auto_mode() -> str:
    """A population on an accelerator or over several processes; one model
    after another on one CPU process (vmapping convolutions measured slower)."""
    several = jax.default_backend() != "cpu" or distributed.process_count() > 1
    return "population" if several else "sequential"


def check_resume(
    out: str | os.PathLike, *, mode: str = "single", names: Sequence[str] = ()
) -> None:
    """Raises a :class:`CheckpointError` unless ``out`` holds a run to resume,
    before any data is loaded or compiled.

    Args:
        out: the run directory.
        mode: ``"single"`` or ``"population"`` (one checkpoint,
            ``out/checkpoint.msgpack``), ``"sequential"`` (one per model,
            ``out/NAME/checkpoint.msgpack``: at least one must exist; models not
            started yet start afresh), or ``"auto"`` (as :func:`train_many`).
        names: the models' directory names (sequential).

    A single model and a population agree: nothing to resume is an error.
    """
    out = Path(out)
    if mode == "auto":
        mode = _auto_mode()
    top = (out / CHECKPOINT).is_file()
    if mode == "sequential":
        names = list(names)
        if any((out / n / CHECKPOINT).is_file() for n in names):
            return
        if top:
            raise CheckpointError(
                f"{out} holds the checkpoint of models trained together ({out / CHECKPOINT}); "
                "resume it with --mode population"
            )
        shown = out / (names[0] if names else "NAME") / CHECKPOINT
        raise CheckpointError(
            f"nothing to resume in {out}: none of its {len(names)} models has a checkpoint "
            f"(such as {shown})"
        )
    if not top:
        subs = sorted(out.glob(f"*/{CHECKPOINT}"))
        if subs and mode == "population":
            raise CheckpointError(
                f"{out} holds models trained one after another ({subs[0]}); "
                "resume them with --mode sequential"
            )
        raise CheckpointError(f"no checkpoint to resume from: {out / CHECKPOINT} does not exist")


# --------------------------------------------------------------------------
# The pure core: a program fixed by the configs' shapes and kinds, the numbers
# as arrays, and one epoch as a function of them. No files, no printing.


def _as_list(configs: TrainConfig | Sequence[TrainConfig]) -> tuple[list[TrainConfig], bool]:
    """The configs as a list, and whether they form a population (a model axis)."""
    if isinstance(configs, TrainConfig):
        return [configs], False
    configs = list(configs)
    _check_population(configs)
    return configs, True


def _check_population(configs: Sequence[TrainConfig]) -> None:
    if not configs:
        raise ValueError("give at least one TrainConfig")
    shared = (
        "epochs",
        "batch_size",
        "per",
        "subset",
        "test_subset",
        "log_every",
        "optimizer",
        "sharpness",
        "sharpness_iters",
    )
    for name in shared:
        values = {getattr(c, name) for c in configs}
        if len(values) > 1:
            raise ValueError(
                f"a population shares {name}; got {sorted(values, key=str)} "
                "(models may differ only in schedule, seed and the values of their "
                "optimizer settings)"
            )
    names = {tuple(k for k, _ in c.settings) for c in configs}
    if len(names) > 1:
        raise ValueError(
            "the models of a population need the same optimizer settings (their values may "
            f"differ); got {sorted(names)} (give momentum=0.0 for plain SGD)"
        )


class Program(NamedTuple):
    """The pure functions of a training run (:func:`make_program`), closed over
    what fixes the compiled programs: shapes, batch size, the kind of
    optimizer, the kind of schedule. Every number arrives as an array
    (:func:`init_state`, :func:`make_hyper`), so new values never recompile.

    Attributes:
        step: ``(state, hyper, data, perm, i) -> (state, BatchMetrics)``, one
            update of every model on minibatch ``i`` (vmapped over the model
            axis for a population).
        accuracy: ``(params, images, labels) -> accuracy`` (per model).
        permutation: ``(seeds, epoch) -> perm``, every model's example order.
        steps_per_epoch: minibatches per epoch.
        log_every: minibatches between train points.
        sharpness: ``(params, data) -> Sharpness`` on the fixed batch (per
            model), or None when not tracked.
        epoch: ``(state, hyper, data, perm) -> (state, BatchMetrics)``: a
            whole epoch as one program (``lax.scan`` over the minibatches,
            metrics stacked on a first axis), or None to loop over ``step``
            (``make_program(..., scan_epochs=True)``).
    """

    step: Callable[..., tuple[lenet.TrainState, lenet.BatchMetrics]]
    accuracy: Callable[[Any, Array, Array], Array]
    permutation: Callable[[Array, Any], Array]
    steps_per_epoch: int
    log_every: int
    sharpness: Callable[[Any, Any], Any] | None = None
    epoch: Callable[..., tuple[lenet.TrainState, lenet.BatchMetrics]] | None = None


def _lr_fn(configs: list[TrainConfig], population: bool):
    schedules = [c.schedule for c in configs]
    if all(isinstance(s, S.Schedule) for s in schedules):
        return S.evaluate  # the rate from the schedule's arrays: a population vmaps
    if population:
        raise ValueError(
            "a population needs gdjax schedules (gdjax.schedules objects); "
            "train a model with an optax schedule on its own"
        )
    optax_schedule = schedules[0]

    def lr_fn(hyper, t):
        del hyper
        # optax's schedules mix Python floats and the int32 count: run them under
        # JAX's standard promotion whatever the caller's setting
        with jax.numpy_dtype_promotion("standard"):
            return optax_schedule(t)

    return lr_fn


def make_program(
    configs: TrainConfig | Sequence[TrainConfig], n_train: int, *, scan_epochs: bool = False
) -> Program:
    """The run's pure functions, for ``n_train`` training examples.

    Args:
        configs: one :class:`TrainConfig` (no model axis), or a list for a
            population (a leading model axis; the models share everything but
            schedule, seed and the values of the optimizer settings).
        n_train: training examples (the data's length after ``subset``).
        scan_epochs: also build ``epoch``, a whole epoch as one
            ``lax.scan`` program (one dispatch an epoch: for accelerators,
            where a step's launch costs as much as its work).

    Returns:
        A :class:`Program`, unjitted: see :func:`compile_program`.
    """
    configs, population = _as_list(configs)
    cfg = configs[0]
    spe = lenet.steps_per_epoch(n_train, cfg.batch_size)
    step = lenet.make_train_step(
        _lr_fn(configs, population),
        batch_size=cfg.batch_size,
        steps_per_epoch=spe,
        per=cfg.per,
        optimizer=cfg.build_optimizer(),
    )
    accuracy = lenet.make_eval()
    permutation = functools.partial(lenet.epoch_permutation, n=n_train, batch_size=cfg.batch_size)
    sharp = lenet.make_sharpness(cfg.sharpness, cfg.sharpness_iters) if cfg.sharpness else None
    if population:
        step = jax.vmap(step, in_axes=(0, 0, None, 0, None))  # hyper: schedules and settings
        accuracy = jax.vmap(accuracy, in_axes=(0, None, None))
        permutation = jax.vmap(permutation, in_axes=(0, None))
        sharp = jax.vmap(sharp, in_axes=(0, None)) if sharp is not None else None
    epoch = _scan_epoch(step, spe) if scan_epochs else None
    return Program(step, accuracy, permutation, spe, cfg.log_every, sharp, epoch)


def _scan_epoch(step, spe: int):
    def epoch(state, hyper, data, perm):
        def body(state, i):
            return step(state, hyper, data, perm, i)

        return jax.lax.scan(body, state, jnp.arange(spe, dtype=jnp.int32))

    return epoch


def make_hyper(configs: TrainConfig | Sequence[TrainConfig]) -> lenet.StepHyper:
    """Every number of the update as arrays: the schedule's (``()`` for an
    optax callable, whose numbers are fixed in it) and the optimizer's
    settings, float32; stacked on a model axis for a list of configs."""
    configs, population = _as_list(configs)
    if population:
        settings = {
            k: jnp.asarray([dict(c.settings)[k] for c in configs], jnp.float32)
            for k, _ in configs[0].settings
        }
        _lr_fn(configs, population)  # gdjax schedules only
        return lenet.StepHyper(S.stack([c.schedule for c in configs], jnp.float32), settings)
    cfg = configs[0]
    settings = {k: jnp.asarray(v, jnp.float32) for k, v in cfg.settings}
    schedule = cfg.schedule.params(jnp.float32) if isinstance(cfg.schedule, S.Schedule) else ()
    return lenet.StepHyper(schedule, settings)


def init_state(configs: TrainConfig | Sequence[TrainConfig]) -> lenet.TrainState:
    """Every model's fresh state (parameters and optimizer state from its seed
    and settings); stacked on a model axis for a list of configs."""
    config_list, population = _as_list(configs)
    opt = config_list[0].build_optimizer()
    settings = make_hyper(configs).settings
    if population:
        seeds = jnp.asarray([c.seed for c in config_list], jnp.uint32)
        return jax.vmap(lenet.init_state, in_axes=(0, None, 0))(seeds, opt, settings)
    return lenet.init_state(config_list[0].seed, opt, settings)


def compile_program(
    program: Program, state: lenet.TrainState, hyper: lenet.StepHyper, data, test
) -> Program:
    """``program`` with its functions compiled for these arrays' shapes and
    placements (the step donates the state it is given)."""
    perm = jax.jit(program.permutation)
    epoch, step = program.epoch, program.step
    if epoch is not None:  # the epoch is one program: no step program is needed
        epoch = jax.jit(epoch, donate_argnums=0)
        epoch = epoch.lower(state, hyper, data, perm(state.seed, 0)).compile()
    else:
        step = jax.jit(step, donate_argnums=0)
        step = step.lower(state, hyper, data, perm(state.seed, 0), np.int32(0)).compile()
    accuracy = jax.jit(program.accuracy).lower(state.params, *test).compile()
    sharp = program.sharpness
    if sharp is not None:
        sharp = jax.jit(sharp).lower(state.params, data).compile()
    return program._replace(
        step=step, accuracy=accuracy, permutation=perm, sharpness=sharp, epoch=epoch
    )


class EpochOutput(NamedTuple):
    """One epoch of every model (arrays of shape (models,); (models, points)
    for the train points)."""

    train_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    lr: np.ndarray
    points: CurvePoints
    sharpness: np.ndarray


def run_epoch(
    program: Program,
    state: lenet.TrainState,
    hyper: lenet.StepHyper,
    data,
    test,
    epoch: int,
    *,
    on_progress: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[lenet.TrainState, EpochOutput]:
    """Trains epoch ``epoch`` (0-based) of every model: the example order from
    the seed, one update per minibatch, then the test accuracy (and the
    sharpness on the fixed batch, when the program tracks it).

    A Python loop over the (compiled) step, the metrics read back every
    ``log_every`` minibatches only (no device sync in between); or, when the
    program has ``epoch``, one ``lax.scan`` program over the minibatches,
    its stacked metrics read back once. Both give the same numbers.

    Args:
        program: the run's functions, compiled (:func:`compile_program`).
        state, hyper: every model's state and numbers.
        data, test: (images, labels) of the training and the test set.
        epoch: which epoch (its example order, and where its points lie).
        on_progress: called at every read-back with the minibatches done
            since the last one and the train loss and accuracy so far (per
            model): a progress bar.

    Returns:
        The new state and the epoch's :class:`EpochOutput`.
    """
    spe, log_every = program.steps_per_epoch, program.log_every
    perm = program.permutation(state.seed, epoch)
    totals = None  # loss sum, correct, count: per model, epoch so far (float64)
    first_lr, loss, acc = None, None, None
    points = []

    def read(got: list, done: int) -> None:  # the minibatches up to ``done``
        nonlocal totals, first_lr, loss, acc
        if first_lr is None:
            first_lr = np.atleast_1d(got[0].lr)
        sums = np.sum([np.reshape(m[:3], (3, -1)) for m in got], axis=0)
        totals = sums.astype(np.float64) if totals is None else totals + sums
        loss, acc = totals[0] / totals[2], totals[1] / totals[2]
        if done % log_every == 0:
            points.append((np.full_like(loss, epoch + done / spe), loss, acc))
        if on_progress is not None:
            on_progress(len(got), loss, acc)

    if program.epoch is not None:  # one program, then the points from its stacked metrics
        state, stacked = program.epoch(state, hyper, data, perm)
        stacked = distributed.fetch(stacked)
        for begin in range(0, spe, log_every):
            done = min(begin + log_every, spe)
            read([lenet.BatchMetrics(*(a[i] for a in stacked)) for i in range(begin, done)], done)
    else:
        pending: list[lenet.BatchMetrics] = []
        for i in range(spe):
            state, metrics = program.step(state, hyper, data, perm, np.int32(i))
            pending.append(metrics)
            if (i + 1) % log_every and i + 1 < spe:
                continue  # read metrics back only every log_every steps: no sync
            read(distributed.fetch(pending), i + 1)
            pending = []
    test_acc = np.atleast_1d(distributed.fetch(program.accuracy(state.params, *test)))
    sharp = np.full(test_acc.shape, np.nan)
    if program.sharpness is not None:
        sharp = np.atleast_1d(distributed.fetch(program.sharpness(state.params, data).value))
    if points:
        curve = CurvePoints(*(np.stack(column, axis=1) for column in zip(*points, strict=True)))
    else:
        curve = _empty(CurvePoints, len(test_acc))
    return state, EpochOutput(
        loss, acc, test_acc.astype(np.float64), first_lr, curve, sharp.astype(np.float64)
    )


# --------------------------------------------------------------------------
# The shell: data, placement, compile, progress, checkpoints, metrics.json.


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
    n = max(d for d in range(1, jax.device_count() + 1) if k % d == 0)
    return Mesh(np.asarray(jax.devices()[:n]), ("models",))


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
            moves every ``log_every`` minibatches (on the 2-core CPU both
            measured 3.3-4.6 s an epoch). The numbers are the same either
            way (tested).

    Returns:
        A :class:`RunResult`.
    """
    config_list, population = _as_list(configs)
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
        metrics=_empty(EpochMetrics, k),
        points=_empty(CurvePoints, k),
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
        start_epoch, state, epochs, curves = _restore(out, config_list, state)
        result.metrics, result.points = (
            _from_rows(EpochMetrics, epochs),
            _from_rows(CurvePoints, curves),
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
                _save_checkpoint(out, state, result, epoch + 1)
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
        mode = _auto_mode()
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
        _check_population(configs)
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
            metrics=_models([r.metrics for r in parts]),
            points=_models([r.points for r in parts]),
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
