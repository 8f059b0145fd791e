"""Links in a real browser (Debian's Chromium through Playwright): a query link fills the form and starts
nothing, `?run=` opens that run, an invalid value is named in one note, and Copy link gives a link that reads
back as the same settings. Every wait is for a condition, never a sleep."""
import shutil

import pytest

from cce_demo.transfer import import_run, write_run_zip
from conftest import ROOT

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
START_ENABLED = "() => { const b = document.querySelector('#start'); return b && !b.disabled; }"
SHIPPED_RUN = "cifar10-lt100-standard-ce-cce"


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def open_page(page, url):
    page.goto(url)
    page.wait_for_function(START_ENABLED)


def advanced_value(page, label):
    accordion = page.get_by_text("Advanced settings")
    if not page.get_by_label(label).is_visible():
        accordion.click()
    return page.get_by_label(label).input_value()


def test_query_link_fills_the_form_and_starts_nothing(page, live_app):
    manager = live_app["manager"]
    before = {job.job_id for job in manager.list_jobs()}
    open_page(page, live_app["url"] + "?preset=standard&ratio=50&epochs=3&seeds=0,1")
    page.locator("#link-note").get_by_text("Settings from the link").wait_for()
    assert page.get_by_role("radio", name="standard").is_checked()
    page.wait_for_function("() => document.querySelector('#estimate')?.innerText.includes('Estimated time')")
    assert advanced_value(page, "Imbalance ratio (≥ 1)") == "50"
    assert advanced_value(page, "Epochs") == "3" and advanced_value(page, "Seeds (e.g. 0,1,2)") == "0,1"
    page.locator("#counts-chart").get_by_text("ratio 50").first.wait_for()  # the class counts follow the link
    assert {job.job_id for job in manager.list_jobs()} == before  # nothing started


def test_run_link_opens_that_run(page, live_app, tmp_path):
    zip_path = write_run_zip(ROOT / "checkpoints" / SHIPPED_RUN, tmp_path)
    run_id = import_run(zip_path, live_app["runs"], other_roots=[ROOT / "checkpoints"]).run_id
    open_page(page, live_app["url"] + f"?run={run_id}")
    page.locator("#link-note").get_by_text("Showing run").wait_for()
    page.locator("#job-status").get_by_text(run_id).first.wait_for()
    assert "Shipped run" not in page.locator("#verdict").inner_text()  # the imported copy, not the default run


def test_invalid_query_values_show_one_note_and_the_page_loads(page, live_app):
    open_page(page, live_app["url"] + "?epochs=many&colour=red&run=../etc")
    note = page.locator("#link-note")
    note.get_by_text("Ignored in this link").wait_for()
    text = note.inner_text()
    assert "epochs='many'" in text and "colour='red'" in text and "run='../etc'" in text
    assert page.locator("#link-note .cc-card").count() == 1
    page.locator("#verdict").get_by_text("points balanced accuracy").first.wait_for()  # the page still works


def test_copy_link_gives_the_settings_link(page, live_app):
    open_page(page, live_app["url"] + "?preset=quick&ratio=20")
    page.locator("#link-note").get_by_text("Settings from the link").wait_for()
    page.locator("#link-settings").click()
    page.wait_for_function("() => document.querySelector('#share-link textarea, #share-link input')?.value.includes('?preset=')")
    link = page.locator("#share-link textarea, #share-link input").first.input_value()
    assert link == live_app["url"] + "?preset=quick&ratio=20"
    page.wait_for_function("(link) => window.__cce_copied === link", arg=link)
    assert page.evaluate("navigator.clipboard.readText()") == link
