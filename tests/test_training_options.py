"""training.options: one declaration per option gives its range check, its flat config.json key and its flag."""

import pytest

from training.dcgan import DCGANConfig
from training.options import Range, from_flat_dict, replace, to_flat_dict
from training.srgan import SRGANConfig
from training.strategy import StrategyConfig


def test_ranges_include_and_exclude_their_bounds_as_written():
    assert 0 in Range("[0, 1)") and 0.999 in Range("[0, 1)") and 1 not in Range("[0, 1)")
    assert 0 not in Range("(0, 1]") and 1 in Range("(0, 1]")
    assert 1 in Range("1..10") and 10 in Range("1..10") and 11 not in Range("1..10") and 0 not in Range("1..10")


@pytest.mark.parametrize("options, message", [
    ({"latent_dim": 0}, "latent_dim 0 is outside the allowed range 1..4096"),
    ({"learning_rate": 0.0}, r"learning_rate 0.0 is outside the allowed range \(0, 1\]"),
    ({"steps_per_loop": 0}, "steps_per_loop 0 is outside the allowed range 1..10000"),
    ({"loss": "wgan"}, "loss 'wgan' is unknown; choose one of bce, hinge"),
    ({"strategy": "gpu-cluster"}, "strategy 'gpu-cluster' is unknown; choose one of auto, cpu"),
])
def test_a_bad_option_names_itself_and_its_allowed_values(options, message):
    with pytest.raises(ValueError, match=message):
        DCGANConfig(data="d", out="o", **options)


def test_the_strategy_is_nested_in_python_and_flat_in_config_json():
    config = DCGANConfig(data="d", out="o", strategy=StrategyConfig("tpu", tpu="grpc://10.0.0.2:8470"))
    stored = to_flat_dict(config)
    assert stored["strategy"] == "tpu" and stored["tpu"] == "grpc://10.0.0.2:8470" and stored["tpu_zone"] is None
    assert "name" not in stored and not any(isinstance(value, dict) for value in stored.values())
    assert from_flat_dict(DCGANConfig, stored) == config
    assert replace(config, steps=7).strategy == config.strategy and replace(config, steps=7).steps == 7
    assert DCGANConfig(data="d", out="o", strategy="cpu").strategy == StrategyConfig("cpu")


def test_each_trainer_keeps_its_own_report_intervals_on_the_shared_controller_options():
    dcgan, srgan = DCGANConfig(data="d", out="o"), SRGANConfig(data="d", out="o")
    assert (dcgan.checkpoint_every, dcgan.sample_every, dcgan.log_every) == (500, 500, 50)
    assert (srgan.checkpoint_every, srgan.sample_every, srgan.log_every) == (1000, 1000, 100)
    assert dcgan.steps_per_loop == srgan.steps_per_loop == 10


def test_an_unknown_stored_key_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown option 'warp_factor' for DCGANConfig"):
        from_flat_dict(DCGANConfig, {"data": "d", "out": "o", "warp_factor": 9})
