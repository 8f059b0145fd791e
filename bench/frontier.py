"""The accuracy vs wall-time frontier on CIFAR-10-LT, CE alone, at ratios 10 and 100.

Accuracy and time are measured apart, because accuracy does not depend on how busy the machine is and wall
time does (hosts here differ up to 4x, and a shared host's load swings within minutes):

    python bench/frontier.py --data-dir DIR --threads 1           # accuracy: train every point (any load)
    python bench/frontier.py --data-dir DIR --time                # time: one quiet run, a few minutes
    python bench/frontier.py --plot-only                          # table and plot from the JSON

Every point is one CE model (seed 0, the real balanced test set) trained by the engine's own loop. The families
are the new recipe (the conv net of the `quick` / `standard` presets) at several budgets, ResNet-8 at the
settings of the presets it used to have, and ResNet-32 on the LDAM-DRW schedule at two short budgets. Each
point scores its balanced accuracy three ways: plain argmax, with flip test-time augmentation, and
prior-corrected (post-hoc logit adjustment); the figure plots what the run itself reports.

`--time` times every distinct configuration (a point's settings less its epoch count; the schedule does not
change the cost of a step) end to end at 1 and at 2 epochs, data already in memory. Wall time is linear in the
epoch count (`fixed + epochs * per_epoch`: the final evaluation and start-up, then one epoch of training and
its evaluation subset), so the two runs give both terms, and every point's time follows from its epochs. The
same run also times the old and new presets' *pairs* (CE and CCE, evaluation included), which the targets
compare, and checks the linear model against one full-length pair trained end to end.

Results go to bench/frontier_results.json (resumable: points already there are skipped; a timing run
replaces the previous one whole) and the plot to bench/frontier.png (needs matplotlib:
`pip install -r bench/requirements.txt`).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cce_demo.config import PRESETS, TrainConfig  # noqa: E402
from cce_demo.data import load_dataset  # noqa: E402
from cce_demo.provenance import cpu_model, recorded_data_text  # noqa: E402
from cce_demo.engine import evaluate, train_paired  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "frontier_results.json"
PLOT = HERE / "frontier.png"

# ResNet-8 at the settings of the presets before the conv nets (git history of config.py): the baseline the
# new recipe's targets are measured against.
RESNET8_QUICK = TrainConfig(dataset="cifar10", imbalance_ratio=10.0, model="resnet8", epochs=4, batch_size=256,
                            learning_rate=0.2, weight_decay=5e-4, warmup_epochs=0.5)
RESNET8_STANDARD = TrainConfig(dataset="cifar10", imbalance_ratio=100.0, model="resnet8", epochs=25, batch_size=128,
                               learning_rate=0.1, weight_decay=5e-4, warmup_epochs=1.0, epoch_eval_images=2000)
# ResNet-32 on the LDAM-DRW schedule (weight decay 2e-4, x0.01 at 80 % and x0.0001 at 90 % of training, plain
# momentum, warm-up counted in whole epochs), cut to budgets a CPU can afford.
RESNET32_LDAM = TrainConfig(dataset="cifar10", model="resnet32", batch_size=128, learning_rate=0.1, weight_decay=2e-4,
                            warmup_epochs=1.0, warmup_per_epoch=True, schedule="ldam", nesterov=False,
                            epoch_eval_images=2000)


# The long grid's epoch count (grids/cifar10-lt-long.toml) is chosen from these CE-only points at ratio 100 by a
# rule fixed before any of them ran and before any other loss trained at these budgets: the smallest budget
# whose CE balanced accuracy (flip TTA, as the run reports it) is within LONG_BUDGET_TOLERANCE of the best of
# them. CE alone decides, so the choice applies to every loss alike.
LONG_BUDGET_EPOCHS = (33, 66, 132, 200)
LONG_BUDGET_TOLERANCE = 0.01


def long_budget(results: dict) -> int | None:
    """The long grid's epochs by the rule above, or None while a point of the extension is missing."""
    scores = {}
    for point in results["points"]:
        if point["label"] in {f"r100-recipe-e{epochs}" for epochs in LONG_BUDGET_EPOCHS}:
            scores[point["epochs"]] = point["scores"]["ce"]["reported"]
    if set(scores) != set(LONG_BUDGET_EPOCHS):
        return None
    best = max(scores.values())
    return min(epochs for epochs, score in scores.items() if score >= best - LONG_BUDGET_TOLERANCE)


