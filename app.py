"""Start the cce_demo web app: `python app.py` (port 7860; host from GRADIO_SERVER_NAME, default 127.0.0.1).

Environment: CCE_RUNS_DIR (writable runs, default ./runs), CCE_DATA_DIR (CIFAR, default ./data),
CCE_SHIPPED_DIR (read-only pretrained runs, default ./checkpoints), CCE_MAX_QUEUE (default 8),
CCE_MAX_CONCURRENT (jobs at once per device, default 1).
"""
from __future__ import annotations

import os

# Offline and private by default: no analytics, no hub calls. Set before gradio is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import logging  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from PIL import Image  # noqa: E402

from cce_demo.data import default_data_dir  # noqa: E402
from cce_demo.jobs import JobManager  # noqa: E402
from cce_demo.predict import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, ModelCache  # noqa: E402
from cce_demo.ui import AppContext, RunCatalog, build_app  # noqa: E402

ROOT = Path(__file__).resolve().parent
QUEUE_SIZE = 64  # Gradio's request queue (all events), distinct from the training-job queue


def writable_runs_dir() -> Path:
    """CCE_RUNS_DIR, or ./runs; if that cannot be written (a read-only deployment), a temporary directory."""
    wanted = Path(os.environ.get("CCE_RUNS_DIR") or ROOT / "runs")
    try:
        wanted.mkdir(parents=True, exist_ok=True)
        probe = wanted / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        return wanted
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="cce_demo_runs_"))
        logging.warning("runs directory %s is not writable (%s); using %s (lost on restart)", wanted, error, fallback)
        return fallback


def create_app():
    # Uploads are decoded by us with this limit; Pillow's own limit guards every other decode too.
    Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
    manager = JobManager(
        writable_runs_dir(),
        data_dir=default_data_dir(),
        max_queue=int(os.environ.get("CCE_MAX_QUEUE", "8")),
        max_concurrent=int(os.environ.get("CCE_MAX_CONCURRENT", "1")),
    )
    shipped = Path(os.environ.get("CCE_SHIPPED_DIR") or ROOT / "checkpoints")
    context = AppContext(manager, RunCatalog(manager.runs_dir, (shipped,)), ModelCache(), ROOT / "examples")
    return build_app(context), manager


def main() -> None:
    demo, manager = create_app()
    try:
        demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4).launch(
            server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
            ssr_mode=False,
            max_file_size=MAX_UPLOAD_BYTES,
            footer_links=["api", "gradio"],
            show_error=False,
        )
    finally:
        manager.shutdown()


if __name__ == "__main__":
    main()
