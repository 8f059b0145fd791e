"""The Gradio app: train and compare with live curves, per-class recall side by side, classify uploads,
past runs, and named API endpoints. The only module that imports gradio; handlers are thin adapters
between widgets, the job manager and the pure view functions below.
"""
from __future__ import annotations

import html
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import gradio as gr
import pandas as pd
from PIL import Image

from . import data
from .checkpoints import RUN_ID_PATTERN, RunCorruptError, RunRecord, list_runs, read_run
from .config import DATASETS, LOSS_NAMES, MODEL_NAMES, PRESETS, PROFILES, TrainConfig, parse_seed_text, preset
from .jobs import JobManager, JobSnapshot, QueueFullError, UnknownJobError, format_eta, snapshot_from_run_dir
from .losses import DISPLAY_NAMES
from .data import planned_class_counts
from .metrics import GROUP_NAMES, format_p_value, format_percent, summarise_differences
from .predict import InvalidImageError, ModelCache, classify_upload

# One colour per loss, used by every chart; the CE part of a loss uses a lighter shade of its colour.
LOSS_COLOURS = {
    "ce": "#1f77b4", "cce": "#d62728", "cce_reference": "#ff7f0e", "focal": "#2ca02c", "logit_adjusted": "#9467bd",
}
CE_PART_COLOURS = {  # no entry for CE: its CE part is itself
    "cce": "#f2a0a0", "cce_reference": "#ffc58a", "focal": "#9fd89f", "logit_adjusted": "#cbb3e0",
}
MAX_LOSSES = len(LOSS_NAMES)
REFRESH_SECONDS = 1.0
PRESET_NOTES = {
    "quick": "About 1.5 minutes on 2 CPU cores: CE vs CCE, ResNet-8, CIFAR-10 with imbalance ratio 10 "
    "(at ratio 100 a one-minute budget leaves the rarest classes at zero recall for both losses).",
    "standard": "About 10 minutes on 2 CPU cores: the real long-tail protocol (ratio 100), ResNet-8, 25 epochs.",
    "ldam-drw": "LDAM-DRW's schedule: ResNet-32, 200 epochs, ratio 100, steps at epochs 160 and 180. Meant for a "
    "GPU (many hours on a CPU).",
    "authors": "The CCE authors' own script: ResNet-32, 200 epochs, ratio 100, steps at epochs 100 and 150, CE vs "
    "both CCE forms. Meant for a GPU (many hours on a CPU).",
}
# What seed-to-seed noise looked like in our own measurements (CIFAR-10-LT; README, "Presets"), quoted with
# its source in every one-seed verdict, whatever the run: it is context, not a result of this run.
SEED_NOISE_EVIDENCE = (
    "For scale, in our CIFAR-10-LT measurements two CCE models that differed only in the seed differed at "
    "p ≈ 5e-7, and with the quick preset CE's own balanced accuracy ranged over 3.5 points across 3 seeds."
)


# ---------------------------------------------------------------- settings


def display_name(loss: str) -> str:
    return DISPLAY_NAMES.get(loss, loss)


def loss_from_display(label: str) -> str:
    reverse = {value: key for key, value in DISPLAY_NAMES.items()}
    if label in reverse:
        return reverse[label]
    if label in LOSS_NAMES:
        return label
    raise ValueError(f"losses: unknown loss {label!r}; valid losses: {', '.join(LOSS_NAMES)}")


def parse_seeds(value: Any) -> Any:
    """Seeds as typed in the form ("0, 1, 2") or sent by the API (a list or one number); anything else goes to
    TrainConfig unchanged, whose validation names the field."""
    if isinstance(value, str):
        return parse_seed_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    return value


def config_from_form(
    preset_name: str, dataset: str, profile: str, imbalance_ratio: float, losses: Sequence[str], gamma: float,
    model: str, epochs: float, batch_size: float, learning_rate: float, seeds: str, device: str,
) -> TrainConfig:
    """The advanced-panel widgets (which start from the preset) to a validated config."""

    def whole(name: str, value: Any) -> int:
        if value is None or (isinstance(value, float) and (not math.isfinite(value) or value != int(value))):
            raise ValueError(f"{name}: must be a whole number, got {value!r}")
        return int(value)

    if imbalance_ratio is None or learning_rate is None or gamma is None:
        raise ValueError("imbalance_ratio, learning_rate and gamma need a value")
    return preset(
        preset_name,
        dataset=dataset, profile=profile, imbalance_ratio=float(imbalance_ratio),
        losses=tuple(loss_from_display(label) for label in losses or ()), gamma=float(gamma), model=model,
        epochs=whole("epochs", epochs), batch_size=whole("batch_size", batch_size),
        learning_rate=float(learning_rate), seeds=parse_seeds(seeds), device=device,
    )


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
    if dataset == "cifar10":
        return data.CIFAR10_CLASSES
    return tuple(f"class {index}" for index in range(num_classes))


def typed_frame(rows: Sequence[tuple], columns: dict[str, str]) -> pd.DataFrame:
    """A chart's data with fixed column types. Gradio types each axis from the dtypes, and an empty frame
    (before the first step) would otherwise be `object`, drawn as categories — a chart that then keeps
    treating losses as category labels."""
    return pd.DataFrame(list(rows), columns=list(columns)).astype(columns)


