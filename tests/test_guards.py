"""Guards against requests that would crash or swamp the app and the command line: numbers beyond
any range in a link, memory estimated before anything is built, exports streamed in chunks."""

from __future__ import annotations

import pytest
from pagetest import run_page

from lstm_viz.checks import check_float, finite_number
from lstm_viz.settings import BY_NAME, from_query, non_finite_params

HUGE = "9" * 20_000  # float() reads it as inf; int() refuses it (4,300-digit limit)
BAD = ("inf", "1e400", "-inf", HUGE)
# Every page that draws a model setting, with the integer widgets it binds to the URL.
MODEL_PAGES = {
    "app.py": [],
    "pages/1_Gates_and_cell_state.py": ["gates_sample"],
    "pages/2_LSTM_equations.py": ["eq_t"],
    "pages/3_Training_lab.py": ["train_seed", "train_lag"],
    "pages/4_Theory.py": ["theory_k"],
    "pages/5_Phase_diagram.py": ["phase_seeds"],
    "pages/7_Text.py": ["text_start", "text_unit"],
    "pages/8_Your_model.py": ["yours_seq_len", "yours_batch", "yours_seed"],
    "pages/9_Connectivity.py": [],
    "pages/10_Char_model_lab.py": ["charlab_seed"],
}


@pytest.mark.parametrize("raw", BAD)
def test_numbers_beyond_any_range_are_refused_in_one_short_line(raw):
    values, problems = from_query({"seq_len": raw, "seed": raw, "forget_bias": raw, "spectral_radius": raw})
    assert values == {}
    assert set(problems) == {"seq_len", "seed", "forget_bias", "spectral_radius"}
    for why in problems.values():
        assert len(why) < 200, why  # a 20,000-digit number is cut, not repeated
    assert "between 10 and 10000" in problems["seq_len"]
    assert non_finite_params({"gates_sample": raw, "other": "3"}) == {
        "gates_sample": f"gates_sample={raw if raw != HUGE else raw[:24] + '… (20,000 characters)'} "
        "is not a finite number"
    }


def test_float_settings_need_a_finite_number_in_range():
    for raw in ("1e300", "nan", "-1e309"):
        with pytest.raises(ValueError, match=r"forget_bias must be a number between -50 and 50"):
            BY_NAME["forget_bias"].parse(raw)
    assert BY_NAME["forget_bias"].parse("2.5") == 2.5
    with pytest.raises(ValueError, match="between 0 and 10, got 100000"):
        check_float("rho", 10**400, 0, 10)  # an int too big for a float
    assert finite_number("abc") is None and finite_number("1e400") is False and finite_number("7") is True


@pytest.mark.parametrize("page", MODEL_PAGES)
def test_a_link_with_numbers_beyond_any_range_shows_a_warning_not_a_traceback(page):
    """?seq_len=inf and the like on each page's shared settings and its own bound integer widgets:
    the page runs (run_page asserts no exception), drops them and says so."""
    own = MODEL_PAGES[page]
    params = {"seq_len": "inf", "seed": "1e400"} | {key: BAD[k % len(BAD)] for k, key in enumerate(own)}
    at = run_page(page, params)
    shown = " ".join(w.value for w in at.warning)
    for key in own:
        assert f"{key}=" in shown, (key, shown)
        assert key not in at.query_params
    if page not in (
        "pages/3_Training_lab.py",
        "pages/7_Text.py",
        "pages/8_Your_model.py",
        "pages/10_Char_model_lab.py",
    ):
        assert "seq_len=inf" in shown and "seed=1e400" in shown, shown
