"""Strict JAX settings for every test.

* Eight host devices, so sharding code paths run on this CPU (set before jax
  is imported anywhere).
* Rank promotion raises and dtype promotion is strict, so silent broadcasting
  and float32/float64 mixing fail loudly.
* Warnings are errors (pyproject's filterwarnings); exceptions are listed there.
* One persistent compilation cache for the whole run (both xdist workers and
  the processes the tests start): a program that several tests compile with
  the same shapes (a LeNet step, a basin map) is compiled once per run. The
  folder is new for each run, so nothing carries over between runs.
"""

import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("MPLBACKEND", "Agg")
# the main process makes the folder's name; the xdist workers inherit it
_OURS = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OURS:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="gdjax-tests-")
# every program, however small: the workers and the processes tests start compile
# many of the same small ones (measured 2-3% of the CPU time of a run)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

LONGEST_FIRST = (
    "test_lenet.py",
    "test_distributed.py",
    "test_docs.py",
    "test_lessons.py",
    "test_sharpness.py",
    "test_bifurcation.py",
    "test_basins.py",
    "test_train_scan.py",
    "test_notebooks.py",
    "test_data.py",
    "test_engine.py",
    "test_attractors.py",
    "test_attractor_maps.py",
    "test_figures.py",
    "test_optimizers.py",
    "test_trainability.py",
    "test_runs.py",
    "test_descent.py",
    "test_surfaces.py",
    "test_device_labels.py",
    "test_figures_continuation.py",
    "test_train_optimizers.py",
    "test_high_dim.py",
    "test_figures_basins.py",
    "test_figures_lessons.py",
    "test_schedules.py",
    "test_continuation.py",
)
"""The test files, slowest first (measured 2026-12-04; the others, a few
seconds each, follow): the workers take whole files in this order, so the
last ones to start are short and the two workers end together."""


def pytest_collection_modifyitems(config, items):
    """The slowest files start first (each pytest-xdist worker takes whole
    files), so the two workers end together; the order within a file is
    kept."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def x64():
    """Runs a test with float64 enabled."""
    with jax.enable_x64(True):
        yield


def pytest_sessionfinish(session, exitstatus):
    """The run's compilation cache goes with the run (removed by the main
    process, once every worker has finished)."""
    if _OURS and not hasattr(session.config, "workerinput"):
        shutil.rmtree(_CACHE, ignore_errors=True)
