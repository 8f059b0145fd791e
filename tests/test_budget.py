"""The cost estimate, the work plan behind progress and ETA, durations for people, and the limits from the
environment. Oracles are hand-computed from round-number calibrations; no test depends on this machine's speed."""
import math

import pytest

from cce_demo import budget
from cce_demo.budget import (
    CALIBRATION, Limits, ModelCost, WorkPlan, calibration, describe_duration, estimate_seconds, plan_work,
    remaining_seconds,
)
from cce_demo.config import MODEL_NAMES, PRESETS, TrainConfig
from cce_demo.data import planned_class_counts

ROUND = ModelCost(train_seconds_per_image=0.001, train_seconds_per_step=0.01, eval_seconds_per_image=0.0001)
ROUND_TABLE = calibration(
    costs={("cpu", "resnet8"): ROUND}, data_seconds={("cifar10", "cpu"): 3.0}, measured={"cpu"},
    where={"cpu": "on this machine"},
)


def config(**changes):
    # Balanced CIFAR-10 with 100 images per class: 1000 training images, 10000 test images.
    base = TrainConfig(dataset="cifar10", imbalance_ratio=1.0, max_per_class=100, model="resnet8", epochs=2,
                       batch_size=100, losses=("ce", "cce"), device="cpu")
    return base.replace(**changes)


def estimate(**changes):
    return estimate_seconds(config(**changes), "cpu", calibration=ROUND_TABLE)


def test_hand_computed_estimate():
    result = estimate()
    # training: 2 models x 2 epochs x (1000 images x 1 ms + 10 steps x 10 ms) = 4.4 s
    # evaluation: 2 models x 2 epochs x 10000 images x 0.1 ms = 4 s; data: 3 s
    assert result.training_seconds == pytest.approx(4.4)
    assert result.evaluation_seconds == pytest.approx(4.0)
    assert result.data_seconds == 3.0
    assert result.total_seconds == pytest.approx(11.4)
    assert result.text == "about 11 s on this machine" and result.measured


def test_flip_test_time_augmentation_doubles_evaluation_only():
    plain, flipped = estimate(), estimate(test_time_flip=True)
    assert flipped.evaluation_seconds == pytest.approx(2 * plain.evaluation_seconds)
    assert flipped.training_seconds == pytest.approx(plain.training_seconds)


def test_doubling_epochs_doubles_training_and_evaluation():
    one, two = estimate(epochs=3), estimate(epochs=6)
    assert two.training_seconds == pytest.approx(2 * one.training_seconds)
    assert two.evaluation_seconds == pytest.approx(2 * one.evaluation_seconds)
    assert two.data_seconds == one.data_seconds  # loaded once


def test_losses_and_seeds_scale_linearly():
    one = estimate(losses=("ce",))
    three = estimate(losses=("ce", "cce", "focal"))
    assert three.training_seconds == pytest.approx(3 * one.training_seconds)
    assert three.evaluation_seconds == pytest.approx(3 * one.evaluation_seconds)
    seeds = estimate(seeds=(0, 1, 2, 3))
    assert seeds.training_seconds == pytest.approx(4 * estimate().training_seconds)


def test_small_batches_pay_the_per_step_cost():
    large, single = estimate(batch_size=1000), estimate(batch_size=1)
    # per model and epoch: 1000 x 1 ms + (1 or 1000) steps x 10 ms
    assert large.training_seconds == pytest.approx(2 * 2 * (1.0 + 0.01))
    assert single.training_seconds == pytest.approx(2 * 2 * (1.0 + 10.0))
    assert single.training_seconds > 10 * large.training_seconds


