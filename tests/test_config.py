import pytest

from cce_demo import config as config_module
from cce_demo.config import PRESETS, TrainConfig, preset
from cce_demo.losses import LOSSES, all_loss_names
from cce_demo.models import MODELS


def test_name_lists_match_registries():
    assert set(config_module.BASE_LOSS_NAMES) == set(LOSSES)
    assert config_module.LOSS_NAMES == all_loss_names()  # every loss, then every loss with DRW
    assert set(config_module.MODEL_NAMES) == set(MODELS)


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", -1), ("epochs", 0), ("imbalance_ratio", 0.5), ("losses", ("ce", "nope")), ("model", "vgg"),
        ("dataset", "mnist"), ("batch_size", 10**6), ("learning_rate", float("nan")), ("learning_rate", 0.0),
        ("seeds", ()), ("losses", ()), ("losses", ("ce", "ce")), ("epochs", 2.5), ("device", "tpu"),
        ("seeds", (1.7,)), ("seeds", ("3",)), ("seeds", (None,)), ("losses", 5), ("losses", "ce"), ("nesterov", "yes"),
        ("losses", ("ce", "ce_drw_drw")), ("drw_beta", 1.0), ("drw_beta", -0.1), ("drw_start_fraction", 1.0),
        ("drw_start_fraction", -0.5), ("warmup_per_epoch", 1),
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


def test_ldam_drw_preset_is_ldam_with_drw_and_per_epoch_warm_up():
    """Cao et al. 2019: LDAM + DRW, 5 warm-up epochs rising per epoch; compared with CE, both CCE forms and
    CE-DRW in one paired run."""
    config = preset("ldam-drw")
    assert config.losses == ("ce", "cce", "cce_reference", "ldam_drw", "ce_drw")
    assert config.warmup_per_epoch is True and config.warmup_epochs == 5.0 and config.schedule == "ldam"
    assert (config.drw_beta, config.weight_decay, config.learning_rate) == (0.9999, 2e-4, 0.1)


def test_per_epoch_warm_up_needs_whole_epochs():
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(warmup_epochs=1.5, warmup_per_epoch=True)
    assert TrainConfig(warmup_epochs=2.0, warmup_per_epoch=True).warmup_per_epoch


def test_drw_options_reach_the_loss_and_old_configs_read_with_defaults():
    config = TrainConfig(losses=("ce", "cce_drw"), drw_beta=0.999)
    assert config.loss_options("cce_drw") == {"gamma": -1.0, "drw_beta": 0.999}
    assert config.loss_options("cce") == {"gamma": -1.0}
    old = {key: value for key, value in config.to_dict().items() if key not in ("drw_beta", "drw_start_fraction", "warmup_per_epoch")}
    assert TrainConfig.from_dict(old).drw_start_fraction == config_module.DEFAULT_DRW_START_FRACTION
