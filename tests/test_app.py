"""AppTest of every page: runs clean, and the sliders change the data the charts draw."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pagetest
import pytest
from pagetest import plotly_array
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import ui.py, as under `streamlit run app.py`
PAGES = ["app.py", "pages/1_Gates_and_cell_state.py", "pages/2_LSTM_equations.py"]
SMALL = {"seq_len": "20", "hidden_size": "4"}


def charts(at: AppTest) -> list[list[dict]]:
    """Per chart on the page, per trace, its x / y / z arrays."""
    out = []
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        out.append([{k: plotly_array(tr[k]) for k in ("x", "y", "z") if k in tr} for tr in spec["data"]])
    return out


def same(a: list[list[dict]], b: list[list[dict]]) -> bool:
    if len(a) != len(b):
        return False
    for chart_a, chart_b in zip(a, b, strict=True):
        if len(chart_a) != len(chart_b):
            return False
        for tr_a, tr_b in zip(chart_a, chart_b, strict=True):
            if tr_a.keys() != tr_b.keys():
                return False
            for key in tr_a:
                if tr_a[key].shape != tr_b[key].shape or not np.array_equal(tr_a[key], tr_b[key]):
                    return False
    return True


def run_page(page: str, **params: str) -> AppTest:
    return pagetest.run_page(page, {**SMALL, **params})


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_and_sliders_change_the_charts(page):
    at = run_page(page)
    before = charts(at)
    assert before, "the page shows no chart"
    at.slider(key="seq_len").set_value(30).run()
    assert not at.exception
    longer = charts(at)
    assert not same(before, longer)
    at.slider(key="hidden_size").set_value(6).run()
    assert not at.exception
    assert not same(longer, charts(at))


def test_gradient_flow_chart_has_one_point_per_step_and_metrics():
    at = run_page("app.py")
    (flow,) = charts(at)
    assert len(flow[0]["x"]) == 20
    assert flow[0]["y"][-1] == pytest.approx(0, abs=1e-5)  # the gradient enters with norm 1
    assert [m.label for m in at.metric] == ["RNN", "LSTM", "LSTM (chrono)"]
    at.toggle(key="flow_gru").set_value(True).run()
    assert [m.label for m in at.metric] == ["RNN", "LSTM", "GRU", "LSTM (chrono)"]


def test_the_first_screen_shows_the_contrast_with_a_live_headline():
    """By default the untrained LSTM is shown beside the one whose cell path is open (chrono), and
    one line says, with this run's numbers, how much of the gradient each keeps."""
    at = run_page("app.py", seq_len="300")
    names = [m.label for m in at.metric]
    assert names == ["RNN", "LSTM", "LSTM (chrono)"]
    (headline,) = [m.value for m in at.markdown if m.value.startswith("##### After 299 steps back")]
    exponents = [float(x.replace("−", "-")) for x in re.findall(r"10<sup>([−\d.]+)</sup>", headline)]
    assert len(exponents) == 3
    assert exponents[0] < -50 and exponents[1] < -40 and exponents[2] > -10  # RNN, LSTM lose; chrono keeps
    (spec,) = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    (chrono_h,) = [tr for tr in spec["data"] if tr.get("name", "").startswith("LSTM (chrono): ‖∂L/∂h")]
    assert plotly_array(chrono_h["y"])[0] == pytest.approx(
        exponents[2], abs=0.06
    )  # the headline is the chart's
    at.toggle(key="flow_open").set_value(False).run()
    assert [m.label for m in at.metric] == ["RNN", "LSTM"]
    # with chrono chosen in the sidebar there is nothing to add
    at = run_page("app.py", lstm_init="chrono")
    assert [m.label for m in at.metric] == ["RNN", "LSTM (chrono)"] and at.toggle(key="flow_open").disabled


def test_batch_mode_draws_a_band():
    (flow,) = charts(run_page("app.py", batch="5"))
    (single,) = charts(run_page("app.py"))
    assert len(flow) > len(single)  # two band traces per line


