"""Result grids: `python -m cce_demo.reproduce` trains every (dataset, profile, imbalance ratio, seed) cell of a
grid as one paired run, resumably, and writes the across-seed tables (`results.json`, `results.md`; computed and
worded by grid_tables.py).

Under `torchrun` each rank takes its share of the cells (round-robin) and rank 0 gathers and writes the tables;
several ranks may share one GPU, since these small nets leave a GPU mostly idle.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from . import data
from .config import PRESET_ALIASES, PRESETS, TrainConfig, parse_seed_text, preset
from .engine import train_paired
from .fields import FIELDS, add_flags, flag_values
from .grid_tables import REPLAY_CONDITIONS, RESULTS_FORMAT_VERSION, aggregate, markdown_report
from .provenance import combined_data, environment
from .run_directory import RunCorruptError, RunWriter, read_run, write_atomic, write_json_atomic
from .schema import Event
from .status import JobStatus, recorded_status
from .threads import set_thread_count

# The settings a grid varies (one cell per combination); its losses train together in each cell.
GRID_AXES = ("dataset", "profile", "imbalance_ratio")
GRIDS_DIR = Path(__file__).resolve().parent.parent / "grids"
CELL_FILE = "cell.json"  # beside run.json: the cell's wall time and where it ran, written when it finished
RESULTS_JSON = "results.json"
RESULTS_MARKDOWN = "results.md"
SUBSET_DRAWS = ("fixed", "per_seed")
# Gloo's default collective timeout is 30 minutes; ranks of a full-length grid can finish hours apart.
GATHER_TIMEOUT = datetime.timedelta(days=7)


# ---------------------------------------------------------------- the grid as a value


@dataclass(frozen=True)
class Grid:
    """Datasets x imbalance ratios x profiles x seeds cells, each training all `losses` as a paired run
    with the preset's settings and `overrides`."""

    name: str
    preset: str = "standard"
    datasets: tuple[str, ...] = ("cifar10",)
    imbalance_ratios: tuple[float, ...] = (100.0,)
    profiles: tuple[str, ...] = ("exp",)
    losses: tuple[str, ...] = ("ce", "cce")
    seeds: tuple[int, ...] = (0, 1, 2)
    overrides: tuple[tuple[str, Any], ...] = ()  # other TrainConfig fields, as sorted (name, value) pairs
    # "fixed": every cell trains on the preset's one long-tailed subset (its subset_seed), so the intervals
    # cover training seeds only. "per_seed": each seed draws its own subset (subset_seed = seed), so they
    # cover the data draw too.
    subset_draw: str = "fixed"

    def __post_init__(self) -> None:
        for field_name in ("datasets", "imbalance_ratios", "profiles", "losses", "seeds"):
            values = getattr(self, field_name)
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"{field_name}: expected a non-empty list, got {values!r}")
            object.__setattr__(self, field_name, tuple(values))
        object.__setattr__(self, "imbalance_ratios", tuple(float(value) for value in self.imbalance_ratios))
        if isinstance(self.overrides, dict):
            object.__setattr__(self, "overrides", tuple(sorted(self.overrides.items())))
        if self.subset_draw not in SUBSET_DRAWS:
            raise ValueError(f"subset_draw: one of {', '.join(SUBSET_DRAWS)}, got {self.subset_draw!r}")
        if self.subset_draw == "per_seed" and "subset_seed" in dict(self.overrides):
            raise ValueError("subset_draw: 'per_seed' sets each cell's subset_seed to its seed; drop the subset_seed override")
        if not self.name or not all(character.isalnum() or character in "._-" for character in self.name):
            raise ValueError(f"name: letters, digits, '.', '_' and '-' only, got {self.name!r}")
        for field_name, values in (("datasets", self.datasets), ("profiles", self.profiles)):
            if len(set(values)) != len(values):
                raise ValueError(f"{field_name}: each value may appear once, got {list(values)}")
        for cell in self.cells():  # validates every combination before anything trains
            cell.config

    def cells(self) -> list["Cell"]:
        # Seeds innermost: a grid stopped half-way has whole (dataset, ratio) groups rather than one seed of each.
        return [
            Cell(self, dataset, profile, ratio, seed)
            for dataset in self.datasets
            for ratio in self.imbalance_ratios
            for profile in self.profiles
            for seed in self.seeds
        ]

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["overrides"] = dict(self.overrides)
        for key in ("datasets", "imbalance_ratios", "profiles", "losses", "seeds"):
            values[key] = list(values[key])
        return values


