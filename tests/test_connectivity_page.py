"""The connectivity heatmap (connectivity_figure, pure) and its page under AppTest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pagetest
import pytest
from pagetest import plotly_array
from streamlit.testing.v1 import AppTest

from lstm_viz import connectivity
from lstm_viz.connectivity_figures import COLOUR_DECADES, block_means, connectivity_figure
from lstm_viz.settings import Settings, complete, model_and_input

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import ui.py, as under `streamlit run app.py`
SMALL = {"seq_len": "12", "hidden_size": "4", "input_size": "2"}


def heatmap(spec: dict) -> dict:
    return spec["data"][0]


def lower_triangle(T: int, rng: np.random.Generator) -> np.ndarray:
    """(T, T) log10 values like connectivity's: finite on and below the diagonal, -inf above."""
    values = rng.normal(-3, 2, (T, T))
    values[np.triu(np.ones((T, T), dtype=bool), 1)] = -np.inf
    return values


def test_block_means_average_only_the_finite_entries_of_each_square_block():
    values = lower_triangle(10, np.random.default_rng(0))
    z, centres = block_means(values, max_points=5)  # blocks of 2 x 2
    assert z.shape == (5, 5) and np.allclose(centres, [0.5, 2.5, 4.5, 6.5, 8.5])
    assert z[1, 1] == pytest.approx(np.mean([values[2, 2], values[3, 2], values[3, 3]]))
    assert z[3, 0] == pytest.approx(values[6:8, 0:2].mean())
    assert np.isnan(z[0, 1]) and np.isnan(z[2, 4])  # the future: blank, not -inf
    same, steps = block_means(values, max_points=10)
    assert np.array_equal(np.isnan(same), np.isinf(values)) and len(steps) == 10


def test_figure_decimates_long_sequences_and_says_so():
    values = lower_triangle(1000, np.random.default_rng(1))
    spec = json.loads(connectivity_figure(values[None], "RNN").to_json())
    z = plotly_array(heatmap(spec)["z"])
    assert z.shape == (250, 250)  # blocks of 4 x 4 steps
    assert "mean of 4 x 4 steps" in spec["layout"]["title"]["text"]
    trace = heatmap(spec)
    assert trace["zmax"] - trace["zmin"] == COLOUR_DECADES
    assert trace["zmax"] >= np.nanmax(z) > trace["zmax"] - 1
    assert spec["layout"]["yaxis"]["range"][0] > spec["layout"]["yaxis"]["range"][1]  # t = 0 on top
    short = json.loads(connectivity_figure(values[:40, :40], "LSTM").to_json())
    assert (
        plotly_array(heatmap(short)["z"]).shape == (40, 40)
        and "mean of" not in short["layout"]["title"]["text"]
    )
    with pytest.raises(ValueError, match=r"\(T, T\) or \(B, T, T\)"):
        connectivity_figure(values[:3], "RNN")


def run_page(**params: str) -> AppTest:
    return pagetest.run_page("pages/9_Connectivity.py", {**SMALL, **params})


def test_page_draws_the_rnn_and_lstm_maps_of_the_sidebars_models():
    at = run_page(lstm_init="chrono")
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert len(charts) == 2
    settings = Settings(**complete({"seq_len": 12, "hidden_size": 4, "input_size": 2, "lstm_init": "chrono"}))
    for arch, spec in zip(("rnn", "lstm"), charts, strict=True):
        model, x = model_and_input(settings, arch)
        expected = connectivity(model, x)[0]
        z = plotly_array(heatmap(spec)["z"])
        assert np.allclose(z, np.where(np.isinf(expected), np.nan, expected), equal_nan=True)
        assert arch.upper() in spec["layout"]["title"]["text"]
    captions = " ".join(c.value for c in at.caption)
    assert "Rows: the output step; columns: the input step" in captions and "“now”" in captions
    again = run_page(lstm_init="chrono")  # a new session served from the cache replays cleanly
    assert len(again.get("plotly_chart")) == 2 and not again.get("progress")


def test_page_draws_deep_bidirectional_maps_and_refuses_runs_over_the_limits():
    at = run_page(num_layers="2", bidirectional="true")
    settings = Settings(**complete({"seq_len": 12, "hidden_size": 4, "input_size": 2, "num_layers": 2,
                                    "bidirectional": True}))  # fmt: skip
    model, x = model_and_input(settings, "lstm")
    z = plotly_array(heatmap(json.loads(at.get("plotly_chart")[1].proto.spec))["z"])
    assert np.isfinite(z).all() and np.allclose(z, connectivity(model, x)[0])  # both directions: no blank
    at = run_page(seq_len="2500")
    assert not at.get("plotly_chart")
    assert "at most 2,000 steps" in " ".join(info.value for info in at.info)
    at = run_page(seq_len="2000", hidden_size="512", num_layers="4", bidirectional="true")
    assert not at.get("plotly_chart")  # refused before anything runs: it would take hours
    assert "minutes on one core" in " ".join(info.value for info in at.info)