@pytest.mark.parametrize(
    "names",
    [
        {"spectral_radius": "rnn_spectral", "rnn_nonlinearity": "act", "batch_size": "b", "input_kind": "in"},
        {
            "rho": "rnn_spectral",
            "rnn_act": "act",
            "batch": "b",
            "input": "in",
        },  # links made before the rename
    ],
    ids=["names", "old-aliases"],
)
def test_url_sets_every_model_control(names):
    value = {"rnn_spectral": "0.9", "act": "relu", "b": "2", "in": "sine"}
    params = {key: value[v] for key, v in names.items()}
    at = run_page(
        "app.py", seed="3", lstm_init="forget_bias", forget_bias="4.0", rnn_init="orthogonal", **params
    )
    assert at.number_input(key="seed").value == 3
    assert at.selectbox(key="input_kind").value == "sine"
    assert at.selectbox(key="lstm_init").value == "forget_bias"
    assert at.slider(key="forget_bias").value == 4.0
    assert at.selectbox(key="rnn_init").value == "orthogonal"
    assert at.slider(key="spectral_radius").value == 0.9
    assert at.radio(key="rnn_nonlinearity").value == "relu"
    assert at.slider(key="batch_size").value == 2
    assert [m.label for m in at.metric] == [
        "RNN (orthogonal, ρ=0.9, relu)",
        "LSTM (forget bias 4)",
        "LSTM (chrono)",
    ]
    # the URL now speaks the one name of each setting
    assert at.query_params["spectral_radius"] == "0.9"
    assert "rho" not in at.query_params and "batch" not in at.query_params


def test_a_link_with_a_bad_value_says_what_was_used_instead():
    at = run_page("app.py", hidden_size="9999", lstm_init="magic")
    (warning,) = at.warning
    assert "hidden_size=9999" in warning.value and "using 64" in warning.value
    assert "lstm_init=magic" in warning.value and "using default" in warning.value
    assert at.slider(key="hidden_size").value == 64


def test_a_link_with_identity_init_gives_the_relu_network():
    at = run_page("app.py", rnn_init="identity", spectral_radius="0.5")
    assert at.radio(key="rnn_nonlinearity").value == "relu"
    assert at.metric[0].label == "RNN (identity, ρ=0.5, relu)"
    at = run_page("app.py", rnn_init="identity", rnn_nonlinearity="tanh")
    assert at.metric[0].label == "RNN (identity, ρ=1)"


def test_one_click_chrono_init():
    at = run_page("app.py")
    (button,) = [b for b in at.button if "chrono" in b.label]
    button.click().run()
    assert at.selectbox(key="lstm_init").value == "chrono"
    assert at.query_params["lstm_init"] == "chrono"  # and the URL says so
    assert at.metric[1].label == "LSTM (chrono)"


def test_memory_limit_is_an_error_message_not_a_traceback():
    at = AppTest.from_file(ROOT / "app.py", default_timeout=60)
    at.query_params.update(seq_len="10000", hidden_size="512", batch="64")
    at.run()
    assert not at.exception
    assert "GiB" in at.error[0].value and "shorten" in at.error[0].value
    assert "seq_len up to" in at.error[0].value and "max_bytes" not in at.error[0].value
    assert not at.get("plotly_chart")


def test_settings_that_do_not_fit_keep_the_last_chart_greyed_and_say_what_fits():
    at = run_page("app.py")
    before = charts(at)
    at.slider(key="seq_len").set_value(10_000)
    at.slider(key="hidden_size").set_value(512)
    at.slider(key="batch_size").set_value(64)
    at.run()
    assert not at.exception
    (error,) = at.error
    assert "seq_len up to" in error.value and "batch_size up to" in error.value
    (spec,) = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    assert all(tr.get("opacity") == 0.25 for tr in spec["data"])  # greyed out
    assert "last run" in spec["layout"]["title"]["text"]
    assert len(charts(at)[0][0]["x"]) == len(before[0][0]["x"])  # the chart of the last run that fitted
    at.slider(key="batch_size").set_value(1)
    at.slider(key="hidden_size").set_value(4)
    at.slider(key="seq_len").set_value(20)
    at.run()
    assert not at.error
    (spec,) = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    assert not any(tr.get("opacity") == 0.25 for tr in spec["data"])


