"""Headless CLI: `python -m cce_demo.train --preset quick --data-dir DIR`.

Trains the paired comparison, writes a run directory and prints a final table per loss. A run saves its
training state at the end of every epoch; `python -m cce_demo.train --resume RUN_DIR` continues one that was
stopped (Ctrl-C), killed or cut off, from its last complete epoch, bit-identical to an uninterrupted run on
the same machine and thread count.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Sequence

from tqdm import tqdm

from . import data
from .config import PRESET_ALIASES, PRESETS, TrainConfig, preset
from .engine import RunResult, train_paired
from .fields import add_flags, flag_values
from .metrics import GROUP_NAMES, format_p_value, format_percent
from .run_directory import RunCorruptError, RunWriter, read_run
from .schema import Event
from .status import JobStatus, recorded_status
from .threads import recorded_thread_count, set_thread_count

DEFAULT_RUNS_DIR = "runs"  # unless CCE_RUNS_DIR says otherwise (the app reads the same variable)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cce_demo.train",
        description="Train CE and CCE (and other losses) as a paired comparison on long-tailed CIFAR.",
    )
    parser.add_argument(
        "--preset", choices=[*PRESETS, *PRESET_ALIASES], default="quick",
        help="starting point; flags below override it (default: quick; 'paper' is the old name of ldam-drw)",
    )
    add_flags(parser)  # one flag per setting (fields.py): --dataset, --imbalance-ratio, --losses, --seeds, ...
    parser.add_argument("--seed", type=int, help="one training seed")
    parser.add_argument("--data-dir", help=f"folder with CIFAR (npz or torchvision); default: $CCE_DATA_DIR or ./{data.DEFAULT_DATA_DIR}")
    parser.add_argument("--no-download", action="store_true", help="never download; fail if the data is not on disk")
    parser.add_argument(
        "--output-dir", default=os.environ.get("CCE_RUNS_DIR") or DEFAULT_RUNS_DIR,
        help=f"where the run directory goes (default: $CCE_RUNS_DIR or ./{DEFAULT_RUNS_DIR})",
    )
    parser.add_argument("--run-id", help="name of the run directory (default: timestamp, dataset and losses)")
    parser.add_argument("--threads", type=int, help="torch threads (run.json records the count; a bit-for-bit replay needs "
                        "the same count on the same CPU type; with --resume, default: the run's own count)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue this stopped or interrupted run from its last complete "
                        "epoch (its own settings; only --data-dir, --no-download and --threads apply)")
    return parser


# What --resume still takes from the command line: where the data is, and the thread count.
RESUME_FLAGS = ("resume", "data_dir", "no_download", "threads", "output_dir")


def config_from_args(arguments: argparse.Namespace) -> TrainConfig:
    if arguments.seed is not None and arguments.seeds is not None:
        raise ValueError("seeds: give either --seed or --seeds, not both")
    overrides = flag_values(arguments)
    if arguments.seed is not None:
        overrides["seeds"] = (arguments.seed,)
    return preset(arguments.preset, **overrides)


def result_table(result: RunResult) -> str:
    """One line per loss: metrics averaged over the seeds that finished, McNemar p against the baseline per seed,
    and with several seeds the mean balanced-accuracy difference with its 95 % interval."""
    seeds = [seed for seed in result.finished_seeds if seed in result.evaluations]
    if not seeds:
        return "No seed finished training: nothing to report."
    losses = list(result.evaluations[seeds[0]])
    header = f"{'loss':<16}{'acc %':>7}{'bal %':>7}" + "".join(f"{name[:4] + ' %':>8}" for name in GROUP_NAMES)
    header += f"  {'McNemar p vs ' + result.baseline + ' (per seed)':<34}{'Δbal vs ' + result.baseline + ' (95% CI)':<28}"
    lines = [header, "-" * len(header)]
    for loss in losses:
        runs = [result.evaluations[seed][loss] for seed in seeds]
        mean = lambda values: sum(values) / len(values)  # noqa: E731 - local shorthand
        row = f"{loss:<16}{format_percent(mean([r.accuracy for r in runs])):>7}"
        row += f"{format_percent(mean([r.balanced_accuracy for r in runs])):>7}"
        row += "".join(f"{format_percent(mean([r.group_recall[name] for r in runs])):>8}" for name in GROUP_NAMES)
        p_values = [c.mcnemar.p_value for c in result.comparisons if c.other == loss]
        row += f"  {(', '.join(format_p_value(p) for p in p_values) if p_values else '—'):<34}"
        summary = result.summaries.get(loss)
        if summary is None:
            row += "—"
        elif summary.interval is None:
            row += f"{100 * summary.mean:+.1f} (1 seed: no interval)"
        else:
            low, high = summary.interval
            row += f"{100 * summary.mean:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})"
        lines.append(row)
    if len(seeds) == 1 and result.comparisons:
        lines.append(
            "One seed: McNemar says whether these two models differ, not whether a loss is better. "
            "Use --seeds 0,1,2 for an interval."
        )
    return "\n".join(lines)


def open_resumed(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> tuple[RunWriter, TrainConfig, dict]:
    """The run to continue, its config and saved states; threads set to the run's own count unless given."""
    given = [name for name, value in vars(arguments).items()
             if name not in RESUME_FLAGS and value not in (None, False) and value != parser.get_default(name)]
    if given:
        parser.error(f"resume: a resumed run keeps its own settings; drop {', '.join('--' + name.replace('_', '-') for name in sorted(given))}")
    try:
        if arguments.threads is None:  # a bit-identical continuation needs the count it trained with
            set_thread_count(recorded_thread_count(read_run(arguments.resume).metadata))
        writer, states = RunWriter.reopen(arguments.resume)
        return writer, TrainConfig.from_dict(writer.metadata["config"]), states
    except (RunCorruptError, ValueError, OSError) as error:
        parser.error(f"resume: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        set_thread_count(arguments.threads)  # before the writer records the environment
    except ValueError as error:
        parser.error(str(error))
    states: dict = {}
    if arguments.resume:
        writer, config, states = open_resumed(parser, arguments)
    else:
        try:
            config = config_from_args(arguments)
        except ValueError as error:
            parser.error(str(error))
        try:
            writer = RunWriter(arguments.output_dir, config, arguments.run_id)
        except (ValueError, OSError) as error:  # an existing or invalid --run-id, an unwritable --output-dir
            parser.error(f"output: cannot create the run directory: {error}")
    progress = tqdm(total=None, unit="step", dynamic_ncols=True)

    def on_event(event: Event) -> None:
        writer.record(event)
        if event.kind == "status":
            progress.write(event.message)
        elif event.kind == "started":
            progress.reset(total=event.total_steps)
            progress.write(f"{event.num_train} training images, counts {list(event.class_counts)}; device {event.device}")
        elif event.kind == "step":
            progress.update(1)
            progress.set_postfix({name: f"{value:.3f}" for name, value in event.losses.items()}, refresh=False)
        elif event.kind == "epoch":
            scores = ", ".join(f"{name} {100 * value.balanced_accuracy:.1f}" for name, value in event.evaluations.items())
            progress.write(f"seed {event.seed} epoch {event.epoch}: balanced accuracy {scores}")

    # Ctrl-C asks the engine to stop at the next step, so the models trained so far are still saved.
    stop_requested = threading.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.getsignal(signal.SIGINT) if in_main_thread else None

    def on_interrupt(*_: object) -> None:
        stop_requested.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    if in_main_thread:
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = train_paired(
            config, on_event, stop_requested.is_set, data_dir=arguments.data_dir, allow_download=not arguments.no_download,
            on_checkpoint=writer.save_checkpoint, resume=states,
        )
    except (data.DataUnavailableError, ValueError) as error:
        progress.close()
        writer.fail(str(error))
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BaseException as error:  # a crash or a second Ctrl-C: record why, then let it propagate
        progress.close()
        writer.fail(f"{type(error).__name__}: {error}", status=JobStatus.CANCELLED if isinstance(error, KeyboardInterrupt) else JobStatus.FAILED)
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous_handler)
    progress.close()
    status = recorded_status(result.status)
    writer.finish(result, status=status)
    print(result_table(result))
    print(f"Run directory: {writer.run_dir} (status {status}{': ' + result.reason if result.reason else ''})")
    if status != JobStatus.DONE and read_run(writer.run_dir).resumable:
        print(f"Continue it from its last complete epoch: python -m cce_demo.train --resume {writer.run_dir}")
    return 0 if result.status == JobStatus.DONE else 1


if __name__ == "__main__":
    sys.exit(main())
