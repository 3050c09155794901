"""Settings declared once (dataclass, URL, flags) and the run they describe; tables and prose of runs."""

import io
import math

import numpy as np
import pandas as pd
import pytest
import torch

from lstm_viz import SETTINGS, Settings, build_model, figures, make_input, prose, record, tables
from lstm_viz.cli import build_parser
from lstm_viz.settings import check_memory, complete, from_query, lstm_parity, model_and_input, run, to_query

SMALL = Settings(seq_len=12, hidden_size=4, batch_size=2)


def test_every_declaration_gives_a_field_a_flag_and_a_url_key():
    fields = Settings.__dataclass_fields__
    flags = {opt for action in build_parser()._actions for opt in action.option_strings}
    for s in SETTINGS:
        assert fields[s.name].default == s.default
        assert s.flag in flags and s.flag == "--" + s.name.replace("_", "-")
        if s.widget is not None:
            assert from_query({s.name: str(s.default)}) == ({s.name: s.default}, {})
        if s.type is bool:
            with pytest.raises(ValueError, match=s.name):
                s.check(1)
        elif s.choices is None:
            low, high = s.bounds
            with pytest.raises(ValueError, match=s.name):
                s.check(high + 1)
        else:
            assert s.default in s.choices


def test_old_url_keys_are_aliases_and_the_new_name_wins():
    values, problems = from_query({"rho": "0.9", "rnn_act": "relu", "batch": "2", "input": "sine"})
    assert values == {
        "spectral_radius": 0.9,
        "rnn_nonlinearity": "relu",
        "batch_size": 2,
        "input_kind": "sine",
    }
    assert not problems
    assert from_query({"rho": "0.9", "spectral_radius": "1.1"})[0] == {"spectral_radius": 1.1}


def test_url_values_out_of_the_apps_range_are_dropped_and_said():
    values, problems = from_query(
        {"seq_len": "5", "hidden_size": "abc", "lstm_init": "magic", "flow_gru": "1"}
    )
    assert values == {}
    assert set(problems) == {"seq_len", "hidden_size", "lstm_init"}
    assert "between 10 and 10000" in problems["seq_len"]  # the slider's range, not the library's
    assert "must be one of" in problems["lstm_init"]


def test_identity_init_means_relu_unless_told_and_links_round_trip():
    assert complete({"rnn_init": "identity"})["rnn_nonlinearity"] == "relu"
    assert complete({"rnn_init": "identity", "rnn_act": "tanh"})["rnn_nonlinearity"] == "tanh"
    for values in (
        {"rnn_init": "identity"},
        {"rnn_init": "identity", "rnn_nonlinearity": "tanh"},
        {"seed": 3},
    ):
        query = to_query(values)
        assert complete(from_query(query)[0]) == complete(values)
    assert to_query({}) == {}
    with pytest.raises(ValueError, match="unknown settings"):
        complete({"sequence_length": 3})


def test_settings_reach_the_model_and_the_legend():
    rnn = Settings(rnn_init="orthogonal", spectral_radius=0.5, seq_len=10, hidden_size=3)
    model, x = model_and_input(rnn, "rnn")
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(model.weight_hh_l0.detach().numpy())), 0.5, rtol=1e-5)
    assert x.shape == (1, 10, 4)
    assert rnn.label("rnn") == "RNN (orthogonal, ρ=0.5)"
    assert Settings(lstm_init="forget_bias", forget_bias=3).label("lstm") == "LSTM (forget bias 3)"
    assert Settings(lstm_init="chrono", seq_len=500).model_kwargs("lstm")["t_max"] == 500
    assert Settings(lstm_init="chrono", seq_len=500, t_max=20).model_kwargs("lstm")["t_max"] == 20


def test_memory_is_refused_before_anything_runs_with_what_fits():
    big = Settings(seq_len=10_000, hidden_size=512, batch_size=4)
    with pytest.raises(ValueError, match=r"GiB.*batch_size up to \d+"):
        check_memory(big, ["rnn", "lstm"])
    check_memory(SMALL, ["rnn", "lstm", "gru"])  # fits: no error


