"""The start-up speed probe: a factor from real steps that scales the estimate's cost table to this host."""
from __future__ import annotations

import time

import pytest
from conftest import running_app

from cce_demo import speed_probe
from cce_demo.budget import CALIBRATION, ModelCost, calibration, estimate_seconds
from cce_demo.config import TrainConfig
from cce_demo.jobs import JobManager
from cce_demo.speed_probe import FACTOR_FLOOR, scaled_calibration, speed_factor

COST = ModelCost(train_seconds_per_image=0.001, train_seconds_per_step=0.01, eval_seconds_per_image=0.0005)
TABLE = calibration(
    costs={("cpu", "resnet8"): COST, ("cuda", "resnet8"): ModelCost(1e-5, 1e-3, 1e-6),
           ("cpu", speed_probe.PROBE_MODEL): COST, ("cuda", speed_probe.PROBE_MODEL): ModelCost(1e-5, 1e-3, 1e-6)},
    data_seconds={("synthetic", "cpu"): 0.5, ("synthetic", "cuda"): 2.0},
    measured={"cpu"}, where={"cpu": "on this machine", "cuda": "on a GPU (a guess)"},
)
CONFIG = TrainConfig(dataset="synthetic", imbalance_ratio=2.0, epochs=3, batch_size=50, max_per_class=40,
                     synthetic_test_per_class=10, device="cpu", warmup_epochs=0.0)


def test_factor_is_measured_over_predicted_and_floored():
    # Predicted probe step: 2 models x (0.01 s + 100 images x 0.001 s) = 0.22 s.
    assert speed_factor(0.44, COST) == pytest.approx(2.0)
    assert speed_factor(0.11, COST) == pytest.approx(0.5)
    # Issue 20 changed this: there is no ceiling any more (the old x8 clamp made a busy host's estimate err
    # short); a very slow host's factor is what it measured.
    assert speed_factor(100.0, COST) == pytest.approx(100.0 / 0.22)
    assert speed_factor(1e-6, COST) == FACTOR_FLOOR


def test_scaling_multiplies_every_estimate_of_that_device_only():
    scaled = scaled_calibration(TABLE, "cpu", 3.0)
    assert scaled.cost("cpu", "resnet8").train_seconds_per_step == pytest.approx(0.03)
    assert scaled.cost("cuda", "resnet8") == TABLE.cost("cuda", "resnet8")
    plain, timed = estimate_seconds(CONFIG, "cpu", calibration=TABLE), estimate_seconds(CONFIG, "cpu", calibration=scaled)
    assert timed.total_seconds == pytest.approx(3.0 * plain.total_seconds)  # every term is linear in the costs
    assert timed.text.endswith("on this machine (its speed timed at start-up)")
    assert estimate_seconds(CONFIG, "cuda", calibration=scaled).total_seconds == estimate_seconds(CONFIG, "cuda", calibration=TABLE).total_seconds


def test_manager_probe_rescales_its_estimates(tmp_path):
    manager = JobManager(tmp_path, allow_download=False, calibration=TABLE)
    try:
        before = manager.estimate(CONFIG).total_seconds
        factor = manager.time_this_host()
        assert factor is not None and FACTOR_FLOOR <= factor
        assert manager.estimate(CONFIG).total_seconds == pytest.approx(factor * before)
    finally:
        manager.shutdown()


def test_a_failed_probe_keeps_the_table(tmp_path, monkeypatch):
    def broken(device, should_stop):
        raise RuntimeError("no device")

    monkeypatch.setattr(speed_probe, "measure_step_seconds", broken)
    manager = JobManager(tmp_path, allow_download=False, calibration=TABLE)
    try:
        assert manager.time_this_host() is None and manager.calibration is TABLE
    finally:
        manager.shutdown()


def test_the_app_probes_at_start_up_unless_told_not_to(tmp_path):
    with running_app(tmp_path / "probed", CCE_SPEED_PROBE="1") as app:
        deadline = time.monotonic() + 120
        while app["manager"].calibration is CALIBRATION and time.monotonic() < deadline:
            time.sleep(0.2)
        assert app["manager"].calibration is not CALIBRATION
        assert "timed at start-up" in app["manager"].estimate(CONFIG).text
    with running_app(tmp_path / "plain") as app:
        time.sleep(1.0)
        assert app["manager"].calibration is CALIBRATION


def test_the_probe_stops_when_asked(tmp_path):
    with pytest.raises(speed_probe.ProbeStopped):
        speed_probe.measure_step_seconds("cpu", should_stop=lambda: True)
    manager = JobManager(tmp_path, allow_download=False, calibration=TABLE)
    manager.begin_shutdown()  # the app is stopping: the probe gives up after at most one step, table unchanged
    assert manager.time_this_host() is None and manager.calibration is TABLE
    assert manager.join(timeout=60) and manager.threads_left() == []


def test_shutdown_joins_the_probe_thread_whenever_it_comes(tmp_path):
    # Finished or stopped mid-probe, the thread is gone once shutdown returns: nothing is left inside torch.
    manager = JobManager(tmp_path, allow_download=False, calibration=TABLE)
    manager.start_speed_probe()
    assert manager.shutdown(timeout=120)
    assert manager.threads_left() == []
    manager.start_speed_probe()  # refused after shutdown: no thread outlives the manager
    assert manager.threads_left() == []


def test_a_drifted_job_pace_times_the_host_again(tmp_path, monkeypatch):
    """Past ±30 % between a job's measured pace and the probe's prediction the probe runs again (and only then,
    only after a first probe, and only for a job long enough to measure)."""
    calls = []
    step_seconds = iter([0.44, 0.88, 0.22])  # the table predicts 0.22 s: 2x slower, then 2x slower again, then quiet

    def timed(device, should_stop):
        calls.append(device)
        return next(step_seconds)

    monkeypatch.setattr(speed_probe, "measure_step_seconds", timed)
    manager = JobManager(tmp_path, allow_download=False, calibration=TABLE)
    try:
        assert manager.reprobe_if_drifted("cpu", 2.0, 60.0) is None and not calls  # never probed: keeps its table
        assert manager.time_this_host() == pytest.approx(2.0) and len(calls) == 1
        assert manager.reprobe_if_drifted("cpu", 1.25, 60.0) is None  # within 30 %
        assert manager.reprobe_if_drifted("cpu", 2.0, 5.0) is None  # too short a job to say
        assert manager.reprobe_if_drifted("cpu", None, 60.0) is None
        before = manager.estimate(CONFIG).total_seconds
        assert manager.reprobe_if_drifted("cpu", 2.0, 60.0) is not None and len(calls) == 2
        # The second probe is relative to the already-scaled table: the host is now 2x slower than that.
        assert manager.estimate(CONFIG).total_seconds == pytest.approx(2.0 * before)
        assert manager.reprobe_if_drifted("cpu", 0.5, 60.0) == pytest.approx(0.25)  # quieter counts too
        assert manager.estimate(CONFIG).total_seconds == pytest.approx(0.5 * before)
    finally:
        manager.shutdown()