def counts_frame(class_names: Sequence[str], counts: Sequence[int]) -> pd.DataFrame:
    rows = [(f"{index} {name}", int(count)) for index, (name, count) in enumerate(zip(class_names, counts))]
    return typed_frame(rows, {"class": "str", "training images": "int64"})


# ---------------------------------------------------------------- views of a snapshot


def loss_curve_frame(snapshot: JobSnapshot) -> pd.DataFrame:
    rows = []
    for point in snapshot.steps:
        for loss, value in point["losses"].items():
            if value is None:
                continue
            rows.append((point["global_step"], value, display_name(loss)))
            if loss != "ce":
                rows.append((point["global_step"], point["cross_entropy"][loss], f"{display_name(loss)} · CE part"))
    return typed_frame(rows, {"step": "int64", "training loss": "float64", "series": "str"})


def curve_colours(losses: Sequence[str]) -> dict[str, str]:
    colours = {}
    for loss in losses:
        colours[display_name(loss)] = LOSS_COLOURS[loss]
        if loss in CE_PART_COLOURS:
            colours[f"{display_name(loss)} · CE part"] = CE_PART_COLOURS[loss]
    return colours


def epoch_frame(snapshot: JobSnapshot, metric: str) -> pd.DataFrame:
    """Per-epoch test metric per loss; with several seeds the epochs of later seeds follow the earlier ones."""
    seeds = list(snapshot.config.seeds)
    rows = []
    for point in snapshot.epochs:
        position = seeds.index(point["seed"]) * snapshot.config.epochs + point["epoch"] if point["seed"] in seeds else point["epoch"]
        for loss, values in point["losses"].items():
            if values.get(metric) is not None:
                rows.append((position, values[metric], display_name(loss)))
    return typed_frame(rows, {"epoch": "int64", metric.replace("_", " "): "float64", "series": "str"})


def recall_frame(snapshot: JobSnapshot) -> pd.DataFrame:
    """Per-class recall of each model as side-by-side bars: one bar per (class, loss), classes head to tail."""
    rows = []
    for index, name in enumerate(snapshot.class_names):
        count = snapshot.class_counts[index] if index < len(snapshot.class_counts) else 0
        for loss, evaluation in snapshot.latest.items():
            recall = evaluation["per_class_recall"][index]
            rows.append((f"{index} {name} ({count}) · {display_name(loss)}", recall if recall is not None else 0.0, display_name(loss)))
    return typed_frame(rows, {"class (training images) · loss": "str", "recall": "float64", "series": "str"})


def groups_table(snapshot: JobSnapshot) -> pd.DataFrame:
    rows = []
    for loss, evaluation in snapshot.latest.items():
        groups = evaluation["group_recall"]
        rows.append([
            display_name(loss), format_percent(evaluation["accuracy"]), format_percent(evaluation["balanced_accuracy"]),
            *[format_percent(groups.get(name)) for name in GROUP_NAMES], f"{evaluation['complement_entropy']:.3f}",
        ])
    return pd.DataFrame(rows, columns=["loss", "accuracy %", "balanced accuracy %", "head %", "medium %", "tail %", "test complement entropy"])


def confusion_html(snapshot: JobSnapshot) -> str:
    """Both confusion matrices as shaded HTML tables (row-normalised shading, raw counts shown)."""
    if not snapshot.latest:
        return ""
    parts = ['<div style="display:flex;flex-wrap:wrap;gap:24px">']
    # Column headers are class indices (the row labels name them), so 100 classes still fit.
    short = [str(index) for index in range(len(snapshot.class_names))]
    row_labels = [f"{index} {name}" for index, name in enumerate(snapshot.class_names)]
    for loss, evaluation in snapshot.latest.items():
        matrix = evaluation["confusion_matrix"]
        colour = LOSS_COLOURS.get(loss, "#444444")
        rgb = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        parts.append(f'<div><b style="color:{colour}">{html.escape(display_name(loss))}</b>'
                     '<table style="border-collapse:collapse;font-size:11px;margin-top:4px">'
                     '<tr><td style="padding:2px 4px">true ↓ / predicted →</td>')
        parts += [f'<td style="padding:2px 4px">{html.escape(name)}</td>' for name in short]
        parts.append("</tr>")
        for row_index, row in enumerate(matrix):
            total = max(1, sum(row))
            parts.append(f'<tr><td style="padding:2px 4px;white-space:nowrap">{html.escape(row_labels[row_index])}</td>')
            for value in row:
                alpha = value / total
                text_colour = "#fff" if alpha > 0.55 else "#111"
                parts.append(f'<td style="padding:2px 4px;text-align:right;color:{text_colour};'
                             f'background:rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.2f})">{value}</td>')
            parts.append("</tr>")
        parts.append("</table></div>")
    parts.append("</div>")
    return "".join(parts)


