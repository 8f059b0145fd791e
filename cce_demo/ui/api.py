"""The named API endpoints for gradio_client: /start_comparison, /job_status, /cancel_job, /list_runs and
/classify. Same arguments and answers as before the UI was split into modules (tests/test_app_client.py)."""
from __future__ import annotations

from typing import Any

import gradio as gr

from ..checkpoints import RunCorruptError
from ..jobs import JobSnapshot, UnknownJobError
from .catalog import runs_records
from .classify import classify_file
from .context import UiContext
from .errors import user_error
from .settings import config_from_request


def job_summary(snapshot: JobSnapshot) -> dict[str, Any]:
    """A job's state as plain JSON."""
    return {
        "job_id": snapshot.job_id, "status": str(snapshot.status), "queue_position": snapshot.queue_position,
        "progress": round(snapshot.progress, 4), "eta_seconds": snapshot.eta_seconds,
        "estimate_seconds": getattr(snapshot, "estimate_seconds", None), "message": snapshot.message,
        "error": snapshot.error, "device": snapshot.device, "config": snapshot.config.to_dict(),
        "class_names": list(snapshot.class_names), "class_counts": list(snapshot.class_counts),
        "latest": {loss: dict(value) for loss, value in snapshot.latest.items()},
        "epochs_done": len(snapshot.epochs), "comparisons": list(snapshot.comparisons),
        "summaries": dict(snapshot.summaries), "version": snapshot.version,
    }


def start_comparison(ctx: UiContext, config: dict) -> dict:
    try:
        job_id = ctx.app.manager.submit(config_from_request(config))
    except (ValueError, RuntimeError) as error:  # invalid settings, a full queue, a budget refusal
        raise user_error(str(error), "api start") from None
    return job_summary(ctx.app.manager.snapshot(job_id))


def job_status(ctx: UiContext, job_id: str) -> dict:
    try:
        return job_summary(ctx.app.manager.snapshot(job_id))
    except UnknownJobError as error:
        raise user_error(str(error), "api status") from None


def cancel_job(ctx: UiContext, job_id: str) -> dict:
    try:
        ctx.app.manager.cancel(job_id)
        return job_summary(ctx.app.manager.snapshot(job_id))
    except UnknownJobError as error:
        raise user_error(str(error), "api cancel") from None


def list_runs(ctx: UiContext) -> list:
    return runs_records(ctx.app.catalog, ctx.app.catalog.records()[0])


def classify(ctx: UiContext, file_path: Any, run_id: Any) -> dict:
    try:
        record, _, prepared, predictions = classify_file(ctx, file_path, run_id)
    except (ValueError, RunCorruptError) as error:
        raise user_error(str(error), "api classify") from None
    return {
        "run_id": record.run_id, "notes": list(prepared.notes),
        "predictions": {loss: [{"class": name, "probability": p} for name, p in top] for loss, top in predictions.items()},
    }


def register_api(ctx: UiContext) -> None:
    """Register the endpoints (inside the Blocks context). gr.api reads each function's type hints, so each
    is a small typed function over `ctx`."""

    def api_start_comparison(config: dict) -> dict:
        """Queue a paired training job. `config`: {"preset": "quick"|"standard"|"ldam-drw"|"authors", ...TrainConfig fields}."""
        return start_comparison(ctx, config)

    def api_job_status(job_id: str) -> dict:
        """Status, progress, ETA and latest metrics of a job (or of a finished run by its id)."""
        return job_status(ctx, job_id)

    def api_cancel_job(job_id: str) -> dict:
        """Cancel a queued or running job."""
        return cancel_job(ctx, job_id)

    def api_list_runs() -> list:
        """Every run on disk (yours and shipped): status, partial or not, balanced accuracy, differences to CE."""
        return list_runs(ctx)

    def api_classify(file_path, run_id):
        return classify(ctx, file_path, run_id)

    gr.api(api_start_comparison, api_name="start_comparison")
    gr.api(api_job_status, api_name="job_status", concurrency_limit=None)
    gr.api(api_cancel_job, api_name="cancel_job", concurrency_limit=None)
    gr.api(api_list_runs, api_name="list_runs", concurrency_limit=None)
    ui = ctx.ui
    ui.api_button.click(api_classify, [ui.api_file, ui.api_run], ui.api_result, api_name="classify",
                        concurrency_limit=2, concurrency_id="classify")
