"""In a real browser: the Lessons flow, the phone layout, and that no request leaves the machine."""

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_lesson_link_sets_the_controls_and_the_next_step_follows(app_url, page, wait_idle):
    page.goto(f"{app_url}/Lessons?lesson=5")
    page.get_by_role("heading", name="5. An exploding relu RNN").wait_for()
    wait_idle(page)
    page.get_by_role("link", name="Open this view").click()
    page.get_by_role("heading", name="Gradient flow: RNN vs LSTM").wait_for()
    wait_idle(page)
    query = parse_qs(urlparse(page.url).query)
    assert query["rnn_init"] == ["identity"] and query["spectral_radius"] == ["1.5"]
    assert page.get_by_role("slider", name="Spectral radius ρ of W_hh").input_value() == "1.5"
    expect(page.get_by_text("RNN (identity, ρ=1.5, relu)").first).to_be_visible()
    expect(page.get_by_text("explodes").first).to_be_visible()  # the metric card, not "falls"
    page.locator("[data-testid=stSidebar]").get_by_role("link", name="Lessons").click()
    page.get_by_role("heading", name="Lessons: why recurrent networks forget").wait_for()
    wait_idle(page)
    page.get_by_role("heading", name="5. An exploding relu RNN").wait_for()  # the step is kept
    page.get_by_role("button", name="Next step").click()
    page.get_by_role("heading", name="6. The LSTM learns the adding task; the RNN cannot").wait_for()
    wait_idle(page)
    assert "lesson=6" in page.url


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def test_phone_layout_stacks_scrolls_and_keeps_titles_clear(app_url, phone, wait_idle):
    phone.goto(f"{app_url}/Gates_and_cell_state?seq_len=50&hidden_size=8")
    phone.get_by_role("heading", name="Saturation").wait_for()
    wait_idle(phone)
    # 6 heatmaps, the means, 3 saturation views
    phone.wait_for_function("document.querySelectorAll('[data-testid=stPlotlyChart]').length === 10")
    charts = phone.locator("[data-testid=stPlotlyChart]")
    boxes = [charts.nth(k).bounding_box() for k in range(charts.count())]
    saturation = boxes[-3:]  # input, forget, output gate: one above the other, not side by side
    assert all(b["width"] > 300 for b in saturation)
    assert saturation[0]["y"] < saturation[1]["y"] < saturation[2]["y"]

    phone.goto(f"{app_url}/LSTM_equations?seq_len=50&hidden_size=8")
    phone.get_by_role("heading", name="Why the RNN's gradient vanishes and the cell path need not").wait_for()
    wait_idle(phone)
    wide = phone.evaluate(
        """() => [...document.querySelectorAll('.katex-display')]
            .filter(e => e.scrollWidth > e.clientWidth + 1)
            .map(e => getComputedStyle(e).overflowX)"""
    )
    assert wide and all(overflow in ("auto", "scroll") for overflow in wide)  # wide equations scroll

    phone.goto(f"{app_url}/?seq_len=50&hidden_size=8")
    phone.get_by_role("heading", name="Gradient flow: RNN vs LSTM").wait_for()
    wait_idle(phone)
    phone.wait_for_selector(".js-plotly-plot .legend")
    gap = phone.evaluate(
        """() => {
            const plot = document.querySelector('.js-plotly-plot');
            const title = plot.querySelector('.g-xtitle').getBoundingClientRect();
            const legend = plot.querySelector('.legend').getBoundingClientRect();
            return legend.top - title.bottom;
        }"""
    )
    assert gap >= 0, f"the legend overlaps the x axis title by {-gap:.0f} px"


def test_no_request_leaves_the_machine(app_url, page, wait_idle):
    """Fonts, icons and scripts all come from the app's own server: the app works offline."""
    outside = []
    page.on("request", lambda r: None if urlparse(r.url).hostname in ("127.0.0.1", "localhost") or
            r.url.startswith(("data:", "blob:", "about:")) else outside.append(r.url))  # fmt: skip
    for path in ("", "Lessons", "Gates_and_cell_state", "LSTM_equations", "Training_lab"):
        page.goto(f"{app_url}/{path}?seq_len=50&hidden_size=8")
        page.wait_for_timeout(1500)
        wait_idle(page)
        page.wait_for_load_state("networkidle")
    assert not outside, outside
