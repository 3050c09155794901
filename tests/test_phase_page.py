"""The phase diagram: phase_figure on hand-made sweep rows, and the page (AppTest) on live grids."""

from __future__ import annotations

import io
import json
import math
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pagetest
import pytest
from pagetest import plotly_array
from playwright.sync_api import expect
from streamlit.testing.v1 import AppTest

from lstm_viz import sweep
from lstm_viz.settings import Settings
from lstm_viz.sweep_figures import phase_figure, phase_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import ui.py, as under `streamlit run app.py`
SMALL = {"hidden_size": "4", "input_size": "2", "phase_seq_len": "12 20", "phase_seeds": "2"}


def rows(half_lives: dict, error_at: tuple | None = None) -> list[dict]:
    """Sweep rows of an RNN over seq_len x spectral_radius; half_lives maps (T, rho) to one value per seed."""
    out = []
    for (seq_len, rho), values in half_lives.items():
        for seed, value in enumerate(values):
            settings = Settings(seq_len=seq_len, spectral_radius=rho, rnn_init="orthogonal", seed=seed)
            results = {name: 0.1 for name in sweep.RESULTS} | {"half_life": value, "error": None}
            if (seq_len, rho, seed) == error_at:
                results = sweep.failed("ValueError: over the limit") | {"half_life": 1000.0}
            out.append({"arch": "rnn", **asdict(settings), **results})
    return out


def heatmap(fig) -> dict:
    return json.loads(fig.to_json())["data"][0]


def test_phase_figure_medians_over_seeds_on_a_log_scale():
    frame = sweep.frame_of(
        rows(
            {
                (10, 0.5): [1.0, 2.0, 100.0],
                (20, 0.5): [4.0, 4.0, 4.0],
                (10, 1.5): [math.inf, math.inf, 3.0],
                (20, 1.5): [math.nan, math.nan, math.nan],
            },
            error_at=(20, 0.5, 2),  # a failed cell is left out of its median
        )
    )
    fig = phase_figure(frame, "seq_len", "spectral_radius")
    trace = heatmap(fig)
    z = plotly_array(trace["z"])  # rows: spectral radius 0.5, 1.5; columns: T = 10, 20
    assert trace["x"] == ["10", "20"] and trace["y"] == ["0.5", "1.5"]
    assert z[0, 0] == pytest.approx(math.log10(2.0)) and z[0, 1] == pytest.approx(math.log10(4.0))
    assert math.isnan(z[1, 1])  # every seed failed to fit: a blank square
    bar = trace["colorbar"]
    assert bar["ticktext"][-1] == "∞ (no decay)" and z[1, 0] == bar["tickvals"][-1] > z[0, 1]
    assert trace["text"][1][0] == "∞" and trace["text"][0][0] == "2"
    assert "(steps)" in fig.layout.xaxis.title.text and "ρ" in fig.layout.yaxis.title.text
    assert "median over 3 seeds" in fig.layout.title.text and fig.layout.title.text.startswith("RNN")

    # the page reads an uploaded file through the same reader as the command line
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    buffer.seek(0)
    again = phase_table(sweep.read(buffer), "seq_len", "spectral_radius")
    assert again.loc[0.5, 20] == 4.0


def test_phase_table_refuses_a_third_varying_setting():
    frame = sweep.frame_of(rows({(10, 0.5): [1.0], (20, 1.5): [2.0]}))
    frame.loc[0, "hidden_size"] = 8
    with pytest.raises(ValueError, match="hidden_size also varies"):
        phase_table(frame, "seq_len", "spectral_radius")
    with pytest.raises(ValueError, match="two different axes"):
        phase_table(frame, "seq_len", "seq_len")


def run_page(**params: str) -> AppTest:
    return pagetest.run_page("pages/5_Phase_diagram.py", {**SMALL, **params}, errors_allowed=True)


def chart_z(at: AppTest) -> np.ndarray:
    (chart,) = at.get("plotly_chart")
    return plotly_array(json.loads(chart.proto.spec)["data"][0]["z"])


def test_page_measures_a_small_rnn_grid_live():
    at = run_page(phase_spectral_radius="0.5 1.5")
    assert not at.error, [e.value for e in at.error]
    z = chart_z(at)
    assert z.shape == (2, 2) and np.isfinite(z).all()
    (caption,) = [c.value for c in at.caption if c.value.startswith("Brighter")]
    assert "in this process" in caption and "rnn_init = orthogonal" in caption
    # the square at T = 12, rho = 0.5 is the median over seeds 0 and 1 of the library's measurement
    base = Settings(seq_len=12, hidden_size=4, input_size=2, rnn_init="orthogonal", spectral_radius=0.5)
    half_lives = [sweep.measure("rnn", base.replace(seed=seed))["half_life"] for seed in (0, 1)]
    assert z[0, 0] == pytest.approx(math.log10(statistics.median(half_lives)))


def test_page_lstm_forget_bias_keeps_the_gradient_longer():
    at = run_page(phase_arch="lstm", phase_forget_bias="0 3")
    assert not at.error, [e.value for e in at.error]
    z = chart_z(at)  # rows: forget bias 0, 3
    assert z.shape == (2, 2) and (z[1] > z[0]).all()
    assert any("lstm_init = forget_bias" in c.value for c in at.caption)


def test_page_sends_big_grids_to_the_sweep_command():
    at = run_page(phase_seq_len=" ".join(str(t) for t in range(10, 111)))  # 101 x 6 x 2 cells
    assert not at.get("plotly_chart")
    (warning,) = at.warning
    assert "more than this page computes" in warning.value
    assert "python -m lstm_viz sweep --arch rnn --seq-len 10 11" in warning.value
    assert "--seeds 2 --rnn-init orthogonal --spectral-radius 0.5 0.8 0.9 1 1.1 1.5" in warning.value


def test_page_says_what_is_wrong_with_typed_values():
    at = run_page(phase_seq_len="12 abc")
    (error,) = at.error
    assert "Cannot build this grid" in error.value and "seq_len must be a number, got 'abc'" in error.value
    at = run_page(phase_source="Load a sweep file")
    assert not at.error and "python -m lstm_viz sweep" in at.info[0].value


Z_ROWS = """() => {
    const plot = document.querySelector('.js-plotly-plot');
    const trace = plot && plot._fullData && plot._fullData[0];
    return trace && trace.z ? trace.z.length : null;
}"""


@pytest.mark.browser
def test_browser_draws_the_heatmap_and_keeps_typed_values_in_the_url(app_url, page, wait_idle):
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    query = "hidden_size=4&input_size=2&phase_seeds=2&phase_seq_len=12+20&phase_spectral_radius=0.5+1.5"
    page.goto(f"{app_url}/Phase_diagram?{query}")
    page.get_by_role("heading", name="Phase diagram").wait_for()
    wait_idle(page)
    assert page.wait_for_function(Z_ROWS).json_value() == 2  # spectral radius 0.5 and 1.5
    expect(page.locator("[data-testid=stSidebar]").get_by_role("link", name="Phase diagram")).to_have_count(1)

    values = page.get_by_label("spectral_radius values")
    values.fill("0.5 1 1.5")
    values.press("Enter")
    page.wait_for_function(f"({Z_ROWS})() === 3")
    wait_idle(page)
    typed = parse_qs(urlparse(page.url).query)["phase_spectral_radius"]
    assert typed == ["0.5 1 1.5"]  # the link reproduces the view
    assert not page.locator("[data-testid=stException]").count()
    assert not errors, errors
