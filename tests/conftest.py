"""Strict JAX settings for every test.

* Eight host devices, so sharding code paths run on this CPU (set before jax
  is imported anywhere).
* Rank promotion raises and dtype promotion is strict, so silent broadcasting
  and float32/float64 mixing fail loudly.
* Warnings are errors (pyproject's filterwarnings); exceptions are listed there.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def x64():
    """Runs a test with float64 enabled."""
    with jax.enable_x64(True):
        yield