def points() -> list[tuple[str, str, TrainConfig]]:
    """(label, family, CE-only config) of every frontier point, in the order they run."""
    quick, standard = PRESETS["quick"], PRESETS["standard"]
    entries: list[tuple[str, str, TrainConfig]] = []
    for ratio, new_preset, old in ((10.0, quick, RESNET8_QUICK), (100.0, standard, RESNET8_STANDARD)):
        tag = f"r{ratio:g}"
        entries.append((f"{tag}-resnet8-preset", "ResNet-8 (old presets)", old))
        if ratio == 10.0:  # at ratio 100 twice the old preset costs more than the new recipe's longest point
            entries.append((f"{tag}-resnet8-x2", "ResNet-8 (old presets)", old.replace(epochs=old.epochs * 2)))
        for fraction in (0.25, 0.5, 1.0, 2.0):
            epochs = max(1, round(new_preset.epochs * fraction))
            config = new_preset.replace(imbalance_ratio=ratio, epochs=epochs,
                                        warmup_epochs=min(new_preset.warmup_epochs, float(epochs)))
            entries.append((f"{tag}-recipe-e{epochs}", f"{new_preset.model} recipe", config))
        for epochs in (4, 8):
            entries.append((f"{tag}-resnet32-ldam-e{epochs}", "ResNet-32, LDAM-DRW schedule",
                            RESNET32_LDAM.replace(imbalance_ratio=ratio, epochs=epochs)))
    # The CE-only extension at ratio 100 that picks the long grid's budget (LONG_BUDGET_RULE): 4x and ~6x the
    # `standard` epochs, 200 being the field's budget for this protocol (2x is among the fractions above).
    for epochs in LONG_BUDGET_EPOCHS:
        if not any(label == f"r100-recipe-e{epochs}" for label, _, _ in entries):
            entries.append((f"r100-recipe-e{epochs}", f"{standard.model} recipe", standard.replace(epochs=epochs)))
    return [(label, family, config.replace(losses=("ce",), seeds=(0,), device="cpu")) for label, family, config in entries]


def target_pairs() -> list[tuple[str, str, TrainConfig]]:
    """The presets' pairs (CE and CCE, seed 0) whose wall times the targets compare: old against new."""
    return [
        ("quick-old-pair", "ResNet-8 quick (old)", RESNET8_QUICK.replace(device="cpu")),
        ("quick-new-pair", "quick (new)", PRESETS["quick"].replace(device="cpu", seeds=(0,))),
        ("standard-old-pair", "ResNet-8 standard (old)", RESNET8_STANDARD.replace(device="cpu")),
        ("standard-new-pair", "standard (new)", PRESETS["standard"].replace(device="cpu", seeds=(0,))),
    ]


