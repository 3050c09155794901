"""The Real text page under AppTest: the passage is drawn coloured, a unit-finder button recolours
it, moving the prediction's position redraws the per-character gradients, GRU offers no cell.
tests/test_browser_text.py drives it in headless Chromium."""

import json
import re
import sys
from pathlib import Path

import pagetest
from streamlit.testing.v1 import AppTest

from lstm_viz import text_view as tv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import ui.py, as under `streamlit run app.py`
COLOURED = re.compile(r'<span style="background:#[0-9a-f]{6}')


def run_page(**params: str) -> AppTest:
    return pagetest.run_page("pages/7_Text.py", {"text_len": "100", **params})


def views(at: AppTest) -> list[str]:
    """The coloured texts: the unit view, then the RNN's and the LSTM's gradient views."""
    return [h.value for h in at.html if 'class="lv-text"' in h.value]


def test_text_is_coloured_and_the_finder_recolours():
    at = run_page()
    unit_view, rnn_view, lstm_view = views(at)
    assert len(COLOURED.findall(unit_view)) == 100  # every character of the passage
    first = at.dataframe[0].value.iloc[0]  # the page opens on the finder's first unit
    assert f"LSTM unit {first['unit']}, {first['quantity']}" in unit_view
    finder = [b for b in at.button if b.key.startswith("text_find_")]
    found = [re.search(r": (\w+) (\d+) \(r =", b.label).groups() for b in finder]
    k = next(k for k, (quantity, unit) in enumerate(found) if int(unit) != first["unit"])
    quantity, unit = found[k]
    finder[k].click().run()
    assert not at.exception
    assert (at.session_state["text_quantity"], at.session_state["text_unit"]) == (quantity, int(unit))
    assert views(at)[0] != unit_view
    assert f"unit {unit}," in views(at)[0]
    assert (rnn_view, lstm_view) == tuple(views(at)[1:])  # the gradient view stays


def connectivity_ticks(at: AppTest) -> list[list[str]]:
    """The input characters on each connectivity heatmap's x axis."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return [spec["layout"]["xaxis"]["ticktext"] for spec in specs]


def test_position_change_redraws_the_gradient():
    at = run_page()
    passage = tv.passage(tv.DEFAULT_START, 100)
    assert connectivity_ticks(at) == [[tv.tick_label(c) for c in passage[100 - tv.WINDOW :]]] * 2
    before = views(at)[1:]
    assert all("outline" in html for html in before)
    assert all(html.count('style="color:#999"') == 0 for html in before)  # t' is the last character
    at.slider(key="text_pos").set_value(40).run()
    assert not at.exception
    after = views(at)[1:]
    for html_before, html_after in zip(before, after, strict=True):
        assert html_after != html_before
        assert html_after.count('style="color:#999"') == 59  # characters after t' = 40 are grey
    assert connectivity_ticks(at) == [[tv.tick_label(c) for c in passage[1:41]]] * 2  # t' = 40 ends it
    assert "falls below 10⁻³ of its peak" in at.caption[-3].value  # the RNN forgets within 100


def test_gru_has_no_cell():
    at = run_page(text_arch="gru")
    assert "cell" not in at.selectbox(key="text_quantity").options
    assert "GRU unit " in views(at)[0]
    at.selectbox(key="text_quantity").set_value("hidden").run()
    at.number_input(key="text_unit").set_value(5).run()
    assert "GRU unit 5, hidden state h" in views(at)[0]
