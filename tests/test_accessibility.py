"""Issue 20, items 3, 4 and 7 in a real browser (Debian's Chromium, desktop 1400×1000 and phone 390×844): all
five tabs in view without a "…" menu, the Runs table's width and columns, the Classify result under the image,
and axe-core (the npm package that scripts/test.sh installs) finding no serious or critical WCAG 2.1 A/AA
violation on any tab."""
import os
import shutil
from pathlib import Path

import pytest

from conftest import ARTIFACTS, ROOT

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": {"width": 1400, "height": 1000}, "phone": {"width": 390, "height": 844}}
TABS = ("Train & compare", "Classify", "Runs", "Results", "About")
# scripts/test.sh installs axe-core here (artifacts/ is ignored by git); AXE_CORE_JS points elsewhere.
AXE_SCRIPT = Path(os.environ.get("AXE_CORE_JS", ROOT / "artifacts" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
AXE_RUN = """async () => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
}"""
SHIPPED_RUN = "cifar10-lt100-standard-ce-cce"
RUNS_KEY_COLUMNS = ["run", "status", "balanced accuracy % (first seed)", "Δ balanced accuracy vs CE (points)",
                    "Δ tail recall vs CE (points)"]


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(params=sorted(VIEWPORTS))
def screen(request, browser, live_app):
    """(name, page) with the app open and interactive at that viewport; the page's console lines collected."""
    context = browser.new_context(viewport=VIEWPORTS[request.param], device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.console_lines = []
    page.on("console", lambda message: page.console_lines.append(f"{message.type}: {message.text}"))
    page.goto(live_app["url"])
    page.locator("#verdict").get_by_text("points balanced accuracy").first.wait_for()
    yield request.param, page
    context.close()


def open_tab(page, name):
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_function(f"() => [...document.querySelectorAll('[role=tab]')].some(t => t.textContent.trim() === {name!r} "
                           "&& t.getAttribute('aria-selected') === 'true')")


def test_every_tab_is_in_view_without_a_menu(screen):
    name, page = screen
    width = VIEWPORTS[name]["width"]
    for tab in TABS:
        box = page.get_by_role("tab", name=tab, exact=True).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (tab, box)
    assert page.locator(".overflow-menu").filter(visible=True).count() == 0  # no "…" button


@pytest.mark.skipif(not AXE_SCRIPT.is_file(), reason=f"axe-core is not installed at {AXE_SCRIPT} (scripts/test.sh installs it)")
def test_axe_finds_no_serious_violation_on_any_tab(screen):
    name, page = screen
    found = {}
    for tab in TABS:
        open_tab(page, tab)
        if tab == "Classify":  # with results drawn, so they are checked too
            page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" / "example-04.png"))
            page.locator("#prediction-0").wait_for()
            # Gradio fades the outputs of an event still in progress (pending, lower opacity): axe would measure
            # the contrast of the fade (it once failed so in the full suite). Check the settled page.
            page.wait_for_function("() => !document.querySelector('.pending, .generating')")
            page.wait_for_timeout(500)
        page.add_script_tag(path=str(AXE_SCRIPT))
        violations = page.evaluate(AXE_RUN)
        if violations:
            found[tab] = violations
    assert not found, (name, found)


def test_desktop_runs_table_fits_with_its_difference_columns(browser, live_app):
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(live_app["url"])
        open_tab(page, "Runs")
        table = page.locator("#runs-table table").first
        page.locator("#runs-table").get_by_text(SHIPPED_RUN).filter(visible=True).first.wait_for()
        assert table.evaluate("t => t.scrollWidth") <= VIEWPORTS["desktop"]["width"]
        for heading in RUNS_KEY_COLUMNS[3:]:
            box = table.locator("th", has_text=heading).first.bounding_box()
            assert box and box["x"] + box["width"] <= VIEWPORTS["desktop"]["width"], (heading, box)
        scrolled = page.evaluate("() => [...document.querySelectorAll('#runs-table *')].some(e => e.scrollWidth > e.clientWidth + 1"
                                 " && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))")
        assert not scrolled  # no inner horizontal scroll hides a column
        page.screenshot(path=str(ARTIFACTS / "runs-desktop.png"))
    finally:
        context.close()


def test_phone_runs_table_shows_the_key_columns(browser, live_app):
    context = browser.new_context(viewport=VIEWPORTS["phone"], device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(live_app["url"])
        open_tab(page, "Runs")
        table = page.locator("#runs-table table").first
        page.locator("#runs-table").get_by_text(SHIPPED_RUN).filter(visible=True).first.wait_for()
        headings = [text.strip() for text in table.locator("th").filter(visible=True).all_inner_texts()]
        assert [" ".join(text.split()) for text in headings] == RUNS_KEY_COLUMNS
        cells = page.locator("#runs-table .virtual-row").filter(has_text=SHIPPED_RUN).first.locator(".body-cell")
        shown = [" ".join(text.split()) for text in cells.filter(visible=True).all_inner_texts()]
        assert len(shown) == len(RUNS_KEY_COLUMNS) and shown[0] == SHIPPED_RUN and shown[1] == "done", shown
        for heading in RUNS_KEY_COLUMNS:
            box = table.locator("th", has_text=heading).first.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS["phone"]["width"], (heading, box)
        page.screenshot(path=str(ARTIFACTS / "runs-phone.png"))
    finally:
        context.close()


def test_phone_classify_result_is_directly_under_the_image(browser, live_app):
    context = browser.new_context(viewport=VIEWPORTS["phone"], device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(live_app["url"])
        open_tab(page, "Classify")
        page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" / "example-04.png"))
        page.locator("#prediction-0").get_by_text("CE", exact=True).wait_for()
        image = page.locator("#upload-preview").bounding_box()
        result = page.locator("#prediction-0").bounding_box()
        assert 0 <= result["y"] - (image["y"] + image["height"]) <= 160, (image, result)  # only the note between
        page.screenshot(path=str(ARTIFACTS / "classify-phone.png"), full_page=True)
    finally:
        context.close()


def test_text_uses_a_system_font_stack(screen):
    """Offline the web font never arrives, and its fallback drew "CIFᴀR" and "HEᴀD"."""
    name, page = screen
    for selector in ("h1", "[role=tab]", "#start", "#recall-chart .cc-label", "#verdict"):
        family = page.locator(selector).first.evaluate("element => getComputedStyle(element).fontFamily")
        assert family.startswith("system-ui"), (selector, family)
