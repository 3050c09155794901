"""lstm_viz.text_view: the coloured-text HTML (escaped, one span per character, colours on the
scale, a legend), the unit values and scales, and the per-character gradient helpers checked
against torch.autograd on the shipped char models."""

import re

import numpy as np
import pytest
import torch

from lstm_viz import text_view as tv
from lstm_viz.corpus import UnitMatch
from lstm_viz.record import record

SPAN = re.compile(r'<span style="([^"]*)" title="[^"]*">(.*?)</span>', re.S)


def spans(html: str) -> list[tuple[str, str]]:
    body = html.split("<pre", 1)[1]
    return SPAN.findall(body)


def test_text_html_escapes_and_colours_every_character():
    text = "<b>&\"x'\n"
    html = tv.text_html(text, np.linspace(-1, 1, len(text)), vmin=-1, vmax=1, label="cell <3>")
    found = spans(html)
    assert len(found) == len(text)
    assert [c for _, c in found] == ["&lt;", "b", "&gt;", "&amp;", "&quot;", "x", "&#x27;", "↵\n"]
    assert "<b>" not in html and "cell &lt;3&gt;" in html
    assert found[0][0].startswith("background:#2166ac")  # the low end is blue
    assert found[-1][0].startswith("background:#b2182b")  # the high end is red
    assert "linear-gradient" in html  # the legend's colour bar


def test_text_html_nan_is_uncoloured_and_mark_is_outlined():
    html = tv.text_html("abc", [0.0, 1.0, float("nan")], vmin=0, vmax=1, scale="influence", mark=1)
    (s0, _), (s1, _), (s2, _) = spans(html)
    assert s0.startswith("background:#ffffff") and "outline" not in s0
    assert s1.startswith("background:#a63603") and "color:#fff" in s1 and "outline" in s1
    assert s2 == "color:#999"


def test_text_html_refuses_wrong_lengths_and_scales():
    with pytest.raises(ValueError, match=r"values must be \(3,\)"):
        tv.text_html("abc", [1.0, 2.0], vmin=0, vmax=1)
    with pytest.raises(ValueError, match="scale must be one of"):
        tv.colors(np.zeros(2), 0, 1, "rainbow")
    with pytest.raises(ValueError, match="vmax must be above vmin"):
        tv.colors(np.zeros(2), 1, 1)


def test_colors_interpolate_and_clip():
    assert tv.colors(np.array([-5.0, 0.0, 5.0]), -1, 1) == ["#2166ac", "#f7f7f7", "#b2182b"]


def test_unit_scale_gates_fixed_and_states_symmetric():
    assert tv.unit_scale("forget", np.array([0.2, 0.3])) == (0.0, 1.0, "sequential")
    assert tv.unit_scale("cell", np.array([-0.5, 2.0])) == (-2.0, 2.0, "diverging")
    assert tv.unit_scale("hidden", np.zeros(3)) == (-1.0, 1.0, "diverging")


def test_unit_table_one_row_per_match():
    table = tv.unit_table({"in_string": [UnitMatch("in_string", "cell", 3, -0.71234)], "in_comment": []})
    assert table.to_dict("records") == [
        {"feature": "inside a string literal", "quantity": "cell state c", "unit": 3, "r": -0.712}
    ]
    assert tv.quantity_label("forget") == "forget gate"


def test_influence_values_and_fall_distance():
    g = np.array([-9.0, -6.0, -4.5, -2.0, -1.0, 0.0, 5.0])
    shade = tv.influence_values(g, 5)
    np.testing.assert_allclose(shade[:6], g[:6])
    assert np.isnan(shade[6])
    assert tv.influence_values(g[:6], 5, length=9).shape == (9,)
    assert tv.fall_distance(g, 5) == 3  # g[2] = -4.5 is the first below -3, 3 characters back
    assert tv.fall_distance(g, 5, decades=10) is None


