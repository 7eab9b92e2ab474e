"""Basin maps labelled on the device (``map_basins(label_on="device")``): the
same labels, steps, minima and fractions as the host path, with no end
points copied back; on this CPU the device is the host, so the tests check
behaviour, and the accelerator's speed is a benchmark's."""

import jax
import numpy as np
import optax
import pytest

import gdjax
from gdjax import basins
from gdjax.maps import runner


def _both(surface, **kw):
    host = basins.map_basins(surface, label_on="host", **kw)
    device = basins.map_basins(surface, label_on="device", **kw)
    return host, device


def _same(host, device):
    np.testing.assert_array_equal(device.labels, host.labels)
    np.testing.assert_array_equal(device.converged_step, host.converged_step)
    assert len(device.minima) == len(host.minima)
    for a, b in zip(device.minima, host.minima, strict=True):
        np.testing.assert_allclose(a.location, b.location, atol=1e-6)
        assert a.value == pytest.approx(b.value, abs=1e-9)
    np.testing.assert_array_equal(device.fractions.fraction, host.fractions.fraction)
    assert device.global_minima == host.global_minima
    assert device.final is None and host.final is not None


def test_a_map_in_many_strided_chunks_equals_the_host_path():
    # 64^2 starts in chunks of 256: 16 chunks, each a strided sample of the grid
    host, device = _both("peaks", grid=64, steps=300, lr=0.01, chunk_size=256)
    _same(host, device)
    assert len(device.minima) == 3


def test_a_batch_of_rates_with_diverging_runs_equals_the_host_path():
    # on Himmelblau lr 0.05 overflows: those runs are run again to their last
    # finite point, and labelled on the host
    host, device = _both(
        "himmelblau", grid=40, steps=200, lr=np.array([0.001, 0.01, 0.05]), chunk_size=600
    )
    assert host.timing.refrozen > 0
    assert device.timing.refrozen == host.timing.refrozen
    _same(host, device)


def test_random_starts_on_four_tied_minima_and_an_optax_rule():
    key = jax.random.key(3)
    host, device = _both(
        "himmelblau",
        starts=3000,
        key=key,
        steps=400,
        lr=0.01,
        rule=gdjax.optimizer(optax.sgd, momentum=0.5),
        chunk_size=500,
    )
    _same(host, device)
    assert len(device.global_minima) == 4


def test_a_minimum_missed_by_the_first_chunk_is_found_later(monkeypatch):
    # strided chunks of 8 starts (2 on each of 4 devices: an even number per
    # device): the first cannot reach all of peaks' basins; the runs of later
    # chunks that converged where no known minimum is come back, and the
    # missing minima are found among them
    kw = dict(grid=24, steps=300, lr=0.01, chunk_size=8, devices=min(4, jax.device_count()))
    host = basins.map_basins("peaks", **kw, label_on="host")
    calls = []
    real = runner.discover_minima

    def spy(surface, final, *args, **kw):
        found, labels = real(surface, final, *args, **kw)
        calls.append((len(final), len(found)))
        return found, labels

    monkeypatch.setattr(runner, "discover_minima", spy)
    device = basins.map_basins("peaks", **kw, label_on="device")
    _same(host, device)
    assert calls[0][1] < 3 and calls[-1][1] == 3, calls  # found after the first chunk


def test_label_on_is_checked_and_a_new_minima_table_does_not_recompile():
    with pytest.raises(ValueError, match="label_on must be 'auto', 'host' or 'device'"):
        basins.map_basins("peaks", grid=8, label_on="gpu")
    basins.map_basins("peaks", grid=32, steps=100, chunk_size=128, label_on="device")
    before = runner.compiled_programs()
    # other minima and other rates: the same compiled program
    basins.map_basins("peaks", grid=32, steps=100, lr=0.02, chunk_size=128, label_on="device")
    assert runner.compiled_programs() == before


def test_orphans_come_back_alone_and_a_chunk_with_more_sends_every_end(monkeypatch):
    """A chunk's runs that converged where no known minimum is come back by
    themselves (peaks' plateau leaves some in every chunk, which sent every
    chunk's ends back); a chunk with more than MAX_ORPHANS of them sends all
    its ends, as before. Both give the host path's labels."""
    kw = dict(grid=48, steps=300, lr=0.01, chunk_size=256)
    host = basins.map_basins("peaks", label_on="host", **kw)
    real = runner.distributed.fetch
    whole = []

    def fetch(tree):
        if isinstance(tree, tuple) and len(tree) == 4 and tree[0].ndim == 3:
            whole.append(tree[0].shape)  # a chunk's end points, every run
        return real(tree)

    monkeypatch.setattr(runner.distributed, "fetch", fetch)
    _same(host, basins.map_basins("peaks", label_on="device", **kw))
    assert whole == []
    monkeypatch.setattr(runner, "MAX_ORPHANS", 3)
    _same(host, basins.map_basins("peaks", label_on="device", **kw))
    assert 0 < len(whole) < 9  # the chunks with more than 3 orphans, not all 9
