import math

import pytest
import torch

from cce_demo.engine import RunStarted, learning_rate_at, resolve_device, train_paired


def collect(config, **kwargs):
    events = []
    result = train_paired(config, events.append, **kwargs)
    return result, events


def test_paired_models_start_equal_and_differ_only_by_the_loss(tiny_config):
    """CCE with gamma = 0 is CE: trained in lockstep from the same weights on the same augmented batches,
    the two models must end up identical. Any unpaired randomness would make them differ."""
    result, _ = collect(tiny_config.replace(gamma=0.0))
    ce, cce = result.models[0]["ce"], result.models[0]["cce"]
    for a, b in zip(ce.state_dict().values(), cce.state_dict().values()):
        assert torch.equal(a, b)
    assert result.comparisons[0].mcnemar.discordant == 0


def test_paired_models_with_different_losses_differ(tiny_config):
    result, _ = collect(tiny_config)
    ce, cce = result.models[0]["ce"], result.models[0]["cce"]
    assert not all(torch.equal(a, b) for a, b in zip(ce.parameters(), cce.parameters()))


def test_same_config_same_result(tiny_config):
    first, _ = collect(tiny_config)
    second, _ = collect(tiny_config)
    for a, b in zip(first.models[0]["cce"].parameters(), second.models[0]["cce"].parameters()):
        assert torch.equal(a, b)


def test_event_stream(tiny_config):
    result, events = collect(tiny_config.replace(seeds=(0, 1)))
    kinds = [event.kind for event in events]
    assert kinds[0] == "status" and kinds[1] == "started" and kinds[-1] == "finished"
    started = events[1]
    assert isinstance(started, RunStarted) and sum(started.class_counts) == started.num_train
    steps = [event for event in events if event.kind == "step"]
    assert len(steps) == started.total_steps
    assert [event.global_step for event in steps] == list(range(1, started.total_steps + 1))
    first = steps[0]
    assert set(first.losses) == {"ce", "cce"} and first.images_per_second > 0 and first.learning_rate > 0
    assert first.cross_entropy["ce"] == first.losses["ce"]
    epochs = [event for event in events if event.kind == "epoch"]
    assert len(epochs) == 2 * tiny_config.epochs
    evaluation = epochs[-1].evaluations["cce"]
    assert len(evaluation.per_class_recall) == 10 and set(evaluation.group_recall) == {"head", "medium", "tail"}
    assert sum(map(sum, evaluation.confusion_matrix)) == started.num_test
    assert [event.kind for event in events].count("seed_finished") == 2
    summary = result.summaries["cce"]
    assert summary.num_seeds == 2 and summary.interval is not None
    assert summary.interval[0] <= summary.mean <= summary.interval[1]


def test_learns_the_synthetic_task():
    from cce_demo.config import TrainConfig

    config = TrainConfig(
        dataset="synthetic", imbalance_ratio=1.0, epochs=4, batch_size=32, learning_rate=0.05,
        warmup_epochs=0.5, device="cpu", max_per_class=60, synthetic_test_per_class=20,
    )
    result, _ = collect(config)
    for loss in ("ce", "cce"):
        assert result.evaluations[0][loss].balanced_accuracy >= 0.6, result.evaluations[0][loss]


def test_stop_callback_is_checked_every_step(tiny_config):
    calls = {"count": 0}

    def should_stop():
        calls["count"] += 1
        return calls["count"] >= 3

    result, events = collect(tiny_config, should_stop=should_stop)
    assert result.status == "cancelled"
    # One check before training starts (a cancel during data loading), then one after every step.
    assert [event.kind for event in events].count("step") == 2
    assert events[-1].kind == "finished" and events[-1].status == "cancelled"
    assert set(result.models[0]) == {"ce", "cce"}  # what was trained so far is kept


def test_stop_before_training_starts(tiny_config):
    result, events = collect(tiny_config, should_stop=lambda: True)
    assert result.status == "cancelled" and "step" not in [event.kind for event in events]


def test_non_finite_loss_stops_with_a_reason(tiny_config):
    result, events = collect(tiny_config.replace(learning_rate=1e6, epochs=3))
    assert result.status == "diverged"
    assert result.models == {} and result.evaluations == {}  # no non-finite weights are kept
    assert "learning rate" in result.reason and ("nan" in result.reason or "inf" in result.reason)
    assert events[-1].status == "diverged"


