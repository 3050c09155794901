"""The theory page under AppTest (it runs clean, draws theory beside measurement, says how far the
Pascanu bound sits above the data, its k slider and the sidebar change the charts, too-large runs
are refused with the reason) and in headless Chromium (the URL, the charts as drawn, a phone)."""

import json
import re
import sys
from pathlib import Path

import pagetest
import pytest
from pagetest import plotly_array
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from lstm_viz import theory, theory_text
from lstm_viz.settings import Settings, complete, run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import ui.py, as under `streamlit run app.py`
SMALL = {"seq_len": "20", "hidden_size": "4"}


def run_page(**params: str) -> AppTest:
    return pagetest.run_page("pages/4_Theory.py", {**SMALL, **params})


def traces(at: AppTest) -> list[list[dict]]:
    return [json.loads(element.proto.spec)["data"] for element in at.get("plotly_chart")]


def names(chart: list[dict]) -> list[str]:
    return [trace.get("name", "") for trace in chart]


def test_theory_page_draws_every_prediction_the_table_and_the_bound_gap():
    at = run_page()
    rnn, lstm, lyapunov, singular = traces(at)
    assert names(rnn)[0] == "RNN measured (batch median)"
    for start in ("per-step", "mean field", "top Lyapunov exponent", "Pascanu et al. bound (σ₁γ)^k"):
        assert sum(name.startswith(start) for name in names(rnn)) == 1, start
    assert any(name.startswith("cell path: mean log10") for name in names(lstm))
    assert any(name.startswith("top Lyapunov exponent") for name in names(lstm))
    assert names(lyapunov)[::2] == ["RNN", "LSTM"] and names(singular)[::2] == ["RNN", "LSTM"]

    gap = round(theory.bound_gap(run(Settings(**complete({"seq_len": 20, "hidden_size": 4})), "rnn")))
    (pascanu,) = [md.value for md in at.markdown if md.value.startswith("**Pascanu et al. (2013)**")]
    assert "It holds at every step" in pascanu and f"**{gap} decades** above" in pascanu

    (table,) = at.dataframe
    columns = list(table.value.columns)
    assert "predicted (decades/step)" in columns and "measured (decades/step)" in columns
    rows = set(zip(table.value["model"], table.value["estimate"], strict=True))
    assert {("RNN", "top Lyapunov exponent"), ("LSTM", "top Lyapunov exponent")} <= rows
    assert any("misses by" in md.value or "tracks it" in md.value for md in at.markdown)
    assert len(at.caption) >= 5  # one line under every chart and the table


def test_k_slider_and_sidebar_change_the_charts():
    at = run_page(theory_k="3")
    assert at.slider(key="theory_k").value == 3
    before = traces(at)
    assert [len(plotly_array(chart[0]["x"])) for chart in before[2:]] == [3, 3]  # Lyapunov, singular values
    at.slider(key="theory_k").set_value(2).run()
    assert not at.exception
    after = traces(at)
    assert [len(plotly_array(chart[0]["x"])) for chart in after[2:]] == [2, 2]
    assert after[:2] == before[:2]  # k changes the spectra only
    at.slider(key="seq_len").set_value(30).run()
    assert not at.exception
    assert traces(at)[0] != before[0]  # the RNN's measured curve and predictions follow the sidebar


def test_too_large_runs_are_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(theory_text, "SINGULAR_SECONDS", 1e-9)
    monkeypatch.setattr(theory_text, "LYAPUNOV_SECONDS", 1e-9)
    at = run_page(seed="11")
    infos = " ".join(info.value for info in at.info)
    assert "Lyapunov exponents: not computed" in infos and "Singular values" in infos
    assert len(at.get("plotly_chart")) == 2  # the two models' charts; no spectra
    assert not any(re.match(r"\*\*\w+, top Lyapunov", md.value) for md in at.markdown)


def test_a_memory_refusal_from_the_library_is_said(monkeypatch):
    def refuse(model, x):
        raise ValueError("this needs about 9.00 GiB in float64, over max_bytes = 2.00 GiB")

    monkeypatch.setattr(theory, "lyapunov_estimate", refuse)
    at = run_page(seed="12")
    (info,) = [info.value for info in at.info if "not run" in info.value]
    assert "9.00 GiB" in info
    assert len(at.get("plotly_chart")) == 2


@pytest.mark.parametrize("bad", ["0", "9"])
def test_k_out_of_range_in_the_link_falls_back(bad):
    at = AppTest.from_file(ROOT / "pages/4_Theory.py", default_timeout=60)
    for key, value in {**SMALL, "theory_k": bad}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert 1 <= at.slider(key="theory_k").value <= theory_text.MAX_K


def test_settings_too_large_to_record_keep_the_last_run_and_its_spectra():
    at = run_page()
    before = traces(at)
    at.slider(key="seq_len").set_value(10_000)
    at.slider(key="hidden_size").set_value(512)
    at.slider(key="batch_size").set_value(64).run()
    assert not at.exception
    assert "Cannot run these settings" in at.error[0].value
    after = traces(at)
    assert len(after) == 4  # the last recordings, greyed, with their own spectra: nothing ran at 10,000 x 512
    assert [len(plotly_array(chart[0]["x"])) for chart in after[2:]] == [
        len(plotly_array(c[0]["x"])) for c in before[2:]
    ]


# In a real browser: what AppTest cannot see (the k slider writes the URL, charts draw, phone width).
_TRACE_LENGTHS = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .map(plot => plot._fullData && plot._fullData[0] ? plot._fullData[0].x.length : null)"""
# Charts mount a moment after the script run ends: wait for all four (RNN, LSTM, two spectra), drawn.
_ALL_CHARTS_DRAWN = """() => {
    const charts = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];
    return charts.length >= 4 && charts.every(chart => chart.querySelector('.main-svg'));
}"""


@pytest.mark.browser
def test_theory_page_in_chromium(app_url, page, wait_idle, screenshot_dir):
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{app_url}/Theory?seq_len=100&hidden_size=16&theory_k=3")
    page.get_by_role("heading", name="Why it vanishes: theory vs measurement").wait_for()
    wait_idle(page)
    expect(page.locator("[data-testid=stSidebar]").get_by_role("link", name="Theory")).to_have_count(1)
    height = page.evaluate("() => document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(height + 150, 8000)})
    page.wait_for_function(_ALL_CHARTS_DRAWN)  # charts below the fold draw only once in view
    assert page.evaluate(_TRACE_LENGTHS) == [100, 100, 3, 3]  # RNN, LSTM, Lyapunov, singular values

    slider = page.get_by_role("slider", name="k: how many of the largest")
    assert slider.input_value() == "3"
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"JSON.stringify(({_TRACE_LENGTHS})()) === '[100,100,2,2]'")
    wait_idle(page)
    assert "theory_k=2" in page.url and "seq_len=100" in page.url  # the view is in the link

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    page.wait_for_timeout(800)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    assert not page.locator("[data-testid=stException]").count()
    assert not errors, errors
    page.screenshot(path=screenshot_dir / "theory_phone.png")