@dataclass(frozen=True)
class Cell:
    grid: Grid
    dataset: str
    profile: str
    imbalance_ratio: float
    seed: int

    @property
    def config(self) -> TrainConfig:
        overrides = dict(self.grid.overrides)
        if self.grid.subset_draw == "per_seed":
            overrides["subset_seed"] = self.seed
        return preset(
            self.grid.preset, **overrides, dataset=self.dataset, profile=self.profile,
            imbalance_ratio=self.imbalance_ratio, losses=self.grid.losses, seeds=(self.seed,),
        )

    @property
    def run_id(self) -> str:
        return f"{self.dataset}-{self.profile}-r{self.imbalance_ratio:g}-seed{self.seed}"

    @property
    def group_key(self) -> tuple[str, str, float]:
        return (self.dataset, self.profile, self.imbalance_ratio)


def load_grid_file(path: str | os.PathLike) -> Grid:
    """A grid from a TOML or JSON file: the Grid fields (`name` defaults to the file's stem)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"grid: cannot read {path}: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"grid: {path} must hold a table of grid fields")
    values.setdefault("name", path.stem)
    known = {field.name for field in dataclasses.fields(Grid)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"grid: unknown field(s) {', '.join(unknown)} in {path}; valid fields: {', '.join(sorted(known))}")
    return Grid(**values)


def named_grid_path(name_or_path: str) -> Path:
    """A grid file: a path, or the name of one of the repository's grids (grids/<name>.toml)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".toml", ".json") and candidate.exists():
        return candidate
    named = GRIDS_DIR / f"{name_or_path}.toml"
    if named.exists():
        return named
    available = sorted(path.stem for path in GRIDS_DIR.glob("*.toml"))
    raise ValueError(f"grid: no grid file or named grid {name_or_path!r}; named grids: {', '.join(available) or 'none'}")


# ---------------------------------------------------------------- one cell


def cell_is_done(run_dir: Path) -> bool:
    try:
        return read_run(run_dir).status == JobStatus.DONE and (run_dir / CELL_FILE).exists()
    except RunCorruptError:
        return False


def run_cell(
    cell: Cell, runs_dir: Path, data_dir: str | None, allow_download: bool, on_step: Any = None,
) -> dict[str, Any]:
    """Train one cell unless it finished before. An interrupted or stopped one with a saved training state
    of the same settings goes on from its last complete epoch (bit-identical to an uninterrupted cell on the
    same machine and threads); one without (or of other settings) is redone from scratch. The cell's wall time
    adds up every session's."""
    run_dir = runs_dir / cell.run_id
    if cell_is_done(run_dir):
        return cell_summary(run_dir)
    config = cell.config
    states, earlier_seconds = {}, 0.0
    record = _resumable_cell(run_dir, config)
    if record is not None:
        writer, states = RunWriter.reopen(run_dir)
        earlier_seconds = float(record.metadata.get("trained_seconds") or 0.0)
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        writer = RunWriter(runs_dir, config, cell.run_id)
    started = time.perf_counter()

    def on_checkpoint(state: Any) -> None:
        # The training time so far, saved with every epoch, so that a resumed cell's wall time counts it.
        writer.metadata["trained_seconds"] = earlier_seconds + time.perf_counter() - started
        writer.save_checkpoint(state)

    def on_event(event: Event) -> None:
        writer.record(event)
        if on_step is not None and event.kind == "started":
            on_step(0, event.total_steps)
        elif on_step is not None and event.kind == "step":
            on_step(event.global_step, None)

    try:
        result = train_paired(config, on_event, data_dir=data_dir, allow_download=allow_download,
                              on_checkpoint=on_checkpoint, resume=states)
    except BaseException as error:
        writer.fail(f"{type(error).__name__}: {error}")
        raise
    status = recorded_status(result.status)
    writer.finish(result, status=status)
    if status != JobStatus.DONE:
        raise RuntimeError(f"cell {cell.run_id} ended {status}: {result.reason}")
    write_json_atomic(run_dir / CELL_FILE, {
        "wall_seconds": earlier_seconds + time.perf_counter() - started, "hardware": hardware(config.device),
        "finished_at": _now(), "sessions": 1 + len(writer.metadata.get("resumes") or []),
    })
    return cell_summary(run_dir)


