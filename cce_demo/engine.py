"""The paired training loop: one model per loss from the same initial weights, fed the same batches with the
same augmentation draws in lockstep, so that only the loss differs. It reports through events (the frozen
records of schema.py, passed to a callback), checks a stop callback every step, never prints and knows no threads.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from . import metrics
from .config import TrainConfig
from .data import Dataset, DownloadCancelled, ImageSplit, augment_batch, load_dataset, long_tail_subset, to_model_input
from .heads import prepare_for_loss
from .losses import PartsLoss, complement_entropy, get_loss, log_prior
from .models import build_model
from .schema import (
    Evaluation, EpochMetrics, Event, PairedComparison, PriorCorrectedScores, RunFinished, RunStarted, SeedFinished,
    SeedSummary, StatusMessage, StepMetrics,
)
from .status import JobStatus
from .per_image_predictions import PerImagePredictions
from .training_state import SeedState, capture, restore

EVAL_BATCH_SIZE = 500  # small enough that a stop request is seen within a fraction of a second on a CPU
# On a GPU these nets are launch-bound: a few large batches score the test set far faster, and a batch still
# takes milliseconds, so stop requests are seen as quickly.
CUDA_EVAL_BATCH_SIZE = 5000
PRIOR_CORRECTION_TAU = 1.0  # post-hoc logit adjustment strength (Menon et al. 2021 use tau = 1)
# Where each step schedule first decays, as a fraction of training (LDAM-DRW: epoch 160 of 200; the CCE
# authors: epoch 100 of 200). Deferred re-weighting starts there; schedules without a step decay start it at
# the config's drw_start_fraction.
FIRST_DECAY_FRACTION = {"ldam": 0.8, "authors": 0.5}
# fraction * epochs is rounded down to the epoch; this absorbs binary rounding (0.8 * 200 = 160.00000000000003).
EPOCH_ROUNDING_TOLERANCE = 1e-9


# ---------------------------------------------------------------- events (typed once, in schema.py)


EventCallback = Callable[[Event], None]
StopCallback = Callable[[], bool]
# Called at the end of every epoch with the seed's whole state (a CPU copy), for a resumable run on disk.
CheckpointCallback = Callable[[SeedState], None]


@dataclass
class RunResult:
    status: JobStatus  # DONE / CANCELLED / DIVERGED
    reason: str
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    baseline: str
    # seed -> loss -> model (trained so far, also when cancelled); seed -> loss -> the last epoch's evaluation
    models: dict[int, dict[str, nn.Module]] = field(default_factory=dict)
    evaluations: dict[int, dict[str, Evaluation]] = field(default_factory=dict)
    comparisons: list[PairedComparison] = field(default_factory=list)
    # seed -> loss -> the final evaluation's per-image answers (finished seeds only), and the labels they answer
    predictions: dict[int, dict[str, PerImagePredictions]] = field(default_factory=dict)
    test_labels: torch.Tensor | None = None
    summaries: dict[str, SeedSummary] = field(default_factory=dict)
    finished_seeds: list[int] = field(default_factory=list)  # seeds trained to the end (others were stopped)


class TrainingStopped(Exception):
    """Internal: unwinds the loops when the stop callback fires or a loss stops being finite."""

    def __init__(self, status: JobStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------- pure pieces


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was requested but no CUDA GPU is available here; use 'auto' or 'cpu'")
    return torch.device(requested)


def learning_rate_at(
    step: int, total_steps: int, warmup_steps: int, base_rate: float, schedule: str, epoch_steps: int | None = None
) -> float:
    """Linear warm-up over `warmup_steps`, per step (as the CCE authors do) or, given `epoch_steps` (the steps
    per epoch), once per epoch (as LDAM-DRW does: base * (e + 1) / W in 0-based epoch e of W), then:
    'cosine' to zero; 'ldam', LDAM-DRW's steps (x0.01 at 80 % and x0.0001 at 90 % of training, i.e. epochs 160
    and 180 of 200); 'authors', the CCE authors' steps (x0.1 at 50 % and x0.01 at 75 %, epochs 100 and 150 of
    200); 'linear', a straight decay to zero. Step schedules are fractions of training so shortened runs keep
    their shape. `step` is 0-based."""
    if step < warmup_steps:
        if epoch_steps:
            return base_rate * (step // epoch_steps + 1) / (warmup_steps / epoch_steps)
        return base_rate * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return base_rate * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        # With the warm-up this is the one-cycle ("triangular") shape fast CIFAR recipes use; it ends just
        # above zero so that the last step still moves the weights.
        return base_rate * max(1.0 - progress, 1.0 / max(1, total_steps))
    fraction = step / total_steps
    if schedule == "ldam":
        return base_rate * (1e-4 if fraction >= 0.9 else 1e-2 if fraction >= FIRST_DECAY_FRACTION["ldam"] else 1.0)
    if schedule == "authors":
        return base_rate * (1e-2 if fraction >= 0.75 else 1e-1 if fraction >= FIRST_DECAY_FRACTION["authors"] else 1.0)
    raise ValueError(f"schedule: unknown schedule {schedule!r}; valid schedules: cosine, linear, ldam, authors")


def drw_start_epoch(config: TrainConfig) -> int:
    """The 0-based epoch from which deferred re-weighting applies: the epoch in which the schedule's first
    decay starts (ldam: 160 of 200, as Cao et al.), or, for schedules without a step decay (cosine, linear),
    the config's `drw_start_fraction` of the epochs, rounded down."""
    fraction = FIRST_DECAY_FRACTION.get(config.schedule, config.drw_start_fraction)
    return min(config.epochs - 1, math.floor(fraction * config.epochs + EPOCH_ROUNDING_TOLERANCE))


