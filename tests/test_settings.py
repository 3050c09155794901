"""views: what the pages compute, without a browser."""

import inspect
import io
import math

import numpy as np
import pandas as pd
import pytest

from lstm_viz import build_model, figures, make_input, record, views
from lstm_viz.models import LSTM

SMALL = views.RunSettings(seq_len=12, hidden_size=4, batch_size=2)


def test_settings_reach_the_model_and_the_legend():
    rnn = views.RunSettings(rnn_init="orthogonal", spectral_radius=0.5, seq_len=10, hidden_size=3)
    model, x = views.model_and_input(rnn, "rnn")
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(model.weight_hh_l0.detach().numpy())), 0.5, rtol=1e-5)
    assert x.shape == (1, 10, 4)
    assert rnn.label("rnn") == "RNN (orthogonal, ρ=0.5)"
    assert views.RunSettings(lstm_init="forget_bias", forget_bias=3).label("lstm") == "LSTM (forget bias 3)"
    chrono = views.RunSettings(lstm_init="chrono", seq_len=500).model_kwargs("lstm")
    assert chrono["t_max"] == 500  # chrono's range follows the sequence


def test_tidy_csv_stacks_every_model_and_drops_per_unit_rows_when_huge(monkeypatch):
    recs = [views.run(SMALL, "rnn"), views.run(SMALL, "lstm")]
    frame = pd.read_csv(io.BytesIO(views.tidy_csv(recs)))
    assert list(frame.columns) == ["model", "arch", "sample", "t", "unit", "quantity", "value"]
    assert set(frame["model"]) == {"RNN", "LSTM"}
    assert {"log10_grad_h", "forget", "cell"} <= set(frame["quantity"])
    assert len(frame[(frame.model == "LSTM") & (frame.quantity == "forget")]) == 2 * 12 * 4
    monkeypatch.setattr(views, "MAX_EXPORT_CELLS", 10)
    small = pd.read_csv(io.BytesIO(views.tidy_csv(recs)))
    assert set(small["quantity"]) == {"log10_grad_h", "log10_grad_c", "log10_grad_x"}


def test_figure_html_is_a_standalone_page():
    html = views.figure_html(figures.gradient_flow_figure([views.run(SMALL, "rnn")])).decode()
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert "<script src=" not in html and len(html) > 1_000_000  # plotly.js inlined: opens offline


def test_unit_order_sorts_by_mean_forget_gate():
    rec = views.run(views.RunSettings(seq_len=20, hidden_size=6, lstm_init="chrono"), "lstm")
    order = views.unit_order(rec, "mean forget gate")
    means = rec.gates["forget"].mean(axis=(0, 1))[order]
    assert np.all(np.diff(means) <= 0)
    assert list(views.unit_order(rec, "unit index")) == list(range(6))
    with pytest.raises(ValueError, match="sort units by"):
        views.unit_order(rec, "colour")


def test_describe_decay():
    assert views.describe_decay(math.log10(2) / 4, 4.0) == ("4 steps", "0.0753 decades/step")
    assert views.describe_decay(-0.1, math.inf)[0].startswith("exploding")
    assert views.describe_decay(math.nan, math.nan)[0] == "n/a"


def test_lstm_parity_with_pytorch_and_the_cell_lines_are_ours():
    diff = views.lstm_parity(SMALL)
    assert diff["hidden"] < 1e-5 and diff["cell"] < 1e-5 and diff["steps"] == 12
    lines = views.lstm_cell_lines()
    source = inspect.getsource(LSTM.cell)
    assert all(line in source for line in lines.values())
    assert lines["cell"].startswith("c =") and lines["hidden"].startswith("h =")


def test_step_values_satisfy_the_cell_equation():
    rec = views.run(SMALL, "lstm")
    row = views.step_values(rec, 5)
    np.testing.assert_allclose(
        row["cell"], row["forget"] * row["cell (previous)"] + row["input"] * row["candidate"], atol=1e-6
    )
    np.testing.assert_allclose(row["hidden"], row["output"] * np.tanh(row["cell"]), atol=1e-6)


def test_explanation_quotes_this_runs_numbers():
    rnn, lstm = views.run(SMALL, "rnn"), views.run(SMALL, "lstm")
    parts = views.vanishing_explanation(rnn, lstm)
    assert [kind for kind, _ in parts].count("latex") == 2
    text = " ".join(t for _, t in parts)
    assert f"**{lstm.gates['forget'].mean():.2f}**" in text
    caption = views.flow_caption([rnn, lstm])
    assert "forgets too" in caption and "medians over 2 sequences" in caption


def test_summary_table_marks_models_without_a_cell_state():
    x = make_input("gaussian", 1, 12, 2)
    recs = [record(build_model(arch, 2, 3), x, label=arch.upper()) for arch in ("rnn", "lstm")]
    table = views.summary_table(views.flow_summary(recs))
    cell = table["log10 ‖∂L/∂c‖ at t=0"].tolist()
    assert cell[0] == "—"
    assert float(cell[1]) == pytest.approx(float(views.flow_summary(recs)["log10_grad_c_at_t0"][1]), abs=1e-4)
