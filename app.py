"""Start the cce_demo web app: `python app.py` (port 7860; host from GRADIO_SERVER_NAME, default 127.0.0.1).

Environment: CCE_RUNS_DIR (writable runs; default /data/runs where persistent storage is mounted at /data, as
on a Hugging Face Space that has it turned on, else ./runs), CCE_DATA_DIR (CIFAR, default ./data),
CCE_SHIPPED_DIR (read-only pretrained runs, default ./checkpoints), CCE_MAX_QUEUE (default 8),
CCE_MAX_CONCURRENT (jobs at once per device, default 1), CCE_RESULTS_DIR (the Results tab's grids, default
./results). Public limits (cce_demo/budget.py, `Limits.from_environment`): CCE_MAX_JOB_MINUTES,
CCE_MAX_JOBS_PER_CLIENT, CCE_KEEP_RUNS, CCE_MAX_RUNS_MB (unset: none locally, safe defaults on a Space); an
invalid value stops the app at start-up with a message naming the variable. CCE_SPEED_PROBE=0 skips the
start-up speed probe (cce_demo/speed_probe.py) that scales the job-time estimate to this host.

SIGINT and SIGTERM stop the app cleanly whenever they come: the server closes, the speed probe and the
running jobs stop within a step (the jobs record what they trained), their threads are joined, exit 0.
"""
from __future__ import annotations

import os
import signal

