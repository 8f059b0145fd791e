"""The named API endpoints for gradio_client: /start_comparison, /job_status, /cancel_job, /list_runs, /classify,
/disagreement, /export_run and /import_run (tests/test_app_client.py, tests/test_public.py).

Every endpoint is a `gr.api` function: Gradio hands it the JSON it received, unconverted, so each argument is
checked here first (`check_id`, `check_file`, `config_from_request`) and anything unusable is refused with a
message naming the parameter and what it expects, never with Gradio's generic "has raised an exception".

Who is asking: an API call is identified by the client address as Gradio reports it (`request.client.host`,
which uvicorn takes from X-Forwarded-For only when the connection comes from an address in
FORWARDED_ALLOW_IPS, by default 127.0.0.1 and ::1; identity.py); the per-visitor job limit counts jobs per
address, browser and API alike. In public mode (a Space) /cancel_job stops only the caller's own jobs, and
/classify, /import_run and /export_run are rate-limited per address (admission.py).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from ..jobs import UnknownJobError
from ..run_directory import RUN_ID_PATTERN, RunCorruptError, read_predictions, to_jsonable
from ..run_state import JobSnapshot
from ..per_image_predictions import disagreement
from ..transfer import ExportRefused, ImportRefused
from .catalog import runs_records
from .classify.handlers import classify_file
from .compare.settings import config_from_request
from .context import UiContext
from .kit.admission import RefusedError
from .kit.errors import user_error, without_paths
from .kit.identity import address_key, address_of
from .runs.handlers import export_zip, import_zip

MAX_SHOWN = 40  # characters of a refused value echoed back in a message
MAX_MESSAGE = 600  # a message never grows with the input that caused it


def shown(value: Any) -> str:
    """A refused value, described briefly: its JSON type and the start of its text."""
    kind = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", tuple: "a list", dict: "an object"}.get(type(value), type(value).__name__)
    if value is None:
        return kind
    text = repr(value)
    if len(text) > MAX_SHOWN:
        text = text[:MAX_SHOWN] + f"… ({len(text):,} characters)"
    return f"{kind} {text}"


def short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "…"


def check_id(value: Any, name: str, what: str = "run") -> str:
    """A job or run id as the API received it: a string of the id's form, so no path can be smuggled in."""
    example = "'cifar10-lt100-standard-ce-cce'"
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a {what} id (a string such as {example}), got {shown(value)}")
    if not RUN_ID_PATTERN.match(value):
        raise ValueError(f"{name}: {shown(value)} is not a {what} id (letters, digits, '.', '_' and '-', starting "
                         "with a letter or digit, at most 128 characters)")
    return value


def check_file(value: Any, name: str, what: str) -> str:
    """The local path of a file the client uploaded (gradio_client: `handle_file(path)`). Only a file object
    Gradio checked and moved into its upload cache is accepted: never a bare path, which would let a caller
    read the server's own files."""
    how = f"expected {what} uploaded with gradio_client's handle_file(path)"
    if not isinstance(value, dict):
        raise ValueError(f"{name}: {how}, got {shown(value)}")
    meta, path = value.get("meta"), value.get("path")
    if not isinstance(meta, dict) or meta.get("_type") != "gradio.FileData" or not isinstance(path, str) or not path:
        raise ValueError(f"{name}: {how}, got an object that is not an uploaded file ({shown(value)})")
    if not in_upload_cache(path):
        raise ValueError(f"{name}: that file was not uploaded to this app")
    return path


def in_upload_cache(path: str) -> bool:
    """Whether `path` is inside Gradio's upload cache (where Gradio moved a checked upload)."""
    from gradio.utils import get_upload_folder, is_in_or_equal

    try:
        return is_in_or_equal(os.path.abspath(path), get_upload_folder())
    except (OSError, ValueError):
        return False


def client_of(request: gr.Request | None) -> str | None:
    """The visitor behind an API call: its address key, or None when there is no request (a trusted caller)."""
    return address_key(request) if request is not None else None


def job_summary(snapshot: JobSnapshot) -> dict[str, Any]:
    """A job's state as plain JSON."""
    return {
        "job_id": snapshot.job_id, "status": str(snapshot.status), "queue_position": snapshot.queue_position,
        "progress": round(snapshot.progress, 4), "eta_seconds": snapshot.eta_seconds,
        "estimate_seconds": snapshot.estimate_seconds, "message": without_paths(snapshot.message),
        "error": without_paths(snapshot.error), "device": snapshot.device, "config": snapshot.config.to_dict(),
        "class_names": list(snapshot.class_names), "class_counts": list(snapshot.class_counts),
        "latest": to_jsonable(dict(snapshot.latest)),
        "epochs_done": len(snapshot.epochs), "comparisons": to_jsonable(snapshot.comparisons),
        "summaries": to_jsonable(dict(snapshot.summaries)), "version": snapshot.version,
        # True while a stopped job is still saving what it trained (a cancelled job reads cancelled at once)
        "recording": snapshot.recording,
        # A stopped run that saved its state: where it goes on from, and the command (a path relative to the app)
        "resumable_from": list(snapshot.resumable_from) if snapshot.resumable_from else None,
        "resume_command": snapshot.resume_command,
    }


