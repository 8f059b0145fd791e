"""Issue 20, one time source: the Train & compare tab's time figures (preset note, estimate, Repeat label, the
reason Start is refused) come from one `FormTime`; the preset radio says "custom" once a setting is edited;
the speed probe has no ceiling and says when a running job's rate has drifted from it. Pure units first, then
handlers on a real (idle) job manager. No timing is asserted: the ETA's accuracy is bench/estimate_accuracy.py's."""
from __future__ import annotations

import math
import types

import gradio as gr
import pytest

from cce_demo import speed_probe
from cce_demo.budget import Limits, ModelCost, describe_duration
from cce_demo.config import PRESETS
from cce_demo.jobs import JobManager
from cce_demo.speed_probe import DRIFT_TOLERANCE, FACTOR_FLOOR, drifted, speed_factor
from cce_demo.ui.compare import handlers
from cce_demo.ui.compare.layout import CUSTOM, DEFAULT_PRESET, base_of, custom_value, is_custom
from cce_demo.ui.compare.timing import FormTime, custom_note, form_time
from cce_demo.ui.kit.evidence import PRESET_FACTS

# ---------------------------------------------------------------- FormTime


def test_form_time_over_the_limit_refuses_and_says_why():
    time = FormTime(1500.0, "about 25 min on this machine", True, limit_seconds=1200.0)
    assert time.over_limit
    assert "over the limit of 20 min per job" in time.refusal()
    assert "Start is off (the job would be refused)" in time.estimate_html()
    assert "over the 20 min limit" in time.repeat_label()


def test_form_time_within_the_limit_and_without_one():
    within = FormTime(600.0, "about 10 min on this machine", True, limit_seconds=1200.0)
    assert not within.over_limit and within.refusal() == ""
    assert "limit here: 20 min per job" in within.estimate_html()
    free = FormTime(600.0, "about 10 min on this machine", True, limit_seconds=None)
    assert not free.over_limit and "limit" not in free.estimate_html()
    assert free.repeat_label().endswith("— about 10 min on this machine")


def test_form_time_validates_and_needs_a_reason_without_seconds():
    with pytest.raises(ValueError):
        FormTime(math.nan, "x", True, None)
    with pytest.raises(ValueError):
        FormTime(None, "", False, None)
    unknown = FormTime(None, "", False, 60.0, problem="ratio leaves a class empty")
    assert not unknown.over_limit and "unknown (ratio leaves a class empty)" in unknown.estimate_html()


def test_the_preset_note_quotes_the_estimate_and_no_typed_time():
    time = FormTime(200.0, "about 3 min 20 s on this machine", True, None)
    note = time.preset_note("quick")
    assert note.startswith("**About 3 min 20 s on this machine**")
    assert PRESET_FACTS["quick"].note in note
    assert "84" not in note and "earlier" not in note  # the old note quoted a wall time of another preset
    assert time.preset_note("no-such-preset") == ""


class _Manager:
    """A manager whose estimate is a known figure (an oracle), with a limit."""

    def __init__(self, seconds, limit_minutes=None):
        self.seconds, self.limits = seconds, Limits(max_job_minutes=limit_minutes)

    def estimate(self, config):
        if config.imbalance_ratio > 1e5:
            raise ValueError("ratio leaves a class empty")
        return types.SimpleNamespace(total_seconds=self.seconds, text=f"about {describe_duration(self.seconds)} here",
                                     measured=True)


def test_form_time_reads_the_managers_one_estimate():
    time = form_time(_Manager(90.0, limit_minutes=1), PRESETS["quick"])
    assert (time.seconds, time.text, time.limit_seconds, time.over_limit) == (90.0, "about 1 min 30 s here", 60.0, True)
    broken = form_time(_Manager(90.0), PRESETS["quick"].replace(imbalance_ratio=1e6))
    assert broken.seconds is None and "class empty" in broken.problem


# ---------------------------------------------------------------- the speed probe


