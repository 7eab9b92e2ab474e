"""Checkpoints: one file a run directory (:data:`CHECKPOINT`), a checksummed
header and a msgpack payload (the state's arrays, the configs and the metrics
so far), written atomically after every epoch; reading one back refuses a
missing, truncated, corrupted or foreign file (:class:`CheckpointError`, naming
it), and resuming refuses other settings."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

from gdjax import distributed, lenet, runs
from gdjax.train.config import TrainConfig, auto_mode
from gdjax.train.results import RunResult

__all__ = [
    "CHECKPOINT",
    "CheckpointError",
    "check_resume",
    "load_checkpoint",
    "restore",
    "save_checkpoint",
]

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


def save_checkpoint(out: Path, state: lenet.TrainState, result: RunResult, epoch: int) -> None:
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


def restore(out: Path, configs: Sequence[TrainConfig], template: lenet.TrainState):
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


def check_resume(
    out: str | os.PathLike, *, mode: str = "single", names: Sequence[str] = ()
) -> None:
    """Raises a :class:`CheckpointError` unless ``out`` holds a run to resume,
    before any data is loaded or compiled.

    Args:
        out: the run directory.
        mode: ``"single"`` or ``"population"`` (one checkpoint,
            ``out/checkpoint.msgpack``), ``"sequential"`` (one per model,
            ``out/NAME/checkpoint.msgpack``: at least one must exist, none of
            another model; models not started yet start afresh), or
            ``"auto"`` (as :func:`train_many`).
        names: the models' directory names (sequential).

    A single model and a population agree: nothing to resume is an error.
    """
    out = Path(out)
    if mode == "auto":
        mode = auto_mode()
    top = (out / CHECKPOINT).is_file()
    if mode == "sequential":
        names = list(names)
        others = sorted(p.parent.name for p in out.glob(f"*/{CHECKPOINT}"))
        others = [n for n in others if n not in names]
        if others:
            raise CheckpointError(
                f"{out} holds model(s) this run does not train ({', '.join(others)}): resume "
                "with the same models (policies, schedules, seeds) as the run that was cut short"
            )
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
