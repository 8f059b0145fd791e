"""The run record, typed once: an evaluation, its prior-corrected scores, McNemar's test, a paired
comparison, the across-seed summary, the points of the curves, the events the engine emits (a union tagged
by `kind`) and the run's metadata (run.json). The engine emits these records, the run writer dumps them,
and the readers (the replay of a run directory, the job state, the UI) parse and read them.

Pydantic models (frozen): a record that does not parse is an error where it is read, not a wrong number
further on. JSON has no NaN or infinity, so a number that was not finite is written as null (`to_jsonable`)
and reads back as None: such fields are `Number`.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .status import JobStatus

# A float that was written as null where it was not finite (a diverged run, a class with no test image).
Number = float | None


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class McNemar(Record):
    """Paired comparison of model A against model B on the same samples."""

    only_a_correct: int  # discordant pairs where A is right and B wrong
    only_b_correct: int
    p_value: Number  # exact two-sided McNemar (binomial test on the discordant pairs)

    @property
    def discordant(self) -> int:
        return self.only_a_correct + self.only_b_correct


class SeedSummary(Record):
    """Paired differences (other loss minus baseline) of one metric, one per seed, and their mean with a
    95 % t-interval across seeds (None with a single seed: one seed cannot say how much seeds vary)."""

    differences: tuple[Number, ...]
    mean: Number
    interval: tuple[Number, Number] | None

    @property
    def num_seeds(self) -> int:
        return len(self.differences)


class PriorCorrectedScores(Record):
    """The same model scored with post-hoc logit adjustment (Menon et al. 2021): the prediction is
    argmax(logits - tau * log prior), prior = the training class frequencies. No retraining: a free baseline
    that any training-time gain on the tail has to beat."""

    tau: float
    accuracy: Number
    balanced_accuracy: Number
    per_class_recall: tuple[Number, ...]
    group_recall: dict[str, Number]


class EpochScores(Record):
    """What the per-epoch curves draw of one model's evaluation."""

    test_loss: Number  # plain cross entropy, whatever the training loss, so losses share an axis
    accuracy: Number
    balanced_accuracy: Number
    complement_entropy: Number  # mean C on the test set: higher = flatter wrong-class probabilities
    group_recall: dict[str, Number]  # head / medium / tail