def verdict_markdown(snapshot: JobSnapshot) -> str:
    """The comparison in plain words. Never calls a loss better on a single seed."""
    if not snapshot.comparisons:
        if snapshot.is_finished and snapshot.status != "done":
            return f"**No comparison:** the run ended as *{snapshot.status}* before a seed finished."
        return "The verdict appears when the first seed has finished training."
    lines = []
    by_other: dict[str, list[dict[str, Any]]] = {}
    for comparison in snapshot.comparisons:
        by_other.setdefault(comparison["other"], []).append(comparison)
    for other, comparisons in by_other.items():
        baseline = comparisons[0]["baseline"]
        name, base_name = display_name(other), display_name(baseline)
        if len(comparisons) >= 2:
            # Also while later seeds still train: the interval over the seeds finished so far.
            summary = summarise_differences([c["balanced_accuracy_difference"] for c in comparisons])
            low, high = summary.interval
            mean = summary.mean
            per_seed = ", ".join(f"{100 * c['balanced_accuracy_difference']:+.1f}" for c in comparisons)
            if high < 0:
                judgement = f"{name} hurt here"
            elif low > 0:
                judgement = f"{name} helped here"
            else:
                judgement = "no clear difference at this budget (the interval includes zero)"
            still = " (so far)" if len(comparisons) < len(snapshot.config.seeds) and not snapshot.is_finished else ""
            lines.append(
                f"**Over {len(comparisons)} seeds{still}, {name} − {base_name} = {100 * mean:+.1f} points of balanced accuracy, "
                f"95 % interval {100 * low:+.1f} to {100 * high:+.1f}: {judgement}.** "
                f"Per seed: {per_seed}."
            )
            continue
        comparison = comparisons[-1]
        test = comparison["mcnemar"]
        differ = test["p_value"] < 0.05
        lines.append(
            f"**On seed {comparison['seed']}, {name} − {base_name} = {100 * comparison['balanced_accuracy_difference']:+.1f} "
            f"points of balanced accuracy.** McNemar's exact test on the paired test predictions: p = {format_p_value(test['p_value'])} "
            f"({test['only_a_correct']} test images only {base_name} got right, {test['only_b_correct']} only {name}) — "
            + ("these two models **differ**." if differ else "no detectable difference between these two models.")
        )
        lines.append(
            "One seed cannot say whether the *loss* is better: the test compares these two models, and models "
            f"trained with the same loss from different seeds differ as well. {SEED_NOISE_EVIDENCE} "
            "Train several seeds (e.g. seeds `0,1,2`) for an interval."
        )
    if snapshot.status != "done" and snapshot.is_finished:
        lines.append(f"*The run ended as {snapshot.status}; these figures cover the seeds that finished.*")
    return "\n\n".join(lines)


def loss_form_note(config: TrainConfig) -> str:
    forms = []
    if "cce" in config.losses:
        forms.append(f"**CCE (paper form)**: CE + γ/(K−1)·C with γ = {config.gamma:g} (flattens wrong-class probabilities)")
    if "cce_reference" in config.losses:
        forms.append(
            f"**CCE (reference code)**: the seed code's CE − β·S with β = {config.balancing_factor:g}, S = −C/K "
            f"(so CE + β·C/K: sharpens for β > 0)"
        )
    return "; ".join(forms)


def status_markdown(snapshot: JobSnapshot | None, title: str = "") -> str:
    if snapshot is None:
        return "No run selected. Choose settings and press **Start training**, or open a run in the *Runs* tab."
    config = snapshot.config
    header = title or f"Job `{snapshot.job_id}`"
    text = (
        f"{header} — **{snapshot.status}**. {' vs '.join(display_name(loss) for loss in config.losses)} on "
        f"{config.dataset} ({config.profile}, ratio {config.imbalance_ratio:g}), {config.model}, "
        f"{config.epochs} epochs, seeds {', '.join(map(str, config.seeds))}, device {snapshot.device}."
    )
    note = loss_form_note(config)
    if note:
        text += f"  \n{note}."
    if len(config.seeds) > 1 and snapshot.epochs:
        text += (f"  \nCurves run through the seeds one after another; recall, groups and confusion matrices show "
                 f"seed {snapshot.epochs[-1]['seed']}, the latest evaluated.")
    if snapshot.status == "queued":
        text += f"  \nWaiting in the queue at position {snapshot.queue_position}."
    elif snapshot.status == "running":
        eta = format_eta(snapshot.eta_seconds)
        text += f"  \n{snapshot.message}. Progress {100 * snapshot.progress:.0f} %" + (f", about {eta} left." if eta else ".")
    if snapshot.error and snapshot.status in ("failed", "cancelled", "interrupted"):
        text += f"  \n**Reason:** {snapshot.error}"
    return text


# ---------------------------------------------------------------- run catalogue