def host() -> dict:
    return {"cpu_model": cpu_model(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "cpu_count": os.cpu_count()}


def measure(label: str, family: str, config: TrainConfig, dataset) -> dict:
    """Train one point and score it. Its wall time is kept for the record only: it depends on the load."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = train_paired(config, dataset=dataset)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    scores: dict[str, dict[str, float]] = {}
    for loss, model in result.models[0].items():
        final = result.evaluations[0][loss]
        other, _ = evaluate(model, dataset.test, dataset.normalisation, result.class_counts, flip=not config.test_time_flip)
        plain, flip = (final, other) if not config.test_time_flip else (other, final)
        scores[loss] = {
            "balanced_accuracy": plain.balanced_accuracy,
            "balanced_accuracy_flip": flip.balanced_accuracy,
            "prior_corrected": plain.prior_corrected.balanced_accuracy,
            "prior_corrected_flip": flip.prior_corrected.balanced_accuracy,
            "tail_recall": plain.group_recall["tail"],
            "reported": final.balanced_accuracy,  # what the run itself reports (its config decides flip TTA)
        }
    return {"label": label, "family": family, "ratio": config.imbalance_ratio, "model": config.model,
            "epochs": config.epochs, "losses": list(config.losses), "status": str(result.status), "host": host(),
            "loaded_wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "scores": scores,
            "config": config.to_dict(), "data": dataset.provenance, "load_average_after": [round(value, 2) for value in os.getloadavg()],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def timing_key(config: TrainConfig) -> str:
    """What decides a configuration's cost per epoch: everything but the epoch count and the schedule."""
    values = config.to_dict()
    for name in ("epochs", "warmup_epochs", "schedule", "warmup_per_epoch"):
        values.pop(name, None)
    return json.dumps(values, sort_keys=True)


def busy_cpu_seconds() -> float:
    """CPU seconds every process on this machine has used since boot (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(value) for value in (fields[0], fields[1], fields[2], fields[5], fields[6])) / os.sysconf("SC_CLK_TCK")


def timed_run(config: TrainConfig, epochs: int, dataset) -> float:
    config = config.replace(epochs=epochs, warmup_epochs=0.0, schedule="cosine", warmup_per_epoch=False)
    started = time.perf_counter()
    result = train_paired(config, dataset=dataset)
    if str(result.status) != "done":
        raise RuntimeError(f"a timing run ended {result.status}: {result.reason}")
    return time.perf_counter() - started


def predicted_seconds(family: dict, epochs: int) -> float:
    return family["fixed_seconds"] + epochs * family["epoch_seconds"]


def time_everything(dataset, load_before: list[float]) -> dict:
    """One quiet run: each distinct configuration at 1 and 2 epochs, then one full pair as a check. How quiet
    it was is measured: the CPU time other processes used meanwhile, in cores on average."""
    machine_started, own_started, wall_started = busy_cpu_seconds(), time.process_time(), time.perf_counter()
    configurations: dict[str, TrainConfig] = {}
    for _, _, config in points() + target_pairs():
        configurations.setdefault(timing_key(config), config)
    timed_run(PRESETS["quick"].replace(device="cpu", losses=("ce",), seeds=(0,)), 1, dataset)  # warm-up: one-off costs
    families = {}
    for key, config in configurations.items():
        one, two = timed_run(config, 1, dataset), timed_run(config, 2, dataset)
        families[key] = {"model": config.model, "ratio": config.imbalance_ratio, "losses": list(config.losses),
                         "batch_size": config.batch_size, "seconds_at_1_epoch": round(one, 2),
                         "seconds_at_2_epochs": round(two, 2), "epoch_seconds": round(two - one, 3),
                         "fixed_seconds": round(2 * one - two, 3)}
        print(json.dumps(families[key]), flush=True)
    targets = []
    for label, family, config in target_pairs():
        targets.append({"label": label, "family": family, "ratio": config.imbalance_ratio, "model": config.model,
                        "epochs": config.epochs,
                        "seconds": round(predicted_seconds(families[timing_key(config)], config.epochs), 1)})
    check_label, _, check_config = target_pairs()[1]  # the new quick pair, trained end to end
    started = time.perf_counter()
    train_paired(check_config, dataset=dataset)
    check = {"label": check_label, "measured_seconds": round(time.perf_counter() - started, 1),
             "predicted_seconds": next(target["seconds"] for target in targets if target["label"] == check_label)}
    wall = time.perf_counter() - wall_started
    others = (busy_cpu_seconds() - machine_started) - (time.process_time() - own_started)
    return {"host": host(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "wall_seconds": round(wall, 1), "other_processes_cores": round(max(0.0, others) / wall, 3),
            "load_average_before": load_before, "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "families": list(families.values()), "family_keys": list(families), "targets": targets, "check": check}


def point_seconds(results: dict, point: dict) -> float | None:
    timing = results.get("timing")
    if not timing:
        return None
    key = timing_key(TrainConfig.from_dict(point["config"]))
    if key not in timing["family_keys"]:
        return None
    return predicted_seconds(timing["families"][timing["family_keys"].index(key)], point["epochs"])


def preset_names() -> dict[str, str]:
    """Which frontier points are a preset's CE model: label -> the preset's name."""
    return {"r10-resnet8-preset": "old `quick`", "r100-resnet8-preset": "old `standard`",
            f"r10-recipe-e{PRESETS['quick'].epochs}": "`quick`", f"r100-recipe-e{PRESETS['standard'].epochs}": "`standard`"}


def points_data_text(points: list[dict]) -> str:
    """The data copy the points were trained on; points from before the record are labelled as declared."""
    return recorded_data_text((point.get("data") for point in points), "these frontier points")


def table(results: dict) -> str:
    """The frontier as a Markdown table (times from the quiet timing run)."""
    rows = ["| ratio | family | epochs | preset | wall time, one CE model | CE balanced acc. | with flip TTA | prior-corrected |",
            "|---:|---|---:|---|---:|---:|---:|---:|"]
    presets = preset_names()
    for point in sorted(results["points"], key=lambda p: (p["ratio"], p["family"], p["epochs"])):
        seconds = point_seconds(results, point)
        scores = point["scores"]["ce"]
        rows.append(f"| {point['ratio']:g} | {point['family']} | {point['epochs']} | {presets.get(point['label'], '')} | "
                    f"{'—' if seconds is None else f'{seconds / 60:.1f} min'} | {100 * scores['balanced_accuracy']:.1f} % | "
                    f"{100 * scores['balanced_accuracy_flip']:.1f} % | {100 * scores['prior_corrected']:.1f} % |")
    hosts = sorted({f"{point['host']['cpu_model']}, {point['host']['torch_threads']} torch thread(s)" for point in results["points"]})
    rows += ["", f"Accuracy: points trained on {'; '.join(hosts)}; CE's balanced accuracy as the run reports it is plotted "
                 "(flip TTA where the config has it, as the new recipe does).",
             "", f"Data: {points_data_text(results['points'])}."]
    timing = results.get("timing")
    if timing:
        seconds = {target["label"]: target["seconds"] for target in timing["targets"]}
        rows += ["", "| preset pair (CE and CCE, evaluation included) | old (ResNet-8) | new | new ÷ old |", "|---|---:|---:|---:|"]
        for name in ("quick", "standard"):
            old, new = seconds[f"{name}-old-pair"], seconds[f"{name}-new-pair"]
            rows.append(f"| `{name}` | {old / 60:.1f} min | {new / 60:.1f} min | {new / old:.2f} |")
        check = timing["check"]
        rows += ["", f"Linear model check: {check['label']} predicted {check['predicted_seconds']:.0f} s, "
                     f"trained end to end in {check['measured_seconds']:.0f} s. Timed on {timing['host']['cpu_model']}, "
                     f"{timing['host']['torch_threads']} torch threads, {timing['date']}; other processes used "
                     f"{timing['other_processes_cores']:.2f} cores on average meanwhile."]
    return "\n".join(rows)


BEGIN = "<!-- frontier: generated by `python bench/frontier.py --write README.md` from bench/frontier_results.json; do not edit by hand -->"
END = "<!-- end of generated frontier -->"


# The field's CE baseline at ratio 100 (LDAM-DRW's paper, ResNet-32, 200 epochs): the long grid's target.
FIELD_CE_BASELINE = 0.70


def long_budget_sentence(results: dict) -> str:
    """The CE-only extension at ratio 100 and the budget its rule picked, in words computed from the points."""
    budget = long_budget(results)
    if budget is None:
        return ""
    scores = {point["epochs"]: point["scores"]["ce"]["reported"] for point in results["points"]
              if point["label"] in {f"r100-recipe-e{epochs}" for epochs in LONG_BUDGET_EPOCHS}}
    best_epochs = max(scores, key=scores.get)
    reached = "reaches" if scores[best_epochs] >= FIELD_CE_BASELINE else "stays below"
    return (f"Long budget (ratio 100, CE alone, a rule fixed before these points ran: the smallest of "
            f"{', '.join(map(str, LONG_BUDGET_EPOCHS))} epochs within {100 * LONG_BUDGET_TOLERANCE:g} point of the best): "
            f"CE balanced accuracy {', '.join(f'{100 * scores[epochs]:.1f} %' for epochs in LONG_BUDGET_EPOCHS)} at "
            f"{', '.join(map(str, LONG_BUDGET_EPOCHS))} epochs, so the long grid `cifar10-lt-long` trains **{budget} epochs**. "
            f"The best, {100 * scores[best_epochs]:.1f} % at {best_epochs} epochs, {reached} the field's "
            f"{100 * FIELD_CE_BASELINE:.0f} % (ResNet-32, 200 epochs); the last step, {LONG_BUDGET_EPOCHS[-2]} → "
            f"{LONG_BUDGET_EPOCHS[-1]} epochs, adds {100 * (scores[LONG_BUDGET_EPOCHS[-1]] - scores[LONG_BUDGET_EPOCHS[-2]]):+.1f} points.")


def report(results: dict) -> str:
    """The README's frontier block: the plot, then the table, from the results file alone."""
    sentence = long_budget_sentence(results)
    return "\n".join([BEGIN, "", "![Accuracy vs wall time on CIFAR-10-LT](bench/frontier.png)", "", table(results),
                      *(["", sentence] if sentence else []), END])


def write_report(path: Path, results: dict) -> None:
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + report(results) + text[end:])


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FormatStrFormatter, LogLocator

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    # One colour per family on both panels (each axis would restart the colour cycle).
    names = sorted({point["family"] for point in results["points"]})
    colours = {name: f"C{index}" for index, name in enumerate(names)}
    for axis, ratio in zip(axes, (10.0, 100.0)):
        families: dict[str, list[tuple[float, float]]] = {}
        for point in results["points"]:
            seconds = point_seconds(results, point)
            if point["ratio"] == ratio and seconds is not None:
                families.setdefault(point["family"], []).append((seconds / 60, 100 * point["scores"]["ce"]["reported"]))
        for family, members in sorted(families.items()):
            members.sort()
            axis.plot(*zip(*members), marker="o", color=colours[family], label=family)
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        axis.xaxis.set_minor_formatter(FormatStrFormatter(""))
        axis.set_title(f"CIFAR-10-LT, ratio {ratio:g}")
        axis.set_xlabel("wall time of one CE model, minutes (log scale)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("CE balanced accuracy, % (as the run reports it)")
    handles = [plt.Line2D([], [], color=colours[name], marker="o", label=name) for name in names]
    axes[0].legend(handles=handles, loc="upper left", fontsize=8)
    timing = results["timing"]["host"]
    figure.suptitle(f"Times: {timing['cpu_model']}, {timing['torch_threads']} torch threads, one quiet run "
                    f"({results['timing']['date'][:10]}). Accuracy: seed 0, balanced test set.", fontsize=9)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--only", action="append", help="labels to train (default: all)")
    parser.add_argument("--time", action="store_true", help="time every configuration in one quiet run instead")
    parser.add_argument("--plot-only", action="store_true", help="train and time nothing: print the table, redraw the plot")
    parser.add_argument("--write", type=Path, help="rewrite the generated frontier block of this markdown file and stop")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"points": []}
    if arguments.write:
        write_report(arguments.write, results)
        return
    if not arguments.plot_only:
        if not arguments.data_dir:
            parser.error("--data-dir is needed to train or time")
        load_before = [round(value, 2) for value in os.getloadavg()]
        dataset = load_dataset("cifar10", arguments.data_dir, allow_download=False)
        if arguments.time:
            results["timing"] = time_everything(dataset, load_before)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        else:
            done = {entry["label"] for entry in results["points"]}
            for label, family, config in points():
                if label in done or (arguments.only and label not in arguments.only):
                    continue
                entry = measure(label, family, config, dataset)
                print(json.dumps({k: entry[k] for k in ("label", "loaded_wall_seconds", "scores")}), flush=True)
                # Re-read before writing: two processes may train different points side by side (--only).
                results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"points": []}
                results["points"].append(entry)
                temporary = RESULTS.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(json.dumps(results, indent=1) + "\n")
                os.replace(temporary, RESULTS)
    print(table(results))
    if results["points"] and results.get("timing"):
        plot(results)


if __name__ == "__main__":
    main()
