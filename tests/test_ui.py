"""The UI without a server: settings, the pure views (verdict, charts, tables) and the dict-returning
handlers, called directly with a context built on temporary runs directories and a real JobManager."""
import dataclasses
import json
import logging
import shutil
import threading

import gradio as gr
import pytest

from cce_demo.config import PRESETS, TrainConfig
from cce_demo.data import planned_class_counts
from cce_demo.jobs import JobManager
from cce_demo.predict import ModelCache
from cce_demo.schema import McNemar
from cce_demo.status import JobStatus
from cce_demo.ui import RunCatalog, config_from_form, config_from_request, confusion_html, groups_table, runs_table
from cce_demo.ui import api
from cce_demo.ui.classify import handlers as classify
from cce_demo.ui.compare import view as compare_view
from cce_demo.ui.compare import handlers
from cce_demo.ui.runs import handlers as runs
from cce_demo.ui.kit.charts import ticks
from cce_demo.ui.context import AppContext, UiContext
from cce_demo.ui.layout import build_layout
from cce_demo.ui.kit.state import BrowserMemory, Controls, Drawn, ViewRef
from cce_demo.ui.compare.verdict import verdict_html
from cce_demo.ui.compare.views import counts_chart, epoch_chart, loss_chart, recall_chart, smooth, status_html

