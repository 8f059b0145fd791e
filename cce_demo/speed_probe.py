"""A start-up speed probe: time a few real training steps on this host and scale the estimate's cost table.

The calibration table in `budget.py` was measured on one development machine. Hosts differ far more than one
would guess: the same 2-core VM class ran this project's training step several times faster on one CPU model
than on another (bench/results.json, bench/results-intel-xeon.json), so a fixed table underestimated jobs on
the slower host (bench/estimate_results.json). Eight steps of the engine's own loop (the CPU presets' net,
CE + CCE, synthetic 32x32 images, a second or two on a CPU) give one factor, measured / predicted, that
scales every cost of that device type. Relative costs (model against model, training against evaluation)
still come from the table.

A busy host at start-up makes the factor larger, which errs toward refusing a job rather than letting it run
past its limit. The factor has a floor and no ceiling: a floor can only make an estimate long (a host that
seems more than 8 times faster than the table is believed to be 8 times faster), whereas the ×8 ceiling it
used to have made the estimate err *short* on a busy host (issue 20: ×2.4 short). The host's load changes
after start-up too, so `drifted` says when a running job's measured step rate has moved more than
`DRIFT_TOLERANCE` from the probe's, the point at which the table should be timed again.

The probe can be stopped: `should_stop` is read after every step (the engine's own stop callback), so an app
asked to shut down during its first seconds waits at most one probe step, never for the whole probe. A
process that exits while a thread is still inside a torch kernel can abort in native code (exit 139).
"""
from __future__ import annotations

import dataclasses
import math
import statistics

from .budget import Calibration, ModelCost, calibration
from .config import PRESETS, TrainConfig
from .engine import StopCallback, train_paired
from .schema import StepMetrics
from .status import JobStatus

# The net the CPU presets train: the jobs people start most are the ones the factor should fit best (nets
# gain differently from a second thread, so a factor timed on another net would be off for them).
PROBE_MODEL = PRESETS["quick"].model
PROBE_BATCH_SIZE = 100
PROBE_STEPS = 8  # 800 synthetic images (80 per class) at batch 100: every step a full batch
WARMUP_STEPS = 3  # the first steps pay one-off costs (thread pool, allocator, kernel selection): not timed
# The smallest factor believed (a floor only: see the module's docstring).
FACTOR_FLOOR = 0.125
# How far (as a fraction of the probe's rate) a running job's measured step rate may drift from the probe's
# before the probe is out of date: past ±30 % the estimates made from it would be off by as much.
DRIFT_TOLERANCE = 0.3


class ProbeStopped(Exception):
    """The probe was asked to stop (the app is shutting down) before it had timed enough steps."""


def probe_config(device: str) -> TrainConfig:
    return TrainConfig(
        dataset="synthetic", imbalance_ratio=1.0, max_per_class=PROBE_STEPS * PROBE_BATCH_SIZE // 10,
        losses=("ce", "cce"), model=PROBE_MODEL, epochs=1, batch_size=PROBE_BATCH_SIZE, warmup_epochs=0.0,
        device=device, seeds=(0,), synthetic_test_per_class=2,
    )


def measure_step_seconds(device: str = "cpu", should_stop: StopCallback = lambda: False) -> float:
    """Median seconds of one training step of the probe's pair (both models) after warm-up, on `device`.
    Raises ProbeStopped when `should_stop` answered True before the probe finished."""
    config = probe_config(device)
    seconds: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, StepMetrics) and event.step > WARMUP_STEPS:
            # The engine reports images through both models per second; the step's time follows from it.
            seconds.append(PROBE_BATCH_SIZE * len(config.losses) / event.images_per_second)

    result = train_paired(config, on_event, should_stop, allow_download=False)
    if result.status == JobStatus.CANCELLED:
        raise ProbeStopped(f"speed probe stopped after {len(seconds)} timed step(s)")
    if result.status != JobStatus.DONE or not seconds:
        raise RuntimeError(f"speed probe did not finish: {result.status} {result.reason}")
    return statistics.median(seconds)


def predicted_step_seconds(cost: ModelCost, models: int = 2, batch_size: int = PROBE_BATCH_SIZE) -> float:
    return models * (cost.train_seconds_per_step + batch_size * cost.train_seconds_per_image)


def speed_factor(measured_seconds: float, cost: ModelCost) -> float:
    """How much slower (> 1) or faster (< 1) this host runs the probe step than the table predicts, never
    below `FACTOR_FLOOR` and never capped above (a cap would make a busy host's estimates err short)."""
    if not (math.isfinite(measured_seconds) and measured_seconds > 0):
        raise ValueError(f"measured_seconds: must be a finite number > 0, got {measured_seconds!r}")
    return max(FACTOR_FLOOR, measured_seconds / predicted_step_seconds(cost))


def drifted(probe_steps_per_second: float, measured_steps_per_second: float,
            tolerance: float = DRIFT_TOLERANCE) -> bool:
    """Whether a running job's measured step rate has drifted from the rate the probe's factor predicts for it
    by more than `tolerance` (a fraction of the predicted rate), either way: then the probe is out of date
    (the host got busier or quieter) and should run again. Both rates in steps per second of the same job."""
    for name, value in (("probe_steps_per_second", probe_steps_per_second),
                        ("measured_steps_per_second", measured_steps_per_second)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance: must be a finite number >= 0, got {tolerance!r}")
    return abs(measured_steps_per_second / probe_steps_per_second - 1) > tolerance


def scaled_calibration(table: Calibration, device_type: str, factor: float) -> Calibration:
    """`table` with every cost of `device_type` multiplied by `factor` (data loading too: also host speed)."""
    costs = {
        key: (dataclasses.replace(
            cost,
            train_seconds_per_image=cost.train_seconds_per_image * factor,
            train_seconds_per_step=cost.train_seconds_per_step * factor,
            eval_seconds_per_image=cost.eval_seconds_per_image * factor,
        ) if key[0] == device_type else cost)
        for key, cost in table.costs.items()
    }
    data_seconds = {key: seconds * factor if key[1] == device_type else seconds for key, seconds in table.data_seconds.items()}
    where = dict(table.where)
    where[device_type] = f"on this {'GPU' if device_type == 'cuda' else 'machine'} (its speed timed at start-up)"
    return calibration(costs, data_seconds, table.measured | {device_type}, where)


def probe(
    table: Calibration, device: str = "cpu", should_stop: StopCallback = lambda: False,
) -> tuple[Calibration, float, float]:
    """Time the probe on `device`; returns the scaled table, the factor and the measured step seconds. Raises
    ProbeStopped when `should_stop` fired first."""
    seconds = measure_step_seconds(device, should_stop)
    factor = speed_factor(seconds, table.cost(device, PROBE_MODEL))
    return scaled_calibration(table, device, factor), factor, seconds