def test_tidy_csv_stacks_every_model_and_drops_per_unit_rows_when_huge(monkeypatch):
    recs = [run(SMALL, "rnn"), run(SMALL, "lstm")]
    frame = pd.read_csv(io.BytesIO(tables.tidy_csv(recs)))
    assert list(frame.columns) == ["model", "arch", "sample", "t", "unit", "quantity", "value"]
    assert set(frame["model"]) == {"RNN", "LSTM"}
    assert {"log10_grad_h", "forget", "cell"} <= set(frame["quantity"])
    assert len(frame[(frame.model == "LSTM") & (frame.quantity == "forget")]) == 2 * 12 * 4
    monkeypatch.setattr(tables, "MAX_EXPORT_ROWS", 10)
    assert tables.drops_per_unit(recs[0])
    small = pd.read_csv(io.BytesIO(tables.tidy_csv(recs)))
    assert set(small["quantity"]) == {"log10_grad_h", "log10_grad_c", "log10_grad_x"}


def test_figure_html_is_a_standalone_page_with_title_caption_and_settings():
    fig = figures.gradient_flow_figure([run(SMALL, "rnn")])
    page = tables.figure_html(
        fig, title="Gradient flow", caption="Lines fall <fast>", settings="seq_len=12"
    ).decode()
    assert page.startswith("<!DOCTYPE html>") and "<title>Gradient flow · lstm-viz</title>" in page
    assert "<p>Lines fall &lt;fast&gt;</p>" in page and "Settings: seq_len=12" in page  # escaped
    assert "<script src=" not in page and len(page) > 1_000_000  # plotly.js inlined: opens offline
    assert prose.settings_line(SMALL).startswith("seq_len=12, hidden_size=4, batch_size=2")


def test_unit_order_sorts_by_mean_forget_gate():
    rec = run(Settings(seq_len=20, hidden_size=6, lstm_init="chrono"), "lstm")
    order = tables.unit_order(rec, "forget")
    means = rec.gates["forget"].mean(axis=(0, 1))[order]
    assert np.all(np.diff(means) <= 0)
    assert list(tables.unit_order(rec, "mean forget gate")) == list(order)  # labels from old links
    assert list(tables.unit_order(rec, "unit")) == list(range(6))
    with pytest.raises(ValueError, match="units by one of unit, forget, input, output, cell"):
        tables.unit_order(rec, "colour")
    gru = run(Settings(seq_len=20, hidden_size=6), "gru")
    assert list(tables.unit_orders(gru)) == ["unit", "update", "reset"]
    with pytest.raises(ValueError, match="GRU"):
        tables.unit_order(gru, "forget")


def test_half_life_texts():
    assert prose.half_life_text(math.log10(2) / 4) == "4 steps"
    assert prose.rate_text(math.log10(2) / 4) == "0.0753 decades/step"
    assert prose.half_life_text(-0.1).startswith("exploding: ×2 every 3.01 steps")
    assert prose.half_life_text(0.0) == "∞ (flat)"
    assert prose.half_life_text(math.nan) == "n/a"


def test_lstm_parity_with_pytorch():
    diff = lstm_parity(SMALL)
    assert diff["hidden"] < 1e-5 and diff["cell"] < 1e-5 and diff["steps"] == 12


def test_the_cell_lines_shown_compute_pytorchs_lstm_step():
    """The four lines read from our source, run as written, give torch.nn.LSTMCell's next state."""
    lines = prose.lstm_cell_lines()
    assert lines["cell"].startswith("c =") and lines["hidden"].startswith("h =")
    model = build_model("lstm", 3, 5, seed=1)
    cell = torch.nn.LSTMCell(3, 5)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in model.state_dict().items()})
    x_t, h, c = torch.randn(2, 3), torch.randn(2, 5), torch.randn(2, 5)
    scope = {"x_t": x_t, "h": h, "c": c, "self": model}
    with torch.no_grad():
        for key in ("preactivation", "split", "cell", "hidden"):
            exec(lines[key], {}, scope)
        want_h, want_c = cell(x_t, (h, c))
    torch.testing.assert_close(scope["c"], want_c)
    torch.testing.assert_close(scope["h"], want_h)