@dataclass(frozen=True)
class RunCatalog:
    """Where runs live: the writable runs directory (yours, deletable) and read-only shipped ones."""

    runs_dir: Path
    shipped_dirs: tuple[Path, ...] = ()

    def records(self) -> tuple[list[RunRecord], list[str]]:
        return list_runs([self.runs_dir, *self.shipped_dirs])

    def find(self, run_id: str) -> RunRecord:
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
            raise ValueError(f"run: invalid run id {run_id!r}")
        for root in (self.runs_dir, *self.shipped_dirs):
            if (root / run_id).is_dir():
                return read_run(root / run_id)
        raise ValueError(f"run: no run named {run_id!r}")

    def is_shipped(self, record: RunRecord) -> bool:
        return record.run_dir.parent.resolve() != self.runs_dir.resolve()

    def default_run(self, records: list[RunRecord] | None = None) -> RunRecord | None:
        """The newest finished run with weights, shipped runs first (so the app is useful at first open)."""
        if records is None:
            records, _ = self.records()
        usable = [record for record in records if record.has_weights and record.status == "done"]
        shipped = [record for record in usable if self.is_shipped(record)]
        return (shipped or usable or [None])[0]


def runs_table(catalog: RunCatalog, records: list[RunRecord]) -> pd.DataFrame:
    rows = []
    for record in records:
        evaluations = (record.final.get("evaluations") or {})
        first_seed = next(iter(evaluations.values()), {})
        scores = ", ".join(f"{display_name(loss)} {format_percent(value.get('balanced_accuracy'))}" for loss, value in first_seed.items())
        config = record.config
        rows.append([
            record.run_id, record.status, "shipped" if catalog.is_shipped(record) else "yours",
            f"{config.dataset} {config.profile} ×{config.imbalance_ratio:g}", config.model, config.epochs,
            ",".join(map(str, config.seeds)), scores, (record.metadata.get("created_at") or "")[:19],
        ])
    return pd.DataFrame(rows, columns=["run", "status", "source", "data", "model", "epochs", "seeds", "balanced accuracy % (first seed)", "created"])


# ---------------------------------------------------------------- the app


@dataclass
class AppContext:
    manager: JobManager
    catalog: RunCatalog
    model_cache: ModelCache
    examples_dir: Path | None = None


def view_of_run(context: AppContext, record: RunRecord) -> dict[str, Any]:
    """A run of this app's manager is viewed as a job (live updates, Stop); a shipped run as a run."""
    if record.run_dir.parent.resolve() == context.manager.runs_dir.resolve():
        return {"kind": "job", "id": record.run_id}
    return {"kind": "run", "id": record.run_id}


def snapshot_for_view(context: AppContext, view: dict[str, Any] | None) -> JobSnapshot | None:
    if not view:
        return None
    if view.get("kind") == "job":
        return context.manager.snapshot(view["id"])
    return snapshot_from_run_dir(context.catalog.find(view["id"]).run_dir)


def tick_state(snapshot: JobSnapshot | None, resend: bool = True) -> dict[str, Any]:
    """What the page has drawn: lets a tick redraw only what changed (epoch-level views once per epoch).
    `resend`: the next tick draws everything once more. Gradio's plots can miss a value that arrives before
    they finished mounting (seen right after a page load), and a finished view is otherwise never redrawn."""
    if snapshot is None:
        return {"version": -1, "epochs": -1, "counts": False, "finished": True, "resend": False}
    return {"version": snapshot.version, "epochs": len(snapshot.epochs), "counts": bool(snapshot.class_counts),
            "finished": snapshot.is_finished, "resend": resend}


def job_summary(snapshot: JobSnapshot) -> dict[str, Any]:
    """A job's state as plain JSON for the API."""
    return {
        "job_id": snapshot.job_id, "status": snapshot.status, "queue_position": snapshot.queue_position,
        "progress": round(snapshot.progress, 4), "eta_seconds": snapshot.eta_seconds, "message": snapshot.message,
        "error": snapshot.error, "device": snapshot.device, "config": snapshot.config.to_dict(),
        "class_names": list(snapshot.class_names), "class_counts": list(snapshot.class_counts),
        "latest": {loss: dict(value) for loss, value in snapshot.latest.items()},
        "epochs_done": len(snapshot.epochs), "comparisons": list(snapshot.comparisons),
        "summaries": dict(snapshot.summaries), "version": snapshot.version,
    }


