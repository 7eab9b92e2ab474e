"""Runs over several processes: JAX's multi-controller model.

Every process runs the same program (the same ``gdjax`` command, with its
own ``--process-id``); :func:`initialize` joins them through
``jax.distributed.initialize``, after which ``jax.devices()`` lists the
devices of every process and a :class:`jax.sharding.NamedSharding` over
them spans the cluster. gdjax's sharded programs (basin maps, their batches
over rates and optimizers, trainability maps, LeNet populations) place their
inputs with :func:`put`, which hands each process only its own shards, and
read their outputs back with :func:`fetch`, which gathers the global array
onto every process. Every process then holds the same result; process 0
(:func:`is_main`) alone writes files (see :func:`gdjax.runs.discard_writes`).

On CPUs the processes' collectives go over gloo (TCP); on GPUs over NCCL and
on TPUs over the pod's interconnect, as JAX sets them up. With one process
(the default), :func:`put` is ``jax.device_put`` and :func:`fetch` is
``np.asarray``: nothing changes.
"""

from __future__ import annotations

import ipaddress
import zlib
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

__all__ = [
    "COMMAND",
    "agree",
    "check_options",
    "fetch",
    "first_difference",
    "initialize",
    "is_main",
    "parse_coordinator",
    "process_count",
    "put",
]


def parse_coordinator(text: str) -> str:
    """``HOST:PORT`` checked (a host name or an IP address, a port in
    1..65535; ``[::1]:PORT`` for IPv6); returns it unchanged.

    Raises:
        ValueError: anything else, naming what is wrong.
    """
    host, sep, port = str(text).rpartition(":")
    if not sep or not host:
        raise ValueError(f"--coordinator takes HOST:PORT (e.g. 10.0.0.1:1234), got {text!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--coordinator's port must be an integer in 1..65535, got {port!r}")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        if not all(part and (part.replace("-", "").isalnum()) for part in bare.split(".")):
            raise ValueError(
                f"--coordinator's host is not a host name or address: {host!r}"
            ) from None
    return text


def check_options(
    coordinator: str | None, num_processes: int | None, process_id: int | None
) -> None:
    """The checks :func:`initialize` makes before joining: all three or none,
    and good values.

    Raises:
        ValueError: naming what is wrong.
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError(
            "give --coordinator, --num-processes and --process-id together (or none of them, "
            "with --distributed, to let JAX detect the cluster)"
        )
    if all(given):
        parse_coordinator(coordinator)
        if isinstance(num_processes, bool) or int(num_processes) != num_processes:
            raise ValueError(f"--num-processes must be an integer, got {num_processes!r}")
        if num_processes < 1:
            raise ValueError(f"--num-processes must be >= 1, got {num_processes}")
        if not 0 <= process_id < num_processes:
            raise ValueError(
                f"--process-id must be in 0..{num_processes - 1} for {num_processes} processes, "
                f"got {process_id}"
            )


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout: int = 300,
) -> None:
    """Joins this process to the others (``jax.distributed.initialize``).
    Call it first, before any JAX computation.

    Args:
        coordinator: process 0's ``HOST:PORT``, which every process can reach.
        num_processes: how many processes run the program.
        process_id: this process's index, 0..num_processes-1.
        timeout: seconds to wait for every process to join; past them JAX
            aborts the process (the CLI exits in one line sooner: its
            ``--timeout``).

    Give all three, or none: with none, JAX detects the cluster (SLURM,
    Open MPI, a Cloud TPU pod slice, Kubernetes...) from the environment.

    Raises:
        ValueError: some of the three but not all, or bad values; or JAX had
            already started computing in this process.
    """
    check_options(coordinator, num_processes, process_id)
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    # CPU devices talk over gloo; accelerators use their own collectives
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=timeout,
        )
    except RuntimeError as err:
        raise ValueError(f"cannot join the other processes: {err}") from None
    except ValueError as err:
        if all(given):
            raise
        # JAX found no cluster in the environment ("coordinator_address should be defined")
        raise ValueError(
            f"--distributed found no cluster to join ({err}): JAX detects SLURM, Open MPI, "
            "Kubernetes and Cloud TPU pod slices from their environment variables; elsewhere "
            "give --coordinator HOST:PORT, --num-processes N and --process-id I"
        ) from None


def process_count() -> int:
    """How many processes run this program (1 without :func:`initialize`)."""
    return jax.process_count()


def is_main() -> bool:
    """Whether this is process 0, the one that writes."""
    return jax.process_index() == 0


def put(tree: Any, sharding) -> Any:
    """``jax.device_put(tree, sharding)`` for a sharding that may span
    processes: every process holds the whole (identical) host value and
    hands over only the shards of its own devices."""
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(
            x.shape, sharding, lambda index: x[index], dtype=x.dtype
        )

    return jax.tree.map(one, tree)


def _identity(xs):
    return xs


def fetch(tree: Any) -> Any:
    """Every array of ``tree`` as NumPy, whole: the arrays sharded over
    several processes are gathered onto each of them first, all of one mesh
    in one program (one collective, compiled once per tree's shapes, where
    gathering leaf by leaf compiled and synchronised once per leaf). A
    collective: every process must call it, in the same order."""
    leaves, treedef = jax.tree.flatten(tree)
    out = [None] * len(leaves)
    by_mesh: dict[Any, list[int]] = {}
    for i, x in enumerate(leaves):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if x.sharding.is_fully_replicated:  # every process holds it whole
                out[i] = np.asarray(x.addressable_data(0))
            elif isinstance(x.sharding, NamedSharding):
                by_mesh.setdefault(x.sharding.mesh, []).append(i)
            else:
                out[i] = np.asarray(multihost_utils.process_allgather(x, tiled=True))
        else:
            out[i] = np.asarray(x)
    for mesh, idx in by_mesh.items():
        whole = NamedSharding(mesh, PartitionSpec())
        gathered = jax.jit(_identity, out_shardings=[whole] * len(idx))([leaves[i] for i in idx])
        for i, g in zip(idx, gathered, strict=True):
            out[i] = np.asarray(g.addressable_data(0))
    return jax.tree.unflatten(treedef, out)


def agree(value: bool) -> bool:
    """Process 0's ``value``, on every process (one process: ``value``).
    Every process must call it, in the same order."""
    if jax.process_count() == 1:
        return bool(value)
    return bool(multihost_utils.broadcast_one_to_all(np.int32(bool(value))))


COMMAND = "(command)"  # what first_difference returns when the commands differ


def _crc(value: Any) -> int:
    return zlib.crc32(repr(value).encode()) & 0x7FFFFFFF


def first_difference(command: str, options: dict[str, Any]) -> str | None:
    """Compares one run's ``command`` and ``options`` across the processes.

    Returns None when every process holds the same; :data:`COMMAND` when the
    command or the set of option names differs; else the first option name
    (in sorted order) whose value differs on some process. Values compare by
    their ``repr``. A collective: every process calls it, and every process
    gets the same answer (one process: None).
    """
    if jax.process_count() == 1:
        return None
    names = sorted(options)
    head = np.array([_crc((command, names)), len(names)], np.int32)
    heads = np.asarray(multihost_utils.process_allgather(head))
    if (heads != heads[0]).any():
        return COMMAND
    values = np.array([_crc(options[k]) for k in names] or [0], np.int32)
    every = np.asarray(multihost_utils.process_allgather(values))
    differ = (every != every[0]).any(axis=0)
    return names[int(np.argmax(differ))] if differ.any() else None