def test_learning_rate_schedule():
    assert learning_rate_at(0, 100, 10, 1.0, "cosine") == pytest.approx(0.1)
    assert learning_rate_at(9, 100, 10, 1.0, "cosine") == pytest.approx(1.0)
    assert learning_rate_at(55, 100, 10, 1.0, "cosine") == pytest.approx(0.5)
    assert learning_rate_at(99, 100, 10, 1.0, "cosine") < 0.001
    assert learning_rate_at(50, 200, 0, 0.1, "ldam") == pytest.approx(0.1)
    assert learning_rate_at(170, 200, 0, 0.1, "ldam") == pytest.approx(0.001)
    assert learning_rate_at(190, 200, 0, 0.1, "ldam") == pytest.approx(1e-5)


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_paired_run_matches_cpu_accuracy_roughly(tiny_config):
    result, _ = collect(tiny_config.replace(device="cuda"))
    assert result.status == "done"
    assert next(result.models[0]["ce"].parameters()).device.type == "cuda"
    assert math.isfinite(result.evaluations[0]["cce"].test_loss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_losses_finite_at_extreme_margins(dtype):
    from cce_demo.losses import get_loss

    logits = torch.zeros(4, 10, device="cuda")
    targets = torch.tensor([0, 1, 2, 3], device="cuda")
    logits[torch.arange(4), targets] = 1000.0
    logits = logits.to(dtype).requires_grad_(True)
    for name in ("cce", "cce_reference"):
        value = get_loss(name, 10)(logits, targets)
        assert torch.isfinite(value)


def test_step_schedules_match_their_recipes():
    # 200 epochs of 100 steps: LDAM-DRW decays at epochs 160 and 180, the CCE authors at 100 and 150.
    total = 200 * 100
    assert learning_rate_at(159 * 100, total, 500, 0.1, "ldam") == pytest.approx(0.1)
    assert learning_rate_at(160 * 100, total, 500, 0.1, "ldam") == pytest.approx(1e-3)
    assert learning_rate_at(180 * 100, total, 500, 0.1, "ldam") == pytest.approx(1e-5)
    assert learning_rate_at(99 * 100, total, 500, 0.1, "authors") == pytest.approx(0.1)
    assert learning_rate_at(100 * 100, total, 500, 0.1, "authors") == pytest.approx(0.01)
    assert learning_rate_at(150 * 100, total, 500, 0.1, "authors") == pytest.approx(0.001)
    assert learning_rate_at(0, total, 500, 0.1, "authors") == pytest.approx(0.1 / 500)  # linear warm-up per step


class _FixedLogits(torch.nn.Module):
    """A 'model' whose logits are given per test image (in the split's order), to check the scoring alone."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.position = 0

    def forward(self, images):
        batch = self.logits[self.position : self.position + len(images)]
        self.position += len(images)
        return batch


def test_prior_correction_oracle():
    """argmax(logits - log prior): with prior (0.9, 0.1) a margin of log 9 in favour of the head class is exactly
    undone; the tie-free cases are checked by hand."""
    from cce_demo.data import ImageSplit
    from cce_demo.engine import evaluate
    from cce_demo.losses import log_prior

    class_counts = (900, 100)
    assert torch.allclose(log_prior(class_counts), torch.tensor([math.log(0.9), math.log(0.1)]))
    # Image 0 (class 1): head leads by 1.0 < log 9 = 2.197 -> plain says 0, corrected says 1.
    # Image 1 (class 1): head leads by 3.0 > log 9 -> both say 0.  Image 2 (class 0): head leads by 2.5 -> both 0.
    logits = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.5, 0.0]])
    split = ImageSplit(torch.zeros(3, 32, 32, 3, dtype=torch.uint8), torch.tensor([1, 1, 0]))
    evaluation, predicted = evaluate(_FixedLogits(logits), split, ((0.5,) * 3, (0.5,) * 3), class_counts)
    assert predicted.predicted.tolist() == [0, 0, 0]
    assert evaluation.per_class_recall == (1.0, 0.0)
    assert evaluation.prior_corrected.per_class_recall == (1.0, 0.5)
    assert evaluation.prior_corrected.balanced_accuracy == pytest.approx(0.75)
    assert evaluation.num_images == 3


def test_stratified_subset_takes_the_first_images_of_every_class():
    from cce_demo.engine import stratified_subset

    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2])
    assert stratified_subset(labels, 3, 6).tolist() == [0, 1, 2, 3, 4, 6]
    assert stratified_subset(labels, 3, None) is None and stratified_subset(labels, 3, 100) is None


def test_per_epoch_subset_and_full_test_set_at_the_end(tiny_config):
    config = tiny_config.replace(epochs=2, epoch_eval_images=20)
    result, events = collect(config)
    epochs = [event for event in events if event.kind == "epoch"]
    assert [next(iter(event.evaluations.values())).num_images for event in epochs] == [20, 10 * config.synthetic_test_per_class]
    assert result.evaluations[0]["ce"].num_images == 10 * config.synthetic_test_per_class


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_evaluation_is_fp32():
    """Under bf16 logits tie and argmax picks the lower class index; evaluation must not autocast."""
    from cce_demo.data import ImageSplit
    from cce_demo.engine import evaluate

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, images):
            seen.append(torch.is_autocast_enabled("cuda"))
            return torch.zeros(len(images), 2, device=images.device)

    split = ImageSplit(torch.zeros(4, 32, 32, 3, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])).to("cuda")
    evaluate(Probe(), split, ((0.5,) * 3, (0.5,) * 3), (2, 2))
    assert seen and not any(seen)


def test_linear_schedule_is_warm_up_then_a_straight_decay():
    assert learning_rate_at(0, 100, 10, 1.0, "linear") == pytest.approx(0.1)
    assert learning_rate_at(9, 100, 10, 1.0, "linear") == pytest.approx(1.0)
    assert learning_rate_at(55, 100, 10, 1.0, "linear") == pytest.approx(0.5)
    assert 0 < learning_rate_at(99, 100, 10, 1.0, "linear") <= 0.02


class _Mirror(torch.nn.Module):
    """Logits = the mean of the leftmost and rightmost pixel columns of channel 0, per class 0/1, so the
    mirror image swaps them: flip TTA must average the two views."""

    def forward(self, x):
        left, right = x[:, 0, :, 0].mean(dim=1), x[:, 0, :, -1].mean(dim=1)
        return torch.stack([left, right], dim=1)


def test_flip_test_time_augmentation_averages_the_image_and_its_mirror():
    from cce_demo.engine import test_logits

    inputs = torch.randn(5, 3, 8, 8)
    plain = _Mirror()(inputs)
    flipped = test_logits(_Mirror(), inputs, flip=True)
    assert torch.allclose(test_logits(_Mirror(), inputs, flip=False), plain)
    # oracle: the mirror swaps the two columns, so both logits become their mean
    assert torch.allclose(flipped, plain.mean(dim=1, keepdim=True).expand(-1, 2), atol=1e-6)


# ---------------------------------------------------------------- DRW, per-epoch warm-up, divergence, fp32


def test_drw_starts_at_the_first_decay_or_at_the_stated_fraction():
    from cce_demo.config import TrainConfig, preset
    from cce_demo.engine import drw_start_epoch

    assert drw_start_epoch(preset("ldam-drw")) == 160  # Cao et al.: epoch 160 of 200 (0-based), the first decay
    assert drw_start_epoch(preset("authors")) == 100
    assert drw_start_epoch(TrainConfig(schedule="cosine", epochs=10)) == 8  # the default 80 %
    assert drw_start_epoch(TrainConfig(schedule="linear", epochs=10, drw_start_fraction=0.5)) == 5
    assert drw_start_epoch(TrainConfig(schedule="cosine", epochs=1)) == 0


def test_per_epoch_warm_up_rises_once_per_epoch():
    """LDAM-DRW: lr = base * (e + 1) / 5 in 0-based epoch e < 5, the same for every step of that epoch."""
    steps = 100
    for step, expected in ((0, 0.02), (99, 0.02), (100, 0.04), (450, 0.1), (499, 0.1), (500, 0.1)):
        assert learning_rate_at(step, 200 * steps, 5 * steps, 0.1, "ldam", epoch_steps=steps) == pytest.approx(expected)


def test_drw_loss_trains_like_its_base_until_its_start_epoch(tiny_config):
    """CE and CE-DRW in one paired run: identical after epoch 1 (DRW not yet on), different after epoch 2."""
    config = tiny_config.replace(losses=("ce", "ce_drw"), imbalance_ratio=4.0, drw_start_fraction=0.5)
    result, events = collect(config)
    by_epoch = {event.epoch: event.evaluations for event in events if event.kind == "epoch"}
    assert by_epoch[1]["ce"] == by_epoch[1]["ce_drw"]
    ce, reweighted = result.models[0]["ce"], result.models[0]["ce_drw"]
    assert not all(torch.equal(a, b) for a, b in zip(ce.parameters(), reweighted.parameters()))


def test_ldam_trains_with_a_cosine_classifier(tiny_config):
    from cce_demo.heads import ScaledCosineLinear

    result, _ = collect(tiny_config.replace(losses=("ce", "ldam_drw"), epochs=1))
    assert result.status == "done"
    assert isinstance(result.models[0]["ldam_drw"].linear, ScaledCosineLinear)
    assert not isinstance(result.models[0]["ce"].linear, ScaledCosineLinear)


def test_non_finite_final_metrics_end_as_diverged_not_done(tiny_config, monkeypatch):
    """A finite training loss with weights that give non-finite test logits is a diverged run."""
    from cce_demo import engine

    real = engine.test_logits
    monkeypatch.setattr(engine, "test_logits", lambda model, inputs, flip: real(model, inputs, flip) * float("nan"))
    result, events = collect(tiny_config.replace(epochs=1))
    assert result.status == "diverged" and "diverged at epoch 1" in result.reason
    assert events[-1].kind == "finished" and events[-1].status == "diverged"
    assert result.models == {}


def test_evaluation_turns_tf32_off_and_restores_it():
    from cce_demo.engine import fp32_evaluation

    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = True
    try:
        with fp32_evaluation():
            assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def test_drw_share_as_docs_design_states_it():
    """docs/design.md: the re-weighted share is the last fifth of 200 epochs, the last third of quick's 6
    (epochs 5 and 6) and 7 of standard's 33."""
    from cce_demo.config import PRESETS
    from cce_demo.engine import drw_start_epoch

    quick, standard = PRESETS["quick"], PRESETS["standard"]
    assert (quick.epochs, quick.epochs - drw_start_epoch(quick)) == (6, 2)
    assert (standard.epochs, standard.epochs - drw_start_epoch(standard)) == (33, 7)
    long = standard.replace(epochs=200)
    assert long.epochs - drw_start_epoch(long) == 40
