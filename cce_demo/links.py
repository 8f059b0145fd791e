"""Links that reproduce a comparison: a page's query string to settings, and settings back to a short query.

A link carries a preset and the form's settings that differ from it (`?preset=quick&ratio=100&seeds=0,1,2`),
or a run to open (`?run=<id>`). Reading a query never raises: each unknown key or unusable value is ignored
and named with its reason, so a stale or hand-edited link still opens with what it got right.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from .config import LOSS_NAMES, PRESET_ALIASES, PRESETS, TrainConfig
from .fields import FORM_FIELDS, Field
from .run_directory import RUN_ID_PATTERN

DEFAULT_PRESET = "quick"  # the form's own default
MAX_SHOWN_VALUE = 40  # characters of an ignored value echoed back (a query can be arbitrarily long)


class UnlinkableConfig(ValueError):
    """A config that no link can reproduce: it differs from its preset in a field links do not carry."""


# ---------------------------------------------------------------- parsing one value (pure)


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"unknown value; valid values: {', '.join(choices)}")
        return text

    return parse


# ASCII only, no underscores: what a link writes. Python's int() and float() would also take "1_000" or "９".
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
DECIMAL_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _number(text: str) -> float:
    if not DECIMAL_NUMBER.fullmatch(text):
        raise ValueError("not a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _whole(text: str) -> int:
    if not WHOLE_NUMBER.fullmatch(text):
        raise ValueError("not a whole number")
    return int(text)


def _losses(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in LOSS_NAMES]
    if unknown:
        raise ValueError(f"unknown loss {unknown[0]!r}; valid losses: {', '.join(LOSS_NAMES)}")
    return names


def _seeds(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(WHOLE_NUMBER.fullmatch(part) for part in parts):
        raise ValueError("expected whole numbers separated by commas (e.g. 0,1,2)")
    return tuple(int(part) for part in parts)




def _parser(field: Field) -> Callable[[str], Any]:
    if field.kind in ("dropdown", "radio"):
        return _choice(field.choices)
    return {"number": _number, "whole": _whole, "losses": _losses, "seeds": _seeds}[field.kind]


# Query key -> (TrainConfig field, parser): every setting of the form (fields.py), in its order; a link's query
# follows it.
SETTINGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    field.query_key: (field.config_field, _parser(field)) for field in FORM_FIELDS
}
LINKED_FIELDS = tuple(field for field, _ in SETTINGS.values())
KNOWN_KEYS = ("preset", *SETTINGS, "run")


@dataclass(frozen=True)
class QuerySettings:
    """What a query asked for. `config` is the preset (`DEFAULT_PRESET` when none was named) with every
    usable setting applied; `changed` names the query keys applied to it."""

    preset: str | None  # the preset named (aliases resolved), None when the query named none or an unknown one
    config: TrainConfig
    changed: tuple[str, ...]
    run_id: str | None
    ignored: tuple[str, ...]  # "key='value': reason", one per unknown key or unusable value

    @property
    def has_settings(self) -> bool:
        """Whether the query set anything for the training form (else the form keeps its own state)."""
        return self.preset is not None or bool(self.changed)


def _ignored(key: str, value: str, reason: str) -> str:
    shown = value if len(value) <= MAX_SHOWN_VALUE else value[:MAX_SHOWN_VALUE] + "…"
    return f"{key}={shown!r}: {reason}"


def settings_from_query(query: Mapping[str, str]) -> QuerySettings:
    """Read a page's query parameters (e.g. Gradio's `request.query_params`). Settings are applied to the
    preset one at a time in the form's order; one that is invalid, alone or together with those before it
    (e.g. epochs below the preset's warm-up epochs), is ignored and named. Never raises."""
    values = {str(key): str(value) for key, value in query.items()}
    ignored: list[str] = []
    preset_name: str | None = None
    if "preset" in values:
        wanted = PRESET_ALIASES.get(values["preset"], values["preset"])
        if wanted in PRESETS:
            preset_name = wanted
        else:
            ignored.append(_ignored("preset", values["preset"], f"unknown preset; valid presets: {', '.join(PRESETS)}"))
    config = PRESETS[preset_name or DEFAULT_PRESET]
    changed = []
    for key, (field, parse) in SETTINGS.items():
        if key not in values:
            continue
        text = values[key].strip()
        if not text:
            ignored.append(_ignored(key, values[key], "empty value"))
            continue
        try:
            config = config.replace(**{field: parse(text)})
        except ValueError as error:  # the parser's reason, or TrainConfig's naming the field and the bound
            reason = str(error)
            if reason.startswith(f"{field}: "):
                reason = reason.removeprefix(f"{field}: ")
            elif ": " in reason and reason.split(": ", 1)[0] in TrainConfig.__dataclass_fields__:
                reason = f"conflicts with the preset ({reason})"  # e.g. fewer epochs than its warm-up epochs
            ignored.append(_ignored(key, values[key], reason))
            continue
        changed.append(key)
    run_id = None
    if "run" in values:
        if RUN_ID_PATTERN.fullmatch(values["run"]):
            run_id = values["run"]
        else:
            ignored.append(_ignored("run", values["run"], "not a run id (letters, digits, '.', '_' and '-', at most 128)"))
    for key in values:
        if key not in KNOWN_KEYS:
            ignored.append(_ignored(key, values[key], f"unknown setting; known: {', '.join(KNOWN_KEYS)}"))
    return QuerySettings(preset_name, config, tuple(changed), run_id, tuple(ignored))


# ---------------------------------------------------------------- writing a query (pure)


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_format(item) for item in value)
    if isinstance(value, float):
        # Whole numbers without ".0"; anything else in Python's shortest exact form, so it reads back equal.
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def unlinked_fields(config: TrainConfig, preset_name: str) -> tuple[str, ...]:
    """The fields in which `config` differs from the preset that a link cannot carry."""
    base = PRESETS[PRESET_ALIASES.get(preset_name, preset_name)]
    return tuple(field for field, value in config.to_dict().items() if field not in LINKED_FIELDS and value != base.to_dict()[field])