COST = ModelCost(train_seconds_per_image=0.001, train_seconds_per_step=0.01, eval_seconds_per_image=0.0005)


def test_the_probe_factor_has_no_ceiling():
    predicted = speed_probe.predicted_step_seconds(COST)
    assert speed_factor(50 * predicted, COST) == pytest.approx(50.0)  # the old x8 clamp would say 8: too short
    assert speed_factor(predicted / 100, COST) == FACTOR_FLOOR  # a floor can only make estimates long
    with pytest.raises(ValueError):
        speed_factor(0.0, COST)


@pytest.mark.parametrize("measured, expected", [
    (10.0, False), (7.1, False), (12.9, False),  # within 30 % of the probe's 10 steps/s
    (6.9, True), (13.1, True), (2.0, True), (40.0, True),
])
def test_drift_past_thirty_percent_either_way_asks_for_a_new_probe(measured, expected):
    assert DRIFT_TOLERANCE == 0.3
    assert drifted(10.0, measured) is expected


def test_drift_rejects_rates_that_are_not_rates():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            drifted(10.0, bad)
        with pytest.raises(ValueError):
            drifted(bad, 10.0)


# ---------------------------------------------------------------- handlers: one source, preset state


@pytest.fixture
def ctx(tmp_path):
    from cce_demo.predict import ModelCache
    from cce_demo.ui import RunCatalog
    from cce_demo.ui.context import AppContext, UiContext
    from cce_demo.ui.layout import build_layout

    manager = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0, limits=Limits(max_job_minutes=5))
    app = AppContext(manager, RunCatalog(manager.runs_dir, ()), ModelCache(), exports_dir=tmp_path / "exports")
    with gr.Blocks():
        layout = build_layout()
    yield UiContext(app, layout)
    manager.shutdown()


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_sends_its_note_and_estimate_from_one_figure(ctx, name):
    ui = ctx.ui
    updates = handlers.on_preset(ctx, name, None)
    time = form_time(ctx.app.manager, PRESETS[name])
    # The same figure in the note and beside Start, in the same response as the preset's settings.
    assert time.text[1:] in updates[ui.compare.preset_note] and time.text in updates[ui.compare.estimate]
    assert updates[ui.compare.estimate] == time.estimate_html()
    assert ui.compare.ratio in updates


def test_editing_a_setting_shows_custom_and_drops_the_note(ctx):
    ui = ctx.ui
    updates = handlers.on_edit(ctx, "standard")
    radio = updates[ui.compare.preset]
    assert radio.value == custom_value("standard") and (CUSTOM, custom_value("standard")) in radio.choices
    assert updates[ui.compare.preset_note] == custom_note("standard")
    assert PRESET_FACTS["standard"].note not in updates[ui.compare.preset_note]
    assert handlers.on_edit(ctx, custom_value("standard")) == {}  # already custom: nothing to redraw
    assert handlers.on_preset(ctx, custom_value("quick"), None) == {}  # picking "custom" keeps the settings


def test_the_custom_value_carries_the_preset_it_started_from():
    assert base_of(custom_value("standard")) == "standard" and base_of("authors") == "authors"
    assert base_of(CUSTOM) == DEFAULT_PRESET and base_of("custom:no-such-preset") == DEFAULT_PRESET
    assert is_custom(custom_value("quick")) and not is_custom("quick") and not is_custom(None)


def test_custom_settings_start_from_the_preset_last_picked(ctx):
    tab = ctx.ui.compare
    from cce_demo.fields import form_values
    from cce_demo.ui.compare.settings import config_from_form

    values = {**form_values(PRESETS["standard"]), "epochs": 2}
    inputs = {tab.preset: custom_value("standard"), **{tab.settings[name]: value for name, value in values.items()}}
    name, settings = tab.form_of(inputs)
    assert name == "standard" and settings["epochs"] == 2
    config = config_from_form(name, settings)
    assert config.epochs == 2 and config.schedule == PRESETS["standard"].schedule

