"""Issue 20 in a real browser (Debian's Chromium): the preset note and the estimate beside Start state the same
computed figure; editing an advanced setting turns the preset radio to "custom" and drops the preset's note;
picking a preset again brings its note and estimate back together. Every wait is for a condition."""
import re


from conftest import ARTIFACTS
from test_browser import browser, console, open_app, page  # noqa: F401 - the shared browser fixtures

ESTIMATE = re.compile(r"Estimated time: (about .+? on this machine[^.(:]*)")


def estimate_figure(page):
    """The figure the estimate line states ("about 1 min 40 s on this machine ...")."""
    match = ESTIMATE.search(page.locator("#estimate").inner_text())
    assert match, page.locator("#estimate").inner_text()
    return match.group(1).strip()


def checked_preset(page):
    return page.locator("#preset input:checked").get_attribute("value")


def test_the_preset_note_and_the_estimate_agree_and_an_edit_makes_it_custom(page, live_app):
    open_app(page, live_app["url"])
    page.wait_for_function("() => /Estimated time/.test(document.querySelector('#estimate')?.innerText || '')")
    note = page.locator("#preset-note")
    assert estimate_figure(page)[1:] in note.inner_text()  # "About 1 min ..." in the note, "about 1 min ..." beside Start
    assert "84" not in note.inner_text() and "earlier" not in note.inner_text()
    assert checked_preset(page) == "quick"

    page.locator("#preset").get_by_text("standard", exact=True).click()
    page.get_by_text("Advanced settings").click()
    page.wait_for_function("() => document.querySelector('#preset input[value=\"standard\"]')?.checked")
    note.get_by_text("The real long-tail protocol").wait_for()
    assert estimate_figure(page)[1:] in note.inner_text()  # the new preset's note and estimate, together

    epochs = page.get_by_label("Epochs")
    epochs.fill("2")
    epochs.press("Tab")
    page.wait_for_function("() => document.querySelector('#preset input[value=\"custom:standard\"]')?.checked")
    note.get_by_text("Custom settings").wait_for()
    assert "long-tail protocol" not in note.inner_text()  # the standard preset's own note is gone
    assert page.locator("#preset label", has_text="custom").is_visible()
    # The custom form still starts from the standard preset: its link says so (and the server took the value).
    page.locator("#link-settings").click()
    page.wait_for_function("() => /preset=standard/.test((document.querySelector('#share-link textarea, #share-link input') || {}).value || '')")
    link = page.locator("#share-link textarea, #share-link input").first.input_value()
    assert "epochs=2" in link, link
    page.screenshot(path=str(ARTIFACTS / "preset-custom.png"))
