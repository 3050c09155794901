"""Figures: the data in each trace is the data in the Recording, decimated only when too long."""

import dataclasses
import json
import math

import numpy as np
import pytest
from pagetest import plotly_array

from lstm_viz import figures
from lstm_viz.analysis import DecayFit
from lstm_viz.record import GATE_NAMES, Recording


def make_recording(arch: str = "lstm", B: int = 1, T: int = 8, H: int = 4, seed: int = 0) -> Recording:
    """A Recording built by hand: gates in (0, 1), candidate/hidden in (-1, 1), known gradients."""
    rng = np.random.default_rng(seed)
    gates = {name: rng.uniform(0.01, 0.99, (B, T, H)).astype(np.float32) for name in GATE_NAMES[arch]}
    if "candidate" in gates:
        gates["candidate"] = 2 * gates["candidate"] - 1
    slope = {"rnn": 0.5, "lstm": 0.1, "gru": 0.2}[arch]
    grad_h = -slope * (T - 1 - np.arange(T, dtype=np.float64)) + rng.normal(0, 0.1, (B, T))
    return Recording(
        arch=arch,
        log10_grad_h=grad_h,
        log10_grad_c=grad_h / 2 if arch == "lstm" else None,
        log10_grad_x=grad_h - 1,
        hidden=rng.uniform(-1, 1, (B, T, H)).astype(np.float32),
        cell=rng.normal(0, 2, (B, T, H)).astype(np.float32) if arch == "lstm" else None,
        gates=gates,
        weight_hh=rng.normal(size=(len(GATE_NAMES[arch]) or 1) * H * H).reshape(-1, H),
        label=arch.upper(),
    )


def test_decimate_block_means_and_centres():
    values, centres = figures.decimate(np.arange(10.0), 3)
    np.testing.assert_allclose(values, [1.5, 5.5, 8.5])  # blocks of 4: 0-3, 4-7, 8-9
    np.testing.assert_allclose(centres, [1.5, 5.5, 8.5])


def test_decimate_leaves_short_arrays_alone_and_works_on_any_axis():
    short = np.arange(5.0)
    same, centres = figures.decimate(short, 5)
    assert same is short and list(centres) == [0, 1, 2, 3, 4]
    grid = np.arange(24.0).reshape(6, 4)
    rows, _ = figures.decimate(grid, 2, axis=0)
    np.testing.assert_allclose(rows, [grid[:3].mean(0), grid[3:].mean(0)])
    with pytest.raises(ValueError, match="max_len"):
        figures.decimate(short, 0)


def curves(fig):
    """The gradient-norm lines of a gradient-flow figure (no bands, fits or floors)."""
    return [tr for tr in fig.data if tr.name and "‖∂L/∂" in tr.name]


def notes(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.name == "note"]


def test_gradient_flow_one_line_per_model_in_its_colour():
    recs = [make_recording("rnn"), make_recording("lstm"), make_recording("gru")]
    fig = figures.gradient_flow_figure(recs)
    lines = curves(fig)
    # RNN h, LSTM h and c, GRU h
    assert [tr.name.split(":")[0] for tr in lines] == ["RNN", "LSTM", "LSTM", "GRU"]
    for tr, rec in zip([lines[0], lines[1], lines[3]], recs, strict=True):
        assert tr.line.color == figures.ARCH_COLORS[rec.arch] and tr.line.dash == "solid"
    np.testing.assert_allclose(lines[0].y, recs[0].log10_grad_h[0])
    np.testing.assert_allclose(lines[2].y, recs[1].log10_grad_c[0])
    # the cell path: dashed, in a lighter shade of the LSTM's colour, so it shows where it lies on h
    assert lines[2].line.dash == "dash" and lines[2].line.color == figures.tint(
        figures.ARCH_COLORS["lstm"], 0.45
    )
    assert "∂L/∂h" in fig.layout.yaxis.title.text and "log" in fig.layout.yaxis.title.text
    assert not notes(fig)  # nothing decimated


def test_gradient_flow_annotations_say_where_the_loss_enters_and_where_each_line_ends():
    recs = [make_recording("rnn", T=8), make_recording("lstm", T=8)]
    fig = figures.gradient_flow_figure(recs)
    named = {a.name: a for a in fig.layout.annotations}
    assert named["loss enters"].x == 7 and named["loss enters"].y == 0
    assert "back in time" in named["back in time"].text
    for rec in recs:
        start = named[f"start value {rec.name}"]
        assert start.x == 0 and start.y == pytest.approx(rec.log10_grad_h[0, 0])
        assert f"{rec.log10_grad_h[0, 0]:.1f}".replace("-", "−") in start.text
    assert not [a for a in figures.gradient_flow_figure(recs, annotate=False).layout.annotations]