def test_evaluation_size_is_a_parameter():
    full = estimate(epochs=5)
    smaller = estimate_seconds(config(epochs=5), "cpu", calibration=ROUND_TABLE, evaluation_images_per_epoch=1000)
    # 4 epochs score 1000 images, the last one all 10000: 2 models x (4 x 1000 + 10000) x 0.1 ms
    assert smaller.evaluation_seconds == pytest.approx(2 * (4 * 1000 + 10000) * 1e-4)
    assert full.evaluation_seconds == pytest.approx(2 * 5 * 10000 * 1e-4)
    assert smaller.training_seconds == full.training_seconds


def test_epoch_eval_images_follows_the_engines_stratified_subset():
    import torch

    from cce_demo.engine import stratified_subset

    labels = torch.arange(10).repeat_interleave(1000)
    for wanted in (None, 1, 9, 10, 995, 2000, 10_000, 50_000):
        chosen = stratified_subset(labels, 10, wanted)
        engine_count = len(labels) if chosen is None else len(chosen)
        assert budget.epoch_evaluation_images(config(epoch_eval_images=wanted), 10_000) == engine_count, wanted


def test_unknown_model_or_device_raises():
    with pytest.raises(ValueError, match="no cost figures for model 'resnet32'.*known models: resnet8"):
        estimate_seconds(config(model="resnet32"), "cpu", calibration=ROUND_TABLE)
    with pytest.raises(ValueError, match="'mps'"):
        estimate_seconds(config(), "mps", calibration=ROUND_TABLE)
    with pytest.raises(ValueError, match="imbalance_ratio"):  # a class left without images
        estimate_seconds(config(imbalance_ratio=1000.0), "cpu", calibration=ROUND_TABLE)


def test_the_shipped_table_covers_every_model_on_cpu_and_cuda():
    for device in ("cpu", "cuda"):
        for model in MODEL_NAMES:
            CALIBRATION.cost(device, model)
    for name, preset in PRESETS.items():
        cpu = estimate_seconds(preset, "cpu")
        assert cpu.total_seconds > 0 and cpu.text.endswith("on this machine"), name
    assert not estimate_seconds(PRESETS["quick"], "cuda").measured
    assert "not measured" in estimate_seconds(PRESETS["quick"], "cuda").text
    assert CALIBRATION.measured == {"cpu"}


HUGE = TrainConfig(dataset="cifar10", imbalance_ratio=1.0, model="resnet32", epochs=1000, batch_size=1,
                   losses=("ce", "cce", "cce_reference", "focal", "logit_adjusted"), seeds=tuple(range(10)))


def test_a_huge_job_reads_in_days_or_years():
    assert estimate_seconds(HUGE, "cpu").total_seconds > 30 * 86400  # the largest config the form allows
    slow = calibration(costs={("cpu", "resnet32"): ModelCost(0.01, 0.1, 0.01)}, data_seconds={}, measured={"cpu"},
                       where={"cpu": "on this machine"})
    result = estimate_seconds(HUGE, "cpu", calibration=slow)
    assert result.total_seconds > 365.25 * 86400
    assert result.text == f"about {result.total_seconds / (365.25 * 86400):.1f} years on this machine"


def test_the_estimate_uses_the_planned_counts():
    quick = PRESETS["quick"]
    result = estimate_seconds(quick, "cpu", calibration=calibration(
        costs={("cpu", quick.model): ModelCost(1.0, 0.0, 0.0)}, data_seconds={}, measured=set(), where={}))
    assert result.training_seconds == pytest.approx(2 * quick.epochs * sum(planned_class_counts(quick)))
    assert result.data_seconds == 0 and result.text.endswith("on cpu")


# ---------------------------------------------------------------- work plan and ETA