def start_comparison(ctx: UiContext, config: Any, client_id: str | None = None) -> dict:
    """Queue a job for `client_id` (None: a trusted caller, no per-visitor limit). The answer holds the
    estimate: `estimate_seconds` and, in words, `estimate`."""
    manager = ctx.app.manager
    try:
        train_config = config_from_request(config)
        estimate = manager.estimate(train_config)
        job_id = manager.submit(train_config, client_id=client_id)
    except (ValueError, RuntimeError) as error:  # invalid settings, over budget, per-visitor limit, a full queue
        raise user_error(short(str(error)), "api start") from None
    summary = job_summary(manager.snapshot(job_id))
    summary.update(estimate_seconds=round(estimate.total_seconds, 1), estimate=estimate.text)
    return summary


def job_status(ctx: UiContext, job_id: Any) -> dict:
    try:
        return job_summary(ctx.app.manager.snapshot(check_id(job_id, "job_id", "job")))
    except (UnknownJobError, ValueError) as error:
        raise user_error(short(str(error)), "api status") from None


def cancel_job(ctx: UiContext, job_id: Any, caller: str | None = None) -> dict:
    """Cancel a job. In public mode only the caller's own (submitted from its address); `caller` None is a
    trusted caller."""
    try:
        job_id = check_id(job_id, "job_id", "job")
        snapshot = ctx.app.manager.snapshot(job_id)
        if ctx.app.public and caller is not None and not snapshot.is_finished and snapshot.client_id != caller:
            raise PermissionError(f"job_id: job {job_id!r} was started by another visitor; only they can stop it")
        ctx.app.manager.cancel(job_id)
        return job_summary(ctx.app.manager.snapshot(job_id))
    except (UnknownJobError, ValueError, PermissionError) as error:
        raise user_error(short(str(error)), "api cancel") from None


def list_runs(ctx: UiContext) -> list:
    return runs_records(ctx.app.catalog, ctx.app.catalog.records()[0])


def classify(ctx: UiContext, file_path: Any, run_id: Any, address: str = "") -> dict:
    """Classify a local image file (a path this server trusts) with a run's models; one at a time per address."""
    try:
        check_id(run_id, "run_id")
        with ctx.app.admission.running(address, "classify"):
            record, _, prepared, predictions = classify_file(ctx, file_path, run_id)
    except (ValueError, RunCorruptError, RefusedError) as error:
        raise user_error(short(str(error)), "api classify") from None
    return {
        "run_id": record.run_id, "notes": list(prepared.notes),
        "predictions": {loss: [{"class": name, "probability": p} for name, p in top] for loss, top in predictions.items()},
    }


def disagreement_lists(ctx: UiContext, run_id: Any, loss_a: Any, loss_b: Any, seed: Any = None, only_class: Any = None) -> dict:
    """The test images that only `loss_a`'s model or only `loss_b`'s classified correctly, from the run's recorded
    final predictions: by true class head → tail, then by confidence gap. Their counts are McNemar's."""
    try:
        record = ctx.app.catalog.find(check_id(run_id, "run_id"))
        config = record.config
        for name, loss in (("loss_a", loss_a), ("loss_b", loss_b)):
            if loss not in config.losses:
                raise ValueError(f"{name}: {shown(loss)} is not a loss of this run; it trained {', '.join(config.losses)}")
        if loss_a == loss_b:
            raise ValueError("loss_b: pick a loss other than loss_a")
        chosen = config.seeds[0] if seed is None else seed
        if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen not in config.seeds:
            raise ValueError(f"seed: one of the run's seeds {list(config.seeds)}, got {shown(seed)}")
        if only_class is not None and (isinstance(only_class, bool) or not isinstance(only_class, int)
                                       or not 0 <= only_class < len(record.class_names)):
            raise ValueError(f"only_class: a class index from 0 to {len(record.class_names) - 1}, got {shown(only_class)}")
        recorded = read_predictions(record, chosen)
        if recorded is None:
            raise ValueError(f"run {record.run_id} has no per-image predictions for seed {chosen} (it was trained "
                             "before runs recorded them, or that seed did not finish)")
    except (ValueError, RunCorruptError) as error:
        raise user_error(short(str(error)), "api disagreement") from None
    labels, answers = recorded
    only_a, only_b = disagreement(labels, answers[loss_a], answers[loss_b], record.class_counts, only_class)
    names = record.class_names

    def rows(images):
        return [{"index": image.index, "class": names[image.label],
                 loss_a: {"predicted": names[image.predicted_a], "confidence": round(image.confidence_a, 4)},
                 loss_b: {"predicted": names[image.predicted_b], "confidence": round(image.confidence_b, 4)}}
                for image in images]

    return {"run_id": record.run_id, "seed": chosen, "loss_a": loss_a, "loss_b": loss_b,
            "only_a_correct": len(only_a), "only_b_correct": len(only_b), "only_a": rows(only_a), "only_b": rows(only_b)}