def test_a_second_model_of_one_architecture_gets_its_own_colour():
    default, chrono = make_recording("lstm"), make_recording("lstm", seed=1)
    chrono = dataclasses.replace(chrono, label="LSTM (chrono)")
    colors = figures.recording_colors([make_recording("rnn"), default, chrono])
    assert colors == {"RNN": figures.ARCH_COLORS["rnn"], "LSTM": figures.ARCH_COLORS["lstm"],
                      "LSTM (chrono)": figures.EXTRA_COLORS[0]}  # fmt: skip


def test_float_floors_are_drawn_only_when_the_data_come_near_them():
    rec = make_recording("rnn", T=8)
    assert not [tr for tr in figures.gradient_flow_figure([rec]).data if tr.legendgroup == "floors"]
    deep = dataclasses.replace(rec, log10_grad_h=rec.log10_grad_h - 40)  # down to about -41 decades
    floors = [tr for tr in figures.gradient_flow_figure([deep]).data if tr.legendgroup == "floors"]
    assert [tr.meta["floor"] for tr in floors] == ["float32"]
    assert floors[0].y[0] == pytest.approx(np.log10(np.finfo(np.float32).tiny))


def test_gradient_flow_batch_shows_median_and_interquartile_band():
    rec = make_recording("rnn", B=9, T=8)
    fig = figures.gradient_flow_figure([rec])
    low, high, median = fig.data
    np.testing.assert_allclose(median.y, np.median(rec.log10_grad_h, axis=0))
    np.testing.assert_allclose(low.y, np.percentile(rec.log10_grad_h, 25, axis=0))
    np.testing.assert_allclose(high.y, np.percentile(rec.log10_grad_h, 75, axis=0))
    assert high.fill == "tonexty" and "median" in median.hovertemplate


def test_gradient_flow_fit_line_runs_over_the_fitted_steps():
    rec = make_recording("rnn", T=8)
    fig = figures.gradient_flow_figure([rec], {"RNN": DecayFit(0.5, -3.6, 0.6, 1, 7)})
    (fit,) = [tr for tr in fig.data if tr.line.dash == "dot"]
    assert fit.visible == "legendonly"  # one click in the legend shows it; not drawn over the data
    np.testing.assert_allclose(fit.x, [1, 7])
    np.testing.assert_allclose(fit.y, [-3.6 + 0.5, -3.6 + 0.5 * 7])
    assert "0.5 decades/step" in fit.name
    # no finite fit (every gradient exactly zero): no line
    fig = figures.gradient_flow_figure([rec], {"RNN": DecayFit(math.nan, math.nan, math.nan, 0, 7)})
    assert not [tr for tr in fig.data if tr.line.dash == "dot"]


def test_gradient_flow_leaves_gaps_where_the_gradient_is_exactly_zero():
    rec = make_recording("rnn", B=2, T=8)
    rec.log10_grad_h[:, :3] = -np.inf  # dead relu units: the true gradient is 0
    fig = figures.gradient_flow_figure([rec])
    median = curves(fig)[0]
    assert np.isnan(median.y[:3]).all() and np.isfinite(median.y[3:]).all()
    assert "exactly 0" in notes(fig)[0]


def test_gradient_flow_decimates_long_sequences_and_says_so():
    rec = make_recording("lstm", T=5000, H=2)
    fig = figures.gradient_flow_figure([rec], max_points=1000)
    assert all(len(tr.y) <= 1000 for tr in fig.data)
    assert "mean of 5 steps" in notes(fig)[0]
    np.testing.assert_allclose(fig.data[0].y[0], rec.log10_grad_h[0, :5].mean())


def test_heatmap_is_units_by_time_in_the_given_order():
    rec = make_recording("lstm", T=8, H=4)
    order = [2, 0, 3, 1]
    fig = figures.gate_heatmap_figure(rec, "forget", unit_order=order, order_label="mean forget gate")
    z = np.asarray(fig.data[0].z)
    assert z.shape == (4, 8)
    np.testing.assert_allclose(z[0], rec.gates["forget"][0, :, 2])
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0.0, 1.0)
    assert fig.layout.yaxis.title.text == "rank by mean forget gate"
    np.testing.assert_array_equal(np.asarray(fig.data[0].customdata)[:, 0], order)  # hover names the unit
    cell = figures.gate_heatmap_figure(rec, "cell")
    assert cell.data[0].zmin == -cell.data[0].zmax == -np.abs(rec.cell[0]).max()


