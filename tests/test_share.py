"""Share, export and import (issue 13): query links and Copy link at handler level, Download/Upload run at
handler level, and the round trip through the API (export the shipped run, import it, classify with both)."""
import types
import zipfile

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from cce_demo.budget import Limits
from cce_demo.config import PRESETS
from cce_demo.fields import form_values
from cce_demo.jobs import JobManager
from cce_demo.links import settings_from_query
from cce_demo.predict import ModelCache
from cce_demo.ui.compare import handlers
from cce_demo.ui.runs import handlers as runs
from cce_demo.ui.compare import share
from cce_demo.ui.context import AppContext, UiContext
from cce_demo.ui.layout import build_layout
from conftest import ROOT

SHIPPED_RUN = "cifar10-lt100-standard-ce-cce"
CAT = ROOT / "examples" / "example-04.png"


@pytest.fixture
def ctx(tmp_path):
    from cce_demo.ui import RunCatalog

    manager = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0, limits=Limits(max_job_minutes=5))
    app = AppContext(manager, RunCatalog(manager.runs_dir, (ROOT / "checkpoints",)), ModelCache(),
                     exports_dir=tmp_path / "exports")
    with gr.Blocks():
        layout = build_layout()
    yield UiContext(app, layout)
    manager.shutdown()


def load(ctx, **query):
    request = types.SimpleNamespace(query_params=query)
    ui = ctx.ui
    inputs = {ui.memory: None, ui.visitor: None, ui.compare.smoothing: 0.8,
              **as_inputs(ctx, ["quick", "cifar10", "exp", 10])}
    return handlers.on_load(ctx, inputs, request=request)


def as_inputs(ctx, form):
    """The form as an event hands it to a handler, {component: value}: `form` is the preset and the settings in
    the form's order (fields.py); settings left out keep the preset's values."""
    tab = ctx.ui.compare
    preset_name, *settings = form
    values = {**form_values(PRESETS[preset_name]), **dict(zip(tab.settings, settings))}
    return {tab.preset: preset_name, **{tab.settings[name]: value for name, value in values.items()}}


def test_a_query_fills_the_form_and_starts_nothing(ctx):
    ui = ctx.ui
    updates = load(ctx, preset="standard", ratio="50", seeds="0,1,2", losses="ce,cce_reference")
    assert updates[ui.compare.preset] == "standard" and updates[ui.compare.ratio] == 50 and updates[ui.compare.seeds] == "0,1,2"
    assert updates[ui.compare.losses] == ["CE", "CCE (reference code)"]
    assert "ratio 50" in updates[ui.compare.counts_chart]  # the class counts follow the link's settings
    assert "Settings from the link" in updates[ui.compare.link_note] and "Ignored" not in updates[ui.compare.link_note]
    assert "Estimated time" in updates[ui.compare.estimate]
    assert ctx.app.manager.list_jobs() == []


def test_invalid_query_values_are_named_in_one_note(ctx):
    ui = ctx.ui
    updates = load(ctx, preset="quick", epochs="many", colour="red", run="no-such-run")
    note = updates[ui.compare.link_note]
    assert note.count("<li>") == 3 and "epochs=" in note and "colour=" in note and "no-such-run" in note
    assert updates[ui.compare.epochs] == 25 or ui.compare.epochs in updates  # the preset's own value, not "many"
    assert updates[ui.view] is not None  # the page still shows the default run


def test_run_query_opens_the_run_and_no_query_adds_no_note(ctx):
    ui = ctx.ui
    updates = load(ctx, run=SHIPPED_RUN)
    assert updates[ui.view].id == SHIPPED_RUN and "Showing run" in updates[ui.compare.link_note]
    assert ui.compare.preset not in updates  # no settings in the link: the form keeps its own state
    assert load(ctx)[ui.compare.link_note] == ""