class Evaluation(EpochScores):
    """One model on the balanced test split (or, between epochs, on a fixed stratified part of it)."""

    per_class_recall: tuple[Number, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    num_images: int = 0  # test images scored: the whole split, or the per-epoch subset
    prior_corrected: PriorCorrectedScores | None = None


class PairedComparison(Record):
    """One loss against the baseline loss on one seed: same initial weights, same batches."""

    seed: int
    baseline: str
    other: str
    mcnemar: McNemar  # only_a_correct = baseline right, other wrong
    per_class_mcnemar: tuple[McNemar, ...]
    accuracy_difference: Number  # other minus baseline
    balanced_accuracy_difference: Number


# ---------------------------------------------------------------- events


class StatusMessage(Record):
    kind: Literal["status"] = "status"
    message: str


class RunStarted(Record):
    kind: Literal["started"] = "started"
    config: dict[str, Any]
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    num_train: int
    num_test: int
    device: str
    steps_per_epoch: int
    total_steps: int  # over all seeds
    data_source: str
    # The data copy and its files' hashes (provenance.py); absent from events written before issue 19.
    data: dict[str, Any] = Field(default_factory=dict)


class StepMetrics(Record):
    """One training step of the pair: also a point of the training-loss curve."""

    kind: Literal["step"] = "step"
    seed: int
    step: int  # 1-based within the seed
    global_step: int  # 1-based over all seeds, for progress
    epoch: float  # fractional epoch reached, for plotting
    losses: dict[str, Number]  # each loss's training objective on this batch
    cross_entropy: dict[str, Number]  # its plain CE part
    learning_rate: Number
    images_per_second: Number  # training images through all models of the pair per second


class EpochMetrics(Record):
    kind: Literal["epoch"] = "epoch"
    seed: int
    epoch: int
    global_step: int
    evaluations: dict[str, Evaluation]


class SeedFinished(Record):
    kind: Literal["seed_finished"] = "seed_finished"
    seed: int
    comparisons: tuple[PairedComparison, ...]


class RunFinished(Record):
    kind: Literal["finished"] = "finished"
    status: JobStatus  # DONE / CANCELLED / DIVERGED
    reason: str
    # per non-baseline loss: the across-seed summary of its balanced-accuracy difference to the baseline
    summaries: dict[str, SeedSummary]


Event = Annotated[
    Union[StatusMessage, RunStarted, StepMetrics, EpochMetrics, SeedFinished, RunFinished], Field(discriminator="kind")
]
EVENT_KINDS = ("status", "started", "step", "epoch", "seed_finished", "finished")
_EVENT = TypeAdapter(Event)


def parse_event(data: Mapping[str, Any]) -> Event:
    """One event as written to events.jsonl (or sent as JSON); raises pydantic's ValidationError (a
    ValueError) for anything that is not one."""
    return _EVENT.validate_python(data)


class EpochPoint(Record):
    """One evaluated epoch of one seed, as the per-epoch curves draw it."""

    seed: int
    epoch: int
    global_step: int
    losses: dict[str, EpochScores]

    @classmethod
    def of(cls, event: EpochMetrics) -> "EpochPoint":
        return cls(seed=event.seed, epoch=event.epoch, global_step=event.global_step,
                   losses={name: EpochScores(**evaluation.model_dump(include=set(EpochScores.model_fields)))
                           for name, evaluation in event.evaluations.items()})


# ---------------------------------------------------------------- run.json


class FinalResults(Record):
    """What a finished (or stopped) run recorded at its end: for a stopped seed, its last completed epoch."""

    baseline: str | None = None
    finished_seeds: tuple[int, ...] = ()
    evaluations: dict[str, dict[str, Evaluation]] = Field(default_factory=dict)  # seed (as text) -> loss -> evaluation
    comparisons: tuple[PairedComparison, ...] = ()
    summaries: dict[str, SeedSummary] = Field(default_factory=dict)


class RunMetadata(Record):
    """run.json. Format 2 is what this version writes; format 1 has the same shape and is read alike."""

    format_version: int
    run_id: str
    status: JobStatus
    reason: str = ""
    config: dict[str, Any]
    losses: tuple[str, ...] = ()
    created_at: str | None = None
    finished_at: str | None = None
    versions: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    owner: dict[str, Any] | None = None
    class_names: tuple[str, ...] | None = None
    class_counts: tuple[int, ...] | None = None
    device: str | None = None
    num_train: int | None = None
    num_test: int | None = None
    data_source: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    weights: dict[str, dict[str, str]] = Field(default_factory=dict)
    final: FinalResults = Field(default_factory=FinalResults)


# ---------------------------------------------------------------- results.json (a result grid)


class Interval(Record):
    """One number across seeds as `grid_tables.interval_of` writes it: the mean, its 95 % t-interval (None
    with one seed), the seed count and the per-seed values (format 2), and whether the interval was clipped
    to the bounds of what it measures."""

    mean: Number = None
    low: Number = None
    high: Number = None
    seeds: int = 0
    values: tuple[Number, ...] = ()
    clipped: bool = False

    @property
    def has_interval(self) -> bool:
        return self.mean is not None and self.low is not None and self.high is not None


class MetricIntervals(Record):
    """The reported metrics of one loss (or of one loss minus the baseline), each across seeds: accuracy,
    balanced accuracy, the rank groups (head / medium / tail) and the count groups (many / medium / few)."""

    accuracy: Interval = Interval()
    balanced_accuracy: Interval = Interval()
    rank_head: Interval = Interval()
    rank_medium: Interval = Interval()
    rank_tail: Interval = Interval()
    count_many: Interval = Interval()
    count_medium: Interval = Interval()
    count_few: Interval = Interval()


class HolmResult(Record):
    p_value: Number
    adjusted_p: Number
    survives: bool


class Multiplicity(Record):
    """Holm's correction over a table's primary comparisons; `results` is None in a format-1 file, which
    holds no per-seed values to test."""

    family: str = ""
    comparisons: int = 0
    test: str = ""
    method: str = ""
    alpha: float = 0.05
    results: dict[str, HolmResult] | None = None

    @property
    def survivors(self) -> tuple[str, ...]:
        return tuple(loss for loss, result in (self.results or {}).items() if result.survives)


class GridTable(Record):
    """One (dataset, profile, imbalance ratio) of a grid: every loss across its seeds."""

    dataset: str
    profile: str
    imbalance_ratio: float
    seeds: tuple[int, ...]
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    baseline: str
    losses: dict[str, MetricIntervals]
    prior_corrected: dict[str, MetricIntervals] = Field(default_factory=dict)
    versus_baseline: dict[str, MetricIntervals] = Field(default_factory=dict)  # loss minus baseline, paired per seed
    prior_corrected_versus_baseline: dict[str, MetricIntervals] = Field(default_factory=dict)
    per_class_recall: dict[str, tuple[Interval, ...]] = Field(default_factory=dict)
    per_class_difference: dict[str, tuple[Interval, ...]] = Field(default_factory=dict)
    mcnemar_p: dict[str, tuple[Number, ...]] = Field(default_factory=dict)  # per seed
    wall_seconds: Number = None
    subset_seed: int | None = None  # the one subset every seed trained on; None when each seed drew its own
    subset_seeds: tuple[int | None, ...] = ()  # per seed, in `seeds` order (older files: empty; None: not recorded)
    data: dict[str, Any] | None = None
    multiplicity: Multiplicity = Multiplicity()


class GridHardware(Record):
    cpu: str | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    gpu: str | None = None
    gpu_count: int | None = None
    processes: int = 1
    torch: str | None = None
    torchvision: str | None = None


class GridSettings(Record):
    name: str = ""
    preset: str | None = None
    note: str | None = None


class GridResults(Record):
    """results.json of a grid, as `grid_tables.read_results` shows it (format 1 is brought to format 2's
    shape there); the Results tab and the verdict card read this, never the raw file."""

    format_version: int
    tables: tuple[GridTable, ...]
    command: str = ""
    config: dict[str, Any] = Field(default_factory=dict)  # the preset's TrainConfig fields
    grid: GridSettings = GridSettings()
    hardware: GridHardware = GridHardware()
    cells_done: int = 0
    cell_seconds: float = 0.0
    data: dict[str, Any] | None = None

    def table_for(self, dataset: str, profile: str, imbalance_ratio: float) -> GridTable | None:
        return next((table for table in self.tables
                     if (table.dataset, table.profile, table.imbalance_ratio) == (dataset, profile, imbalance_ratio)), None)