@contextlib.contextmanager
def fp32_evaluation():
    """cuDNN convolutions without TF32 (on by default for them), so that "evaluated in fp32" holds on CUDA
    too; the previous setting is restored afterwards. Matmuls already default to full fp32."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def autocast_for(device: torch.device) -> torch.autocast:
    # bf16 autocast only on CUDA: on these CPUs (no bf16 hardware) it ran slower than fp32 (docs/design.md).
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def stratified_subset(labels: torch.Tensor, num_classes: int, images: int | None) -> torch.Tensor | None:
    """Indices of the first `images // num_classes` test images of every class, in the split's order (a fixed,
    seed-free choice, so every epoch and every run scores the same images); None means the whole split."""
    if images is None or images >= len(labels):
        return None
    per_class = max(1, images // num_classes)
    chosen = []
    for index in range(num_classes):
        chosen.append((labels == index).nonzero().flatten()[:per_class])
    return torch.cat(chosen).sort().values


def test_logits(model: nn.Module, inputs: torch.Tensor, flip: bool) -> torch.Tensor:
    """fp32 logits of `inputs` (NCHW); with `flip`, the mean of the logits of each image and its mirror image
    (flip test-time augmentation: training saw both orientations, so both are evidence)."""
    logits = model(inputs).float()
    if flip:
        logits = 0.5 * (logits + model(inputs.flip(3)).float())
    return logits


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    test: ImageSplit,
    normalisation: tuple[tuple[float, ...], tuple[float, ...]],
    class_counts: tuple[int, ...],
    should_stop: StopCallback = lambda: False,
    flip: bool = False,
) -> tuple[Evaluation, PerImagePredictions]:
    """Evaluation on the given test split, and the predictions (for McNemar and the gallery).

    Always in fp32, also on CUDA: under bf16 autocast many test logits tie, and argmax breaks ties toward
    class 0, the head class (rounding the shipped models' logits to bf16 moved test predictions, every one
    toward a lower class index)."""
    model.eval()
    num_classes = len(class_counts)
    device = test.images.device
    # Computed in float64, then fp32; a class with no images gets log(0.5 / total), so it stays finite.
    prior_shift = PRIOR_CORRECTION_TAU * log_prior(class_counts, torch.float64, empty_class_count=0.5).float().to(device)
    predictions, confidences, corrected = [], [], []
    loss_sum, entropy_sum = torch.zeros((), device=device), torch.zeros((), device=device)
    batch_size = CUDA_EVAL_BATCH_SIZE if device.type == "cuda" else EVAL_BATCH_SIZE
    with fp32_evaluation():
        for start in range(0, len(test), batch_size):
            if should_stop():
                raise TrainingStopped(JobStatus.CANCELLED, "stopped by request")
            images = to_model_input(test.images[start : start + batch_size], *normalisation)
            targets = test.labels[start : start + batch_size]
            logits = test_logits(model, images, flip)
            loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum")
            entropy_sum += complement_entropy(logits, targets).sum()
            probabilities, classes = logits.softmax(dim=1).max(dim=1)
            predictions.append(classes)
            confidences.append(probabilities)
            corrected.append((logits - prior_shift).argmax(dim=1))
    predicted = torch.cat(predictions)
    confusion = metrics.confusion_matrix(test.labels, predicted, num_classes).cpu()
    recall = metrics.per_class_recall(confusion).tolist()
    corrected_confusion = metrics.confusion_matrix(test.labels, torch.cat(corrected), num_classes).cpu()
    corrected_recall = metrics.per_class_recall(corrected_confusion).tolist()
    evaluation = Evaluation(
        test_loss=float(loss_sum) / len(test),
        accuracy=metrics.accuracy(confusion),
        balanced_accuracy=metrics.balanced_accuracy(confusion),
        per_class_recall=tuple(recall),
        group_recall=metrics.group_recall(recall, class_counts),
        confusion_matrix=tuple(tuple(row) for row in confusion.tolist()),
        complement_entropy=float(entropy_sum) / len(test),
        num_images=len(test),
        prior_corrected=PriorCorrectedScores(
            tau=PRIOR_CORRECTION_TAU,
            accuracy=metrics.accuracy(corrected_confusion),
            balanced_accuracy=metrics.balanced_accuracy(corrected_confusion),
            per_class_recall=tuple(corrected_recall),
            group_recall=metrics.group_recall(corrected_recall, class_counts),
        ),
    )
    return evaluation, PerImagePredictions(predicted, torch.cat(confidences).float())


def evaluation_is_finite(evaluation: Evaluation) -> bool:
    """Whether every number of an evaluation is finite (NaN recalls of classes absent from the split aside)."""
    return math.isfinite(evaluation.test_loss) and math.isfinite(evaluation.complement_entropy)


def compare(
    seed: int, baseline: str, other: str, targets: torch.Tensor, predictions: dict[str, PerImagePredictions],
    evaluations: dict[str, Evaluation], num_classes: int,
) -> PairedComparison:
    first, second = predictions[baseline].predicted, predictions[other].predicted
    return PairedComparison(
        seed=seed,
        baseline=baseline,
        other=other,
        mcnemar=metrics.mcnemar(first == targets, second == targets),
        per_class_mcnemar=tuple(metrics.mcnemar_per_class(targets, first, second, num_classes)),
        accuracy_difference=evaluations[other].accuracy - evaluations[baseline].accuracy,
        balanced_accuracy_difference=evaluations[other].balanced_accuracy - evaluations[baseline].balanced_accuracy,
    )


# ---------------------------------------------------------------- the loop


def train_paired(
    config: TrainConfig,
    on_event: EventCallback = lambda event: None,
    should_stop: StopCallback = lambda: False,
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    dataset: Dataset | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    resume: Mapping[int, SeedState] | None = None,
) -> RunResult:
    """Train one model per loss in `config.losses`, for each seed in `config.seeds`, and return them with
    their final evaluations and the paired comparisons. Stops early (status 'cancelled') when `should_stop`
    returns True, and (status 'diverged') when a loss stops being finite; models trained so far are kept.

    `on_checkpoint` receives each seed's state after every epoch. `resume` (seed -> the last state saved)
    continues an interrupted run of the same config: a finished seed is restored without training, a stopped
    one trains on from its next epoch, and the models come out bit-identical to an uninterrupted run's."""
    resume = dict(resume or {})
    unknown = sorted(set(resume) - set(config.seeds))
    if unknown:
        raise ValueError(f"resume: saved states of seeds {unknown}, which this run does not train (seeds {list(config.seeds)})")
    for state in resume.values():
        if not 1 <= state.epoch <= config.epochs:
            raise ValueError(f"resume: seed {state.seed} was saved after epoch {state.epoch}; this run has {config.epochs}")
    device = resolve_device(config.device)
    if dataset is None:
        on_event(StatusMessage(message=f"Loading {config.dataset} (downloading it if needed)…"))
        try:
            dataset = load_dataset(
                config.dataset, data_dir, allow_download, config.synthetic_test_per_class,
                on_progress=lambda message: on_event(StatusMessage(message=message)), should_stop=should_stop,
            )
        except DownloadCancelled as cancelled:
            on_event(RunFinished(status=JobStatus.CANCELLED, reason=str(cancelled), summaries={}))
            return RunResult(JobStatus.CANCELLED, str(cancelled), (), (), config.baseline)
    train_split, class_counts_list = long_tail_subset(
        dataset.train, dataset.num_classes, config.imbalance_ratio, config.profile, config.subset_seed, config.max_per_class
    )
    class_counts = tuple(class_counts_list)
    train_split, test_split = train_split.to(device), dataset.test.to(device)
    subset_indices = stratified_subset(test_split.labels, dataset.num_classes, config.epoch_eval_images)
    epoch_test_split = test_split if subset_indices is None else test_split.subset(subset_indices)
    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    baseline = config.baseline
    result = RunResult(JobStatus.DONE, "", dataset.class_names, class_counts, baseline, test_labels=test_split.labels.cpu())
    if not resume:  # a resumed run's log already holds its start
        on_event(RunStarted(
            config=config.to_dict(), class_names=dataset.class_names, class_counts=class_counts,
            num_train=len(train_split), num_test=len(test_split), device=str(device),
            steps_per_epoch=steps_per_epoch, total_steps=total_steps * len(config.seeds), data_source=dataset.source,
            data=dict(dataset.provenance),
        ))
    # The log of a resumed run is cut back to its latest saved state: a seed that finished before that one
    # already has its "finished" event in the log; the seed of the latest state (if finished) does not yet.
    latest_saved = max((config.seeds.index(seed) for seed in resume), default=-1)
    for seed_index, seed in enumerate(config.seeds):
        try:
            if should_stop():  # also seen between loading the data and the first step
                raise TrainingStopped(JobStatus.CANCELLED, "stopped by request")
            _train_one_seed(
                config, seed, seed_index * total_steps, dataset, train_split, test_split, epoch_test_split,
                class_counts, device, result, on_event, should_stop, on_checkpoint, resume.get(seed),
                announce_resumed_finish=seed_index == latest_saved,
            )
            result.finished_seeds.append(seed)
        except TrainingStopped as stopped:
            result.status, result.reason = stopped.status, stopped.reason
            if stopped.status == JobStatus.DIVERGED:
                # Non-finite weights are of no use to anyone: keep only the seeds that finished.
                result.models.pop(seed, None)
                result.evaluations.pop(seed, None)
            break
    for other in config.losses:
        differences = [c.balanced_accuracy_difference for c in result.comparisons if c.other == other]
        if other != baseline and differences:
            result.summaries[other] = metrics.summarise_differences(differences)
    on_event(RunFinished(status=result.status, reason=result.reason, summaries=dict(result.summaries)))
    return result