def build_app(context: AppContext) -> gr.Blocks:
    manager, catalog = context.manager, context.catalog
    quick = PRESETS["quick"]

    def render(snapshot: JobSnapshot | None, title: str = "", epoch_views: bool = True) -> tuple:
        """Everything the compare view shows, from one snapshot. Without `epoch_views` the class counts, the
        table, the confusion matrices and the verdict are not re-sent: they change once per epoch and the
        matrices can be large (CIFAR-100). The charts are always sent with the rest: the plot components
        can drop an update that arrives while they are still drawing, and a resend repairs that."""
        if snapshot is None:
            return (status_markdown(None), gr.skip(), None, None, None, None, None, "", "")
        losses = list(snapshot.config.losses)
        colours = {display_name(loss): LOSS_COLOURS[loss] for loss in losses}
        status_text = status_markdown(snapshot, title)
        loss_curve = gr.LinePlot(value=loss_curve_frame(snapshot), color_map=curve_colours(losses))
        recall = recall_frame(snapshot)
        charts = (
            gr.LinePlot(value=epoch_frame(snapshot, "test_loss"), color_map=colours),
            gr.LinePlot(value=epoch_frame(snapshot, "balanced_accuracy"), color_map=colours),
            gr.BarPlot(value=recall, color_map=colours, sort=list(recall.iloc[:, 0]) if len(recall) else None),
        )
        if not epoch_views:
            return (status_text, gr.skip(), loss_curve, *charts, gr.skip(), gr.skip(), gr.skip())
        counts = counts_frame(snapshot.class_names, snapshot.class_counts) if snapshot.class_counts else gr.skip()
        return (
            status_text, counts, loss_curve, *charts,
            groups_table(snapshot), confusion_html(snapshot), verdict_markdown(snapshot),
        )

    # -------------------------------------------------------- handlers (thin)

    def on_preset(preset_name: str):
        config = PRESETS[preset_name]
        return (
            PRESET_NOTES[preset_name], config.dataset, config.profile, config.imbalance_ratio,
            [display_name(loss) for loss in config.losses], config.gamma, config.model, config.epochs,
            config.batch_size, config.learning_rate, ",".join(map(str, config.seeds)), config.device,
        )

    def on_settings(preset_name, dataset, profile, ratio):
        try:
            config = preset(preset_name, dataset=dataset, profile=profile, imbalance_ratio=float(ratio))
            counts = planned_class_counts(config)
        except (TypeError, ValueError):  # a half-typed ratio: keep the last chart; Start reports the error
            return gr.skip()
        return counts_frame(class_names_for(config.dataset, config.num_classes), counts)

    def on_start(*form):
        try:
            config = config_from_form(*form)
            job_id = manager.submit(config)
        except (ValueError, QueueFullError) as error:
            raise gr.Error(str(error)) from None
        snapshot = manager.snapshot(job_id)
        if snapshot.queue_position and any(other.status == "running" for other in manager.active_jobs()):
            gr.Info(f"Another job is training; yours waits its turn (position {snapshot.queue_position}).")
        return ({"kind": "job", "id": job_id}, job_id, tick_state(snapshot), *render(snapshot))

    def on_stop(view, remembered):
        # Only the browser that started a job may stop it from the page (a second browser only watches).
        if not view or view.get("kind") != "job" or view.get("id") != remembered:
            raise gr.Error("There is no job started from this browser in this view to stop.")
        try:
            stopped = manager.cancel(view["id"])
            snapshot = manager.snapshot(view["id"])
        except UnknownJobError as error:
            raise gr.Error(str(error)) from None
        if not stopped:
            gr.Info("That job had already finished.")
        return status_markdown(snapshot)

    def on_tick(view, drawn):
        nothing = (gr.skip(),) * (1 + len(view_outputs) + len(runs_outputs))
        if not view or not drawn:
            return nothing
        if drawn.get("resend"):
            try:
                snapshot = snapshot_for_view(context, view)
            except (UnknownJobError, RunCorruptError, ValueError):
                return nothing
            return (tick_state(snapshot, resend=False), *render(snapshot, drawn.get("title", "")), *(gr.skip(),) * len(runs_outputs))
        if view.get("kind") != "job" or drawn.get("finished"):
            return nothing  # a finished view never changes: no snapshot (or disk replay) per tick
        try:
            snapshot = manager.snapshot(view["id"])
        except UnknownJobError:
            return nothing
        if snapshot.version == drawn["version"]:
            if snapshot.status != "running":
                return nothing
            # Unchanged but running: refresh only the status line (its ETA).
            return (gr.skip(), status_markdown(snapshot)) + (gr.skip(),) * (len(view_outputs) - 1 + len(runs_outputs))
        epoch_views = (
            len(snapshot.epochs) != drawn["epochs"] or snapshot.is_finished or (snapshot.class_counts and not drawn["counts"])
        )
        runs = on_refresh_runs(select=view["id"]) if snapshot.is_finished else (gr.skip(),) * len(runs_outputs)
        # Finishing gets one more full redraw on the next tick (resend), for the same reason as page loads.
        return (tick_state(snapshot, resend=snapshot.is_finished), *render(snapshot, epoch_views=bool(epoch_views)), *runs)

    def on_load(remembered):
        """Re-attach to this browser's job after a reload; else show a job that is running (so a second
        browser sees it instead of starting another by accident); else the default shipped run."""
        candidates = ([remembered] if remembered else []) + [snapshot.job_id for snapshot in manager.active_jobs()]
        for job_id in candidates:
            try:
                snapshot = manager.snapshot(job_id)
            except UnknownJobError:
                continue
            if not snapshot.is_finished or job_id == remembered:
                return ({"kind": "job", "id": job_id}, tick_state(snapshot), *render(snapshot))
        record = catalog.default_run()
        if record is None:
            return (None, tick_state(None), *render(None))
        view = view_of_run(context, record)
        try:
            snapshot = snapshot_for_view(context, view)
        except (RunCorruptError, UnknownJobError, ValueError):
            return (None, tick_state(None), *render(None))
        title = f"Shipped run `{record.run_id}`" if catalog.is_shipped(record) else f"Run `{record.run_id}`"
        return (view, {**tick_state(snapshot), "title": title}, *render(snapshot, title))

    def on_refresh_runs(select: str | None = None):
        """The runs table and both run pickers; `select` (a run that just finished) is preselected for
        classifying when it has models."""
        records, problems = catalog.records()
        frame = runs_table(catalog, records)
        ids = list(frame["run"]) if len(frame) else []
        with_weights = [record.run_id for record in records if record.has_weights]
        default = catalog.default_run(records)
        chosen = select if select in with_weights else (default.run_id if default else (with_weights[0] if with_weights else None))
        message = ("**Unreadable run directories:** " + "; ".join(problems)) if problems else ""
        return (
            frame, gr.Dropdown(choices=ids, value=ids[0] if ids else None), message,
            gr.Dropdown(choices=with_weights, value=chosen),
        )

    def chosen_run(run_id) -> RunRecord:
        if not run_id:
            raise gr.Error("Choose a run first.")
        try:
            return catalog.find(run_id)
        except (ValueError, RunCorruptError) as error:
            raise gr.Error(str(error)) from None

    def on_open_run(run_id):
        record = chosen_run(run_id)
        view = view_of_run(context, record)
        try:
            snapshot = snapshot_for_view(context, view)
        except (RunCorruptError, UnknownJobError) as error:
            raise gr.Error(str(error)) from None
        title = f"Run `{record.run_id}`"
        return (view, {**tick_state(snapshot), "title": title}, gr.Tabs(selected="compare"), *render(snapshot, title))

    def on_delete_run(run_id):
        record = chosen_run(run_id)
        if catalog.is_shipped(record):
            raise gr.Error("Shipped runs cannot be deleted; only runs you trained here.")
        if record.status == "running":
            raise gr.Error("This run is still training; stop it first.")
        try:
            shutil.rmtree(record.run_dir)
        except OSError as error:
            raise gr.Error(f"Could not delete {run_id}: {error}") from None
        gr.Info(f"Deleted run {run_id}.")
        return on_refresh_runs()

    def classify(file_path, run_id):
        """Shared by the UI and the API: decode, prepare, classify with every model of the run."""
        if not run_id:
            raise gr.Error("Choose a run to classify with (train one, or use the shipped run).")
        if not file_path:
            raise gr.Error("Upload an image (PNG, JPEG, WebP, GIF or BMP) or pick an example.")
        try:
            record = catalog.find(run_id)
            prepared, predictions = classify_upload(file_path, record, context.model_cache)
        except (InvalidImageError, ValueError, RunCorruptError) as error:
            raise gr.Error(str(error)) from None
        return record, prepared, predictions

    def on_classify(file_path, run_id):
        record, prepared, predictions = classify(file_path, run_id)
        preview = Image.fromarray(prepared.pixels).resize((160, 160), Image.Resampling.NEAREST)
        notes = "The models see this 32×32 image (shown enlarged)."
        if prepared.notes:
            notes += " Note: " + "; ".join(prepared.notes) + "."
        labels = []
        for loss in LOSS_NAMES:
            if loss in predictions:
                labels.append(gr.Label(value=dict(predictions[loss]), label=display_name(loss), visible=True))
        labels += [gr.Label(value=None, visible=False)] * (MAX_LOSSES - len(labels))
        return (preview, notes, *labels)

    # -------------------------------------------------------- API-only functions

    def api_start_comparison(config: dict) -> dict:
        """Queue a paired training job. `config`: {"preset": "quick"|"standard"|"ldam-drw"|"authors", ...TrainConfig fields}."""
        try:
            job_id = manager.submit(config_from_request(config))
        except (ValueError, QueueFullError) as error:
            raise gr.Error(str(error)) from None
        return job_summary(manager.snapshot(job_id))

    def api_job_status(job_id: str) -> dict:
        """Status, progress and latest metrics of a job (or of a finished run by its id)."""
        try:
            return job_summary(manager.snapshot(job_id))
        except UnknownJobError as error:
            raise gr.Error(str(error)) from None

    def api_cancel_job(job_id: str) -> dict:
        """Cancel a queued or running job."""
        try:
            manager.cancel(job_id)
            return job_summary(manager.snapshot(job_id))
        except UnknownJobError as error:
            raise gr.Error(str(error)) from None

    def api_list_runs() -> list:
        """Every run on disk (yours and shipped) with its status and final balanced accuracy."""
        return runs_table(catalog, catalog.records()[0]).to_dict(orient="records")

    def api_classify(file_path, run_id):
        record, prepared, predictions = classify(file_path, run_id)
        return {
            "run_id": record.run_id, "notes": list(prepared.notes),
            "predictions": {loss: [{"class": name, "probability": p} for name, p in top] for loss, top in predictions.items()},
        }

    # -------------------------------------------------------- layout

    with gr.Blocks(title="CCE vs CE on long-tailed CIFAR") as demo:
        view_state = gr.State(None)
        drawn_state = gr.State(tick_state(None))
        remembered_job = gr.BrowserState(None, storage_key="cce_demo_job", secret="cce_demo_job_id")
        gr.Markdown(
            "# Complement Cross Entropy vs Cross Entropy on long-tailed CIFAR\n"
            "Train both losses as a *paired* run (same initial weights, same batches, only the loss differs), "
            "watch the curves, and compare per-class recall from head to tail classes. Results are reported "
            "as they come out — including when CCE loses."
        )
        with gr.Tabs() as tabs:
            with gr.Tab("Train & compare", id="compare"):
                with gr.Row():
                    with gr.Column(scale=2):
                        preset_radio = gr.Radio(list(PRESETS), value="quick", label="Preset")
                        preset_note = gr.Markdown(PRESET_NOTES["quick"])
                        with gr.Accordion("Advanced settings", open=False):
                            with gr.Row():
                                dataset_input = gr.Dropdown(list(DATASETS), value=quick.dataset, label="Dataset")
                                profile_input = gr.Radio(list(PROFILES), value=quick.profile, label="Imbalance profile")
                                ratio_input = gr.Number(quick.imbalance_ratio, label="Imbalance ratio (≥ 1)", minimum=1)
                            losses_input = gr.CheckboxGroup(
                                [display_name(loss) for loss in LOSS_NAMES],
                                value=[display_name(loss) for loss in quick.losses], label="Losses to compare",
                            )
                            with gr.Row():
                                gamma_input = gr.Number(quick.gamma, label="γ of paper-form CCE")
                                model_input = gr.Dropdown(list(MODEL_NAMES), value=quick.model, label="Model")
                                epochs_input = gr.Number(quick.epochs, label="Epochs", precision=0)
                            with gr.Row():
                                batch_input = gr.Number(quick.batch_size, label="Batch size", precision=0)
                                rate_input = gr.Number(quick.learning_rate, label="Learning rate")
                                seeds_input = gr.Textbox(",".join(map(str, quick.seeds)), label="Seeds (e.g. 0,1,2)")
                                device_input = gr.Radio(["auto", "cpu", "cuda"], value=quick.device, label="Device")
                        with gr.Row():
                            start_button = gr.Button("Start training", variant="primary")
                            stop_button = gr.Button("Stop", variant="stop")
                    with gr.Column(scale=3):
                        counts_plot = gr.BarPlot(
                            counts_frame(data.CIFAR10_CLASSES, planned_class_counts(quick)), x="class", y="training images",
                            title="Training images per class (head → tail)", sort="x", x_label_angle=-40, height=260,
                            y_lim=[0, None],
                        )
                status = gr.Markdown(status_markdown(None), elem_id="job-status")
                with gr.Row():
                    loss_plot = gr.LinePlot(
                        x="step", y="training loss", color="series", title="Training loss per step (and the CE part of each loss)",
                        height=300, elem_id="loss-curve",
                    )
                with gr.Row():
                    test_loss_plot = gr.LinePlot(x="epoch", y="test loss", color="series", title="Test cross entropy per epoch", height=260)
                    accuracy_plot = gr.LinePlot(
                        x="epoch", y="balanced accuracy", color="series", title="Test balanced accuracy per epoch",
                        y_lim=[0, 1], height=260,
                    )
                recall_plot = gr.BarPlot(
                    x="class (training images) · loss", y="recall", color="series", title="Per-class recall, head → tail",
                    y_lim=[0, 1], x_label_angle=-60, height=380, elem_id="recall-chart",
                )
                verdict = gr.Markdown(elem_id="verdict")
                groups = gr.Dataframe(label="Head / medium / tail recall", interactive=False)
                confusion = gr.HTML(label="Confusion matrices")

            with gr.Tab("Classify", id="classify"):
                with gr.Row():
                    with gr.Column():
                        classify_run = gr.Dropdown([], label="Run (its models classify)", allow_custom_value=True)
                        upload = gr.File(label="Image", type="filepath", file_types=["image"], elem_id="upload")
                        if context.examples_dir and context.examples_dir.is_dir():
                            examples = sorted(str(path) for path in context.examples_dir.glob("*.png"))
                            if examples:
                                gr.Examples(examples, inputs=[upload], label="Examples (CIFAR-10 test images)")
                        classify_button = gr.Button("Classify", variant="primary")
                    with gr.Column():
                        seen = gr.Image(label="What the models see (32×32)", type="pil", interactive=False, height=180)
                        seen_note = gr.Markdown()
                        with gr.Row():
                            label_outputs = [
                                gr.Label(num_top_classes=5, visible=index < 2, label="", elem_id=f"prediction-{index}")
                                for index in range(MAX_LOSSES)
                            ]

            with gr.Tab("Runs", id="runs"):
                runs_frame = gr.Dataframe(label="Runs on disk", interactive=False)
                runs_problems = gr.Markdown()
                with gr.Row():
                    run_choice = gr.Dropdown([], label="Run", allow_custom_value=True)
                    open_button = gr.Button("Open in compare view")
                    delete_button = gr.Button("Delete run", variant="stop")
                    refresh_button = gr.Button("Refresh")

            with gr.Tab("About", id="about"):
                gr.Markdown(ABOUT)

        form = [preset_radio, dataset_input, profile_input, ratio_input, losses_input, gamma_input, model_input,
                epochs_input, batch_input, rate_input, seeds_input, device_input]
        view_outputs = [status, counts_plot, loss_plot, test_loss_plot, accuracy_plot, recall_plot, groups, confusion, verdict]
        runs_outputs = [runs_frame, run_choice, runs_problems, classify_run]

        preset_radio.change(on_preset, preset_radio, [preset_note, *form[1:]], api_visibility="private")
        for widget in (dataset_input, profile_input, ratio_input):
            widget.change(on_settings, [preset_radio, dataset_input, profile_input, ratio_input], counts_plot, api_visibility="private")
        start_button.click(
            on_start, form, [view_state, remembered_job, drawn_state, *view_outputs], api_visibility="private",
        ).then(lambda: on_refresh_runs(), None, runs_outputs, api_visibility="private")
        stop_button.click(on_stop, [view_state, remembered_job], status, api_visibility="private")
        timer = gr.Timer(REFRESH_SECONDS)
        timer.tick(on_tick, [view_state, drawn_state], [drawn_state, *view_outputs, *runs_outputs], api_visibility="private",
                   concurrency_limit=None, show_progress="hidden")
        demo.load(on_load, remembered_job, [view_state, drawn_state, *view_outputs], api_visibility="private").then(
            lambda: on_refresh_runs(), None, runs_outputs, api_visibility="private")
        refresh_button.click(lambda: on_refresh_runs(), None, runs_outputs, api_visibility="private")
        open_button.click(on_open_run, run_choice, [view_state, drawn_state, tabs, *view_outputs], api_visibility="private")
        delete_button.click(on_delete_run, run_choice, runs_outputs, api_visibility="private")
        classify_button.click(on_classify, [upload, classify_run], [seen, seen_note, *label_outputs],
                              api_visibility="private", concurrency_limit=2, concurrency_id="classify")

        # Named API endpoints for gradio_client (see README).
        gr.api(api_start_comparison, api_name="start_comparison")
        gr.api(api_job_status, api_name="job_status", concurrency_limit=None)
        gr.api(api_cancel_job, api_name="cancel_job", concurrency_limit=None)
        gr.api(api_list_runs, api_name="list_runs", concurrency_limit=None)
        with gr.Row(visible=False):
            api_file = gr.File(type="filepath")
            api_run = gr.Textbox()
            api_result = gr.JSON()
            api_button = gr.Button()
        api_button.click(api_classify, [api_file, api_run], api_result, api_name="classify",
                         concurrency_limit=2, concurrency_id="classify")
    return demo