def _resumable_cell(run_dir: Path, config: TrainConfig) -> Any:
    """The cell's run record when it can go on from a saved state of exactly these settings, else None."""
    try:
        record = read_run(run_dir)
    except RunCorruptError:
        return None
    return record if record.resumable and record.config == config else None


def cell_summary(run_dir: Path) -> dict[str, Any]:
    """What the tables need from a finished cell, as plain data (small: it crosses process boundaries)."""
    record = read_run(run_dir)
    cell = json.loads((run_dir / CELL_FILE).read_text(encoding="utf-8"))
    final = record.final
    seed = str(record.config.seeds[0])
    return {
        "subset_seed": record.config.subset_seed,
        "data": record.metadata.get("data") or {},
        "run_id": record.run_id,
        "dataset": record.config.dataset,
        "profile": record.config.profile,
        "imbalance_ratio": record.config.imbalance_ratio,
        "seed": record.config.seeds[0],
        "class_names": list(record.class_names),
        "class_counts": list(record.class_counts),
        "baseline": final.get("baseline"),
        "evaluations": final["evaluations"][seed],
        "comparisons": final.get("comparisons", []),
        "wall_seconds": cell["wall_seconds"],
        "hardware": cell["hardware"],
    }


# ---------------------------------------------------------------- tables across seeds


# ---------------------------------------------------------------- markdown


# ---------------------------------------------------------------- hardware and distribution


def hardware(device: str = "auto") -> dict[str, Any]:
    """Where a cell ran: CPU model, cores, torch threads, torch/torchvision versions, deterministic settings,
    GPU (`provenance.environment`)."""
    return environment(device)


def combined_hardware(cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The hardware of several cells as one record. A grid resumed in another session may have run its cells
    with other thread counts (or on another host); a field on which the cells disagree lists every value seen
    ("1 or 2"), so the table never shows one cell's setting as if it held for all."""
    combined: dict[str, Any] = {}
    for key in dict.fromkeys(key for cell in cells for key in cell):
        # By their JSON text, so that nested settings (the deterministic flags) compare too.
        seen = {json.dumps(cell.get(key), sort_keys=True): cell.get(key) for cell in cells if cell.get(key) is not None}
        values = list(seen.values())
        if len(values) == 1:
            combined[key] = values[0]
        elif all(isinstance(value, dict) for value in values):
            combined[key] = values  # every setting seen, not one cell's
        else:
            combined[key] = " or ".join(map(str, sorted(values, key=str)))
    return combined


@dataclass(frozen=True)
class Distribution:
    """This process's place in a torchrun launch (rank 0 of 1 when run directly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_environment(cls, environ: dict[str, str] | os._Environ = os.environ) -> "Distribution":
        return cls(
            int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1)),
            int(environ.get("LOCAL_RANK", 0)), int(environ.get("LOCAL_WORLD_SIZE", environ.get("WORLD_SIZE", 1))),
        )

    def my_cells(self, cells: Sequence[Cell]) -> list[Cell]:
        return [cell for index, cell in enumerate(cells) if index % self.world_size == self.rank]


def set_up_process(distribution: Distribution, device: str) -> str:
    """Pin this rank to a GPU (round-robin: more ranks than GPUs share them) or to its share of the CPU
    cores, and join the process group. Returns the device name the cells should use."""
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(distribution.local_rank % torch.cuda.device_count())
    elif distribution.local_world_size > 1:
        # Ranks on one machine split its cores; oversubscribed threads make every rank slower.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // distribution.local_world_size))
    if distribution.world_size > 1:
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=GATHER_TIMEOUT)
    return device


def gather(summaries: list[dict[str, Any]], distribution: Distribution) -> list[dict[str, Any]] | None:
    """Every rank's cell summaries at rank 0 (None elsewhere)."""
    if distribution.world_size == 1:
        return summaries
    gathered: list[Any] | None = [None] * distribution.world_size if distribution.rank == 0 else None
    torch.distributed.gather_object(summaries, gathered, dst=0)
    if distribution.rank != 0:
        return None
    return [summary for part in gathered for summary in part]


# ---------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cce_demo.reproduce",
        description="Train a grid of paired runs (datasets x ratios x profiles x seeds) and write across-seed tables. "
        "Resumable: finished cells are skipped. Runs under torchrun too (each rank takes its share of the cells).",
    )
    parser.add_argument("--grid", help="a named grid (grids/<name>.toml) or a TOML/JSON grid file; flags override it")
    parser.add_argument("--name", help="the grid's name (default: the grid file's, or 'custom')")
    parser.add_argument("--preset", choices=[*PRESETS, *PRESET_ALIASES])
    # One flag per setting (fields.py); the grid's axes take several comma-separated values.
    add_flags(parser, lists=GRID_AXES)
    parser.add_argument("--seed", type=int, help="one training seed")
    parser.add_argument("--data-dir", help="folder with CIFAR (npz or torchvision); default: $CCE_DATA_DIR or ./data")
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument("--output-dir", help="default: results/<grid name>")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs)")
    parser.add_argument("--threads", type=int, help="torch threads per process (recorded in the command: a bit-for-bit "
                        "replay needs the same count; default: torch's, or cores / ranks under torchrun)")
    parser.add_argument("--tables-only", action="store_true",
                        help="train nothing: rewrite results.json and results.md from the finished cells in the output folder")
    return parser