def test_an_exploding_network_is_recorded_in_float64_and_the_page_says_so():
    at = run_page("app.py", seq_len="300", rnn_init="identity", spectral_radius="1.5", flow_open="false")
    assert at.metric[0].label == "RNN (identity, ρ=1.5, relu)" and at.metric[0].value == "explodes"
    assert any("float64" in info.value for info in at.info)
    caption = " ".join(c.value for c in at.caption)
    assert "explodes" in caption and "falls" not in caption


def test_a_csv_without_per_unit_rows_says_so(monkeypatch):
    import lstm_viz.tables

    at = run_page("app.py")
    assert not [c for c in at.caption if "per-step gradient norms only" in c.value]
    monkeypatch.setattr(lstm_viz.tables, "MAX_EXPORT_ROWS", 10)
    at.run()
    (note,) = [c.value for c in at.caption if "per-step gradient norms only" in c.value]
    assert "RNN, LSTM, LSTM (chrono)" in note and "python -m lstm_viz" in note


def test_bad_input_setting_is_an_error_message():
    at = AppTest.from_file(ROOT / "app.py", default_timeout=60)
    at.query_params.update(SMALL, input="adding", input_size="1")
    at.run()
    assert not at.exception
    assert "input_size >= 2" in at.error[0].value


def test_gates_page_sorts_units_and_traces_picked_ones():
    at = run_page("pages/1_Gates_and_cell_state.py")
    heatmaps = [c for c in charts(at) if "z" in c[0]]
    assert len(heatmaps) == 6  # input, forget, candidate, output, cell, hidden
    assert heatmaps[0][0]["z"].shape == (4, 20)
    at.selectbox(key="gates_sort").set_value("forget").run()
    assert at.query_params["gates_sort"] == "forget"  # links carry ids
    specs = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    (forget,) = [s for s in specs if "forget gate" in s["layout"].get("title", {}).get("text", "")]
    forget_sorted = plotly_array(forget["data"][0]["z"])
    assert forget["layout"]["yaxis"]["title"]["text"] == "rank by mean forget gate"
    means = forget_sorted.mean(axis=1)
    assert np.all(np.diff(means) <= 1e-6)  # highest mean forget gate on top
    lines_before = len(charts(at)[6])
    at.multiselect(key="gates_units").set_value([0, 2]).run()
    assert len(charts(at)[6]) == lines_before + 2 * 6  # two dotted lines in each of 6 rows


@pytest.mark.parametrize("link", ["gru", "GRU"])  # ids; labels from links made before
def test_gates_page_gru(link):
    at = run_page("pages/1_Gates_and_cell_state.py", gates_arch=link, gates_sort="mean update gate")
    heatmaps = [c for c in charts(at) if "z" in c[0]]
    assert len(heatmaps) == 4  # reset, update, candidate, hidden
    sort = at.selectbox(key="gates_sort")
    assert sort.options == ["unit index", "mean update gate", "mean reset gate"]  # the GRU's own gates
    assert sort.value == "update" and "GRU" in sort.label
    assert len(at.get("plotly_chart")) == 4 + 1 + 2  # heatmaps, means, saturation of reset and update


def test_untrained_gates_say_that_uniform_one_half_is_the_finding():
    at = run_page("pages/1_Gates_and_cell_state.py", hidden_size="64", seq_len="100")  # the defaults' H
    captions = " ".join(c.value for c in at.caption)
    assert "that is the finding" in captions and "Every point sits at (0, 0)" in captions
    at = run_page("pages/1_Gates_and_cell_state.py", hidden_size="64", lstm_init="chrono", seq_len="300")
    assert "that is the finding" not in " ".join(c.value for c in at.caption)


def test_equations_page_checks_our_cell_against_pytorch():
    at = run_page("pages/2_LSTM_equations.py")
    assert "matches torch.nn.LSTM" in at.success[0].value
    assert float(at.metric[0].value) < 1e-5
    assert len(at.latex) == 7 + 2  # pre-activations, 6 equations; 2 in the explanation
    assert any("c = f.sigmoid() * c" in code.value for code in at.code)


def test_shortening_the_sequence_keeps_the_step_slider_in_range():
    at = run_page("pages/2_LSTM_equations.py", seq_len="50", eq_t="40")
    assert at.slider(key="eq_t").value == 40
    at.slider(key="seq_len").set_value(20).run()
    assert not at.exception
    assert at.slider(key="eq_t").value == 19