def test_work_plan_counts_evaluation_in_progress():
    plan = plan_work(config(epochs=2, seeds=(0, 1)), ROUND, num_train=1000, num_test=10_000)
    assert plan.steps_per_epoch == 10
    assert plan.total_seconds == pytest.approx(2 * (4.4 + 4.0))
    # The engine's sequence for 2 seeds x 2 epochs x 10 steps: progress never goes back and ends at 1.
    events = []
    for seed in range(2):
        for epoch in range(2):
            for step in range(10):
                events.append(("step", seed * 20 + epoch * 10 + step + 1))
            events.append(("epoch", seed * 20 + epoch * 10 + 10))
    global_step, evaluations, previous = 0, 0, 0.0
    for kind, step in events:
        global_step = step
        evaluations += kind == "epoch"
        progress = plan.progress(global_step, evaluations)
        assert progress > previous
        if kind == "epoch":  # an evaluation is real work: here as long as the epoch's training
            assert progress - previous == pytest.approx(plan.epoch_evaluation_seconds / plan.total_seconds)
        previous = progress
    assert previous == pytest.approx(1.0)
    assert plan.done_seconds(global_step, evaluations) == pytest.approx(plan.total_seconds)


def test_remaining_seconds_blends_the_estimate_with_the_measured_pace():
    total = 1000.0
    assert remaining_seconds(total, 0.0, 0.0) == total  # nothing measured: the estimate
    assert remaining_seconds(total, 500.0, 500.0) == pytest.approx(500.0)  # on schedule
    # Running at half the estimated speed: the ETA moves from the estimate's 1x towards the measured 2x as
    # the measurement's real time grows (10 s of it count as much as the estimate).
    early = remaining_seconds(total, 1.0, 2.0)
    assert early == pytest.approx(999 * (2 / 12 * 2 + 10 / 12))
    late = remaining_seconds(total, 500.0, 1000.0)
    assert late == pytest.approx(500 * (1000 / 1010 * 2 + 10 / 1010))
    assert total < early < late * 2 < 2 * total
    assert remaining_seconds(total, total, 1234.0) == 0.0


@pytest.mark.parametrize("seconds, text", [
    (0.2, "1 s"), (12.4, "12 s"), (59.4, "59 s"), (100, "1 min 40 s"), (104, "1 min 40 s"), (120, "2 min"),
    (25 * 60, "25 min"), (2.5 * 3600, "2.5 hours"), (3.2 * 86400, "3.2 days"), (3.2 * 365.25 * 86400, "3.2 years"),
    (math.inf, "forever"),
])
def test_describe_duration(seconds, text):
    assert describe_duration(seconds) == text


# ---------------------------------------------------------------- limits


def test_no_limits_locally_and_space_defaults_on_a_space():
    assert Limits.from_environment({}) == Limits()
    space = Limits.from_environment({"SPACE_ID": "someone/cce-demo"})
    assert space == Limits(max_job_minutes=20.0, max_jobs_per_client=1, keep_runs=50, max_runs_mb=500.0)
    assert space.job_time_limit_seconds == 30 * 60


def test_environment_overrides_and_none():
    limits = Limits.from_environment({
        "SPACE_ID": "x/y", "CCE_MAX_JOB_MINUTES": "7.5", "CCE_MAX_JOBS_PER_CLIENT": "3", "CCE_KEEP_RUNS": "none",
        "CCE_MAX_RUNS_MB": " 250 ",
    })
    assert limits == Limits(max_job_minutes=7.5, max_jobs_per_client=3, keep_runs=None, max_runs_mb=250.0)
    local = Limits.from_environment({"CCE_MAX_JOB_MINUTES": "20", "CCE_MAX_JOBS_PER_CLIENT": ""})
    assert local == Limits(max_job_minutes=20.0)


@pytest.mark.parametrize("variable, value", [
    ("CCE_MAX_JOB_MINUTES", "twenty"), ("CCE_MAX_JOB_MINUTES", "0"), ("CCE_MAX_JOB_MINUTES", "-5"),
    ("CCE_MAX_JOB_MINUTES", "nan"), ("CCE_MAX_JOB_MINUTES", "inf"), ("CCE_MAX_JOBS_PER_CLIENT", "1.5"),
    ("CCE_MAX_JOBS_PER_CLIENT", "0"), ("CCE_KEEP_RUNS", "ten"), ("CCE_MAX_RUNS_MB", "-1"),
])
def test_invalid_environment_values_fail_clearly(variable, value):
    with pytest.raises(ValueError, match=f"{variable}='{value}': expected"):
        Limits.from_environment({variable: value})