def grid_from_args(arguments: argparse.Namespace) -> Grid:
    base = load_grid_file(named_grid_path(arguments.grid)).to_dict() if arguments.grid else {"name": "custom"}
    if arguments.name:
        base["name"] = arguments.name
    split = lambda text: [part.strip() for part in text.split(",") if part.strip()]  # noqa: E731
    if arguments.preset:
        base["preset"] = PRESET_ALIASES.get(arguments.preset, arguments.preset)
    if arguments.dataset:
        base["datasets"] = split(arguments.dataset)
    if arguments.profile:
        base["profiles"] = split(arguments.profile)
    if arguments.imbalance_ratio:
        try:
            base["imbalance_ratios"] = [float(part) for part in split(arguments.imbalance_ratio)]
        except ValueError as error:
            raise ValueError(f"imbalance_ratio: expected numbers separated by commas, got {arguments.imbalance_ratio!r}") from error
    if arguments.losses:
        base["losses"] = split(arguments.losses)
    if arguments.seeds is not None and arguments.seed is not None:
        raise ValueError("seeds: give either --seed or --seeds, not both")
    if arguments.seeds is not None:
        base["seeds"] = list(parse_seed_text(arguments.seeds))
    if arguments.seed is not None:
        base["seeds"] = [arguments.seed]
    overrides = dict(base.get("overrides", {}))
    # Every other setting is the same for all cells.
    overrides.update(flag_values(arguments, [field for field in FIELDS if field.config_field not in (*GRID_AXES, "losses", "seeds")]))
    base["overrides"] = overrides
    return Grid(**base)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        grid = grid_from_args(arguments)
    except ValueError as error:
        parser.error(str(error))
    output_dir = Path(arguments.output_dir or Path("results") / grid.name)
    runs_dir = output_dir / "runs"
    distribution = Distribution.from_environment()
    device = dict(grid.overrides).get("device", PRESETS[grid.preset].device)
    set_up_process(distribution, device)
    try:
        set_thread_count(arguments.threads)
    except ValueError as error:
        parser.error(str(error))
    runs_dir.mkdir(parents=True, exist_ok=True)
    cells = grid.cells()
    mine = distribution.my_cells(cells)
    given = portable_flags(sys.argv[1:] if argv is None else list(argv))
    given = [flag for flag in given if flag != "--tables-only"]
    if not any(flag == "--threads" or flag.startswith("--threads=") for flag in given):
        given += ["--threads", str(torch.get_num_threads())]  # a replay needs the same thread count
    flags = shlex.join(given)
    launcher = (f"torchrun --nnodes={distribution.world_size // distribution.local_world_size} "
                f"--nproc_per_node={distribution.local_world_size} -m" if distribution.world_size > 1 else "python -m")
    command = f"{launcher} cce_demo.reproduce {flags}".strip()
    summaries = []
    if arguments.tables_only:
        if distribution.world_size > 1:
            parser.error("--tables-only: run it as one process, not under torchrun")
        summaries = [cell_summary(runs_dir / cell.run_id) for cell in cells if cell_is_done(runs_dir / cell.run_id)]
        mine = []
        if not summaries:
            print(f"error: --tables-only: no finished cell of this grid in {runs_dir}", file=sys.stderr)
            return 2
    progress = CellProgress(len(mine), distribution, disabled=arguments.no_progress)
    try:
        for cell in mine:
            progress.set_description(cell.run_id)
            summaries.append(run_cell(cell, runs_dir, arguments.data_dir, not arguments.no_download, progress.cell_step))
            progress.update(1)
    except (data.DataUnavailableError, ValueError, RuntimeError) as error:
        progress.close()
        print(f"error (rank {distribution.rank}): {error}", file=sys.stderr)
        if distribution.world_size > 1:
            torch.distributed.destroy_process_group()
        return 2
    progress.close()
    everything = gather(summaries, distribution)
    if everything is not None:
        results = build_results(grid, everything, command, distribution)
        output_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(output_dir / RESULTS_JSON, results)
        write_atomic(output_dir / RESULTS_MARKDOWN, markdown_report(results).encode("utf-8"))
        print(f"Wrote {output_dir / RESULTS_JSON} and {output_dir / RESULTS_MARKDOWN} ({len(everything)} cells)")
    if distribution.world_size > 1:
        torch.distributed.destroy_process_group()
    return 0


