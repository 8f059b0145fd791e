"""Start the cce_demo web app: `python app.py` (port 7860; host from GRADIO_SERVER_NAME, default 127.0.0.1).

Environment: CCE_RUNS_DIR (writable runs, default ./runs), CCE_DATA_DIR (CIFAR, default ./data),
CCE_SHIPPED_DIR (read-only pretrained runs, default ./checkpoints), CCE_MAX_QUEUE (default 8),
CCE_MAX_CONCURRENT (jobs at once per device, default 1), CCE_RESULTS_DIR (the Results tab's grids, default
./results). Public limits (cce_demo/budget.py, `Limits.from_environment`): CCE_MAX_JOB_MINUTES,
CCE_MAX_JOBS_PER_CLIENT, CCE_KEEP_RUNS, CCE_MAX_RUNS_MB (unset: none locally, safe defaults on a Space); an
invalid value stops the app at start-up with a message naming the variable. CCE_SPEED_PROBE=0 skips the
start-up speed probe (cce_demo/speed_probe.py) that scales the job-time estimate to this host.
"""
from __future__ import annotations

import os

# Offline and private by default: no analytics, no hub calls. Set before gradio is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import logging  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from PIL import Image  # noqa: E402

from cce_demo.budget import Limits  # noqa: E402
from cce_demo.data import default_data_dir  # noqa: E402
from cce_demo.jobs import JobManager  # noqa: E402
from cce_demo.predict import MAX_UPLOAD_PIXELS, ModelCache  # noqa: E402
from cce_demo.ui import AppContext, RunCatalog, build_app  # noqa: E402

ROOT = Path(__file__).resolve().parent
QUEUE_SIZE = 64  # Gradio's request queue (all events), distinct from the training-job queue
# Gradio's one upload cap, for images and run zips alike. Images are refused above MAX_UPLOAD_BYTES (20 MB) by
# cce_demo.predict anyway; run zips need more: a run this app can train within its time limits is 1-5 MB, a
# 200-epoch GPU run tens of MB. Bigger exports (transfer.MAX_IMPORT_BYTES allows 256 MiB) are imported on
# the command line: `python -c "from cce_demo.transfer import import_run; import_run('run.zip', 'runs')"`.
MAX_FILE_BYTES = 64 * 2**20


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


def limits_from_environment() -> Limits:
    """The public limits from the environment; a typo stops the app here (SystemExit with one clear line)."""
    try:
        return Limits.from_environment(os.environ)
    except ValueError as error:
        raise SystemExit(f"cce_demo: cannot start: {error}") from None


def create_app():
    # Uploads are decoded by us with this limit; Pillow's own limit guards every other decode too.
    Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
    manager = JobManager(
        writable_runs_dir(),
        data_dir=default_data_dir(),
        max_queue=int(os.environ.get("CCE_MAX_QUEUE", "8")),
        max_concurrent=int(os.environ.get("CCE_MAX_CONCURRENT", "1")),
        limits=limits_from_environment(),
    )
    if os.environ.get("CCE_SPEED_PROBE", "1") != "0":
        # Hosts differ several-fold in speed; about a second of real steps, off the start-up path, fixes the
        # estimate's scale for this one. Its own thread: the page is served meanwhile.
        threading.Thread(target=manager.time_this_host, name="speed-probe", daemon=True).start()
    shipped = Path(os.environ.get("CCE_SHIPPED_DIR") or ROOT / "checkpoints")
    results = Path(os.environ.get("CCE_RESULTS_DIR") or ROOT / "results")
    context = AppContext(manager, RunCatalog(manager.runs_dir, (shipped,)), ModelCache(), ROOT / "examples",
                         results_dir=results)
    return build_app(context), manager


def main() -> None:
    # The app's own INFO lines (the speed probe's factor, runs removed to stay within the limits) belong in
    # the server log; libraries stay at WARNING (httpx would log every request).
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("cce_demo").setLevel(logging.INFO)
    demo, manager = create_app()
    try:
        demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4).launch(
            server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
            ssr_mode=False,
            max_file_size=MAX_FILE_BYTES,
            footer_links=["api", "gradio"],
            show_error=False,
        )
    finally:
        manager.shutdown()


if __name__ == "__main__":
    main()