def export_run(ctx: UiContext, run_id: Any, address: str = "") -> Path:
    """The run's zip (run.json, events.jsonl, weights, curves.csv, recall.csv), written to the app's exports
    directory; shipped runs too."""
    try:
        return export_zip(ctx, check_id(run_id, "run_id"), address)
    except (ValueError, RunCorruptError, RefusedError) as error:  # ExportRefused is a ValueError
        raise user_error(short(str(error)), "api export") from None


def import_run(ctx: UiContext, zip_path: str, address: str = "", owner: str | None = None) -> dict:
    """Import a run zip (a path this server trusts) into the runs directory: {run_id, original_run_id,
    renamed, status}."""
    try:
        return import_zip(ctx, zip_path, address, owner).to_dict()
    except (ImportRefused, ExportRefused, ValueError, RefusedError) as error:
        raise user_error(short(str(error)), "api import") from None
    except OSError as error:
        raise user_error(f"import: could not write the run here ({error.strerror or type(error).__name__})", "api import") from None


def register_api(ctx: UiContext) -> None:
    """Register the endpoints (inside the Blocks context). gr.api reads each function's type hints for the API
    page; the values arrive as sent, so each is checked before use."""
    def api_start_comparison(config: dict, request: gr.Request) -> dict:
        """Queue a paired training job. `config`: {"preset": "quick"|"standard"|"ldam-drw"|"authors", ...TrainConfig
        fields}. The answer holds `estimate_seconds` and `estimate` (in words). Refused with a clear message when
        it is invalid, over the time limit per job, over the per-visitor limit, or the queue is full."""
        return start_comparison(ctx, config, client_of(request))

    def api_job_status(job_id: str) -> dict:
        """Status, progress, ETA and latest metrics of a job (or of a finished run by its id)."""
        return job_status(ctx, job_id)

    def api_cancel_job(job_id: str, request: gr.Request) -> dict:
        """Cancel a queued or running job (on a public deployment: one you started)."""
        return cancel_job(ctx, job_id, client_of(request))

    def api_list_runs() -> list:
        """Every run on disk (yours and shipped): status, partial or not, balanced accuracy, differences to CE."""
        return list_runs(ctx)

    def api_classify(file: FileData, run_id: str, request: gr.Request) -> dict:
        """Classify an image (`handle_file(path)`) with the models of the run `run_id`: each model's top 5."""
        try:
            path = check_file(file, "file", "an image (PNG, JPEG, WebP, GIF or BMP)")
        except ValueError as error:
            raise user_error(short(str(error)), "api classify") from None
        return classify(ctx, path, run_id, address_of(request))

    def api_disagreement(run_id: str, loss_a: str, loss_b: str, seed: int | None = None, only_class: int | None = None) -> dict:
        """The test images only one model of a pair classified correctly (McNemar's discordant pairs), from the
        run's recorded final predictions: {only_a_correct, only_b_correct, only_a: [...], only_b: [...]}, each
        image with its test index, true class and both models' answer and confidence; head → tail by class."""
        return disagreement_lists(ctx, run_id, loss_a, loss_b, seed, only_class)

    def api_export_run(run_id: str, request: gr.Request) -> FileData:
        """A run as one zip: run.json, events.jsonl, the models' weights (safetensors) and the training curves and
        per-class recall as CSV. Import it elsewhere with /import_run."""
        return FileData(path=str(export_run(ctx, run_id, address_of(request))))

    def api_import_run(file: FileData, request: gr.Request) -> dict:
        """Import a run zip exported by this app (`handle_file(path)`): {run_id, original_run_id, renamed, status}.
        A taken id gets `-imported-<n>`."""
        try:
            path = check_file(file, "file", "a run zip")
        except ValueError as error:
            raise user_error(short(str(error)), "api import") from None
        return import_run(ctx, path, address_of(request), client_of(request))

    gr.api(api_start_comparison, api_name="start_comparison")
    gr.api(api_job_status, api_name="job_status", concurrency_limit=None)
    gr.api(api_cancel_job, api_name="cancel_job", concurrency_limit=None)
    gr.api(api_list_runs, api_name="list_runs", concurrency_limit=None)
    gr.api(api_classify, api_name="classify", concurrency_limit=2, concurrency_id="classify")
    gr.api(api_disagreement, api_name="disagreement", concurrency_limit=2)
    gr.api(api_export_run, api_name="export_run", concurrency_limit=2, concurrency_id="transfer")
    gr.api(api_import_run, api_name="import_run", concurrency_limit=2, concurrency_id="transfer")