def linkable_preset(config: TrainConfig) -> str | None:
    """The first preset from which `config` differs only in settings a link carries, or None."""
    return next((name for name in PRESETS if not unlinked_fields(config, name)), None)


def query_for_config(config: TrainConfig, preset_name: str | None = None) -> str:
    """`preset=<name>` plus each linked setting that differs from the preset, in the form's order
    (e.g. "preset=quick&ratio=100&seeds=0,1,2"). Without `preset_name`, the first preset that can carry the
    config. Raises `UnlinkableConfig` when the config differs from the preset in another field (use
    `query_for_run` to share a run as it is)."""
    if preset_name is None:
        preset_name = linkable_preset(config)
        if preset_name is None:
            raise UnlinkableConfig("link: no preset plus the form's settings gives this config; share the run instead")
    preset_name = PRESET_ALIASES.get(preset_name, preset_name)
    if preset_name not in PRESETS:
        raise ValueError(f"preset: unknown preset {preset_name!r}; valid presets: {', '.join(PRESETS)}")
    unlinked = unlinked_fields(config, preset_name)
    if unlinked:
        raise UnlinkableConfig(
            f"link: this config differs from the {preset_name} preset in {', '.join(unlinked)}, which a link does not carry"
        )
    base = PRESETS[preset_name]
    pairs = [("preset", preset_name)]
    for key, (field, _) in SETTINGS.items():
        value = getattr(config, field)
        if value != getattr(base, field):
            pairs.append((key, _format(value)))
    return urlencode(pairs, safe=",")


def query_for_run(run_id: str) -> str:
    """"run=<id>": a link that opens this run."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"run: invalid run id {run_id!r}")
    return urlencode([("run", run_id)])


def link_for(base_url: str, query: str) -> str:
    """`base_url` with its query (and fragment) replaced by `query`; "" gives the bare page."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))