def test_step_values_satisfy_the_cell_equation():
    rec = run(SMALL, "lstm")
    row = tables.step_values(rec, 5)
    np.testing.assert_allclose(
        row["cell"], row["forget"] * row["cell (previous)"] + row["input"] * row["candidate"], atol=1e-6
    )
    np.testing.assert_allclose(row["hidden"], row["output"] * np.tanh(row["cell"]), atol=1e-6)


def test_explanation_quotes_this_runs_numbers():
    rnn, lstm = run(SMALL, "rnn"), run(SMALL, "lstm")
    parts = prose.vanishing_explanation(rnn, lstm)
    assert [kind for kind, _ in parts].count("latex") == 2
    text = " ".join(t for _, t in parts)
    assert f"**{lstm.gates['forget'].mean():.2f}**" in text
    cell_loss = -np.log10(lstm.gates["forget"].astype(np.float64)).mean()
    assert f"**{cell_loss:.2f} decades per step**" in text  # the mean of the logs, not the log of the mean
    caption = prose.flow_caption([rnn, lstm])
    assert "forgets too" in caption and "medians over 2 sequences" in caption


def test_summary_table_marks_models_without_a_cell_state():
    x = make_input("gaussian", 1, 12, 2)
    recs = [record(build_model(arch, 2, 3), x, label=arch.upper()) for arch in ("rnn", "lstm")]
    table = tables.summary_table(tables.flow_summary(recs))
    cell = table["log10 ‖∂L/∂c‖ at t=0"].tolist()
    assert cell[0] == "—"
    assert float(cell[1]) == pytest.approx(
        float(tables.flow_summary(recs)["log10_grad_c_at_t0"][1]), abs=1e-4
    )
    text = tables.summary_text(recs).splitlines()
    assert text[0].split()[0] == "model" and text[1].startswith("RNN ") and len(text) == 3


def test_settings_is_frozen_and_replace_gives_a_new_one():
    s = Settings()
    with pytest.raises(AttributeError):
        s.seq_len = 3
    assert s.replace(seq_len=20).seq_len == 20 and s.seq_len == 300


def test_layers_and_direction_are_settings_everywhere():
    s = Settings(num_layers=2, bidirectional=True, seq_len=10, hidden_size=3)
    assert s.label("lstm") == "LSTM (2 layers, bidirectional)"
    model, _ = model_and_input(s, "gru")
    assert model.num_layers == 2 and model.num_directions == 2
    assert from_query({"num_layers": "3", "bidirectional": "true"})[0] == {
        "num_layers": 3,
        "bidirectional": True,
    }
    assert "bidirectional" in from_query({"bidirectional": "maybe"})[1]
    args = build_parser().parse_args(["--num-layers", "2", "--bidirectional"])
    assert args.num_layers == 2 and args.bidirectional is True
    assert build_parser().parse_args(["--bidirectional", "false"]).bidirectional is False
    deep = Settings(num_layers=4, bidirectional=True, seq_len=10_000, hidden_size=512, batch_size=2)
    with pytest.raises(ValueError, match="LSTM run needs"):
        check_memory(deep, ["lstm"])
    check_memory(deep.replace(num_layers=1, bidirectional=False, batch_size=1), ["lstm"])  # fits alone


@pytest.mark.parametrize("raw", ["1e400", "1e300", "-1e999"])
def test_a_refused_link_value_is_named_as_typed_not_as_float_read_it(raw):
    _, problems = from_query({"hidden_size": raw, "forget_bias": raw})
    for name in ("hidden_size", "forget_bias"):
        assert problems[name].endswith(f"got {raw}"), problems[name]
