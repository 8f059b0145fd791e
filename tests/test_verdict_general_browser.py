"""Issue 20 in a real browser (Debian's Chromium): the verdict card on the first screen carries the general
answer (what the shipped grid for the same settings and ratio concludes, or that none covers them), computed
the way the unit tests check, and its link opens the Results tab."""
from conftest import ARTIFACTS
from test_browser import DESKTOP, browser, console, open_app, page  # noqa: F401 - the shared browser fixtures

from cce_demo.config import TrainConfig
from cce_demo.ui.compare.verdict import general_answer_html


def test_the_first_screen_gives_the_general_answer_and_links_to_results(page, live_app):
    import json
    import types

    from conftest import ROOT

    open_app(page, live_app["url"])
    general = page.locator("#verdict-general")
    general.wait_for()
    # The oracle: the same function on the shown (shipped) run's own settings, read from its run.json.
    shipped = json.loads((ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce" / "run.json").read_text())
    config = TrainConfig.from_dict(shipped["config"])
    expected = general_answer_html(types.SimpleNamespace(config=config))
    assert "general answer" in general.inner_text().lower()
    first_words = expected.split("</b>")[1].split("<")[0].strip()[:40]
    assert first_words and first_words in general.inner_text(), (first_words, general.inner_text())
    box = general.bounding_box()
    assert box["y"] + box["height"] <= DESKTOP["height"] * 1.5, box  # on the first screen, beside the run shown
    page.screenshot(path=str(ARTIFACTS / "verdict-general.png"))
    general.get_by_role("link", name="the Results tab").click()
    page.wait_for_function("() => { const t = [...document.querySelectorAll('[role=tab]')].find((b) => "
                           "b.textContent.trim() === 'Results'); return t && t.getAttribute('aria-selected') === 'true'; }")