@pytest.fixture(scope="module")
def trained_models():
    """Checkpoints of a two-step Training lab run, as the Training lab leaves them in session state."""
    from lstm_viz.training import TrainConfig, Trainer

    trainer = Trainer(
        TrainConfig(task="adding", lag=10, hidden_size=4, archs=("rnn", "lstm"), steps=2, batch_size=4)
    )
    trainer.advance(2)
    return {arch: trainer.checkpoint(arch) for arch in ("rnn", "lstm")}


def test_models_trained_in_the_training_lab_can_be_inspected(trained_models):
    at = AppTest.from_file(ROOT / "app.py", default_timeout=60)
    at.query_params.update(SMALL)
    at.session_state["trained_models"] = trained_models
    at.run()
    assert [m.label for m in at.metric] == ["RNN", "LSTM", "LSTM (chrono)"]
    at.toggle(key="flow_trained").set_value(True).run()
    assert not at.exception
    assert all("trained 2 steps" in m.label for m in at.metric)
    (flow,) = charts(at)
    assert len(flow[0]["x"]) == 10  # the task's lag, not the sidebar's sequence length

    at = AppTest.from_file(ROOT / "pages/1_Gates_and_cell_state.py", default_timeout=60)
    at.query_params.update(SMALL)
    at.session_state["trained_models"] = trained_models
    at.run()
    at.toggle(key="gates_trained").set_value(True).run()
    assert not at.exception
    heatmaps = [c for c in charts(at) if "z" in c[0]]
    assert heatmaps[0][0]["z"].shape == (4, 10)
    at.radio(key="gates_arch").set_value("gru").run()
    assert "trained no GRU" in at.warning[0].value


def test_no_training_no_toggle():
    at = run_page("app.py")
    assert not [t for t in at.toggle if t.key == "flow_trained"]


@pytest.mark.parametrize(("ci", "outcome"), [("true", "4 errors"), ("", "4 skipped")])
def test_browser_tests_fail_in_ci_and_skip_elsewhere_without_chromium(ci, outcome):
    env = {**os.environ, "CI": ci, "CHROMIUM_PATH": "/nonexistent/chromium"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests/test_browser.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert outcome in run.stdout, run.stdout[-2000:]
    assert (run.returncode != 0) == (ci == "true")


def test_progress_follows_the_engine_not_whole_models(monkeypatch):
    """Each run gets the engine's progress callback; the bar's fraction moves within a model."""
    import ui

    calls = []
    real_run = ui.run

    def spy(settings, arch, progress=None, **kwargs):
        def report(fraction):
            calls.append((settings.label(arch), fraction))
            progress(fraction)

        return real_run(settings, arch, progress=report, **kwargs)

    monkeypatch.setattr(ui, "run", spy)
    monkeypatch.setattr(ui, "PROGRESS_CELLS", 0)  # show the bar even for this small run
    run_page("app.py", seed="12345")  # a seed no other test used: nothing comes from the store
    models = list(dict.fromkeys(name for name, _ in calls))
    assert models == ["RNN", "LSTM", "LSTM (chrono)"]
    for model in models:
        fractions = [f for name, f in calls if name == model]
        assert len(fractions) >= 2 and fractions == sorted(fractions) and fractions[-1] == 1.0
        assert 0 < fractions[0] < 1  # part-way through a model, not only at its end


def test_deep_bidirectional_models_get_a_line_per_layer_a_heatmap_and_a_layer_picker():
    at = run_page("app.py", num_layers="2", bidirectional="true")
    assert at.slider(key="num_layers").value == 2 and at.toggle(key="bidirectional").value
    assert [m.label for m in at.metric][0] == "RNN (2 layers, bidirectional)"
    heatmaps = [c for c in charts(at) if "z" in c[0]]
    assert len(heatmaps) == 3 and heatmaps[0][0]["z"].shape == (4, 20)  # 2 layers x 2 directions
    at = run_page("pages/1_Gates_and_cell_state.py", num_layers="2", bidirectional="true", gates_layer="1b")
    assert at.selectbox(key="gates_layer").value == "1b"
    assert "layer 1 ←" in at.selectbox(key="gates_layer").options
