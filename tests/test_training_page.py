"""AppTest of the Training lab: a tiny run trains, draws its charts and offers the models."""

import json
import sys
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the page imports ui.py, as under `streamlit run app.py`
PAGE = ROOT / "pages" / "3_Training_lab.py"
TINY = {"train_lag": "5", "train_hidden": "4", "train_steps": "50"}


def _page(**params: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for key, value in {**TINY, **params}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _traces(at: AppTest) -> list[list[str]]:
    return [[tr.get("name", "") for tr in json.loads(c.proto.spec)["data"]] for c in at.get("plotly_chart")]


def test_before_start_the_page_only_explains():
    at = _page()
    assert not at.get("plotly_chart")
    assert "press **Start**" in at.info[0].value
    assert at.button(key="train_stop").disabled


def test_a_tiny_run_trains_and_draws_every_chart():
    at = _page()
    at.multiselect(key="train_archs").set_value(["rnn", "lstm"])
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    traces = _traces(at)
    assert len(traces) == 5  # loss, heatmap, profile, keep gates, gradient norms
    assert "LSTM (forget bias): test set" in traces[0] and "RNN: test set" in traces[0]
    assert any("forget gate" in name for name in traces[3])
    loss = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert loss["layout"]["shapes"][0]["y0"] == 1 / 6  # the memoryless baseline line
    models = at.session_state["trained_models"]
    assert set(models) == {"rnn", "lstm"} and models["lstm"]["step"] == 50

    torch.nn.LSTM(2, 4, batch_first=True).load_state_dict(models["lstm"]["recurrent"])
    labels = [b.proto.label for b in at.get("download_button")]
    assert "RNN (.pt)" in labels and "LSTM (.pt)" in labels

    at.slider(key="train_step").set_value(0).run()  # scrub back to the untrained network
    assert not at.exception
    assert any(name.endswith("at step 0") for name in _traces(at)[2])


def test_settings_reach_the_trainer():
    at = _page()
    at.selectbox(key="train_task").set_value("copy_memory")
    at.multiselect(key="train_archs").set_value(["gru"])
    at.toggle(key="train_clip_on").set_value(False)
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    trainer = at.session_state["train_trainer"]
    assert trainer.config.task == "copy_memory" and trainer.config.lag == 5
    assert trainer.config.archs == ("gru",) and trainer.config.clip is None
    assert (
        "cross-entropy"
        in json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["yaxis"]["title"]["text"]
    )
