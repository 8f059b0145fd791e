"""Time budgets: how long a training job will take, before it is queued and while it runs, and the limits a
public deployment puts on jobs, visitors and disk.

One cost model serves both uses. A job's work is counted in *estimated seconds*: every training step and every
evaluation pass is weighted with its measured per-image cost (the `CALIBRATION` table), so progress includes
evaluation, and the ETA is the remaining work divided by the rate measured so far. Everything here is pure
except `Limits.from_environment`, which only reads the mapping it is given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from .config import TrainConfig
from .data import planned_class_counts

# ---------------------------------------------------------------- calibration


@dataclass(frozen=True)
class ModelCost:
    """Seconds for one model of a paired run on one kind of device."""

    # Per training image: forward, backward, SGD step, and its share of the batch's augmentation.
    train_seconds_per_image: float
    # Per training step whatever the batch size: operator dispatch, the optimiser's per-tensor work, the step
    # event. It is why a batch of 1 costs far more per image than a batch of 128.
    train_seconds_per_step: float
    # Per test image scored (batches of the engine's EVAL_BATCH_SIZE, no gradients).
    eval_seconds_per_image: float

    def __post_init__(self) -> None:
        for name in ("train_seconds_per_image", "train_seconds_per_step", "eval_seconds_per_image"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class Calibration:
    """Measured (or, where `measured` says not, guessed) costs per (device type, model name), and the time to
    load each dataset from disk before the first step."""

    costs: Mapping[tuple[str, str], ModelCost]
    data_seconds: Mapping[str, float]  # per dataset name and device type: (dataset, device type) -> seconds
    measured: frozenset[str]  # device types whose numbers were measured; the others are guesses
    where: Mapping[str, str]  # device type -> how an estimate says where it holds ("on this machine")

    def cost(self, device_type: str, model: str) -> ModelCost:
        try:
            return self.costs[(device_type, model)]
        except KeyError:
            known = sorted({name for _, name in self.costs})
            devices = sorted({device for device, _ in self.costs})
            raise ValueError(
                f"no cost figures for model {model!r} on {device_type!r}; known models: {', '.join(known)}; "
                f"known device types: {', '.join(devices)}"
            ) from None


def calibration(
    costs: Mapping[tuple[str, str], ModelCost],
    data_seconds: Mapping[tuple[str, str], float],
    measured: frozenset[str] | set[str],
    where: Mapping[str, str],
) -> Calibration:
    """A `Calibration` over read-only copies of the tables (tests build their own, e.g. absurdly fast ones)."""
    return Calibration(
        MappingProxyType(dict(costs)), MappingProxyType(dict(data_seconds)), frozenset(measured), MappingProxyType(dict(where))
    )


# THE calibration table: the only place the estimate's numbers live.
# CPU: `python bench/estimate_accuracy.py --calibrate --clock cpu --threads 1 --data-dir DIR`, 2026-11-28, on
# the 2-core "Intel(R) Xeon(R) Processor" development machine, torch 2.14.1, channels_last, the engine's own
# loop (losses ce+cce) at batch sizes 1, 32, 128 and 256 and evaluation at batch 500. The machine was shared
# with a training job running at higher priority (load average 5-6), so wall time would have measured the
# contention: the script times this thread's CPU time at 1 thread instead, and divides the per-image costs
# by one factor (3.87) that takes 1-thread CPU time under that load to the 2-thread wall time of a quiet
# machine: bench/benchmark.py's training step measured both ways (here, and quiet in bench/results.json).
# Per-step costs are not divided (a second thread does not speed up dispatch), which errs slow for small
# batches. bench/estimate_results.json keeps the raw points, the fit (within 9 % of every point) and the load.
# The reference benchmark ran on an AMD EPYC host 2.9 times faster per training step than this Intel one, so
# the table's scale is that host's; the app rescales it to its own host at start-up (speed_probe.py), and
# the relative costs (model to model, training to evaluation, per image to per step) are what this table adds.
# CUDA: NOT measured (no GPU was available when this table was made): deliberately slow guesses for an
# entry-level GPU, so a GPU job is overestimated rather than under: ~15k / 8k / 5k training images per second
# per model for resnet8 / 20 / 32 and a few milliseconds of launch overhead per step, which is what
# launch-bound small CIFAR ResNets do. Replace them with `--calibrate` on the GPU.
_CPU = "cpu"
_CUDA = "cuda"
CALIBRATION = calibration(
    costs={
        (_CPU, "resnet8"): ModelCost(train_seconds_per_image=3.75e-4, train_seconds_per_step=4.74e-3, eval_seconds_per_image=1.43e-4),
        (_CPU, "resnet20"): ModelCost(train_seconds_per_image=9.57e-4, train_seconds_per_step=6.19e-3, eval_seconds_per_image=3.66e-4),
        (_CPU, "resnet32"): ModelCost(train_seconds_per_image=1.63e-3, train_seconds_per_step=1.99e-2, eval_seconds_per_image=5.72e-4),
        # The conv nets: `--calibrate --clock cpu --threads 1 --models resnet8,convnet-s,convnet-m,convnet-l`,
        # 2026-12-01, AMD EPYC development host under heavy sharing (load 7-29; bench/estimate_results.json,
        # section calibration_resnet8_convnet-s_convnet-m_convnet-l). Their rows are that run's fits scaled by
        # the ratio of ResNet-8's row above to ResNet-8's fit in the same run (per image 1.147 for training and
        # 0.883 for evaluation, 0.712 per step), so the model-to-model ratios come from one run.
        (_CPU, "convnet-s"): ModelCost(train_seconds_per_image=2.78e-4, train_seconds_per_step=4.27e-3, eval_seconds_per_image=8.02e-5),
        (_CPU, "convnet-m"): ModelCost(train_seconds_per_image=3.49e-4, train_seconds_per_step=4.70e-3, eval_seconds_per_image=1.09e-4),
        (_CPU, "convnet-l"): ModelCost(train_seconds_per_image=7.20e-4, train_seconds_per_step=7.11e-3, eval_seconds_per_image=2.61e-4),
        (_CUDA, "convnet-s"): ModelCost(train_seconds_per_image=7e-5, train_seconds_per_step=4e-3, eval_seconds_per_image=2e-5),
        (_CUDA, "convnet-m"): ModelCost(train_seconds_per_image=8e-5, train_seconds_per_step=4e-3, eval_seconds_per_image=2e-5),
        (_CUDA, "convnet-l"): ModelCost(train_seconds_per_image=1.2e-4, train_seconds_per_step=4e-3, eval_seconds_per_image=3e-5),
        (_CUDA, "resnet8"): ModelCost(train_seconds_per_image=7e-5, train_seconds_per_step=4e-3, eval_seconds_per_image=2e-5),
        (_CUDA, "resnet20"): ModelCost(train_seconds_per_image=1.3e-4, train_seconds_per_step=8e-3, eval_seconds_per_image=4e-5),
        (_CUDA, "resnet32"): ModelCost(train_seconds_per_image=2e-4, train_seconds_per_step=1.2e-2, eval_seconds_per_image=6e-5),
    },
    data_seconds={
        ("cifar10", _CPU): 2.2, ("cifar100", _CPU): 2.2, ("synthetic", _CPU): 0.2,
        # Loading is CPU work either way; CUDA adds its start-up and the copy to the GPU (guessed).
        ("cifar10", _CUDA): 5.0, ("cifar100", _CUDA): 5.0, ("synthetic", _CUDA): 3.0,
    },
    measured={_CPU},
    where={_CPU: "on this machine", _CUDA: "on a GPU (a rough guess: GPU speed was not measured)"},
)

# ---------------------------------------------------------------- the work of a run

def epoch_evaluation_images(config: TrainConfig, num_test: int) -> int:
    """Test images scored after each epoch but a seed's last (which scores all `num_test`). Mirrors the
    engine's `stratified_subset` (whole classes of `epoch_eval_images // K` images), so the count is known
    before any data is loaded."""
    wanted = config.epoch_eval_images
    if wanted is None or wanted >= num_test:
        return num_test
    return min(num_test, max(1, wanted // config.num_classes) * config.num_classes)


@dataclass(frozen=True)
class WorkPlan:
    """A run's work, in estimated seconds, laid out the way the engine does it: for every seed, `epochs` times
    (`steps_per_epoch` training steps, then one evaluation of every model); a seed's last evaluation scores
    the whole test set, the others may score a subset."""

    seeds: int
    epochs: int
    steps_per_epoch: int
    step_seconds: float  # one training step of all the models, averaged over the epoch's batches
    epoch_evaluation_seconds: float  # the evaluation after an epoch that is not a seed's last, all models
    final_evaluation_seconds: float  # the evaluation after a seed's last epoch, all models

    @property
    def training_seconds(self) -> float:
        return self.seeds * self.epochs * self.steps_per_epoch * self.step_seconds

    @property
    def evaluation_seconds(self) -> float:
        return self.seeds * ((self.epochs - 1) * self.epoch_evaluation_seconds + self.final_evaluation_seconds)

    @property
    def total_seconds(self) -> float:
        return self.training_seconds + self.evaluation_seconds

    def done_seconds(self, global_step: int, evaluations_done: int) -> float:
        """Estimated seconds of work behind a run that has taken `global_step` steps (over all seeds) and
        finished `evaluations_done` epoch evaluations."""
        final_evaluations = evaluations_done // self.epochs
        epoch_evaluations = evaluations_done - final_evaluations
        return (
            global_step * self.step_seconds
            + epoch_evaluations * self.epoch_evaluation_seconds
            + final_evaluations * self.final_evaluation_seconds
        )

    def progress(self, global_step: int, evaluations_done: int) -> float:
        """0..1 over training and evaluation together."""
        if self.total_seconds <= 0:
            return 0.0
        return min(1.0, self.done_seconds(global_step, evaluations_done) / self.total_seconds)


def plan_work(
    config: TrainConfig,
    cost: ModelCost,
    num_train: int,
    num_test: int,
    *,
    evaluation_images_per_epoch: int | None = None,
    final_evaluation_images: int | None = None,
) -> WorkPlan:
    """The work plan of `config` over `num_train` training and `num_test` test images. The evaluation sizes
    default to what the engine scores (`epoch_evaluation_images`, and the whole test set at a seed's end)."""
    if evaluation_images_per_epoch is None:
        evaluation_images_per_epoch = epoch_evaluation_images(config, num_test)
    if final_evaluation_images is None:
        final_evaluation_images = num_test
    models = len(config.losses)
    steps_per_epoch = max(1, math.ceil(num_train / config.batch_size))
    # Per epoch every model sees each training image once and takes `steps_per_epoch` steps; spread evenly
    # over the steps (the last batch may be smaller).
    # Flip test-time augmentation scores every test image twice (the image and its mirror image).
    views = 2 if config.test_time_flip else 1
    epoch_training = models * (num_train * cost.train_seconds_per_image + steps_per_epoch * cost.train_seconds_per_step)
    return WorkPlan(
        seeds=len(config.seeds),
        epochs=config.epochs,
        steps_per_epoch=steps_per_epoch,
        step_seconds=epoch_training / steps_per_epoch,
        epoch_evaluation_seconds=models * views * evaluation_images_per_epoch * cost.eval_seconds_per_image,
        final_evaluation_seconds=models * views * final_evaluation_images * cost.eval_seconds_per_image,
    )


# ---------------------------------------------------------------- the estimate before a job is queued


@dataclass(frozen=True)
class CostEstimate:
    """How long a job should take, in seconds, and its parts."""

    total_seconds: float
    data_seconds: float  # loading the dataset from disk (a first download is not included)
    training_seconds: float
    evaluation_seconds: float
    measured: bool  # False when the device's figures are guesses
    text: str  # "about 1 min 40 s on this machine"


def estimate_seconds(
    config: TrainConfig,
    device_type: str,
    *,
    evaluation_images_per_epoch: int | None = None,
    final_evaluation_images: int | None = None,
    calibration: Calibration = CALIBRATION,
) -> CostEstimate:
    """The estimated wall time of `config` on `device_type` ("cpu" or "cuda"), from the training counts the
    long-tail protocol will draw (no data is loaded). Raises ValueError for a model or device the calibration
    does not know, and for a config whose ratio leaves a class empty."""
    cost = calibration.cost(device_type, config.model)
    num_train = sum(planned_class_counts(config))
    plan = plan_work(
        config, cost, num_train, config.test_images,
        evaluation_images_per_epoch=evaluation_images_per_epoch, final_evaluation_images=final_evaluation_images,
    )
    data = calibration.data_seconds.get((config.dataset, device_type), 0.0)
    total = data + plan.total_seconds
    where = calibration.where.get(device_type, f"on {device_type}")
    return CostEstimate(
        total_seconds=total, data_seconds=data, training_seconds=plan.training_seconds,
        evaluation_seconds=plan.evaluation_seconds, measured=device_type in calibration.measured,
        text=f"about {describe_duration(total)} {where}",
    )


# ---------------------------------------------------------------- the ETA while a job runs

# How long the estimate keeps a say once measurements come in, in real seconds: after this many seconds the
# measured pace and the estimate count equally, after ten times as many the measurement counts 10 to 1. The
# first steps include one-off costs (memory allocation, thread start-up), so a second of measurement alone
# would say nonsense; but an estimate made for a quiet machine may be 10x off on a busy one, so its say
# fades with real time, not with the (then slowly accruing) estimated work.
PRIOR_SECONDS = 10.0


# The ETA's measured pace is that of the last minute of work, not of the whole run: a host that gets busier
# (or quieter) halfway shows in the ETA within about a minute, where a pace averaged since the start would take
# as long again as the run has lasted. Less than half a window of measurement is too noisy on its own.
PACE_WINDOW_SECONDS = 60.0


def remaining_seconds(total_work: float, done_work: float, elapsed: float,
                      recent: tuple[float, float] | None = None) -> float:
    """Seconds left for a run of `total_work` estimated seconds that has done `done_work` of them in `elapsed`
    real seconds: the remaining work times the pace (real seconds per estimated second), a blend of the
    measured pace and the estimate's own (1) weighted by how long the measurement has run. `recent` is
    (estimated seconds done, real seconds) over the last `PACE_WINDOW_SECONDS`: with at least half a window
    of it, the measured pace is the recent one."""
    left = max(0.0, total_work - done_work)
    if done_work <= 0 or elapsed <= 0:
        return left
    measured = elapsed / done_work
    if recent is not None and recent[0] > 0 and recent[1] >= PACE_WINDOW_SECONDS / 2:
        measured = recent[1] / recent[0]
    trust = elapsed / (elapsed + PRIOR_SECONDS)
    return left * (trust * measured + (1 - trust))


# ---------------------------------------------------------------- durations for people

_MINUTE, _HOUR, _DAY, _YEAR = 60.0, 3600.0, 86400.0, 365.25 * 86400.0


# Under 10 minutes an estimate is rounded to 10 s (finer is false precision); a countdown that the eye follows
# (the ETA, a repeat's time) to 5 s, so that it visibly moves.
ESTIMATE_STEP_SECONDS = 10
COUNTDOWN_STEP_SECONDS = 5


def describe_duration(seconds: float | None, step_seconds: int = ESTIMATE_STEP_SECONDS) -> str:
    """A duration as people say it: "12 s", "1 min 40 s", "25 min", "2.5 hours", "3.2 days", "3.2 years";
    "" when unknown (None or NaN). The one duration formatter of the app: estimates, limits, the ETA."""
    if seconds is None or math.isnan(seconds):
        return ""
    if not math.isfinite(seconds):
        return "forever"
    seconds = max(0.0, seconds)
    if seconds < _MINUTE:
        return f"{max(1, round(seconds))} s"
    if seconds < 10 * _MINUTE:
        minutes, rest = divmod(int(round(seconds / step_seconds) * step_seconds), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if seconds < 2 * _HOUR:
        return f"{round(seconds / _MINUTE)} min"
    if seconds < 2 * _DAY:
        return f"{seconds / _HOUR:.1f} hours"
    if seconds < _YEAR:
        return f"{seconds / _DAY:.1f} days"
    return f"{seconds / _YEAR:.1f} years"


# ---------------------------------------------------------------- limits of a public deployment

# On a Hugging Face Space (SPACE_ID is set there) the app is open to anyone, on a small shared machine:
# - 20 minutes per job: the standard preset (minutes on 2 CPU cores, `estimate_seconds`) fits with room for a slower
#   machine; the GPU presets (ldam-drw, authors: hours) do not and belong to the command line.
# - 1 queued or running job per visitor: with one worker, one visitor cannot fill the queue for everyone.
# - 50 runs and 500 MB: a run capped at 20 minutes is a few MB (event log plus safetensors weights), so the
#   size bound is only a backstop; at most 3 jobs an hour finish on one worker, so 50 runs keep a visitor's
#   result for half a day or more of steady use, while the run list stays short enough to browse.
SPACE_DEFAULTS = {"max_job_minutes": 20.0, "max_jobs_per_client": 1, "keep_runs": 50, "max_runs_mb": 500.0}
ENVIRONMENT_VARIABLES = {
    "max_job_minutes": "CCE_MAX_JOB_MINUTES",
    "max_jobs_per_client": "CCE_MAX_JOBS_PER_CLIENT",
    "keep_runs": "CCE_KEEP_RUNS",
    "max_runs_mb": "CCE_MAX_RUNS_MB",
}
NO_LIMIT_WORDS = frozenset({"none", "off", "unlimited"})


@dataclass(frozen=True)
class Limits:
    """What the job manager allows. None means no limit (the default: a local app belongs to its user)."""

    max_job_minutes: float | None = None  # refuse a job estimated longer; stop a running one past the margin
    max_jobs_per_client: int | None = None  # queued + running jobs per visitor
    keep_runs: int | None = None  # newest runs kept in the runs directory
    max_runs_mb: float | None = None  # total size of the runs directory's runs
    # A running job is stopped ("timed out") once it has run `timeout_margin` times `max_job_minutes`.
    timeout_margin: float = 1.5

    def __post_init__(self) -> None:
        for name in ("max_job_minutes", "max_runs_mb"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
                raise ValueError(f"{name}: must be a number > 0, or None for no limit; got {value!r}")
        for name in ("max_jobs_per_client", "keep_runs"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: must be a whole number >= 1, or None for no limit; got {value!r}")
        if isinstance(self.timeout_margin, bool) or not isinstance(self.timeout_margin, (int, float)) or not (
            math.isfinite(self.timeout_margin) and self.timeout_margin >= 1
        ):
            raise ValueError(f"timeout_margin: must be a number >= 1, got {self.timeout_margin!r}")

    @property
    def job_time_limit_seconds(self) -> float | None:
        """Wall time after which a running job is stopped (None: never)."""
        return None if self.max_job_minutes is None else self.max_job_minutes * 60 * self.timeout_margin

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "Limits":
        """The limits set by CCE_MAX_JOB_MINUTES, CCE_MAX_JOBS_PER_CLIENT, CCE_KEEP_RUNS and CCE_MAX_RUNS_MB
        (a number, or "none" for no limit). Unset: no limit locally, `SPACE_DEFAULTS` on a Hugging Face Space
        (SPACE_ID set). Raises ValueError naming the variable for a value that is not a valid limit, so a
        typo stops the app at start-up instead of silently leaving it open."""
        on_space = bool(environ.get("SPACE_ID"))
        values: dict[str, float | int | None] = {}
        for field_name, variable in ENVIRONMENT_VARIABLES.items():
            whole = field_name in ("max_jobs_per_client", "keep_runs")
            raw = environ.get(variable)
            if raw is None or not raw.strip():
                values[field_name] = SPACE_DEFAULTS[field_name] if on_space else None
                continue
            text = raw.strip()
            if text.lower() in NO_LIMIT_WORDS:
                values[field_name] = None
                continue
            try:
                number = int(text) if whole else float(text)
            except ValueError:
                number = None
            if number is None or not math.isfinite(number) or number <= 0:
                kind = "a whole number >= 1" if whole else "a number > 0"
                raise ValueError(f"{variable}={raw!r}: expected {kind}, or 'none' for no limit")
            values[field_name] = number
        return cls(**values)

    def describe(self) -> str:
        """One line for people ("Jobs up to 20 min each (stopped at 30 min), 1 job per visitor, ...")."""
        parts = []
        if self.max_job_minutes is not None:
            parts.append(
                f"jobs up to {describe_duration(self.max_job_minutes * 60)} each "
                f"(stopped at {describe_duration(self.job_time_limit_seconds)})"
            )
        if self.max_jobs_per_client is not None:
            parts.append(f"{self.max_jobs_per_client} queued or running job{'s' if self.max_jobs_per_client != 1 else ''} per visitor")
        if self.keep_runs is not None:
            parts.append(f"the newest {self.keep_runs} runs are kept")
        if self.max_runs_mb is not None:
            parts.append(f"runs are kept within {self.max_runs_mb:g} MB")
        return ("Limits: " + "; ".join(parts) + ".") if parts else "No limits on jobs or runs."