# Offline and private by default: no analytics, no hub calls. Set before gradio is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class StopSignal:
    """SIGINT and SIGTERM, caught: the handler only notes the signal and writes a byte to a pipe, and the main
    thread, blocked reading that pipe, then shuts down in order. Python's default SIGINT handler raises
    KeyboardInterrupt wherever the main thread happens to be (a traceback and exit 1 when it lands in start-up),
    SIGTERM's default kills the process in the middle of everything, and a process that exits while a thread
    is inside torch can abort in native code (exit 139). The handler takes no lock, so it cannot deadlock
    against the code it interrupts (a `threading.Event` could); a pipe also remembers a signal that came
    before anyone waited. While the modules are still being imported nothing has started that could need
    stopping, so a signal then ends the process at once (importing torch and gradio takes 20 s on a busy
    host, longer than `docker stop` waits)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._write_end, False)  # a burst of signals must never block the handler
        self.received: int | None = None
        self.exit_at_once = True  # until `main` starts building the app

    def install(self) -> None:
        for number in self.SIGNALS:
            signal.signal(number, self._handle)

    def _handle(self, number: int, frame: object) -> None:
        if self.exit_at_once:
            os.write(2, f"cce_demo: {signal.Signals(number).name} during start-up: stopped\n".encode())
            os._exit(0)
        if self.received is None:
            self.received = number
        try:
            os.write(self._write_end, b"!")
        except OSError:  # the pipe is full: a stop is already pending
            pass

    @property
    def requested(self) -> bool:
        return self.received is not None

    def wait(self) -> str:
        """Block until a signal has come; returns its name."""
        os.read(self._read_end, 1)  # retried by Python after each handler (PEP 475) until the byte is there
        return signal.Signals(self.received).name if self.received is not None else "a stop request"


STOP = StopSignal()
if __name__ == "__main__":
    # First thing, before the seconds of importing torch and gradio: a stop during start-up is a stop too.
    STOP.install()

import atexit  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from PIL import Image  # noqa: E402

from cce_demo.budget import Limits  # noqa: E402
from cce_demo.data import default_data_dir  # noqa: E402
from cce_demo.jobs import PROBE_THREAD, JobManager  # noqa: E402
from cce_demo.predict import MAX_UPLOAD_PIXELS, ModelCache, stop_inference_thread  # noqa: E402
from cce_demo.runs_location import choose_runs_location  # noqa: E402
from cce_demo.ui import AppContext, RunCatalog, build_app  # noqa: E402

ROOT = Path(__file__).resolve().parent
# `docker stop` waits 10 s before it kills; leave the server its own few seconds to close within that.
SHUTDOWN_SECONDS = 6.0
QUEUE_SIZE = 64  # Gradio's request queue (all events), distinct from the training-job queue
# Gradio's one upload cap, for images and run zips alike. Images are refused above MAX_UPLOAD_BYTES (20 MB) by
# cce_demo.predict anyway; run zips need more: a run this app can train within its time limits is 1-5 MB, a
# 200-epoch GPU run tens of MB. Bigger exports (transfer.MAX_IMPORT_BYTES allows 256 MiB) are imported on
# the command line: `python -c "from cce_demo.transfer import import_run; import_run('run.zip', 'runs')"`.
MAX_FILE_BYTES = 64 * 2**20
def limits_from_environment() -> Limits:
    """The public limits from the environment; a typo stops the app here (SystemExit with one clear line)."""
    try:
        return Limits.from_environment(os.environ)
    except ValueError as error:
        raise SystemExit(f"cce_demo: cannot start: {error}") from None


def create_app():
    # Uploads are decoded by us with this limit; Pillow's own limit guards every other decode too.
    Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
    runs = choose_runs_location()
    logging.getLogger("cce_demo").info("%s", runs.description)
    manager = JobManager(
        runs.path,
        data_dir=default_data_dir(),
        max_queue=int(os.environ.get("CCE_MAX_QUEUE", "8")),
        max_concurrent=int(os.environ.get("CCE_MAX_CONCURRENT", "1")),
        limits=limits_from_environment(),
    )
    if os.environ.get("CCE_SPEED_PROBE", "1") != "0":
        # Hosts differ several-fold in speed; about a second of real steps, off the start-up path, fixes the
        # estimate's scale for this one. Its own thread (the page is served meanwhile), which the manager's
        # shutdown stops and joins.
        manager.start_speed_probe()
    shipped = Path(os.environ.get("CCE_SHIPPED_DIR") or ROOT / "checkpoints")
    results = Path(os.environ.get("CCE_RESULTS_DIR") or ROOT / "results")
    context = AppContext(manager, RunCatalog(manager.runs_dir, (shipped,)), ModelCache(), ROOT / "examples",
                         results_dir=results, storage_note=runs.visitor_description)
    return build_app(context), manager


def exit_status(threads_left: list[str], logger: logging.Logger) -> int:
    """0 when nothing was lost: every thread ended, or only the start-up speed probe is left (its few steps are
    disposable; a first step can take seconds on a busy host, importing parts of torch). 1 when a job could
    not record what it trained in time: it reads as interrupted after the next start."""
    jobs_left = [name for name in threads_left if name != PROBE_THREAD]
    if jobs_left:
        logger.error("stopped before %s had recorded its job; that run reads as interrupted after the next start",
                     ", ".join(jobs_left))
        return 1
    if threads_left:
        logger.info("stopped; the speed probe was abandoned mid-step")
    else:
        logger.info("stopped cleanly")
    return 0


def main() -> None:
    """Serve until SIGINT or SIGTERM, then stop in order and end the process (see the end for why os._exit)."""
    # The app's own INFO lines (the speed probe's factor, runs removed to stay within the limits) belong in
    # the server log; libraries stay at WARNING (httpx would log every request).
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("cce_demo")
    logger.setLevel(logging.INFO)
    STOP.install()  # again, for `python -c "import app; app.main()"`: harmless when already installed
    STOP.exit_at_once = False  # from here on threads start and runs are written: a stop is done in order
    demo, manager = create_app()
    try:
        if not STOP.requested:  # a stop during start-up: never open the port
            demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=4).launch(
                server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                ssr_mode=False,
                max_file_size=MAX_FILE_BYTES,
                footer_links=["api", "gradio"],
                show_error=False,
                prevent_thread_lock=True,  # the main thread waits for the stop signal instead of Gradio's loop
            )
        logger.info("%s: stopping the server, the speed probe and the jobs", STOP.wait())
    finally:
        # The probe and the jobs are told first (each stops after its step under way), the server closes
        # meanwhile (no new requests), then their threads are joined, all within docker stop's 10 s.
        stop_started = time.monotonic()
        manager.begin_shutdown()
        stop_inference_thread()
        demo.close(verbose=False)
        manager.join(max(0.0, SHUTDOWN_SECONDS - (time.monotonic() - stop_started)))
    status = exit_status(manager.threads_left(), logger)
    # Everything that matters is done: the server is closed, the runs are written and the threads joined
    # (or only the disposable probe is left). What a normal interpreter exit adds is module teardown, which
    # took 4-6 s at load 6 here (eating into docker stop's 10 s), and, with a thread still inside torch, an
    # abort in torch's static destructors ("terminate called without an active exception", exit 139). So
    # run the exit handlers, flush, and leave without the teardown.
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
