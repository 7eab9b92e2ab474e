"""An epoch as one lax.scan program (``scan_epochs``, the accelerator's
default) gives the numbers of the loop over the step, bit for bit."""

import jax
import numpy as np
import pytest
from test_lenet import _synthetic

from gdjax import schedules as S
from gdjax import train


@pytest.mark.parametrize("population", [False, True])
def test_an_epoch_under_scan_equals_the_loop(population):
    ds = _synthetic(n_train=600, n_test=100)  # 10 minibatches of 64, the last partial
    base = dict(epochs=2, batch_size=64, log_every=3, schedule=S.cosine(0.1, 2))
    if population:
        configs = [
            train.TrainConfig(**base, seed=s, settings=(("momentum", m),))
            for s, m in ((0, 0.0), (1, 0.9))
        ]
    else:
        configs = train.TrainConfig(**base, sharpness=32)
    loop = train.train(configs, ds, progress=False, scan_epochs=False)
    scan = train.train(configs, ds, progress=False, scan_epochs=True)
    assert (loop.meta["scan_epochs"], scan.meta["scan_epochs"]) == (False, True)
    for a, b in zip(loop.metrics._asdict().items(), scan.metrics._asdict().items(), strict=True):
        if a[0] != "seconds":
            np.testing.assert_array_equal(a[1], b[1], err_msg=a[0])
    assert loop.curves == scan.curves
    for x, y in zip(jax.tree.leaves(loop.params), jax.tree.leaves(scan.params), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_scanned_run_resumes_to_the_same_numbers(tmp_path):
    ds = _synthetic(n_train=300, n_test=64)
    cfg = train.TrainConfig(epochs=2, batch_size=64, log_every=2, schedule=S.constant(0.05))
    whole = train.train(cfg, ds, progress=False, scan_epochs=True)
    one = train.TrainConfig(epochs=1, batch_size=64, log_every=2, schedule=S.constant(0.05))
    train.train(one, ds, out=tmp_path, progress=False, scan_epochs=True)
    resumed = train.train(cfg, ds, out=tmp_path, resume=True, progress=False, scan_epochs=False)
    np.testing.assert_array_equal(resumed.metrics.train_loss, whole.metrics.train_loss)
    np.testing.assert_array_equal(resumed.metrics.test_acc, whole.metrics.test_acc)
