"""Issue 20 in a real browser (Debian's Chromium), in public mode (SPACE_ID set): the panel gives the limits,
Start is disabled with its reason while the estimate is over the limit and enabled again when the settings fit,
and Repeat is not offered for a job over the limit. Every wait is for a condition."""
import pytest

from conftest import ARTIFACTS, running_app
from test_browser import DESKTOP, START_DISABLED, START_ENABLED, browser, console  # noqa: F401 - shared fixtures

from cce_demo.config import PRESETS


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    # A limit between a 1-epoch and the 6-epoch quick job: the default form is over it, 1 epoch is within.
    with running_app(tmp_path_factory.mktemp("public-panel-runs"), SPACE_ID="tests/cce-demo", CCE_MAX_JOB_MINUTES=0.5) as app:
        yield app


def test_public_mode_states_its_limits_and_disables_start_over_the_limit(browser, space):
    manager = space["manager"]
    over = manager.estimate(PRESETS["quick"]).total_seconds
    within = manager.estimate(PRESETS["quick"].replace(epochs=1)).total_seconds
    if not within <= 30 < over:
        pytest.skip(f"this host's estimates ({within:.0f} s, {over:.0f} s) do not straddle the 30 s limit")
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(space["url"])
        panel = page.locator("#public-panel")
        panel.wait_for()
        text = panel.inner_text()
        assert "30 s" in text and "1 queued or running job per visitor" in text and "download" in text.lower()
        page.locator("#estimate").get_by_text("over the limit").wait_for()
        page.wait_for_function(START_DISABLED)
        assert "over the time limit" in page.locator("#start").inner_text()
        repeat = page.locator("#repeat")
        if repeat.is_visible():  # the shipped run's 3-seed repeat is far over 30 s: offered disabled, with why
            assert repeat.is_disabled() and "over the" in repeat.inner_text()
        page.screenshot(path=str(ARTIFACTS / "public-panel.png"))

        page.get_by_text("Advanced settings").click()
        epochs = page.get_by_label("Epochs")
        epochs.fill("1")
        epochs.press("Tab")
        page.wait_for_function(START_ENABLED)
        assert page.locator("#start").inner_text() == "Start training"
        assert "over the limit" not in page.locator("#estimate").inner_text()
    finally:
        context.close()
