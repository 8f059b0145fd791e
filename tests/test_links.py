"""Links that reproduce a comparison: queries to settings (never raising), settings to short queries, and the
round trip between them."""
from urllib.parse import parse_qsl

import pytest

from cce_demo.config import PRESETS, preset
from cce_demo.links import (
    DEFAULT_PRESET, UnlinkableConfig, link_for, linkable_preset, query_for_config, query_for_run, settings_from_query,
)


def parse(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


def test_a_valid_query_fills_every_setting():
    settings = settings_from_query({
        "preset": "standard", "dataset": "cifar100", "profile": "step", "ratio": "50", "losses": "ce,focal",
        "gamma": "-2.5", "model": "resnet20", "epochs": "30", "batch": "64", "lr": "0.05", "seeds": "0,1,2",
        "device": "cpu", "run": "20260101-cifar10-ce-cce-abc123",
    })
    assert settings.ignored == ()
    assert settings.preset == "standard" and settings.run_id == "20260101-cifar10-ce-cce-abc123"
    assert settings.config == preset(
        "standard", dataset="cifar100", profile="step", imbalance_ratio=50.0, losses=("ce", "focal"), gamma=-2.5,
        model="resnet20", epochs=30, batch_size=64, learning_rate=0.05, seeds=(0, 1, 2), device="cpu",
    )
    assert settings.changed == ("dataset", "profile", "ratio", "losses", "gamma", "model", "epochs", "batch", "lr", "seeds", "device")


def test_an_empty_query_sets_nothing():
    settings = settings_from_query({})
    assert not settings.has_settings and settings.preset is None and settings.run_id is None and settings.ignored == ()
    assert settings.config == PRESETS[DEFAULT_PRESET]


def test_a_run_alone_is_not_a_form_setting():
    settings = settings_from_query({"run": "cifar10-lt100-standard-ce-cce"})
    assert settings.run_id == "cifar10-lt100-standard-ce-cce" and not settings.has_settings


@pytest.mark.parametrize("key, value, reason", [
    ("preset", "fastest", "unknown preset; valid presets: quick, standard"),
    ("dataset", "imagenet", "unknown value; valid values: cifar10, cifar100, synthetic"),
    ("profile", "linear", "unknown value"),
    ("ratio", "abc", "not a number"),
    ("ratio", "0.5", "must be >= 1.0"),
    ("ratio", "inf", "not a number"),
    ("losses", "ce,hinge", "unknown loss 'hinge'"),
    ("losses", "ce,ce", "each loss may appear once"),
    ("losses", ",", "at least one loss is needed"),
    ("gamma", "nan", "not a number"),
    ("gamma", "1e999", "not a finite number"),
    ("gamma", "1000", "must be >= -100.0 and <= 100.0"),
    ("model", "vit", "unknown value"),
    ("epochs", "2.5", "not a whole number"),
    ("epochs", "0", "must be between 1 and 1000, got 0"),
    ("batch", "100000", "must be between 1 and 4096"),
    ("lr", "0", "must be > 0.0"),
    ("seeds", "0,x", "expected whole numbers separated by commas"),
    ("seeds", "９", "expected whole numbers"),
    ("epochs", "1_000", "not a whole number"),
    ("lr", "0x10", "not a number"),
    ("seeds", "0,0", "each seed may appear once"),
    ("seeds", ",".join(map(str, range(11))), "at most 10 seeds"),
    ("device", "tpu", "unknown value"),
    ("epochs", "", "empty value"),
    ("run", "../etc", "not a run id"),
    ("run", "run-a\n", "not a run id"),
    ("colour", "red", "unknown setting; known: preset, dataset"),
])
def test_each_unusable_value_is_ignored_and_named(key, value, reason):
    settings = settings_from_query({"preset": "quick", key: value} if key != "preset" else {key: value})
    assert len(settings.ignored) == 1, settings.ignored
    assert settings.ignored[0].startswith(f"{key}={value!r}: ") and reason in settings.ignored[0], settings.ignored[0]
    assert settings.config == PRESETS["quick"] and settings.changed == () and settings.run_id is None


def test_good_values_survive_beside_bad_ones():
    settings = settings_from_query({"preset": "quick", "ratio": "100", "epochs": "-3", "seeds": "1,2", "model": "vit"})
    assert settings.config == preset("quick", imbalance_ratio=100.0, seeds=(1, 2))
    assert [entry.split("=")[0] for entry in settings.ignored] == ["model", "epochs"]  # in the form's order


def test_a_setting_that_conflicts_with_the_preset_is_dropped_and_named():
    # ldam-drw warms up for 5 epochs, so 3 epochs is invalid in combination (though valid alone).
    settings = settings_from_query({"preset": "ldam-drw", "epochs": "3", "ratio": "50"})
    assert settings.config == preset("ldam-drw", imbalance_ratio=50.0)
    assert settings.ignored == ("epochs='3': conflicts with the preset (warmup_epochs: must be >= 0.0 and <= 3.0, got 5.0)",)


def test_an_old_preset_name_is_read_as_its_new_name():
    assert settings_from_query({"preset": "paper"}).preset == "ldam-drw"


def test_odd_queries_never_raise():
    long_value = "x" * 10_000
    settings = settings_from_query({"epochs": long_value, "lr": "1e999", "seeds": "0;1", "losses": "\x00", "": "", "run": long_value})
    assert len(settings.ignored) == 6 and all(len(entry) < 300 for entry in settings.ignored)
    assert settings.config == PRESETS[DEFAULT_PRESET]


CONFIGS = [
    ("quick", preset("quick")),
    ("standard", preset("standard")),
    ("quick", preset("quick", imbalance_ratio=100.0, seeds=(0, 1, 2), losses=("ce", "cce", "focal"), learning_rate=0.05)),
    ("standard", preset("standard", dataset="cifar100", profile="step", gamma=-0.3, model="resnet20", epochs=7,
                        batch_size=32, device="cpu")),
    ("ldam-drw", preset("ldam-drw", learning_rate=1 / 3, imbalance_ratio=12.5)),
    ("authors", preset("authors", losses=("cce_reference", "ce"), seeds=(4,))),
]


@pytest.mark.parametrize("preset_name, config", CONFIGS)
def test_config_to_query_to_settings_is_the_same_config(preset_name, config):
    query = query_for_config(config, preset_name)
    settings = settings_from_query(parse(query))
    assert settings.config == config and settings.preset == preset_name and settings.ignored == ()


def test_a_query_names_only_what_differs_from_the_preset():
    config = preset("quick", imbalance_ratio=100.0, seeds=(0, 1, 2), losses=("ce", "cce", "focal"))
    assert query_for_config(config, "quick") == "preset=quick&ratio=100&losses=ce,cce,focal&seeds=0,1,2"
    assert query_for_config(preset("standard"), "standard") == "preset=standard"
    assert query_for_config(preset("quick", learning_rate=0.1 + 0.2), "quick") == "preset=quick&lr=0.30000000000000004"


def test_without_a_preset_the_one_that_carries_the_config_is_used():
    config = preset("standard", imbalance_ratio=10.0)  # quick has ratio 10 too, but not standard's warm-up
    assert linkable_preset(config) == "standard"
    assert query_for_config(config) == "preset=standard&ratio=10"


def test_a_config_a_link_cannot_carry_is_refused():
    config = preset("quick", max_per_class=40, weight_decay=0.01)
    with pytest.raises(UnlinkableConfig, match="differs from the quick preset in max_per_class, weight_decay"):
        query_for_config(config, "quick")
    assert linkable_preset(config) is None
    with pytest.raises(UnlinkableConfig, match="share the run instead"):
        query_for_config(config)
    with pytest.raises(ValueError, match="unknown preset 'fastest'"):
        query_for_config(preset("quick"), "fastest")


def test_run_queries_and_links():
    assert query_for_run("cifar10-lt100-standard-ce-cce") == "run=cifar10-lt100-standard-ce-cce"
    assert settings_from_query(parse(query_for_run("a.b_c-1"))).run_id == "a.b_c-1"
    with pytest.raises(ValueError, match="invalid run id"):
        query_for_run("../x")
    assert link_for("http://127.0.0.1:7860", "run=x") == "http://127.0.0.1:7860/?run=x"
    assert link_for("https://example.org/demo/?old=1#part", "preset=quick") == "https://example.org/demo/?preset=quick"
    assert link_for("https://example.org/demo/", "") == "https://example.org/demo/"
