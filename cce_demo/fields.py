"""The settings a person chooses, in one declarative table: for each, the `TrainConfig` field it sets, its widget
on the form (if it has one), its key in a link and its flag on the command line. The form's widgets, the form's
config (`config_from_values`), the query links (links.py) and the flags of both CLIs (train.py, reproduce.py) are
all built from `FIELDS`, so a new setting is one row here.

Pure and free of gradio: the UI turns a row into a widget (ui/compare/layout.py); the CLIs into a flag.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .config import DATASETS, DEVICES, LOSS_NAMES, MODEL_NAMES, PROFILES, SCHEDULES, TrainConfig, parse_seed_text, preset
from .losses import DISPLAY_NAMES

# How a value is typed (widget, link and flag follow from it): a choice among `choices` (as a drop-down or as
# radio buttons), a number, a whole number, the losses (check boxes of their display names), the seeds ("0,1,2").
KINDS = ("dropdown", "radio", "number", "whole", "losses", "seeds")


@dataclass(frozen=True)
class Field:
    config_field: str  # the TrainConfig field it sets
    label: str  # the widget's label on the form
    kind: str  # one of KINDS
    name: str = ""  # the form's name for it (`CompareLayout.ratio`); default: the config field
    query_key: str = ""  # its key in a link; default: `name`
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # the widget's lower bound (the config validates every value anyway)
    # Fields with the same row number sit side by side in the form's advanced panel; None: a row of its own.
    row: int | None = None
    on_form: bool = True  # False: a command-line flag only
    help: str | None = None  # the flag's help text

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: unknown kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        if self.config_field not in TrainConfig.__dataclass_fields__:
            raise ValueError(f"config_field: {self.config_field!r} is not a TrainConfig field")
        object.__setattr__(self, "name", self.name or self.config_field)
        object.__setattr__(self, "query_key", self.query_key or self.name)

    @property
    def flag(self) -> str:
        """"--imbalance-ratio"."""
        return "--" + self.config_field.replace("_", "-")


# In the form's order (a link's query follows it too).
FIELDS: tuple[Field, ...] = (
    Field("dataset", "Dataset", "dropdown", choices=DATASETS, row=1),
    Field("profile", "Imbalance profile", "radio", choices=PROFILES, row=1, help="long-tail profile"),
    Field("imbalance_ratio", "Imbalance ratio (≥ 1)", "number", name="ratio", minimum=1, row=1,
          help="largest class count / smallest (>= 1)"),
    Field("max_per_class", "", "whole", on_form=False, help="cap on the largest class before the tail is cut"),
    Field("losses", "Losses to compare", "losses", choices=LOSS_NAMES),
    Field("gamma", "γ of paper-form CCE", "number", row=2, help="paper-form CCE weight (default -1)"),
    Field("model", "Model", "dropdown", choices=MODEL_NAMES, row=2),
    Field("epochs", "Epochs", "whole", row=2),
    Field("batch_size", "Batch size", "whole", query_key="batch", row=3),
    Field("learning_rate", "Learning rate", "number", query_key="lr", row=3),
    Field("weight_decay", "", "number", on_form=False),
    Field("schedule", "", "dropdown", choices=SCHEDULES, on_form=False),
    Field("epoch_eval_images", "", "whole", on_form=False, help="test images scored after each epoch but the last"),
    Field("seeds", "Seeds (e.g. 0,1,2)", "seeds", row=3, help="several training seeds, comma-separated (e.g. 0,1,2)"),
    Field("device", "Device", "radio", choices=DEVICES, row=3),
)
FORM_FIELDS = tuple(field for field in FIELDS if field.on_form)


# ---------------------------------------------------------------- the form's values (pure)


def widget_value(field: Field, config: TrainConfig) -> Any:
    """What the field's widget shows for `config`: loss display names, seeds as "0,1,2", else the value."""
    value = getattr(config, field.config_field)
    if field.kind == "losses":
        return [DISPLAY_NAMES.get(loss, loss) for loss in value]
    if field.kind == "seeds":
        return ",".join(map(str, value))
    return value


def form_values(config: TrainConfig) -> dict[str, Any]:
    """Every form widget's value for `config`, by the form's names."""
    return {field.name: widget_value(field, config) for field in FORM_FIELDS}


def loss_from_display(label: str) -> str:
    """A checkbox label ("CCE (paper form)") or an API name ("cce") to the loss's registry name."""
    reverse = {value: key for key, value in DISPLAY_NAMES.items()}
    if label in reverse:
        return reverse[label]
    if label in LOSS_NAMES:
        return label
    raise ValueError(f"losses: unknown loss {label!r}; valid losses: {', '.join(LOSS_NAMES)}")


def config_value(field: Field, value: Any) -> Any:
    """A widget's value as the config field's value; raises ValueError naming the field when it has none that
    fits (the config then checks the bounds)."""
    name = field.config_field
    if field.kind == "number":
        if value is None:
            raise ValueError(f"{name}: needs a value")
        return float(value)
    if field.kind == "whole":
        if value is None or (isinstance(value, float) and (not math.isfinite(value) or value != int(value))):
            raise ValueError(f"{name}: must be a whole number, got {value!r}")
        return int(value)
    if field.kind == "losses":
        return tuple(loss_from_display(label) for label in value or ())
    if field.kind == "seeds":
        return parse_seed_text(value) if isinstance(value, str) else value
    return value


def config_from_values(preset_name: str, values: Mapping[str, Any]) -> TrainConfig:
    """The form (its widgets start from the preset), by the form's names, to a validated config."""
    return preset(preset_name, **{field.config_field: config_value(field, values[field.name]) for field in FORM_FIELDS})


# ---------------------------------------------------------------- command-line flags


def add_flags(parser: argparse.ArgumentParser, fields: Iterable[Field] = FIELDS, lists: Iterable[str] = ()) -> None:
    """One flag per field. The config fields in `lists` take several comma-separated values (a grid's axes);
    losses and seeds are comma-separated anyway."""
    lists = set(lists)
    for field in fields:
        if field.config_field in lists or field.kind in ("losses", "seeds"):
            among = f", from {', '.join(field.choices)}" if field.choices else ""
            parser.add_argument(field.flag, help=f"comma-separated{among}" + (f"; {field.help}" if field.help else ""))
        elif field.kind in ("dropdown", "radio"):
            parser.add_argument(field.flag, choices=field.choices, help=field.help)
        else:
            parser.add_argument(field.flag, type=float if field.kind == "number" else int, help=field.help)


def flag_values(arguments: argparse.Namespace, fields: Iterable[Field] = FIELDS) -> dict[str, Any]:
    """The config values the flags set (flags left out are absent): losses split at commas, seeds parsed."""
    values = {}
    for field in fields:
        value = getattr(arguments, field.config_field)
        if value is None:
            continue
        if field.kind == "losses":
            value = tuple(name.strip() for name in value.split(",") if name.strip())
        elif field.kind == "seeds":
            value = parse_seed_text(value)
        values[field.config_field] = value
    return values