def _train_one_seed(
    config: TrainConfig, seed: int, global_offset: int, dataset: Dataset, train_split: ImageSplit,
    test_split: ImageSplit, epoch_test_split: ImageSplit, class_counts: tuple[int, ...], device: torch.device,
    result: RunResult,
    on_event: EventCallback, should_stop: StopCallback, on_checkpoint: CheckpointCallback | None,
    resumed: SeedState | None, announce_resumed_finish: bool = True,
) -> None:
    num_classes = dataset.num_classes
    # Same initial weights for every loss: one draw, deep-copied.
    # (LDAM's scaled cosine classifier takes its directions from the same initial linear weights.)
    initial = build_model(config.model, num_classes, torch.Generator().manual_seed(seed))
    models = {name: prepare_for_loss(copy.deepcopy(initial), name).to(device) for name in config.losses}
    result.models[seed] = models
    reweighting_from = drw_start_epoch(config)
    loss_modules: dict[str, PartsLoss] = {
        name: get_loss(
            name, num_classes, class_counts=class_counts, drw_start_epoch=reweighting_from, **config.loss_options(name)
        ).to(device)
        for name in config.losses
    }
    optimisers = {
        name: torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0, weight_decay=config.weight_decay,
        )
        for name, model in models.items()
    }
    # One generator on the data's device drives batch order and augmentation for all models of the pair.
    data_generator = torch.Generator(device=device).manual_seed(seed)
    steps_per_epoch = math.ceil(len(train_split) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    epoch_steps = steps_per_epoch if config.warmup_per_epoch else None
    normalisation = dataset.normalisation
    step, first_epoch = 0, 1
    if resumed is not None:
        restore(resumed, models, optimisers, data_generator)
        result.evaluations[seed] = dict(resumed.evaluations)
        if resumed.epoch == config.epochs:  # it had finished: nothing left to train
            result.comparisons.extend(resumed.comparisons)
            result.predictions[seed] = dict(resumed.predictions)
            if announce_resumed_finish:
                on_event(SeedFinished(seed=seed, comparisons=resumed.comparisons))
            return
        step, first_epoch = resumed.epoch * steps_per_epoch, resumed.epoch + 1
        on_event(StatusMessage(message=f"Resumed seed {seed} after epoch {resumed.epoch} of {config.epochs}."))
    comparisons: tuple[PairedComparison, ...] = ()
    final_predictions: dict[str, PerImagePredictions] = {}
    for epoch in range(first_epoch, config.epochs + 1):
        # Deferred re-weighting switches each "_drw" loss to its class-weighted form at its start epoch.
        active_losses = {name: module.for_epoch(epoch - 1) for name, module in loss_modules.items()}
        order = torch.randperm(len(train_split), generator=data_generator, device=device)
        for start in range(0, len(train_split), config.batch_size):
            started = time.perf_counter()
            indices = order[start : start + config.batch_size]
            images = train_split.images[indices]
            if config.augment:
                images = augment_batch(images, data_generator)
            inputs = to_model_input(images, *normalisation)
            targets = train_split.labels[indices]
            rate = learning_rate_at(step, total_steps, warmup_steps, config.learning_rate, config.schedule, epoch_steps)
            values = []
            for name, model in models.items():
                model.train()
                for group in optimisers[name].param_groups:
                    group["lr"] = rate
                with autocast_for(device):
                    parts = active_losses[name].parts(model(inputs), targets)
                optimisers[name].zero_grad(set_to_none=True)
                parts.total.backward()
                optimisers[name].step()
                values += [parts.total.detach(), parts.cross_entropy.detach()]
            # One host sync per step for all the numbers the event needs.
            numbers = torch.stack(values).float().tolist()
            step += 1
            losses = dict(zip(models, numbers[0::2]))
            bad = [name for name, value in losses.items() if not math.isfinite(value)]
            if bad:
                raise TrainingStopped(
                    JobStatus.DIVERGED,
                    f"diverged at epoch {epoch}: the {', '.join(bad)} loss became {losses[bad[0]]} at step {step} of seed {seed}; "
                    f"the learning rate was {rate:.3g} — try a lower learning rate",
                )
            elapsed = time.perf_counter() - started
            on_event(StepMetrics(
                seed=seed, step=step, global_step=global_offset + step, epoch=step / steps_per_epoch,
                losses=losses, cross_entropy=dict(zip(models, numbers[1::2])), learning_rate=rate,
                images_per_second=len(indices) * len(models) / max(elapsed, 1e-9),
            ))
            if should_stop():
                raise TrainingStopped(JobStatus.CANCELLED, "stopped by request")
        evaluations, predictions = {}, {}
        # Between epochs the curves need only a trend: a fixed stratified part of the test set is enough and
        # saves time (docs/design.md). The last epoch, which every reported figure and McNemar test uses,
        # scores the whole test set.
        scored = test_split if epoch == config.epochs else epoch_test_split
        for name, model in models.items():
            evaluations[name], predictions[name] = evaluate(
                model, scored, normalisation, class_counts, should_stop, flip=config.test_time_flip
            )
        result.evaluations[seed] = evaluations
        on_event(EpochMetrics(seed=seed, epoch=epoch, global_step=global_offset + step, evaluations=evaluations))
        # A finite training loss can still leave non-finite weights (an overflow in the last step, a NaN in a
        # BatchNorm statistic): then the test loss is not finite, and the run diverged rather than finished.
        bad = [name for name, evaluation in evaluations.items() if not evaluation_is_finite(evaluation)]
        if bad:
            raise TrainingStopped(
                JobStatus.DIVERGED,
                f"diverged at epoch {epoch} of seed {seed}: the {', '.join(bad)} model's test metrics are not finite "
                f"(test loss {evaluations[bad[0]].test_loss}) — try a lower learning rate",
            )
        if epoch == config.epochs:
            comparisons = tuple(
                compare(seed, result.baseline, name, test_split.labels, predictions, evaluations, num_classes)
                for name in config.losses
                if name != result.baseline
            )
            final_predictions = {name: answer.to_cpu() for name, answer in predictions.items()}
        if on_checkpoint is not None:
            on_checkpoint(capture(seed, epoch, models, optimisers, data_generator, evaluations, comparisons,
                                  final_predictions if epoch == config.epochs else {}))
    result.predictions[seed] = final_predictions
    result.comparisons.extend(comparisons)
    on_event(SeedFinished(seed=seed, comparisons=comparisons))
