"""A real browser (Debian's Chromium through Playwright) drives the app: open the page, train a quick paired
job on synthetic data, see the curves and the recall chart, classify an upload. Saves screenshots."""
import shutil

import pytest

from conftest import ARTIFACTS, ROOT

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def page(live_app):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def test_first_open_shows_the_shipped_run(page, live_app):
    page.goto(live_app["url"])
    page.get_by_text("Shipped run").wait_for()
    page.locator("#verdict").get_by_text("McNemar").wait_for()
    page.screenshot(path=str(ARTIFACTS / "first-open.png"), full_page=True)


def test_train_watch_and_compare(page, live_app):
    page.goto(live_app["url"])
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Dataset").click()
    page.get_by_role("option", name="synthetic").click()
    for label, value in (("Epochs", "3"), ("Batch size", "32")):
        field = page.get_by_label(label)
        field.fill(value)
        field.press("Tab")
    page.get_by_role("button", name="Start training").click()
    status = page.locator("#job-status")
    status.get_by_text("synthetic").wait_for()
    job_id = live_app["manager"].active_jobs()[0].job_id
    # A second browser sees the running job instead of the shipped run (and does not start another).
    other = page.context.browser.new_page()
    other.goto(live_app["url"])
    other.locator("#job-status").get_by_text(job_id).wait_for()
    other.close()
    # Reloading re-attaches to this browser's job.
    page.reload()
    page.locator("#job-status").get_by_text(job_id).wait_for()
    # Curves stream in while it trains: the loss chart's legend names the CE part of CCE.
    try:
        page.locator("#loss-curve").get_by_text("CCE (paper form) · CE part").wait_for(timeout=60_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "failure-loss-curve.png"), full_page=True)
        raise
    status.get_by_text("done").wait_for(timeout=180_000)
    page.locator("#recall-chart").get_by_text("CCE (paper form)").first.wait_for()
    page.locator("#verdict").get_by_text("McNemar").wait_for()
    page.screenshot(path=str(ARTIFACTS / "train-and-compare.png"), full_page=True)
    # After it finished, a reload still shows this browser's job (remembered in the browser), not the shipped run.
    page.reload()
    page.locator("#job-status").get_by_text(job_id).wait_for()
    runs = [snapshot for snapshot in live_app["manager"].list_jobs() if snapshot.config.dataset == "synthetic"]
    assert runs and runs[0].status == "done"


def test_classify_an_upload(page, live_app):
    page.goto(live_app["url"])
    page.get_by_role("tab", name="Classify").click()
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" / "3-cat.png"))
    page.get_by_role("button", name="Classify").click()
    page.get_by_text("The models see this 32×32 image").wait_for()
    page.locator("#prediction-0").get_by_text("CE").first.wait_for()
    page.locator("#prediction-1").get_by_text("CCE (paper form)").wait_for()
    page.screenshot(path=str(ARTIFACTS / "classify.png"), full_page=True)


def test_bad_upload_shows_a_message_and_the_page_keeps_working(page, live_app, tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_text("plain text")
    page.goto(live_app["url"])
    page.get_by_role("tab", name="Classify").click()
    page.locator("#upload input[type=file]").set_input_files(str(bad))
    page.get_by_role("button", name="Classify").click()
    page.get_by_text("not an image").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "bad-upload.png"), full_page=True)
