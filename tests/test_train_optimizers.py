"""Training through optax optimizers: settings are validated before any
compute, and a run with optimizer state resumes to the same numbers."""

import jax
import numpy as np
import pytest
from test_lenet import _synthetic

from gdjax import schedules as S
from gdjax import train


def _config(**kw):
    base = dict(schedule=S.constant(0.05), epochs=2, batch_size=64, log_every=2)
    return train.TrainConfig(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"optimizer": "lbfgs"}, "optimizer must be one of sgd, nesterov, adam, rmsprop"),
        ({"settings": (("b1", 0.9),)}, "optimizer 'sgd' has no setting b1"),
        ({"settings": (("momentum", -0.5),)}, "momentum must be finite and >= 0"),
        ({"optimizer": "adam", "settings": (("learning_rate", 0.1),)}, "has no setting"),
    ],
)
def test_bad_optimizer_settings_are_refused_at_once(kw, match):
    with pytest.raises(ValueError, match=match):
        _config(**kw)


def test_a_population_needs_the_same_setting_names():
    ds = _synthetic(n_train=128, n_test=64)
    configs = [_config(settings=(("momentum", 0.9),)), _config()]
    with pytest.raises(ValueError, match="same optimizer settings"):
        train.train(configs, ds, progress=False)


@pytest.mark.parametrize(
    ("optimizer", "settings"), [("sgd", (("momentum", 0.9),)), ("adam", (("b1", 0.8),))]
)
def test_resumed_run_with_optimizer_state_ends_with_the_same_numbers(tmp_path, optimizer, settings):
    ds = _synthetic(n_train=256, n_test=64)
    cfg = _config(optimizer=optimizer, settings=settings, schedule=S.constant(0.01))
    whole = train.train(cfg, ds, out=tmp_path / "whole", progress=False)
    # the first epoch, then a resumed second one
    train.train(
        train.TrainConfig(**{**cfg.__dict__, "epochs": 1}),
        ds,
        out=tmp_path / "cut",
        progress=False,
    )
    resumed = train.train(cfg, ds, out=tmp_path / "cut", resume=True, progress=False)
    jax.tree_util.tree_map(np.testing.assert_array_equal, whole.params, resumed.params)
    assert whole.epochs == [
        [{**e, "seconds": w["seconds"]} for e, w in zip(r, wr, strict=True)]
        for r, wr in zip(resumed.epochs, whole.epochs, strict=True)
    ]