def portable_flags(flags: Sequence[str]) -> list[str]:
    """The command line as others can rerun it: where the data lies here is nobody else's business."""
    portable, hide_next = [], False
    for flag in flags:
        if hide_next:
            portable.append("DIR")
            hide_next = False
        elif flag == "--data-dir":
            portable.append(flag)
            hide_next = True
        elif flag.startswith("--data-dir="):
            portable.append("--data-dir=DIR")
        else:
            portable.append(flag)
    return portable


def build_results(grid: Grid, summaries: list[dict[str, Any]], command: str, distribution: Distribution) -> dict[str, Any]:
    cell_seconds = sum(summary["wall_seconds"] for summary in summaries)
    info = combined_hardware([summary["hardware"] for summary in summaries]) if summaries else hardware()
    info["processes"] = distribution.world_size
    return {
        "format_version": RESULTS_FORMAT_VERSION,
        "grid": grid.to_dict(),
        "config": dataclasses.replace(grid.cells()[0].config, seeds=tuple(grid.seeds)).to_dict(),
        "command": command,
        "hardware": info,
        "data": combined_data(summary.get("data") for summary in summaries),
        "replay": REPLAY_CONDITIONS,
        "cells_done": len(summaries),
        "cell_seconds": cell_seconds,
        "cells_per_hour": 3600 * len(summaries) / cell_seconds if cell_seconds else 0.0,
        "written_at": _now(),
        "tables": aggregate(summaries, grid.losses),
    }


class CellProgress:
    """tqdm over this rank's cells (its ETA is per cell), with the running cell's step progress as a postfix."""

    def __init__(self, total: int, distribution: Distribution, disabled: bool) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="cell", position=distribution.rank, disable=disabled, dynamic_ncols=True,
                         desc=f"rank {distribution.rank}" if distribution.world_size > 1 else None)
        self._cell_total: int | None = None
        self._last_shown = 0.0

    def cell_step(self, step: int, total: int | None) -> None:
        if total is not None:
            self._cell_total = total
        now = time.monotonic()
        if self._cell_total and now - self._last_shown > 2:
            self._last_shown = now
            self._bar.set_postfix_str(f"cell {100 * step / self._cell_total:.0f} %")

    def set_description(self, text: str) -> None:
        self._bar.set_description(text)

    def update(self, count: int) -> None:
        self._bar.update(count)

    def close(self) -> None:
        self._bar.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


if __name__ == "__main__":
    sys.exit(main())
