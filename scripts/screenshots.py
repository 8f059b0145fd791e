"""Retake the README's screenshots (docs/screenshot.png, docs/screenshot-mobile.png, docs/screenshot-results.png)
from the app as it is now, in headless Chromium: the first screen at 1400×1000 and at 390×844, and the Results tab.

    python scripts/screenshots.py

Needs Debian's `chromium` and the `playwright` pip package (never `playwright install`). The app runs on a free
port with a temporary runs folder and no speed probe, so the estimate shown is the calibration table's.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BROWSER_ARGUMENTS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> int:
    os.environ.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", CCE_SPEED_PROBE="0")
    os.environ.setdefault("CCE_RUNS_DIR", tempfile.mkdtemp(prefix="cce-screens-"))
    sys.path.insert(0, str(ROOT))
    import app as app_module
    from playwright.sync_api import sync_playwright

    demo, manager = app_module.create_app()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=BROWSER_ARGUMENTS)
            for name, size in (("screenshot.png", (1400, 1000)), ("screenshot-mobile.png", (390, 844))):
                page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                page.goto(url)
                page.locator("#verdict-general").wait_for(timeout=120_000)  # the shipped run's card is drawn
                page.wait_for_timeout(1500)  # the charts beside it
                page.screenshot(path=str(DOCS / name))
                page.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Results").click()
            page.locator(".cc-grid-answer").first.wait_for(timeout=120_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(DOCS / "screenshot-results.png"))
            browser.close()
    finally:
        demo.close()
        manager.shutdown()
    print("wrote", ", ".join(f"docs/{name}" for name in ("screenshot.png", "screenshot-mobile.png", "screenshot-results.png")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
