"""A real headless Chromium against `streamlit run app.py`: every page renders its charts, the
Sequence length slider redraws them, and a screenshot of each page is saved.

Fixtures (app_url, page, wait_idle, screenshot_dir) live in conftest.py. Without Chromium the
tests skip, except under CI=true, where they fail.
"""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# (URL path, screenshot name, text the page shows once drawn)
PAGES = [
    ("", "gradient_flow", "Gradient flow: RNN vs LSTM"),
    ("Gates_and_cell_state", "gates_and_cell_state", "Gates and cell state"),
    ("LSTM_equations", "lstm_equations", "The LSTM, equation by equation"),
]
QUERY = "?seq_len=100&hidden_size=16"
# Points in the first trace of the first Plotly chart, as drawn (_fullData holds the decoded
# arrays; .data may still hold plotly.py's base64 form): what the slider must change.
FIRST_TRACE_LEN = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    const trace = plot && plot._fullData && plot._fullData[0];
    return trace && trace.x ? trace.x.length : null;
}"""

ALL_CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]
    .every(chart => chart.querySelector('.main-svg'))"""


@pytest.mark.parametrize(("path", "name", "heading"), PAGES, ids=[p[1] for p in PAGES])
def test_page_renders_and_slider_redraws_the_chart(
    app_url, page, wait_idle, screenshot_dir, path, name, heading
):
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{app_url}/{path}{QUERY}")
    page.get_by_role("heading", name=heading).wait_for()
    wait_idle(page)
    before = page.wait_for_function(FIRST_TRACE_LEN).json_value()
    assert before == 100 - (path == "LSTM_equations")  # the step-factor chart has T - 1 points
    assert not page.locator("[data-testid=stException]").count()

    slider = page.get_by_role("slider", name="Sequence length")
    assert slider.input_value() == "100"
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")  # 5 steps of 10: 100 -> 150
    page.wait_for_function(f"({FIRST_TRACE_LEN})() === {before + 50}")
    wait_idle(page)
    assert slider.input_value() == "150"
    assert "seq_len=150" in page.url  # the URL follows the slider
    assert not page.locator("[data-testid=stException]").count()
    assert not errors, errors
    # Streamlit scrolls inside its own container, so full_page alone stops at the viewport:
    # grow the viewport to the content for a picture of the whole page.
    height = page.evaluate("() => document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(height + 150, 8000)})
    page.wait_for_function(ALL_CHARTS_DRAWN)  # charts below the fold draw only once in view
    page.wait_for_timeout(800)  # let Plotly finish its resize before the picture
    page.screenshot(path=screenshot_dir / f"{name}.png", full_page=True)


def test_sidebar_links_name_every_page_and_keep_the_settings(app_url, page, wait_idle):
    page.goto(f"{app_url}/{QUERY}")
    page.get_by_role("heading", name="Gradient flow: RNN vs LSTM").wait_for()
    wait_idle(page)
    sidebar = page.locator("[data-testid=stSidebar]")
    for label in ("Gradient flow", "Gates and cell state", "LSTM equations", "Training lab"):
        expect(sidebar.get_by_role("link", name=label)).to_have_count(1)
    expect(sidebar.get_by_role("link", name="app", exact=True)).to_have_count(0)  # not named after its file
    sidebar.get_by_role("link", name="Gates and cell state").click()
    page.get_by_role("heading", name="Gates and cell state").wait_for()
    wait_idle(page)
    assert page.get_by_role("slider", name="Sequence length").input_value() == "100"
    assert "seq_len=100" in page.url and "hidden_size=16" in page.url  # a link from here shares it
    assert not page.locator("[data-testid=stException]").count()