def test_heatmap_is_capped_and_says_so():
    rec = make_recording("lstm", T=3000, H=300)
    fig = figures.gate_heatmap_figure(rec, "hidden", max_cells=(1000, 128))
    z = np.asarray(fig.data[0].z)
    assert z.shape[0] <= 128 and z.shape[1] <= 1000
    assert "decimated" in fig.layout.title.text and "3000 × 300" in fig.layout.title.text


def test_heatmap_rejects_what_the_model_lacks():
    with pytest.raises(ValueError, match="has no 'cell'"):
        figures.gate_heatmap_figure(make_recording("gru"), "cell")


def test_gate_means_one_row_per_quantity_with_the_mean_over_units():
    rec = make_recording("lstm", B=2, T=8, H=4)
    fig = figures.gate_mean_figure(rec, ["forget", "cell"], units=[1, 3])
    assert [a.text for a in fig.layout.annotations] == [
        "forget gate f<sub>t</sub>",
        "cell state c<sub>t</sub>",
    ]
    means = [tr for tr in fig.data if tr.name == "mean forget"]
    np.testing.assert_allclose(means[0].y, rec.gates["forget"].mean(axis=(0, 2)), rtol=1e-6)
    unit_lines = [tr for tr in fig.data if tr.name and tr.name.startswith("unit ")]
    assert [tr.name for tr in unit_lines] == ["unit 1", "unit 3", "unit 1", "unit 3"]  # per row
    np.testing.assert_allclose(unit_lines[0].y, rec.gates["forget"][0, :, 1])
    np.testing.assert_allclose(unit_lines[3].y, rec.cell[0, :, 3])
    # each unit its own colour, the same in every row, one legend entry each
    assert unit_lines[0].line.color != unit_lines[1].line.color
    assert unit_lines[0].line.color == unit_lines[2].line.color
    assert [tr.showlegend for tr in unit_lines] == [True, True, False, False]


def test_saturation_one_point_per_unit():
    rec = make_recording("lstm", H=4)
    below, above = np.array([0.1, 0.2, 0.0, 0.5]), np.array([0.9, 0.0, 0.3, 0.5])
    fig = figures.saturation_figure(rec, {"input": (below, above), "forget": (above, below)})
    points = [tr for tr in fig.data if tr.mode == "markers"]
    assert len(points) == 2
    np.testing.assert_allclose(points[0].x, below)
    np.testing.assert_allclose(points[1].x, above)
    assert points[0].marker.color == figures.ARCH_COLORS["lstm"]


def test_figures_survive_a_json_round_trip():
    """What the browser receives is the figure: every trace's numbers come back from its JSON."""
    rec = make_recording("lstm", B=3)
    for fig in (
        figures.gradient_flow_figure([rec]),
        figures.gate_heatmap_figure(rec, "output"),
        figures.gate_mean_figure(rec),
    ):
        sent = json.loads(fig.to_json())["data"]
        assert len(sent) == len(fig.data) > 0
        for before, after in zip(fig.data, sent, strict=True):
            for axis in ("x", "y", "z"):
                if getattr(before, axis, None) is not None:
                    np.testing.assert_array_equal(
                        plotly_array(after[axis]).astype(float),
                        np.asarray(getattr(before, axis), dtype=float),
                    )


def _deep_recording():
    from lstm_viz.settings import Settings, run

    return run(Settings(seq_len=12, hidden_size=3, num_layers=2, bidirectional=True), "lstm")


def test_a_deep_model_draws_a_line_per_layer_and_direction_in_one_legend_group():
    rec = _deep_recording()
    fig = figures.gradient_flow_figure([rec])
    lines = curves(fig)
    names = [tr.name.split(":")[0] for tr in lines]
    assert names == ["layer 2 →", "layer 2 →", "layer 2 ←", "layer 1 →", "layer 1 ←"]  # h, c, h, h, h
    assert {tr.legendgroup for tr in lines} == {rec.name}
    assert lines[0].legendgrouptitle.text == rec.name
    np.testing.assert_allclose(lines[2].y, rec.layer(1, 1).log10_grad_h[0])
    np.testing.assert_allclose(lines[3].y, rec.layer(0, 0).log10_grad_h[0])
    assert lines[2].line.dash == "dot" and lines[3].line.color != lines[0].line.color  # shade per layer


def test_layer_time_heatmap_one_row_per_layer_and_direction():
    rec = _deep_recording()
    fig = figures.layer_time_figure(rec)
    (heat,) = fig.data
    assert list(heat.y) == ["layer 2 →", "layer 2 ←", "layer 1 →", "layer 1 ←"]
    np.testing.assert_allclose(heat.z[3], rec.layer(0, 1).log10_grad_h[0])
    assert rec.name in fig.layout.title.text
