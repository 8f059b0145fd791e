import pytest

from cce_demo import config as config_module
from cce_demo.config import PRESETS, TrainConfig, preset
from cce_demo.losses import LOSSES
from cce_demo.models import MODELS


def test_name_lists_match_registries():
    assert set(config_module.LOSS_NAMES) == set(LOSSES)
    assert set(config_module.MODEL_NAMES) == set(MODELS)


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", -1), ("epochs", 0), ("imbalance_ratio", 0.5), ("losses", ("ce", "nope")), ("model", "vgg"),
        ("dataset", "mnist"), ("batch_size", 10**6), ("learning_rate", float("nan")), ("learning_rate", 0.0),
        ("seeds", ()), ("losses", ()), ("losses", ("ce", "ce")), ("epochs", 2.5), ("device", "tpu"),
        ("seeds", (1.7,)), ("seeds", ("3",)), ("seeds", (None,)), ("losses", 5), ("losses", "ce"), ("nesterov", "yes"),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_presets_are_valid_and_overridable():
    assert set(PRESETS) == {"quick", "standard", "paper"}
    assert preset("paper").model == "resnet32" and preset("paper").epochs == 200
    assert preset("standard").imbalance_ratio == 100
    assert preset("quick", epochs=1).epochs == 1
    with pytest.raises(ValueError, match="preset"):
        preset("huge")


def test_dict_round_trip_and_unknown_keys():
    config = TrainConfig(losses=["ce", "cce_reference"], seeds=[3, 4])
    assert config.losses == ("ce", "cce_reference") and config.seeds == (3, 4)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown config field"):
        TrainConfig.from_dict({"epochz": 3})


def test_paper_preset_uses_plain_momentum_like_ldam_drw():
    assert preset("paper").nesterov is False and preset("quick").nesterov is True
