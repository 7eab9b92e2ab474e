"""The one chunk loop (private core).

Every vmapped program over many starts, pixels or points runs through
:func:`run_chunks`: the leading axis is cut into chunks of one size (the last
one padded by repeating its last row, so one compiled program serves them
all), each chunk is dispatched before the previous one is collected (the
device never idles while the host copies results), and a ``collect``
callback stores each chunk's outputs. Where the chunks go (which devices,
which sharding) is the caller's ``call``; :func:`sharded_size` rounds a
chunk up to equal shares of whole vectors per device (:func:`aligned`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def pad(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` with its last row repeated up to ``size`` rows."""
    m = a.shape[0]
    if m >= size:
        return a
    return np.concatenate([a, np.repeat(a[-1:], size - m, axis=0)])


ALIGN = 2
"""Rows per device are a multiple of this: XLA's CPU code for a vmapped 2-D
descent ran several times slower on an odd number of rows per device; even
numbers (multiples of 2, 4, 8 and 16) ran alike (docs/basins.md)."""


def aligned(chunk: int, devices: int) -> int:
    """``chunk`` rounded up so that each of ``devices`` gets an equal share
    of a multiple of :data:`ALIGN` rows."""
    step = devices * ALIGN
    return -(-max(1, chunk) // step) * step


def sharded_size(chunk: int, total: int, devices: int) -> int:
    """A chunk of at most ``chunk`` (and at most ``total``) items, rounded up
    (:func:`aligned`) so each device gets an equal share."""
    return aligned(min(chunk, total), devices)


def run_chunks(
    call: Callable[[Any], Any],
    arrays: Any,
    chunk: int,
    collect: Callable[[Any, int, Any], None],
    *,
    strided: bool = False,
    ahead: bool = True,
) -> None:
    """Runs ``call`` over the leading axis of ``arrays`` (a PyTree of NumPy
    arrays of one length) in chunks of exactly ``chunk`` rows.

    Args:
        call: ``parts -> out``, with ``parts`` the chunk of every array
            (padded); usually puts them on devices and runs a compiled
            program, asynchronously.
        arrays: the inputs.
        chunk: rows per call.
        collect: ``collect(idx, m, out)`` after each call: ``idx`` the rows
            of this chunk (a slice, or an index array when ``strided``),
            ``m`` how many of ``out``'s rows are real (the rest is padding).
        strided: chunk c holds rows c, c + n, c + 2n, ... (n chunks), so
            every chunk samples the whole range.
        ahead: dispatch the next chunk before collecting the previous one.
    """
    leaves = jax.tree.leaves(arrays)
    total = leaves[0].shape[0]
    if total == 0:
        return
    n_chunks = -(-total // chunk)
    pending = None
    for c in range(n_chunks):
        if strided:
            idx: Any = np.arange(c, total, n_chunks)
            m = len(idx)
        else:
            idx = slice(c * chunk, min(total, (c + 1) * chunk))
            m = idx.stop - idx.start
        out = call(jax.tree.map(lambda a, idx=idx: pad(a[idx], chunk), arrays))
        if not ahead:
            collect(idx, m, out)
            continue
        if pending is not None:
            collect(*pending)
        pending = (idx, m, out)
    if pending is not None:
        collect(*pending)