def test_limits_validate_their_fields():
    with pytest.raises(ValueError, match="max_job_minutes"):
        Limits(max_job_minutes=0)
    with pytest.raises(ValueError, match="keep_runs"):
        Limits(keep_runs=2.5)
    with pytest.raises(ValueError, match="timeout_margin"):
        Limits(timeout_margin=0.9)
    assert "20 min each (stopped at 30 min)" in Limits(max_job_minutes=20).describe()
    assert Limits().describe() == "No limits on jobs or runs."


def test_work_plan_is_a_frozen_value():
    plan = WorkPlan(seeds=1, epochs=1, steps_per_epoch=1, step_seconds=1.0, epoch_evaluation_seconds=0.0,
                    final_evaluation_seconds=1.0)
    with pytest.raises(AttributeError):
        plan.seeds = 2
    assert plan.progress(1, 0) == 0.5 and plan.progress(1, 1) == 1.0


def test_the_measured_pace_is_the_last_minutes_once_there_is_half_a_window_of_it():
    total = 1000.0
    # 500 estimated seconds done in 500 real seconds, but the last minute went at half speed (30 in 60 s).
    assert remaining_seconds(total, 500.0, 500.0, recent=(30.0, 60.0)) == pytest.approx(500 * (500 / 510 * 2 + 10 / 510))
    # Less than half a window of recent measurement: the whole run's pace.
    assert remaining_seconds(total, 500.0, 500.0, recent=(10.0, 20.0)) == pytest.approx(500.0)
    assert remaining_seconds(total, 500.0, 500.0, recent=(0.0, 60.0)) == pytest.approx(500.0)


def test_the_eta_follows_a_load_change_within_about_a_minute():
    """A job whose host halves its speed halfway: within ~70 s of the change the ETA reads the new pace, where a
    pace averaged since the start would still be far off. The oracle: the work left at the new pace."""
    from cce_demo.budget import PACE_WINDOW_SECONDS
    from cce_demo.config import TrainConfig
    from cce_demo.run_state import RunState
    from cce_demo.schema import RunStarted, StepMetrics
    from cce_demo.status import JobStatus

    config = TrainConfig(dataset="synthetic", epochs=1, batch_size=64, seeds=(0,), losses=("ce", "cce"))
    state = RunState(job_id="j", config=config, device="cpu", status=JobStatus.RUNNING)
    state.apply(RunStarted(config=config.to_dict(), class_names=tuple("abcdefghij"), class_counts=(1000,) * 10,
                           num_train=10_000, num_test=1000, device="cpu", steps_per_epoch=157, total_steps=157,
                           data_source="synthetic"), now=0.0)
    per_step = state.plan.done_seconds(2, 0) - state.plan.done_seconds(1, 0)  # estimated seconds per step
    clock, step = 0.0, 0

    def step_at(real_seconds_per_estimated: float) -> None:
        nonlocal clock, step
        step += 1
        clock += per_step * real_seconds_per_estimated
        state.apply(StepMetrics(seed=0, step=step, global_step=step, epoch=step / 157, losses={"ce": 1.0, "cce": 1.0},
                                cross_entropy={"ce": 1.0, "cce": 1.0}, learning_rate=0.1, images_per_second=1.0), now=clock)

    while step < 60:
        step_at(1.0)  # as estimated
    changed = clock
    while clock < changed + PACE_WINDOW_SECONDS + 10 and step < 150:
        step_at(2.0)  # the host got twice as slow
    left = state.plan.total_seconds - state.plan.done_seconds(step, 0)
    assert state.eta_seconds(clock) == pytest.approx(2.0 * left, rel=0.1)
    assert state.measured_pace() < 1.9  # the whole run's average pace would still read much lower
