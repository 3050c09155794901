"""In a real browser: the Layers and Bidirectional controls, and the Connectivity view."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

CHART_COUNT = "() => document.querySelectorAll('[data-testid=stPlotlyChart] .main-svg').length"
HEATMAP_ROWS = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .map(plot => plot._fullData && plot._fullData[0])
    .filter(trace => trace && trace.type === 'heatmap')
    .map(trace => trace.z.length)"""


def test_layers_and_bidirectional_controls_redraw_with_a_heatmap_per_model(app_url, page, wait_idle):
    page.goto(f"{app_url}/?seq_len=50&hidden_size=8&flow_open=false")
    page.get_by_role("heading", name="Gradient flow: RNN vs LSTM").wait_for()
    wait_idle(page)
    page.wait_for_function(f"({CHART_COUNT})() >= 1")
    assert page.evaluate(HEATMAP_ROWS) == []  # one layer: no layer x time map
    slider = page.get_by_role("slider", name="Layers")
    slider.focus()
    page.keyboard.press("ArrowRight")  # 1 -> 2 layers
    page.wait_for_function("() => location.search.includes('num_layers=2')")
    wait_idle(page)
    page.locator("[data-testid=stSidebar]").get_by_text("Bidirectional").click()
    page.wait_for_function("() => location.search.includes('bidirectional=true')")
    wait_idle(page)
    page.wait_for_function(f"({CHART_COUNT})() >= 3")
    assert page.evaluate(HEATMAP_ROWS) == [4, 4]  # RNN and LSTM: 2 layers x 2 directions
    expect(page.get_by_text("RNN (2 layers, bidirectional)").first).to_be_visible()
    assert not page.locator("[data-testid=stException]").count()


def test_connectivity_view_draws_both_maps(app_url, page, wait_idle):
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{app_url}/Connectivity?seq_len=40&hidden_size=8")
    page.locator("[data-testid=stSidebar]").get_by_role("link", name="Connectivity").wait_for()
    wait_idle(page)
    page.wait_for_function(f"({CHART_COUNT})() >= 2", timeout=120_000)
    assert page.evaluate(HEATMAP_ROWS) == [40, 40]  # one row per output step, RNN and LSTM
    assert not page.locator("[data-testid=stException]").count()
    assert not errors, errors