FAST = dict(dataset="synthetic", imbalance_ratio=2.0, batch_size=64, device="cpu", max_per_class=40, synthetic_test_per_class=10)
# What the per-epoch charts draw (epoch_chart takes the metric as a function of an epoch's scores).
TEST_LOSS, BALANCED_ACCURACY = (lambda scores: scores.test_loss), (lambda scores: scores.balanced_accuracy)
WINNER_WORDS = ("better", "worse", "helped", "hurt", "wins", "winner", "held up", "scored higher", "scored lower")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished paired run with two seeds, as the manager sees it (used as the 'shipped' runs directory)."""
    manager = JobManager(tmp_path_factory.mktemp("ui-runs"), allow_download=False, worker_niceness=0)
    job_id = manager.submit(TrainConfig(epochs=2, seeds=(0, 1), **FAST))
    snapshot = manager.wait(job_id, timeout=120)
    manager.shutdown()
    assert snapshot.status == JobStatus.DONE
    return manager, snapshot


def one_seed(snapshot):
    """The same run as if only seed 0 had been trained."""
    return dataclasses.replace(
        snapshot, config=snapshot.config.replace(seeds=(0,)), comparisons=snapshot.comparisons[:1], summaries={},
        epochs=tuple(point for point in snapshot.epochs if point.seed == 0),
    )


# ---------------------------------------------------------------- settings


def form_values(**changes):
    values = dict(dataset="synthetic", profile="exp", ratio=10, losses=["CE", "CCE (paper form)"],
                  gamma=-1, model="resnet8", epochs=3, batch_size=64, learning_rate=0.1, seeds="0, 1", device="cpu")
    values.update(changes)
    return values


def form(ctx, preset_name="quick", **settings):
    """The form as an event hands it to a handler, {component: value}: the preset's own values (fields.py) with
    `settings` (by the form's names) changed."""
    from cce_demo.fields import form_values as preset_values

    tab = ctx.ui.compare
    values = {**preset_values(PRESETS[preset_name]), **settings}
    return {tab.preset: preset_name, **{tab.settings[name]: value for name, value in values.items()}}


def test_form_to_config():
    config = config_from_form("quick", form_values())
    assert config.losses == ("ce", "cce") and config.seeds == (0, 1) and config.epochs == 3
    for change, field in [({"epochs": 2.5}, "epochs"), ({"seeds": "a,b"}, "seeds"), ({"losses": []}, "losses"),
                          ({"ratio": 0.2}, "imbalance_ratio"), ({"batch_size": None}, "batch_size")]:
        with pytest.raises(ValueError, match=field):
            config_from_form("quick", form_values(**change))


def test_api_request_to_config():
    config = config_from_request({"preset": "standard", "epochs": 2, "seed": 5})
    assert config.imbalance_ratio == PRESETS["standard"].imbalance_ratio and config.epochs == 2 and config.seeds == (5,)
    assert config_from_request({"preset": "paper"}).model == PRESETS["ldam-drw"].model  # the old name still works
    with pytest.raises(ValueError, match="unknown config field"):
        config_from_request({"epochz": 2})
    with pytest.raises(ValueError, match="JSON object"):
        config_from_request(["ce"])


def test_planned_counts_without_data():
    assert planned_class_counts(PRESETS["standard"]) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


# ---------------------------------------------------------------- views


def test_smoothing_is_a_debiased_moving_average():
    assert smooth([3.0, 1.0], 0.0) == [3.0, 1.0]
    assert smooth([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)  # debiased: no ramp up from zero
    weight = 0.6
    expected_second = (weight * (1 - weight) * 4.0 + (1 - weight) * 1.0) / (1 - weight**2)
    assert smooth([4.0, 1.0], weight) == pytest.approx([4.0, expected_second])


def test_axis_ticks_are_round_and_inside():
    assert ticks(1, 25, 5, integer=True) == [5, 10, 15, 20, 25]
    assert ticks(0.5, 1.5, 5, integer=True) == [1]  # one epoch: one tick, never "1.000000"
    assert ticks(0.23, 2.31, 5) == [0.5, 1.0, 1.5, 2.0]


def test_loss_chart_smooths_and_draws_the_ce_part_dashed_under_ce(finished):
    _, snapshot = finished
    chart = loss_chart(snapshot, 0.8)
    assert "CCE (paper form) · CE part" in chart and 'stroke-dasharray="7 5"' in chart
    assert 'stroke-opacity="0.3"' in chart  # the raw series, faint
    # CE is drawn last (on top); its CE part is CE itself, so it has none.
    paths = [part for part in chart.split("<path ") if "<title>" in part]
    assert paths[-1].split("<title>")[1].startswith("CE<")
    raw = loss_chart(snapshot, 0)
    assert 'stroke-opacity="0.3"' not in raw and "Raw values" in raw
    last_step = snapshot.steps[-1].global_step  # the x axis ends at the data: no tick beyond it
    assert all(float(tick.replace(",", "")) <= last_step for tick in _x_ticks(chart))


def _x_ticks(chart):
    return [part.split(">")[1].split("<")[0] for part in chart.split('class="cc-xt"')[1:]]


def test_epoch_charts_have_a_placeholder_integer_ticks_and_points(finished):
    _, snapshot = finished
    empty = dataclasses.replace(snapshot, epochs=(), latest={}, steps=())
    assert "appears when epoch 1" in epoch_chart(empty, TEST_LOSS, "t")
    assert "appears with the first steps" in loss_chart(empty)
    assert "appears when epoch 1" in recall_chart(empty)
    first = dataclasses.replace(snapshot, epochs=snapshot.epochs[:2])  # epoch 1 of seed 0 (two points, one per loss)
    first = dataclasses.replace(first, epochs=tuple(p for p in first.epochs if p.seed == 0 and p.epoch == 1))
    chart = epoch_chart(first, BALANCED_ACCURACY, "Balanced accuracy", as_percent=True)
    assert _x_ticks(chart) == ["1"] and 'stroke-linecap="round"' in chart  # visible points
    several = epoch_chart(snapshot, TEST_LOSS, "Test loss")
    assert "seed 1" in several and all(tick in ("1", "2") for tick in _x_ticks(several))


def test_recall_chart_groups_classes_with_counts_once_and_marks_zero(finished):
    _, snapshot = finished
    chart = recall_chart(snapshot)
    for name in snapshot.class_names:
        assert chart.count(f">{name}<") == 1  # each class named once on the axis
    assert chart.count('class="cc-bar"') == 2 * len(snapshot.class_names)  # CE and CCE side by side per class
    assert "CCE − CE" in chart and "95 % interval" in chart  # two seeds: per-class interval
    recall = snapshot.latest["cce"].per_class_recall
    zero = snapshot.latest["cce"].model_copy(update={"per_class_recall": (0.0, *recall[1:])})
    marked = recall_chart(dataclasses.replace(snapshot, latest={**snapshot.latest, "cce": zero}))
    assert 'cc-track zero' in marked and "<b class=zero>0</b>" in marked


def test_counts_chart_says_which_run_it_shows():
    next_run = compare_view.next_run_counts("quick", {"dataset": "cifar10", "profile": "exp", "ratio": 10})
    shown = compare_view.next_run_counts("standard", {"dataset": "cifar10", "profile": "exp", "ratio": 100})
    shown = dataclasses.replace(shown, label=shown.label.replace("next run", "shown run"))
    both = counts_chart(next_run, shown)
    assert "next run: CIFAR-10, ratio 10" in both and "shown run: CIFAR-10, ratio 100" in both
    same = counts_chart(next_run, dataclasses.replace(next_run, label="shown run: CIFAR-10, ratio 10"))
    assert "same as the shown run" in same and same.count('class="cc-bar"') == 10


def test_verdict_with_several_seeds_reports_the_interval(finished):
    _, snapshot = finished
    text = verdict_html(snapshot, "Shipped run")
    assert "Over 2 seeds" in text and "95 % interval" in text and "points balanced accuracy" in text
    assert "points tail recall" in text and "Shipped run" in text and "synthetic data, ratio 2" in text


def test_verdict_on_one_seed_never_names_a_winner(finished):
    _, snapshot = finished
    one = one_seed(snapshot)
    for p_value, difference in [(1e-9, -0.05), (1e-9, 0.05), (0.5, 0.0)]:
        comparison = one.comparisons[0].model_copy(update={
            "mcnemar": McNemar(only_a_correct=10, only_b_correct=90, p_value=p_value), "balanced_accuracy_difference": difference})
        text = verdict_html(dataclasses.replace(one, comparisons=(comparison,)), "Your run").lower()
        assert not [word for word in WINNER_WORDS if word in text], text
        assert "a difference between two trained models, not yet between the two losses" in text
        assert "repeat with 3 seeds" in text
        assert "not been measured yet" in text  # custom settings: no measured spread


def test_verdict_quotes_the_measured_spread_of_the_preset(finished):
    _, snapshot = finished
    from cce_demo.ui.compare.verdict import grids_root
    from cce_demo.ui.kit.evidence import shipped_spread

    # Issue 20: the card reads the grids where they ship (kit/evidence.py's default root is one folder off).
    # Both CPU presets have a shipped grid at their settings, so each card must name its own grid.
    for preset, grid in (("quick", "cifar10-lt-quick"), ("standard", "cifar10-lt-standard")):
        spread = shipped_spread(PRESETS[preset], grids_root())
        assert spread is not None and spread.grid == grid and spread.seeds >= 2, preset
        text = verdict_html(dataclasses.replace(one_seed(snapshot), config=PRESETS[preset]), "Your run")
        assert "seed-to-seed standard deviation" in text and f"results/{grid}/results.json" in text, preset
        assert f"{spread.baseline_sd:.1f} points" in text, preset


def test_verdict_of_a_run_that_ended_before_a_seed_finished(finished):
    _, snapshot = finished
    cancelled = dataclasses.replace(snapshot, status=JobStatus.CANCELLED, comparisons=(), epochs=snapshot.epochs[:1])
    text = verdict_html(cancelled, "Your run")
    assert "No comparison" in text and "1 of 4 epochs" in text


def test_status_shows_progress_and_the_failure_reason(finished):
    _, snapshot = finished
    running = dataclasses.replace(snapshot, status=JobStatus.RUNNING, progress=0.42, eta_seconds=75.0)
    text = status_html(running, "Your run")
    assert 'aria-valuenow="42"' in text and "about 1 min 15 s left" in text
    failed = dataclasses.replace(snapshot, status=JobStatus.FAILED, error="CIFAR is not available")
    assert "<b>Reason:</b> CIFAR is not available" in status_html(failed)


def test_group_table_and_confusion_matrices(finished):
    _, snapshot = finished
    table = groups_table(snapshot)
    assert list(table["loss"]) == ["CE", "CCE (paper form)"] and "tail %" in table.columns
    html = confusion_html(snapshot)
    assert html.count("<table") == 2 and "0 class 0" in html


def test_runs_table_marks_shipped_and_partial_runs(finished, tmp_path):
    manager, snapshot = finished
    shipped = tmp_path / "shipped"
    shutil.copytree(manager.runs_dir / snapshot.job_id, shipped / snapshot.job_id)
    partial_dir = tmp_path / "mine" / "partial-run"
    shutil.copytree(manager.runs_dir / snapshot.job_id, partial_dir)
    metadata = json.loads((partial_dir / "run.json").read_text())
    metadata.update(run_id="partial-run", status="cancelled", created_at="2000-01-01T00:00:00+0000")
    metadata["config"]["epochs"] = 4  # 4 epoch events recorded of 4 x 2 planned
    (partial_dir / "run.json").write_text(json.dumps(metadata))
    catalog = RunCatalog(tmp_path / "mine", (shipped,))
    records, problems = catalog.records()
    frame = runs_table(catalog, records).set_index("run")
    assert not problems and frame.loc[snapshot.job_id, "source"] == "shipped"
    assert frame.loc["partial-run", "status"] == "cancelled · 4 of 8 epochs (partial)"
    assert frame.loc[snapshot.job_id, "status"] == "done"
    assert "CCE" in frame.loc[snapshot.job_id, "Δ balanced accuracy vs CE (points)"]
    assert "(2 seeds)" in frame.loc[snapshot.job_id, "Δ tail recall vs CE (points)"]
    assert catalog.default_run().run_id == snapshot.job_id


# ---------------------------------------------------------------- handlers


@pytest.fixture()
def ctx(finished, tmp_path):
    """A context like the app's: a live manager on an empty runs directory, the finished run as shipped."""
    manager, _ = finished
    live = JobManager(tmp_path / "runs", allow_download=False, worker_niceness=0)
    app = AppContext(live, RunCatalog(live.runs_dir, (manager.runs_dir,)), ModelCache())
    with gr.Blocks():
        layout = build_layout()
    yield UiContext(app, layout)
    live.shutdown()


def load(ctx, memory=None, visitor=None):
    """A page load: `memory` is what the browser sends from its localStorage, `visitor` the session's state."""
    ui = ctx.ui
    inputs = {ui.memory: memory, ui.visitor: visitor, ui.compare.smoothing: 0.8,
              **form(ctx, "quick", dataset="cifar10", profile="exp", ratio=10)}
    return handlers.on_load(ctx, inputs)


def start(ctx, page, **changes):
    """Start pressed on a loaded page (its session's visitor, as the server holds it)."""
    settings = form_values(**{"epochs": 300, "seeds": "0", **changes})
    return handlers.on_start(ctx, {ctx.ui.visitor: page[ctx.ui.visitor], ctx.ui.compare.smoothing: 0.8, **form(ctx, "quick", **settings)})


def test_load_gives_the_browser_an_id_and_shows_the_shipped_run(ctx, finished):
    _, snapshot = finished
    updates = load(ctx)
    ui = ctx.ui
    memory = BrowserMemory.from_json(updates[ui.memory])
    assert memory.token and memory.job_id is None
    assert ctx.app.signer.verify(memory.token) == updates[ui.visitor]
    assert updates[ui.view] == ViewRef("run", snapshot.job_id, "Shipped run")
    assert updates[ui.compare.start].interactive is True and updates[ui.compare.stop].interactive is False
    assert "Over 2 seeds" in updates[ui.compare.verdict] and "next run: CIFAR-10, ratio 10" in updates[ui.compare.counts_chart]
    assert "shown run: synthetic, ratio 2" in updates[ui.compare.counts_chart]


def test_start_makes_one_job_per_browser_and_stop_reaches_it(ctx):
    ui, manager = ctx.ui, ctx.app.manager
    page = load(ctx)
    first = start(ctx, page)
    job_id = first[ui.view].id
    assert first[ui.compare.start].interactive is False and first[ui.compare.stop].interactive is True
    assert BrowserMemory.from_json(first[ui.memory]).job_id == job_id
    again = start(ctx, page)  # a second click, even with the memory from before the first answer
    assert again[ui.view].id == job_id and len(manager.list_jobs()) == 1
    reloaded = load(ctx, page[ui.memory])  # a reload (a new session) re-attaches by the signed token
    assert reloaded[ui.view] == ViewRef("job", job_id, "Your run") and reloaded[ui.compare.stop].interactive is True
    visitor = reloaded[ui.visitor]
    stopped = handlers.on_stop(ctx, visitor, reloaded[ui.view])
    assert stopped[ui.compare.stop].interactive is False
    assert manager.wait(job_id, timeout=30).status == JobStatus.CANCELLED
    tick = handlers.on_tick(ctx, reloaded[ui.view], reloaded[ui.drawn], visitor, 0.8)
    assert tick[ui.compare.start].interactive is True and "cancelled" in tick[ui.compare.status]
    assert handlers.on_tick(ctx, reloaded[ui.view], tick[ui.drawn], visitor, 0.8) == {}  # nothing new


def test_simultaneous_starts_from_one_browser_make_one_job(ctx):
    page = load(ctx)
    barrier, results = threading.Barrier(4), []

    def click():
        barrier.wait()
        results.append(start(ctx, page)[ctx.ui.view].id)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(ctx.app.manager.list_jobs()) == 1
    ctx.app.manager.cancel(results[0])


def test_a_second_browser_watches_but_cannot_stop(ctx):
    ui = ctx.ui
    mine = load(ctx)
    job_id = start(ctx, mine)[ui.view].id
    other = load(ctx)
    assert other[ui.view].id == job_id and "another browser" in other[ui.view].title
    assert other[ui.compare.stop].interactive is False and "yours only" in other[ui.compare.stop].value
    with pytest.raises(gr.Error, match="no queued or running job"):
        handlers.on_stop(ctx, other[ui.visitor], other[ui.view])
    # The other browser claims the job in its localStorage, with a forged visitor id: it is still not its job.
    forged = {"visitor": "v1." + "0" * 32 + "." + "f" * 64, "job_id": job_id}
    claimed = load(ctx, forged)
    assert claimed[ui.visitor] != mine[ui.visitor] and claimed[ui.compare.stop].interactive is False
    with pytest.raises(gr.Error, match="no queued or running job"):
        handlers.on_stop(ctx, claimed[ui.visitor], claimed[ui.view])
    with pytest.raises(gr.Error, match="reload the page"):  # a session that never loaded the page
        handlers.on_stop(ctx, None, claimed[ui.view])
    assert not ctx.app.manager.snapshot(job_id).is_finished
    ctx.app.manager.cancel(job_id)


def test_invalid_settings_are_refused_with_one_log_line(ctx, caplog):
    page = load(ctx)
    with caplog.at_level(logging.WARNING, logger="cce_demo.ui"):
        with pytest.raises(gr.Error, match="epochs") as raised:
            start(ctx, page, epochs=-1)
    assert raised.value.print_exception is False  # Gradio prints no traceback
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is None and "epochs" in caplog.records[0].getMessage()
    assert ctx.app.manager.list_jobs() == []


def test_repeat_queues_the_shown_settings_with_three_seeds(ctx, finished):
    ui = ctx.ui
    loaded = load(ctx)
    shown = dataclasses.replace(loaded[ui.view])
    one = ViewRef("run", shown.id, shown.title)
    updates = handlers.on_repeat(ctx, {ui.visitor: loaded[ui.visitor], ui.view: one, ui.compare.smoothing: 0.8,
                                       **form(ctx, "quick", dataset="cifar10", profile="exp", ratio=10)})
    job = ctx.app.manager.snapshot(updates[ui.view].id)
    assert job.config.seeds == (0, 1, 2) and job.config.dataset == "synthetic"
    ctx.app.manager.cancel(job.job_id)


def test_repeat_button_says_how_long(ctx, finished):
    _, snapshot = finished
    one = dataclasses.replace(one_seed(snapshot), started_at=100.0, finished_at=130.0)
    button = compare_view.repeat_update(ctx, one, Controls(None))
    assert button.visible is True and "3 seeds" in button.value and "about" in button.value
    three = dataclasses.replace(snapshot, config=snapshot.config.replace(seeds=(0, 1, 2)))
    assert compare_view.repeat_update(ctx, three, Controls(None)).visible is False
    assert compare_view.repeat_update(ctx, one, Controls("busy")).interactive is False  # follows Start


def test_preset_and_settings_update_the_counts_chart(ctx):
    ui = ctx.ui
    updates = handlers.on_preset(ctx, "standard", None)
    # Issue 20 changed this: the note no longer quotes a wall time measured for an earlier preset; it states
    # the manager's own estimate of the preset, the same figure as the estimate beside Start.
    estimate_text = ctx.app.manager.estimate(PRESETS["standard"]).text
    assert updates[ui.compare.ratio] == 100 and estimate_text[1:] in updates[ui.compare.preset_note]
    assert estimate_text in updates[ui.compare.estimate]
    assert "next run: CIFAR-10, ratio 100" in updates[ui.compare.counts_chart]
    assert handlers.on_settings(ctx, {ui.view: None, **form(ctx, "quick", dataset="cifar10", profile="exp", ratio=None)}) == {}  # half-typed ratio: keep the chart


def test_classify_handler_shows_errors_in_place_and_clears_old_results(ctx, finished, tmp_path):
    from bad_images import write_bad_images

    _, snapshot = finished
    ui = ctx.ui
    paths = write_bad_images(tmp_path)
    good = classify.on_classify(ctx, str(paths["rgba.png"]), snapshot.job_id, False)
    assert 'id="prediction-0"' in good[ui.classify.predictions] and 'id="prediction-1"' in good[ui.classify.predictions]
    assert "#1f77b4" in good[ui.classify.predictions] and "#d62728" in good[ui.classify.predictions]  # CE blue, CCE red
    assert good[ui.classify.upload_preview] is not None and good[ui.classify.seen].size == (160, 160)
    assert "balanced accuracy" in good[ui.classify.predictions] and "training images" in good[ui.classify.class_lean]
    corrected = classify.on_classify(ctx, str(paths["rgba.png"]), snapshot.job_id, True)
    assert "after the prior correction" in corrected[ui.classify.predictions]
    assert "after the prior correction" not in good[ui.classify.predictions]
    bad = classify.on_classify(ctx, str(paths["text.png"]), snapshot.job_id, False)  # returns, never raises
    assert bad[ui.classify.predictions] == "" and bad[ui.classify.seen] is None and bad[ui.classify.upload_preview] is None
    assert "not an image" in bad[ui.classify.classify_note]


def test_classify_api_refuses_bad_images_clearly(ctx, finished, tmp_path):
    from bad_images import REFUSED, write_bad_images

    _, snapshot = finished
    paths = write_bad_images(tmp_path)
    for name, message in REFUSED.items():
        with pytest.raises(gr.Error, match=message):
            api.classify(ctx, str(paths[name]), snapshot.job_id)
    result = api.classify(ctx, str(paths["rgba.png"]), snapshot.job_id)
    assert set(result["predictions"]) == {"ce", "cce"} and result["notes"]


def test_start_api_refuses_invalid_configs_clearly(ctx):
    for request, message in [({"epochs": -1}, "epochs"), ({"losses": ["ce", "nope"]}, "nope"),
                             ({"imbalance_ratio": 0.1}, "imbalance_ratio"), ({"batch_size": 10**6}, "batch_size"),
                             ({"preset": ["quick"]}, "preset"), ({"seeds": [None]}, "seeds"), ({"losses": 5}, "losses"),
                             ({"seed": "x"}, "seeds"), ({"imbalance_ratio": 500}, "imbalance_ratio")]:
        with pytest.raises(gr.Error, match=message):
            api.start_comparison(ctx, {"preset": "quick", "dataset": "synthetic", **request})
    assert ctx.app.manager.list_jobs() == []
    with pytest.raises(gr.Error, match="no job"):
        api.job_status(ctx, "missing-job")


def test_failed_job_shows_its_reason(ctx):
    job = api.start_comparison(ctx, {"preset": "quick", "dataset": "cifar10", "epochs": 1})
    snapshot = ctx.app.manager.wait(job["job_id"], timeout=60)
    assert snapshot.status == JobStatus.FAILED
    text = status_html(snapshot)
    assert "<b>Reason:</b>" in text and "not available" in text and "CCE_DATA_DIR" in text


def test_runs_overlay_two_runs(ctx, finished):
    _, snapshot = finished
    ui = ctx.ui
    job_id = api.start_comparison(ctx, {"preset": "quick", "epochs": 1, "seeds": [0], **FAST})["job_id"]
    ctx.app.manager.wait(job_id, timeout=120)
    refreshed = runs.on_refresh_runs(ctx)
    assert {choice[0] for choice in refreshed[ui.runs.run_choice].choices} >= {job_id, snapshot.job_id}
    hint = runs.on_runs_selected(ctx, [job_id])
    assert "two or more" in hint[ui.runs.overlay_accuracy]
    overlay = runs.on_runs_selected(ctx, [job_id, snapshot.job_id])
    assert "A · CE" in overlay[ui.runs.overlay_accuracy] and "B · CCE" in overlay[ui.runs.overlay_accuracy]
    assert "A · CE" in overlay[ui.runs.overlay_recall] and "hatch" in overlay[ui.runs.overlay_recall]
    opened = runs.on_open_run(ctx, {ui.runs.run_choice: [snapshot.job_id], ui.visitor: load(ctx)[ui.visitor], ui.compare.smoothing: 0.8,
                                    **form(ctx, "quick", dataset="cifar10", profile="exp", ratio=10)})
    assert opened[ui.view].kind == "run" and opened[ui.tabs].selected == "compare"
    with pytest.raises(gr.Error, match="exactly one"):
        runs.on_open_run(ctx, {ui.runs.run_choice: [job_id, snapshot.job_id], ui.visitor: None, ui.compare.smoothing: 0.8,
                               **form(ctx, "quick", dataset="cifar10", profile="exp", ratio=10)})
    with pytest.raises(gr.Error, match="Shipped runs cannot be deleted"):
        runs.on_delete_run(ctx, [snapshot.job_id], None)


def test_drawn_and_memory_are_typed_and_json_at_the_edge():
    memory = BrowserMemory.from_json({"visitor": "abc", "job_id": None})
    assert memory == BrowserMemory("abc", None) and memory.to_json() == {"visitor": "abc", "job_id": None}
    assert BrowserMemory.from_json("old-job-id").job_id == "old-job-id" and BrowserMemory.from_json(7) == BrowserMemory()
    assert BrowserMemory.from_json({"client_id": "from-an-older-app"}).token is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        Drawn().version = 3


def test_tick_redraws_the_verdict_when_the_job_starts_running(ctx):
    ui, manager = ctx.ui, ctx.app.manager
    first = start(ctx, load(ctx))
    job_id = first[ui.view].id
    snapshot = manager.wait_for_change(job_id, -1, timeout=30)
    while snapshot.status != JobStatus.RUNNING:
        snapshot = manager.wait_for_change(job_id, snapshot.version, timeout=30)
    drawn = dataclasses.replace(first[ui.drawn], status="queued", epochs=len(snapshot.epochs), version=snapshot.version - 1)
    tick = handlers.on_tick(ctx, first[ui.view], drawn, first[ui.visitor], 0.8)
    assert "running" in tick[ui.compare.verdict] and tick[ui.drawn].status == "running"
    manager.cancel(job_id)


def test_smoothing_control_redraws_the_loss_chart(ctx, finished):
    _, snapshot = finished
    view = ViewRef("run", snapshot.job_id, "Shipped run")
    raw = handlers.on_smoothing(ctx, view, 0)[ctx.ui.compare.loss_chart]
    smoothed = handlers.on_smoothing(ctx, view, 0.9)[ctx.ui.compare.loss_chart]
    assert "Raw values" in raw and "moving average, 0.9" in smoothed


# ---------------------------------------------------------------- issue 18: diverged runs, owners, small holes


def diverged(snapshot):
    """The run as a diverged one reads: metrics None, NaN and inf (the trainer writes NaN as null)."""
    latest = {loss: value.model_copy(update={
                  "complement_entropy": None, "accuracy": float("nan"), "balanced_accuracy": float("inf"),
                  "group_recall": {"head": None, "tail": float("nan")}, "per_class_recall": (None,) * len(value.per_class_recall)})
              for loss, value in snapshot.latest.items()}
    epochs = tuple(point.model_copy(update={"losses": {loss: value.model_copy(update={"test_loss": float("inf"), "balanced_accuracy": None})
                                                       for loss, value in point.losses.items()}}) for point in snapshot.epochs)
    steps = tuple(point.model_copy(update={"losses": {loss: float("nan") for loss in point.losses}}) for point in snapshot.steps)
    return dataclasses.replace(snapshot, latest=latest, epochs=epochs, steps=steps)


def test_every_view_draws_a_diverged_run(finished):
    _, snapshot = finished
    broken = diverged(snapshot)
    table = groups_table(broken)
    assert set(table["test complement entropy"]) == {"n/a"} and set(table["accuracy %"]) == {"n/a"}
    assert set(table["balanced accuracy %"]) == {"n/a"} and set(table["tail %"]) == {"n/a"}
    assert "n/a" in recall_chart(broken) and "<svg" not in epoch_chart(broken, BALANCED_ACCURACY, "t", as_percent=True)
    assert "inf" not in epoch_chart(broken, TEST_LOSS, "t") and "nan" not in loss_chart(broken).lower()
    assert "<table" in confusion_html(broken) and status_html(broken)


def test_a_view_that_cannot_be_drawn_shows_a_message_in_place(ctx, finished, caplog):
    _, snapshot = finished
    garbage = dataclasses.replace(snapshot, latest={"ce": "not an evaluation"}, comparisons=({"other": 1},))
    view = ViewRef("run", snapshot.job_id, "Run")
    with caplog.at_level(logging.WARNING, logger="cce_demo.ui"):
        first = compare_view.render(ctx, view, garbage, Controls(None), smoothing=0.8)
        again = compare_view.render(ctx, view, garbage, Controls(None), smoothing=0.8)
    ui = ctx.ui
    assert "cannot be drawn for this run" in first[ui.compare.recall_chart] and "The rest of the page works" in first[ui.compare.confusion]
    assert first == again or first[ui.compare.recall_chart] == again[ui.compare.recall_chart]
    failures = [record for record in caplog.records if "cannot draw" in record.getMessage()]
    assert failures and all(record.exc_info is None for record in failures)
    assert len(failures) == len({record.getMessage() for record in failures})  # once per run and view, not per tick


def public(ctx):
    return UiContext(dataclasses.replace(ctx.app, public=True), ctx.ui)


def finished_job(ctx, page):
    job_id = start(ctx, page, epochs=1)[ctx.ui.view].id
    ctx.app.manager.wait(job_id, timeout=120)
    return job_id


def test_in_public_mode_only_its_owner_deletes_a_run(ctx):
    space = public(ctx)
    ui = ctx.ui
    owner, stranger = load(space), load(space)
    job_id = finished_job(space, owner)
    selected = runs.on_runs_selected(space, [job_id], stranger[ui.visitor])
    assert selected[ui.runs.delete_button].interactive is False and "Only the browser that trained" in selected[ui.runs.delete_note]
    with pytest.raises(gr.Error, match="Only the browser that trained or uploaded a run can delete it"):
        runs.on_delete_run(space, [job_id], stranger[ui.visitor])
    with pytest.raises(gr.Error, match="reload the page|Only the browser"):
        runs.on_delete_run(space, [job_id], None)
    assert (ctx.app.manager.runs_dir / job_id).is_dir()
    assert runs.on_runs_selected(space, [job_id], owner[ui.visitor])[ui.runs.delete_button].interactive is True
    runs.on_delete_run(space, [job_id], owner[ui.visitor])
    assert not (ctx.app.manager.runs_dir / job_id).exists()


def test_locally_the_machine_s_owner_deletes_any_run(ctx):
    ui = ctx.ui
    job_id = finished_job(ctx, load(ctx))
    someone = load(ctx)  # another browser on this machine
    runs.on_delete_run(ctx, [job_id], someone[ui.visitor])
    assert not (ctx.app.manager.runs_dir / job_id).exists()
    assert not any(path.name.startswith(".removing-") for path in ctx.app.manager.runs_dir.iterdir())


def test_delete_asks_first_names_the_run_and_can_be_undone(ctx):
    from cce_demo.retention import TRASH_SECONDS, empty_trash

    ui = ctx.ui
    job_id = finished_job(ctx, load(ctx))
    runs_dir = ctx.app.manager.runs_dir
    assert runs.on_runs_selected(ctx, [])[ui.runs.delete_button].interactive is False  # nothing selected
    asked = runs.on_delete_request(ctx, [job_id], None)
    assert asked[ui.runs.delete_confirm].visible is True and job_id in asked[ui.runs.delete_question]
    assert (runs_dir / job_id).is_dir()  # asking removes nothing
    assert runs.on_delete_cancel(ctx)[ui.runs.delete_confirm].visible is False
    deleted = runs.on_delete_run(ctx, [job_id], None)
    assert not (runs_dir / job_id).exists() and job_id not in deleted[ui.runs.run_choice].choices
    assert deleted[ui.runs.undo_button].visible is True and job_id in deleted[ui.runs.undo_note]
    restored = runs.on_undo_delete(ctx, deleted[ui.runs.deleted])
    assert (runs_dir / job_id).is_dir() and restored[ui.runs.run_choice].value == [job_id]
    with pytest.raises(gr.Error, match="no longer in the trash"):
        runs.on_undo_delete(ctx, deleted[ui.runs.deleted])  # already restored
    # Deleted again and left: the trash is emptied once its time is up, and Undo says so.
    again = runs.on_delete_run(ctx, [job_id], None)
    assert empty_trash(runs_dir, now=__import__("time").time() + TRASH_SECONDS - 5) == []
    assert empty_trash(runs_dir, now=__import__("time").time() + TRASH_SECONDS + 1) == [job_id]
    assert not any(path.name.startswith(".trash-") for path in runs_dir.iterdir())
    with pytest.raises(gr.Error, match="no longer in the trash"):
        runs.on_undo_delete(ctx, again[ui.runs.deleted])


def test_an_unreadable_run_is_listed_without_the_server_path(ctx):
    broken = ctx.app.manager.runs_dir / "broken-run"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    message = runs.on_refresh_runs(ctx)[ctx.ui.runs.runs_problems]
    assert "broken-run" in message and str(ctx.app.manager.runs_dir) not in message


def test_a_results_file_with_a_missing_key_is_listed_not_fatal(tmp_path):
    from cce_demo.ui.results.views import results_tab_html

    grid = tmp_path / "broken-grid"
    grid.mkdir()
    (grid / "results.json").write_text(json.dumps({"format_version": 1, "tables": [{"no": "keys"}]}))
    text = results_tab_html(tmp_path)
    assert "Unreadable" in text and "broken-grid" in text


def test_the_app_deletes_its_upload_cache_and_signs_visitors(finished, tmp_path):
    from cce_demo.ui.wiring import DELETE_CACHE, build_app

    manager, _ = finished
    app = AppContext(manager, RunCatalog(tmp_path), ModelCache())
    demo = build_app(app)
    assert demo.delete_cache == DELETE_CACHE
    visitor = app.signer.issue()
    token = app.signer.token_for(visitor)
    tampered = token[:-1] + ("1" if token.endswith("0") else "0")
    assert app.signer.verify(token) == visitor and app.signer.verify(tampered) is None
    assert app.signer.verify("v1." + visitor.id + "." + "0" * 64) is None
    other = AppContext(manager, RunCatalog(tmp_path), ModelCache())
    assert other.signer.verify(token) is None  # another process (another secret) does not accept it


def test_the_runs_tab_says_where_runs_are_kept():
    note = "Runs are kept in /data/runs, on the persistent storage mounted at /data: they survive restarts."
    with gr.Blocks() as demo:
        build_layout(storage_note=note)
    shown = [block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "storage-note"]
    assert len(shown) == 1 and shown[0].value == note
    with gr.Blocks() as quiet:
        build_layout()
    assert not [block for block in quiet.blocks.values() if getattr(block, "elem_id", None) == "storage-note"]


# ---------------------------------------------------------------- one baseline, one sign


@pytest.fixture(scope="module")
def baseline_listed_last(tmp_path_factory):
    """A finished run whose losses list CE second (`losses=["cce", "ce"]`, which the API accepts)."""
    manager = JobManager(tmp_path_factory.mktemp("ui-cce-first"), allow_download=False, worker_niceness=0)
    job_id = manager.submit(TrainConfig(epochs=1, seeds=(0,), losses=["cce", "ce"], **FAST))
    snapshot = manager.wait(job_id, timeout=120)
    manager.shutdown()
    assert snapshot.status == JobStatus.DONE
    return snapshot


def test_card_per_class_column_and_overlay_share_one_sign_whatever_the_loss_order(baseline_listed_last):
    """CE is the baseline even when listed second: the card, the per-class difference column beside it and the
    Runs overlays all show CCE − CE, with the sign of CCE's score minus CE's (the oracle: the final evaluations)."""
    import re

    from cce_demo.ui.kit.formatting import points
    from cce_demo.ui.kit.charts import head_to_tail

    snapshot = baseline_listed_last
    assert snapshot.config.losses == ("cce", "ce") and snapshot.config.baseline == "ce"
    cce, ce = snapshot.latest["cce"], snapshot.latest["ce"]

    card = verdict_html(snapshot, "Your run")
    balanced = 100 * (cce.balanced_accuracy - ce.balanced_accuracy)
    assert f"CCE (paper form) − CE: {points(balanced)} " in card and "CE − CCE" not in card

    chart = recall_chart(snapshot)
    order = head_to_tail(snapshot.class_counts)
    per_class = [100 * (cce.per_class_recall[index] - ce.per_class_recall[index]) for index in order]
    assert re.findall(r'title="(CC?E − CC?E: [^"]*?) points', chart) == [f"CCE − CE: {value:+.1f}" for value in per_class]

    accuracy = runs.overlay_accuracy([("A", snapshot)])
    lines = re.findall(r'<path ([^>]*)><title>(A · [^<:]*)</title>', accuracy)
    dashed = {title: "stroke-dasharray" in attributes for attributes, title in lines}
    assert dashed == {"A · CE": False, "A · CCE": True}  # the baseline solid, the other loss dashed
    recall = runs.overlay_recall([("A", snapshot), ("B", snapshot)])
    hatched = {title.split(" · ")[1] for title, hatch in re.findall(r'<div class="cc-bar" title="(A · [^"]*)"><span[^>]*><i( class="hatch")?', recall) if hatch}
    assert hatched == {"CCE"}  # striped: the non-baseline loss only


def test_example_files_do_not_name_their_class():
    """The Classify tab's file box shows the file's name; examples/labels.json keeps the true classes."""
    import json

    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    labels = json.loads((examples / "labels.json").read_text())["labels"]
    names = sorted(path.name for path in examples.glob("*.png"))
    assert names == sorted(labels) and len(names) == 10
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert sorted(labels.values()) == sorted(classes)
    assert not any(label in name.lower() for name in names for label in classes)


def test_the_live_strip_shows_progress_and_each_model_while_a_job_trains():
    from types import MappingProxyType

    from cce_demo.run_state import JobSnapshot
    from cce_demo.schema import EpochPoint, EpochScores, StepMetrics
    from cce_demo.ui.compare.views import live_strip_html

    config = TrainConfig(dataset="synthetic", epochs=4)
    scores = {loss: EpochScores(test_loss=1.0, accuracy=0.5, balanced_accuracy=value, complement_entropy=0.1, group_recall={})
              for loss, value in (("ce", 0.4321), ("cce", 0.41))}
    snapshot = JobSnapshot(
        job_id="j", status=JobStatus.RUNNING, config=config, version=3, queue_position=None, progress=0.42,
        eta_seconds=75.0, message="", error="", device="cpu", run_dir=None, class_names=(), class_counts=(),
        steps=(StepMetrics(seed=0, step=5, global_step=5, epoch=1.2, losses={"ce": 1.23456, "cce": 2.0},
                           cross_entropy={"ce": 1.2, "cce": 1.9}, learning_rate=0.1, images_per_second=100.0),),
        epochs=(EpochPoint(seed=0, epoch=1, global_step=4, losses=scores),), latest=MappingProxyType({}),
        comparisons=(), summaries=MappingProxyType({}), submitted_at=0.0, started_at=0.0, finished_at=None,
    )
    html = live_strip_html(snapshot)
    assert "42 %" in html and "about 1 min 15 s left" in html and "epoch 1 of 4 evaluated" in html
    assert "loss 1.235, balanced accuracy 43.2 %" in html and "loss 2.000, balanced accuracy 41.0 %" in html
    assert live_strip_html(dataclasses.replace(snapshot, status=JobStatus.DONE)) == ""
    assert live_strip_html(None) == ""


def test_no_clear_difference_on_the_card_says_what_it_could_detect(finished):
    """Issue 30: with several seeds and an interval across zero, the card gives the detectable difference and
    the equivalence test (equivalence.py), never 'no difference'."""
    from cce_demo.equivalence import sensitivity, sensitivity_words
    from cce_demo.schema import SeedSummary

    _, snapshot = finished
    values = (0.4, -0.6, 1.1)  # points: the interval covers zero
    comparisons = tuple(comparison.model_copy(update={"seed": seed, "balanced_accuracy_difference": value / 100})
                        for seed, value in zip((0, 1, 2), values) for comparison in snapshot.comparisons[:1])
    spread = dataclasses.replace(snapshot, comparisons=comparisons, config=snapshot.config.replace(seeds=(0, 1, 2)))
    text = " ".join(verdict_html(spread, "Your run").split())
    assert "no clear difference at this budget" in text
    expected = sensitivity_words(sensitivity([value / 100 for value in values]))
    assert "That is not evidence of no difference: " + expected[0].lower() + expected[1:] in text.replace("&#x27;", "'")
