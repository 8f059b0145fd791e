"""The settings form and API requests, turned into validated `TrainConfig`s."""
from __future__ import annotations

from typing import Any, Mapping

from ...config import TrainConfig, parse_seed_text, preset
from ...datasets import dataset_spec
from ...fields import config_from_values


def parse_seeds(value: Any) -> Any:
    """Seeds as typed in the form ("0, 1, 2") or sent by the API (a list or one number); anything else goes to
    TrainConfig unchanged, whose validation names the field."""
    if isinstance(value, str):
        return parse_seed_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return value


def config_from_form(preset_name: str, settings: Mapping[str, Any]) -> TrainConfig:
    """The form's settings (by the form's names; the widgets start from the preset) to a validated config: each
    setting converted as its row of the field table says (fields.py)."""
    return config_from_values(preset_name, settings)


def config_from_request(request: dict[str, Any]) -> TrainConfig:
    """An API request: {"preset": "quick", ...any TrainConfig field} to a validated config."""
    if not isinstance(request, dict):
        raise ValueError(f"config: expected a JSON object, got {type(request).__name__}")
    fields = dict(request)
    preset_name = fields.pop("preset", "quick")
    if not isinstance(preset_name, str):
        raise ValueError(f"preset: expected a preset name, got {preset_name!r}")
    if "seed" in fields:
        fields["seeds"] = (fields.pop("seed"),)
    if "seeds" in fields:
        fields["seeds"] = parse_seeds(fields["seeds"])
    base = preset(preset_name).to_dict()
    unknown = sorted(set(fields) - set(base))
    if unknown:
        raise ValueError(f"unknown config field(s): {', '.join(unknown)}; valid fields: preset, {', '.join(sorted(base))}")
    return TrainConfig.from_dict({**base, **fields})


def class_names_for(dataset: str, num_classes: int) -> tuple[str, ...]:
    """The class names a run will show, known before any data is loaded."""
    return dataset_spec(dataset).class_names or tuple(f"class {index}" for index in range(num_classes))


