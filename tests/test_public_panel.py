"""Issue 20, public mode explains itself: the panel states the limits that apply (from `budget.Limits`, never
typed), Start is disabled with its reason when the form's estimate is over the limit, and refusal toasts are
plain text. Pure functions and handlers; the browser test is test_public_panel_browser.py."""
from __future__ import annotations

from cce_demo.budget import SPACE_DEFAULTS, Limits, describe_duration
from cce_demo.ui.compare.public import plain_text, public_panel_html
from cce_demo.ui.compare.timing import FormTime
from cce_demo.ui.compare.view import start_button
from cce_demo.ui.kit.state import Controls


def test_the_panel_states_every_limit_of_a_space():
    limits = Limits.from_environment({"SPACE_ID": "someone/cce"})
    panel = public_panel_html(limits)
    assert f"{describe_duration(SPACE_DEFAULTS['max_job_minutes'] * 60)}</b> each" in panel
    assert "stopped" in panel and describe_duration(limits.job_time_limit_seconds) in panel
    assert f"<b>{SPACE_DEFAULTS['max_jobs_per_client']}</b> queued or running job per visitor" in panel
    assert f"newest <b>{SPACE_DEFAULTS['keep_runs']}</b> runs" in panel and f"{SPACE_DEFAULTS['max_runs_mb']:g} MB" in panel
    assert "temporary" in panel and "Download" in panel and "`" not in panel


def test_the_panel_follows_the_limits_set_and_the_storage_found():
    limits = Limits(max_job_minutes=60, max_jobs_per_client=3, keep_runs=None, max_runs_mb=None)
    panel = public_panel_html(limits, "Runs are kept in /data/runs, on the persistent storage: they survive restarts.")
    assert "1 hour" in panel or "60 min" in panel
    assert "<b>3</b> queued or running jobs per visitor" in panel
    assert "are kept;" not in panel  # no retention limit: nothing claimed about it
    assert "survive restarts" in panel and "temporary" not in panel


def test_refusal_toasts_lose_their_backticks():
    message = "run long jobs from the command line: `python -m cce_demo.train` for one run."
    assert plain_text(message) == "run long jobs from the command line: “python -m cce_demo.train” for one run."
    assert plain_text("no code here") == "no code here"


def test_start_is_disabled_with_its_reason_over_the_limit():
    over = FormTime(1500.0, "about 25 min on this machine", True, limit_seconds=1200.0)
    button = start_button(Controls(None), over.refusal())
    assert button.interactive is False and "over the time limit" in button.value
    within = FormTime(600.0, "about 10 min on this machine", True, limit_seconds=1200.0)
    assert start_button(Controls(None), within.refusal()).interactive is True
    busy = start_button(Controls("job-1"), "")
    assert busy.interactive is False and "one run at a time" in busy.value  # a job of its own still wins


def _job(status, *, position=None, eta=None, estimate=None, progress=0.0):
    import types

    return types.SimpleNamespace(status=status, queue_position=position, eta_seconds=eta, estimate_seconds=estimate,
                                 progress=progress)


def test_the_expected_wait_adds_the_time_left_ahead():
    from cce_demo.status import JobStatus
    from cce_demo.ui.compare.timing import expected_wait

    running = _job(JobStatus.RUNNING, eta=120.0)
    first, mine, after = (_job(JobStatus.QUEUED, position=1, estimate=300.0), _job(JobStatus.QUEUED, position=2, estimate=50.0),
                          _job(JobStatus.QUEUED, position=3, estimate=999.0))
    assert expected_wait([running, first, mine, after], position=2) == 420.0  # 120 left + 300 ahead; not its own
    assert expected_wait([running, first, mine, after], position=2, workers=2) == 210.0
    assert expected_wait([_job(JobStatus.RUNNING, estimate=100.0, progress=0.25), mine], position=1) == 75.0
    assert expected_wait([_job(JobStatus.RUNNING), mine], position=1) is None  # no figure ahead: no wait said


def test_a_queued_status_line_gives_its_place_and_wait():
    from cce_demo.ui.compare import views

    snapshot = queued_snapshot()
    text = views.status_html(snapshot, "Your run", wait_seconds=125.0)
    assert "position 2" in text and "Expected wait: about 2 min 5 s" in text
    assert "Expected wait" not in views.status_html(snapshot, "Your run")


def queued_snapshot():
    import types

    from cce_demo.config import PRESETS
    from cce_demo.status import JobStatus

    return types.SimpleNamespace(job_id="job-1", status=JobStatus.QUEUED, config=PRESETS["quick"], device="cpu",
                                 queue_position=2, estimate_seconds=80.0, estimate_text="about 1 min 20 s on this machine",
                                 epochs=(), progress=0.0, eta_seconds=None, message="", error="")
