"""The Real text page in headless Chromium: the passage is drawn with a coloured span per
character, and moving the prediction's slider redraws the per-character gradients and goes into
the URL; nothing is wider than a phone."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
LENGTH = 120


def gradient_views(page) -> list[str]:
    return page.locator(".lv-text").evaluate_all("els => els.slice(1).map(e => e.innerHTML)")


def counts(page) -> list[dict]:
    """Per gradient view: characters outlined (the prediction's position) and left uncoloured."""
    return page.locator(".lv-text").evaluate_all(
        "els => els.slice(1).map(e => { const s = [...e.querySelectorAll('pre > span')];"
        " return {outlined: s.filter(x => x.style.outlineStyle === 'solid').length,"
        " plain: s.filter(x => !x.style.backgroundColor).length}; })"
    )


def test_text_page_colours_and_redraws(app_url, page, wait_idle, screenshot_dir):
    page.goto(f"{app_url}/Text?text_len={LENGTH}")
    wait_idle(page)
    page.wait_for_function("document.querySelectorAll('.lv-text').length === 3")
    coloured = page.locator(".lv-text").first.locator("pre > span[style^='background']")
    assert coloured.count() == LENGTH
    expect(page.get_by_role("link", name="Real text")).to_have_count(1)  # the sidebar links it
    before = gradient_views(page)
    assert counts(page) == [{"outlined": 1, "plain": 0}] * 2  # t' is the last character

    thumb = page.locator("[data-testid=stSlider]").filter(has_text="Prediction after").get_by_role("slider")
    thumb.focus()
    thumb.press("Home")  # t' = 1: only the first two characters can matter
    page.wait_for_function(
        "before => { const v = [...document.querySelectorAll('.lv-text')].slice(1).map(e => e.innerHTML);"
        " return v.length === 2 && v[0] !== before[0] && v[1] !== before[1]; }",
        arg=before,
    )
    wait_idle(page)
    assert counts(page) == [{"outlined": 1, "plain": LENGTH - 2}] * 2  # grey after t' = 1
    assert "text_pos=1" in page.url
    page.screenshot(path=screenshot_dir / "text_page.png")


def test_text_page_fits_a_phone(app_url, browser, screenshot_dir):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    phone.set_default_timeout(60_000)
    try:
        phone.goto(f"{app_url}/Text?text_len={LENGTH}")
        phone.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]")
        phone.wait_for_function("document.querySelectorAll('.lv-text').length === 3")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        widest = phone.locator(".lv-text pre").evaluate_all("els => Math.max(...els.map(e => e.scrollWidth))")
        assert widest <= 390
    finally:
        context.close()