def test_copy_link_reads_back_as_the_same_settings(ctx):
    ui = ctx.ui
    form = ["quick", "cifar10", "exp", 100, ["CE", "CCE (paper form)"], -1, "resnet8", 3, 128, 0.1, "0, 1", "auto"]
    link = share.on_link_settings(ctx, {ui.compare.share_link: "http://host:7860/?run=old#x", **as_inputs(ctx, form)})[ui.compare.share_link]
    assert link.startswith("http://host:7860/?preset=quick&")
    query = dict(part.split("=", 1) for part in link.split("?", 1)[1].split("&"))
    settings = settings_from_query(query)
    assert settings.config.imbalance_ratio == 100 and settings.config.epochs == 3 and settings.config.seeds == (0, 1)
    view = load(ctx)[ui.view]
    assert share.on_link_run(ctx, "http://host/", view)[ui.compare.share_link] == f"http://host/?run={view.id}"
    with pytest.raises(gr.Error, match="not valid"):
        share.on_link_settings(ctx, {ui.compare.share_link: "http://host/", **as_inputs(ctx, [*form[:7], -3, *form[8:]])})


def test_estimate_says_when_the_limit_would_refuse(ctx):
    # 10 epochs of the pair at ratio 100 is estimated well under the 5-minute limit; 500 epochs far over it.
    form = ["quick", "cifar10", "exp", 100, ["CE", "CCE (paper form)"], -1, "resnet8", 10, 128, 0.1, "0", "cpu"]
    assert "limit here: 5 min per job" in share.on_estimate(ctx, as_inputs(ctx, form))[ctx.ui.compare.estimate]
    over = share.on_estimate(ctx, as_inputs(ctx, [*form[:7], 500, *form[8:]]))[ctx.ui.compare.estimate]
    assert "over the limit of 5 min" in over and "refused" in over
    assert "unknown until the settings are valid" in share.on_estimate(ctx, as_inputs(ctx, [*form[:7], None, *form[8:]]))[ctx.ui.compare.estimate]


def test_download_and_upload_in_the_runs_tab(ctx):
    ui = ctx.ui
    with pytest.raises(gr.Error, match="exactly one"):
        runs.on_export_run(ctx, [])
    exported = runs.on_export_run(ctx, [SHIPPED_RUN])[ui.runs.run_zip]
    path = exported.value["path"] if isinstance(exported.value, dict) else exported.value
    assert zipfile.ZipFile(path).namelist().count("recall.csv") == 1
    visitor = load(ctx)[ui.visitor]
    imported = runs.on_import_run(ctx, str(path), visitor)
    new_id = imported[ui.runs.run_choice].value[0]
    assert new_id.startswith(f"{SHIPPED_RUN}-imported-")  # the shipped run's id is taken
    assert new_id in imported[ui.runs.transfer_note] and imported[ui.runs.run_choice].value == [new_id]
    assert imported[ui.classify.classify_run].value == new_id
    refused = runs.on_import_run(ctx, str(CAT), visitor)
    assert "zip" in refused[ui.runs.transfer_note] and ui.runs.run_choice not in refused


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app["url"], verbose=False)


def test_export_import_classify_round_trip(client, tmp_path):
    path = client.predict(SHIPPED_RUN, api_name="/export_run")
    assert path.endswith(f"{SHIPPED_RUN}.zip")
    with zipfile.ZipFile(path) as archive:
        assert {"run.json", "events.jsonl", "curves.csv", "recall.csv", "model-ce-seed0.safetensors"} <= set(archive.namelist())
    imported = client.predict(handle_file(path), api_name="/import_run")
    assert imported["original_run_id"] == SHIPPED_RUN and imported["renamed"] and imported["status"] == "done"
    new_id = imported["run_id"]
    assert new_id in {row["run"] for row in client.predict(api_name="/list_runs")}
    original = client.predict(handle_file(str(CAT)), SHIPPED_RUN, api_name="/classify")
    copy = client.predict(handle_file(str(CAT)), new_id, api_name="/classify")
    assert copy["run_id"] == new_id and copy["predictions"] == original["predictions"]


def test_transfer_refusals_are_clear(client, tmp_path):
    with pytest.raises(AppError, match="no run named"):
        client.predict("no-such-run", api_name="/export_run")
    with pytest.raises(AppError, match="zip"):
        client.predict(handle_file(str(CAT)), api_name="/import_run")
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(AppError, match="not a zip archive"):
        client.predict(handle_file(str(fake)), api_name="/import_run")
