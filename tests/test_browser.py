"""A real browser (Debian's Chromium through Playwright) drives the app as a person would: the first screen,
Start and Stop under double clicks and reloads, a short training run, classify on upload, the phone layout.
Every wait is for a condition, never a sleep. Screenshots go to artifacts/."""
import json
import re
import shutil
import time

import pytest

from conftest import ARTIFACTS, ROOT

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
START_ENABLED = "() => { const b = document.querySelector('#start'); return b && !b.disabled; }"
START_DISABLED = "() => { const b = document.querySelector('#start'); return b && b.disabled; }"
STOP_ENABLED = "() => { const b = document.querySelector('#stop'); return b && !b.disabled; }"


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def console():
    return []


@pytest.fixture()
def page(browser, console):
    """A fresh browser profile (its own localStorage: a new visitor) at 1400×1000."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield page
    context.close()


def open_app(page, url):
    """Open the page and wait until it is interactive: the verdict shows a result and Start is enabled."""
    started = time.monotonic()
    page.goto(url)
    page.locator("#verdict").get_by_text("points balanced accuracy").first.wait_for()
    page.wait_for_function(START_ENABLED)
    return time.monotonic() - started


def synthetic_settings(page, epochs):
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Dataset").click()
    page.get_by_role("option", name="synthetic").click()
    for label, value in (("Epochs", str(epochs)), ("Batch size", "32")):
        field = page.get_by_label(label)
        field.fill(value)
        field.press("Tab")
    page.get_by_text("Advanced settings").click()


def synthetic_jobs(manager, since):
    return [job for job in manager.list_jobs() if job.config.dataset == "synthetic" and job.submitted_at >= since]


def test_first_screen_answers_on_top(page, live_app):
    seconds = open_app(page, live_app["url"])
    print(f"page open -> verdict visible and Start enabled: {seconds:.2f} s")
    verdict = page.locator("#verdict")
    verdict.get_by_text("Shipped run").wait_for()
    box = verdict.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= DESKTOP["height"], box  # fully visible without scrolling
    assert "seed-to-seed" in verdict.inner_text() or "second seed" in verdict.inner_text()
    counts = page.locator("#counts-chart")
    counts.get_by_text("next run: CIFAR-10, ratio 10").wait_for()
    counts.get_by_text("shown run: CIFAR-10, ratio 100").wait_for()
    recall = page.locator("#recall-chart")
    for name in CLASSES:  # all ten classes named at once, each once
        label = recall.locator(".cc-label", has_text=re.compile(rf"^{name}"))
        assert label.count() == 1 and label.is_visible()
    shipped = json.loads((ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce" / "run.json").read_text())
    zeros = sum(value == 0 for value in shipped["final"]["evaluations"]["0"]["ce"]["per_class_recall"])
    if zeros:  # the shipped run's zero-recall classes are marked
        assert recall.locator(".cc-bar b.zero").count() >= zeros
    assert page.locator("#stop").is_disabled()  # nothing of this browser's to stop
    page.screenshot(path=str(ARTIFACTS / "first-open.png"))


def test_double_click_makes_one_job_that_stays_stoppable_after_reload(page, live_app):
    manager = live_app["manager"]
    open_app(page, live_app["url"])
    synthetic_settings(page, epochs=300)
    since = time.time()
    # Two clicks in the same instant (before any answer), then a double click on the disabled button.
    page.evaluate("() => { const b = document.querySelector('#start'); b.click(); b.click(); }")
    page.locator("#job-status").get_by_text("Your run").wait_for()
    page.wait_for_function(START_DISABLED)
    page.locator("#start").dblclick(force=True)
    page.wait_for_function(STOP_ENABLED)
    jobs = synthetic_jobs(manager, since)
    assert len(jobs) == 1, [job.job_id for job in jobs]
    job_id = jobs[0].job_id
    assert page.locator("#start").inner_text().startswith("Training")
    page.reload()
    page.locator("#job-status").get_by_text(job_id).wait_for()
    page.wait_for_function(STOP_ENABLED)
    assert page.locator("#start").is_disabled()
    page.locator("#stop").click()
    assert manager.wait(job_id, timeout=30).status == "cancelled"
    page.wait_for_function(START_ENABLED)
    page.locator("#job-status").get_by_text("cancelled").wait_for()
    assert len(synthetic_jobs(manager, since)) == 1


def test_train_watch_and_compare(page, live_app, console):
    manager = live_app["manager"]
    open_app(page, live_app["url"])
    synthetic_settings(page, epochs=3)
    since = time.time()
    page.locator("#start").click()
    status = page.locator("#job-status")
    status.get_by_text("Your run").wait_for()
    job_id = synthetic_jobs(manager, since)[0].job_id
    page.locator("#job-status [role=progressbar]").wait_for()
    # Something live above the fold while it trains (issue 31): the strip under Start/Stop.
    strip = page.locator("#live-strip .cc-live")  # hidden (not in the page) while nothing trains
    strip.get_by_text(" left").or_(strip.get_by_text("estimating the time left")).first.wait_for()
    box = strip.bounding_box()
    assert box["y"] + box["height"] <= DESKTOP["height"], box
    page.locator("#loss-curve svg[role=img]").wait_for()  # the loss curve streams in (not its legend keys)
    page.locator("#loss-curve .cc-legend").get_by_text("CCE (paper form) · CE part").wait_for()
    status.get_by_text("done").wait_for(timeout=180_000)
    page.locator("#verdict").get_by_text(job_id).wait_for()
    page.locator("#verdict").get_by_text("points balanced accuracy").first.wait_for()
    strip.wait_for(state="detached")  # gone once the job ended
    page.locator("#accuracy-chart svg[role=img]").first.wait_for()
    ticks = page.locator("#accuracy-chart .cc-xt").all_inner_texts()
    assert ticks and all(tick.isdigit() for tick in ticks)  # whole epochs only
    page.wait_for_function(START_ENABLED)
    page.locator("#repeat").wait_for()  # offers 3 seeds, with how long that takes
    assert "3 seeds" in page.locator("#repeat").inner_text()
    page.screenshot(path=str(ARTIFACTS / "train-and-compare.png"), full_page=True)
    page.reload()  # after it finished, a reload still shows this browser's run
    page.locator("#job-status").get_by_text(job_id).wait_for()
    assert not [line for line in console if "Infinite extent" in line or line.startswith("error: Uncaught")]


def test_classify_on_upload_without_a_button(page, live_app, tmp_path):
    open_app(page, live_app["url"])
    page.get_by_role("tab", name="Classify").click()
    started = time.monotonic()
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" / "example-04.png"))
    page.locator("#prediction-0").get_by_text("CE", exact=True).wait_for()
    print(f"upload -> predictions shown: {time.monotonic() - started:.2f} s")
    page.locator("#prediction-1").get_by_text("CCE (paper form)").wait_for()
    page.locator("#upload-preview img").wait_for()  # the upload beside what the models see
    page.locator("#seen img").wait_for()
    page.locator("#class-lean").get_by_text("5,000").first.wait_for()  # why the models lean to head classes
    page.locator("#correct-prior input").check()
    page.locator("#prediction-0").get_by_text("after the prior correction").wait_for()
    page.screenshot(path=str(ARTIFACTS / "classify.png"), full_page=True)
    page.locator("#upload").get_by_label("Clear").first.click()
    page.locator("#classify-note").get_by_text("Upload an image or pick an example").wait_for()
    assert page.locator("#prediction-0").count() == 0  # clearing the upload clears the results
    bad = tmp_path / "not-an-image.png"
    bad.write_text("plain text")
    page.locator("#upload input[type=file]").set_input_files(str(bad))
    page.locator("#classify-note").get_by_text("not an image").wait_for()
    assert page.locator("#prediction-0").count() == 0  # the old results are gone
    assert page.get_by_text("Error", exact=True).count() == 0  # no bare error badges
    page.screenshot(path=str(ARTIFACTS / "bad-upload.png"), full_page=True)
    page.locator("#upload").get_by_label("Clear").first.click()
    page.get_by_text("Example 9", exact=True).click()  # picking an example (example-09.png, a ship) classifies it too
    page.locator("#prediction-0").get_by_text("CE", exact=True).wait_for()
    # The file box names the picked file: a number, never the class it shows.
    shown = page.locator("#upload").inner_text().lower()
    assert "example-09" in shown and not any(name in shown for name in CLASSES)


def test_phone_layout_keeps_recall_labels_readable(browser, live_app):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_app(page, live_app["url"])
        # The verdict's headline is on the first screen, under the settings and Start (issue 31).
        headline = page.locator("#verdict .cc-vn").first.bounding_box()
        assert headline["y"] + 32 <= PHONE["height"], headline
        assert page.locator("#start").bounding_box()["y"] < headline["y"]
        recall = page.locator("#recall-chart")
        recall.scroll_into_view_if_needed()
        for name in CLASSES:
            label = recall.locator(".cc-label", has_text=re.compile(rf"^{name}"))
            box = label.bounding_box()
            assert box and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], (name, box)
            size = label.evaluate("element => parseFloat(getComputedStyle(element).fontSize)")
            assert size >= 11, (name, size)
        bar = recall.locator(".cc-track").first.bounding_box()
        assert bar["width"] >= 60  # bars keep room beside the labels
        page.screenshot(path=str(ARTIFACTS / "phone-first-screen.png"))
        page.screenshot(path=str(ARTIFACTS / "phone-full.png"), full_page=True)
    finally:
        context.close()


def test_a_diverged_run_is_a_result_not_a_broken_page(page, live_app, console):
    """Issue 18: learning rate 1e5 on synthetic data. The page kept raising on every tick ("Error", Start
    disabled) and again on every reload, because it re-attached to that run."""
    manager = live_app["manager"]
    open_app(page, live_app["url"])
    synthetic_settings(page, epochs=2)
    page.get_by_text("Advanced settings").click()
    rate = page.get_by_label("Learning rate")
    rate.fill("100000")
    rate.press("Tab")
    page.get_by_text("Advanced settings").click()
    since = time.time()
    page.locator("#start").click()
    page.locator("#job-status").get_by_text("Your run").wait_for()
    jobs = synthetic_jobs(manager, since)
    assert len(jobs) == 1 and jobs[0].config.learning_rate == 1e5
    job_id = jobs[0].job_id
    finished = manager.wait(job_id, timeout=300)
    assert finished.status == "failed" and "diverged at epoch" in finished.error  # a result, never "done"
    page.wait_for_function(START_ENABLED)  # the page keeps working: Start is back
    page.locator("#job-status").get_by_text(job_id).wait_for()
    page.screenshot(path=str(ARTIFACTS / "diverged.png"), full_page=True)
    assert page.get_by_text("Error", exact=True).count() == 0
    page.reload()  # re-attaches to the same run, safely
    page.locator("#job-status").get_by_text(job_id).wait_for()
    page.wait_for_function(START_ENABLED)
    assert page.get_by_text("Error", exact=True).count() == 0
    assert str(finished.status) in page.locator("#job-status").inner_text()  # the run's outcome, drawn as a result


def test_a_tap_on_a_chart_shows_its_value_on_a_phone(browser, live_app):
    """Touch has no hover (issue 31): tapping a recall bar shows its tooltip's text in a box; tapping elsewhere
    hides it."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_app(page, live_app["url"])
        bar = page.locator("#recall-chart .cc-bar").first
        bar.scroll_into_view_if_needed()
        expected = bar.get_attribute("title")
        bar.tap()
        box = page.locator("#cc-tap")
        box.wait_for(state="visible")
        assert box.inner_text() == expected and " · " in expected
        page.locator("h1").first.tap()
        box.wait_for(state="hidden")
        page.screenshot(path=str(ARTIFACTS / "tap-value.png"))
    finally:
        context.close()
