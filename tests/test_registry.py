"""One record per optimizer (gdjax._registry): every command and function
that takes an optimizer by name reads it, so they validate alike."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import _registry, optimizers, sharpness, train
from gdjax.cli import basins as cli_basins


@pytest.mark.parametrize(
    "argv",
    [
        ["basins", "--optimizer", "sgd", "--momentum", "1.5", "--grid", "8"],
        ["lenet", "--setting", "momentum=1.5"],
        ["optimizers", "--momentum", "1.5", "--grid", "8"],
    ],
)
def test_momentum_above_one_is_refused_by_every_command_alike(tmp_path, capsys, argv):
    """gdjax optimizers refused momentum 1.5; gdjax basins --momentum and
    gdjax lenet --setting accepted it."""
    from gdjax.cli import main

    with pytest.raises(SystemExit) as e:
        main([*argv, "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert "momentum must be < 1 (in [0, 1)), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_python_api_validates_as_the_commands_do():
    with pytest.raises(ValueError, match="momentum must be < 1"):
        train.TrainConfig(settings=(("momentum", 1.0),))
    with pytest.raises(ValueError, match="momentum must be < 1"):
        optimizers.preset("momentum", momentum=1.0)
    with pytest.raises(ValueError, match="b2 must be < 1"):
        cli_basins.parse_rule(0.01, "adam", None, None, [("b2", 1.0)])
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        train.TrainConfig(optimizer="adam", settings=(("eps", -1.0),))
    with pytest.raises(ValueError, match="optimizer 'adam' has no setting momentum"):
        train.TrainConfig(optimizer="adam", settings=(("momentum", 0.5),))


def test_the_tables_come_from_the_registry():
    assert cli_basins.OPTIMIZERS == _registry.OPTAX
    assert tuple(optimizers.PRESETS) == _registry.FAMILY
    for name, preset in optimizers.PRESETS.items():
        assert preset.settings == dict(_registry.OPTIMIZERS[name].family)
    for name, method in train.OPTIMIZERS.items():
        record = _registry.OPTIMIZERS[name]
        assert (method.factory, method.static_kwargs) == (record.factory, record.flags)
    assert sharpness._ADAPTIVE >= {"adam", "rmsprop"} and "sgd" not in sharpness._ADAPTIVE


@pytest.mark.parametrize("name", sorted(_registry.OPTIMIZERS))
def test_every_record_descends_a_parabola_with_its_defaults(name):
    """Each optimizer, built from its record with its default settings,
    brings a parabola's value down (optax's own test of its table)."""
    record = _registry.OPTIMIZERS[name]
    rule = gdjax.optimizer(record.factory, **dict(record.flags), **record.settings)
    traj = gdjax.descend(
        lambda x: jnp.sum(x**2), jnp.asarray([1.0, -2.0]), steps=100, lr=0.05, rule=rule
    )
    assert float(traj.loss[-1]) < float(traj.loss[0])
    if name in _registry.OPTAX:  # gdjax basins --optimizer NAME: the rate is all it needs
        assert isinstance(record.factory(learning_rate=0.05), optax.GradientTransformation)


def test_stability_limits_use_the_records_defaults():
    """Heavy-ball 'momentum' is 0.9 unless told otherwise: (2 + 2 beta) / lr."""
    assert float(sharpness.stability_limit("momentum", 0.1)) == pytest.approx(38.0)
    assert float(sharpness.stability_limit("sgd", 0.1)) == pytest.approx(20.0)
    assert float(sharpness.stability_limit("nesterov", 0.1, {"momentum": 0.9})) == pytest.approx(
        3.8 / 0.1 / 2.8
    )
    assert sharpness.stability_limit("lion", 0.1) is None
    np.testing.assert_allclose(sharpness.stability_limit("gd", np.asarray([0.1, 0.2])), [20, 10])
