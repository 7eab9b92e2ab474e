"""A run's results as typed tables of arrays (:class:`EpochMetrics`,
:class:`CurvePoints`, shape (models, epochs or points)) and :class:`RunResult`,
what :func:`gdjax.train.train` returns; the JSON rows of metrics.json are
produced from the tables, and read back into them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Float

from gdjax.train.config import TrainConfig

__all__ = [
    "CurvePoints",
    "EpochMetrics",
    "RunResult",
    "empty_table",
    "from_rows",
    "join_models",
]


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


def empty_table(cls, models: int):
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


def from_rows(cls, rows: Sequence[Sequence[dict[str, Any]]]):
    """The table of ``rows`` (metrics.json's form; None for NaN)."""
    length = max((len(r) for r in rows), default=0)
    arrays = {k: np.full((len(rows), length), np.nan) for k in cls._fields}
    for m, model_rows in enumerate(rows):
        for j, row in enumerate(model_rows):
            for k in cls._fields:  # a key missing (sharpness not tracked) reads as NaN
                value = row.get(k)
                arrays[k][m, j] = np.nan if value is None else value
    return cls(**arrays)


def join_models(tables: Sequence[EpochMetrics | CurvePoints]):
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
            self.metrics = from_rows(EpochMetrics, self.metrics)
        if not isinstance(self.points, CurvePoints):
            self.points = from_rows(CurvePoints, self.points)

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
