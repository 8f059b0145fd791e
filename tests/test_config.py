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
    assert set(PRESETS) == {"quick", "standard", "ldam-drw", "authors"}
    assert preset("ldam-drw").model == "resnet32" and preset("ldam-drw").epochs == 200
    assert preset("paper") == preset("ldam-drw")  # the old name still works
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


def test_ldam_drw_preset_uses_plain_momentum_like_ldam_drw():
    assert preset("ldam-drw").nesterov is False and preset("quick").nesterov is True


def test_authors_preset_is_the_cce_authors_recipe():
    """unique-chan/Complement-Cross-Entropy @ da6f592, my_utils/parser.py and trainer.py."""
    config = preset("authors")
    assert (config.learning_rate, config.momentum, config.nesterov, config.weight_decay, config.batch_size) == (0.1, 0.9, False, 1e-4, 128)
    assert (config.warmup_epochs, config.epochs, config.schedule, config.model) == (5.0, 200, "authors", "resnet32")
    assert "cce_reference" in config.losses  # the form the authors trained