def test_passage_range_is_checked():
    assert len(tv.passage(0, 50)) == 50
    with pytest.raises(ValueError, match="length must be between 1 and 500"):
        tv.passage(0, 501)
    with pytest.raises(ValueError, match="start must be between"):
        tv.passage(len(tv.validation_text()) - 10, 50)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_influence_recording_matches_autograd(arch):
    """log10 ||d loss / d x_t|| of the prediction after position, brute force with torch.autograd."""
    start, length, position = tv.DEFAULT_START, 40, 30
    rec = tv.influence_recording(arch, start, length, position)
    model = tv.shipped_charlm(arch)
    text = tv.validation_text()[start : start + length + 1]
    ids = torch.tensor([[model.vocab.chars.index(c) for c in text]])
    x = model.one_hot(ids[:, : position + 1]).requires_grad_(True)
    logits, _ = model(x)
    loss = torch.nn.functional.cross_entropy(logits[:, -1], ids[:, position + 1], reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    expected = torch.log10(grad[0].double().norm(dim=-1)).numpy()
    assert rec.log10_grad_x.shape == (1, position + 1)
    np.testing.assert_allclose(rec.log10_grad_x[0], expected, atol=1e-3)


def test_passage_recording_unit_values():
    rec = tv.passage_recording("lstm", tv.DEFAULT_START, 60)
    assert list(tv.quantities(rec)) == ["cell", "hidden", "input", "forget", "candidate", "output"]
    direct = record(tv.shipped_charlm("lstm").recurrent, tv.shipped_charlm("lstm").one_hot(
        torch.from_numpy(tv.VOCAB.encode(tv.passage(tv.DEFAULT_START, 60))).unsqueeze(0)))  # fmt: skip
    np.testing.assert_allclose(tv.unit_values(rec, "cell", 7), direct.cell[0, :, 7])
    with pytest.raises(ValueError, match="unit must be between 0 and 127"):
        tv.unit_values(rec, "cell", 128)
    assert "cell" not in tv.quantities(tv.passage_recording("gru", tv.DEFAULT_START, 60))


def test_connectivity_text_figure_puts_characters_on_the_axes():
    text = "ab c\nde"
    with np.errstate(divide="ignore"):
        values = np.log10(np.tril(np.arange(1.0, 50.0).reshape(7, 7)))  # -inf above the diagonal
    fig = tv.connectivity_text_figure(values, text, position=5, name="RNN", window=4)
    assert list(fig.layout.xaxis.ticktext) == ["␣", "c", "↵", "d"]  # characters 2 to 5
    assert list(fig.layout.yaxis.ticktext) == ["␣", "c", "↵", "d"]
    shown = values[2:6, 2:6]
    np.testing.assert_array_equal(fig.data[0].z, np.where(np.isfinite(shown), shown, np.nan))  # future blank
    assert fig.data[0].customdata[3][1] == "input 'c' (t = 3)<br>output after 'd' (t = 5)"
    assert fig.data[0].zmax - fig.data[0].zmin == tv.CONNECTIVITY_DECADES
    with pytest.raises(ValueError, match=r"values must be \(7, 7\)"):
        tv.connectivity_text_figure(values[:3, :3], text, 2, "RNN")


def test_passage_connectivity_rows_are_the_per_character_gradients():
    """Row t_out of connectivity() is record()'s log10 ||d(u . h_t_out)/dx_t|| on the prefix."""
    values = tv.passage_connectivity("lstm", tv.DEFAULT_START, 30)
    model = tv.shipped_charlm("lstm")
    x = model.one_hot(torch.from_numpy(tv.VOCAB.encode(tv.passage(tv.DEFAULT_START, 30))).unsqueeze(0))
    np.testing.assert_allclose(values[19, :20], record(model.recurrent, x[:, :20]).log10_grad_x[0], atol=1e-6)
    assert np.isneginf(values[19, 20:]).all()
