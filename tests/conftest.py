"""Shared test set-up: no network, no analytics, small deterministic configs."""
import os

# Gradio reads these at import time; set them before any test module imports it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402

from cce_demo.config import TrainConfig  # noqa: E402


@pytest.fixture
def tiny_config() -> TrainConfig:
    """A paired CE/CCE run on the synthetic set that trains in about a second on a CPU."""
    return TrainConfig(
        dataset="synthetic", imbalance_ratio=2.0, epochs=2, batch_size=64, learning_rate=0.05,
        warmup_epochs=0.0, device="cpu", max_per_class=40, synthetic_test_per_class=10,
    )