ABOUT = """
## What is Complement Cross Entropy?

Kim, Lee and Jeon, *Imbalanced image classification with complement cross entropy*, Pattern Recognition
Letters 151 (2021). Besides pushing up the probability of the true class (cross entropy, CE), CCE adds a term
on the **wrong** classes: their probabilities, renormalised to sum to one (q = p / (1 − p_true)), have an
entropy **C** (the *complement entropy* of Chen et al. 2019). The idea: on imbalanced data the wrong-class
mass piles up on the head classes; making it flat ("neutralising" it) should help the tail classes.

### Two forms — and which one a run used

| form | formula | what it does to C |
|---|---|---|
| **CCE (paper form)** | CE + γ/(K−1) · C, γ = −1 | minimising it **raises** C: flatter wrong-class probabilities, as the paper describes |
| **CCE (reference code)** | CE − β · S with S = Σ p̂ log p̂ /(N·K), β = 1 — exactly the authors' published code | since S = −C/K this is CE + C/K: it **lowers** C (sharper), the opposite direction, and divides by K |

The compare view names the form each run used. The complement term is small (C/K ≤ log(K−1)/K ≈ 0.22 for
CIFAR-10), so differences between CE and CCE in short runs can be smaller than the seed-to-seed noise.

### The long-tail protocol
CIFAR-10 / CIFAR-100 training sets are cut to an exponential profile (Cao et al. 2019, LDAM-DRW):
n_c = n_max · (1/ρ)^(c/(K−1)), with imbalance ratio ρ = largest / smallest class (ρ = 100: 5000 … 50
images). The test set stays the official balanced one, so per-class recall is the right per-class metric and
balanced accuracy (mean recall) equals accuracy. *Head / medium / tail* are the 30 % most frequent classes,
the middle 40 % and the 30 % rarest (CIFAR-10: classes 0–2 / 3–6 / 7–9); classes with equal counts share a
group, so the step profile has a head and a tail half and no medium group.

### Reading the significance test
Each comparison is **paired**: same initial weights, same batches and augmentations, only the loss differs.
McNemar's exact test counts the test images that only one of the two models classifies correctly and asks
whether that split could be chance. A small p says *these two models* differ. It does **not** say the *loss*
is better: two models trained with the same loss from different seeds also differ (p ≈ 5e-7 here). To judge
a loss, train several seeds: the app then reports the mean difference in balanced accuracy with a 95 %
interval across seeds. If the interval excludes zero, the difference held up at this budget; if not, it did not.

In our own short CPU runs CCE did **not** beat CE (see the README); the paper's gains come from 200-epoch runs.
"""
