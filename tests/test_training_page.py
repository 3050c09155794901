"""AppTest of the Training lab: a tiny run trains, draws its charts and offers the models; Start,
Stop, Continue and leaving the page mid-run; links with ids and with old labels; paper presets."""

import json
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lstm_viz.presets import PRESETS
from lstm_viz.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the page imports ui.py, as under `streamlit run app.py`
PAGE = ROOT / "pages" / "3_Training_lab.py"
TINY = {"train_lag": "5", "train_hidden": "4", "train_steps": "50"}


def _page(**params: str | list[str]) -> AppTest:
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
    assert "RNN (.pt)" in labels and "LSTM (forget bias) (.pt)" in labels

    at.select_slider(key="train_step").set_value(0).run()  # scrub back to the untrained network
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


class _Interrupted(Trainer):
    """Trains 7 steps, then stops the script once, as a rerun does in a browser (AppTest runs a page
    to its end, so this is how a test sees the page while it trains); then trains as usual."""

    interrupted = False

    def advance(self, n: int = 1, *, seconds: float | None = None) -> int:
        if self.interrupted:
            return super().advance(n, seconds=seconds)
        super().advance(7)
        self.interrupted = True
        raise RuntimeError("script stopped mid-training")


def _training(**params: str) -> AppTest:
    """The page while a run of RNN and LSTM (60 steps, a snapshot every 5) is training: at step 7."""
    at = _page(**params)
    config = TrainConfig("adding", 5, 4, ("rnn", "lstm"), 60, batch_size=8, test_size=16, probe_size=2,
                         record_every=5)  # fmt: skip
    at.session_state["train_trainer"], at.session_state["train_running"] = _Interrupted(config), True
    at.run()
    # the one exception, the stand-in's; showErrorDetails = "none" shows it without its text or stack
    assert len(at.exception) == 1 and "redacted" in at.exception[0].value and not at.exception[0].stack_trace
    return at


def _shapes(at: AppTest) -> list[dict]:
    return json.loads(at.get("plotly_chart")[0].proto.spec)["layout"].get("shapes", [])


def test_start_is_disabled_while_training_and_stop_shows_the_last_step():
    at = _training()
    assert at.button(key="train_start").disabled and not at.button(key="train_stop").disabled
    at.button(key="train_stop").click().run()
    assert not at.exception, [e.value for e in at.exception]
    trainer = at.session_state["train_trainer"]
    assert trainer.step == 7 and trainer.paused
    for res in trainer.results().values():  # every model stopped at the same step, its snapshot there
        assert res.steps_done == 7 and list(res.snapshot_steps) == [0, 5, 7] and res.eval_steps[-1] == 7
    scrubber = at.select_slider(key="train_step")
    assert scrubber.options[-1] == "7" and scrubber.value == 7  # it reaches the last trained step
    assert any(s["type"] == "line" and s["x0"] == 7 for s in _shapes(at))  # the loss chart marks it
    assert not at.button(key="train_start").disabled and not at.button(key="train_resume").disabled
    at.select_slider(key="train_step").set_value(5).run()
    assert any(s["type"] == "line" and s["x0"] == 5 for s in _shapes(at))
    at.button(key="train_resume").click().run()  # Continue trains on to step 60 from step 7
    assert not at.exception, [e.value for e in at.exception]
    assert trainer.step == 60 and at.session_state["train_trainer"] is trainer
    assert at.select_slider(key="train_step").value == 5  # a step the user chose stays chosen


def test_leaving_the_page_mid_run_pauses_it_and_says_so():
    import ui

    at = _training()
    at.session_state[ui._PAGE] = "gradient_flow"  # another page ran since: the user left the lab
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    trainer = at.session_state["train_trainer"]
    assert trainer.paused and trainer.step == 7 and not at.session_state["train_running"]
    assert "Training paused at step 7" in at.info[0].value
    assert at.select_slider(key="train_step").value == 7
    at.button(key="train_resume").click().run()
    assert trainer.step == 60 and not at.info  # the message goes once training goes on
    assert at.select_slider(key="train_step").value == 60  # the last step followed training


def test_links_carry_ids_and_old_label_links_still_work():
    at = _page(train_task="Copy memory", train_archs=["LSTM", "gru", "transformer"])  # an old link
    assert at.selectbox(key="train_task").value == "copy_memory"
    assert at.multiselect(key="train_archs").value == ["lstm", "gru"]
    assert "train_archs=transformer is not a model" in at.warning[0].value
    assert at.query_params["train_task"] == ["copy_memory"] or at.query_params["train_task"] == "copy_memory"
    at.multiselect(key="train_archs").set_value(["rnn", "rnn_identity"]).run()
    assert list(at.query_params["train_archs"]) == ["rnn", "rnn_identity"]
    at = _page(train_task="copy_memory", train_archs=["lstm_chrono", "lstm"])  # a new link
    assert at.multiselect(key="train_archs").value == ["lstm_chrono", "lstm"] and not at.warning
    at.selectbox(key="train_task").set_value("adding").run()
    assert "train_task" not in at.query_params  # defaults leave the URL


def test_the_same_model_twice_is_refused_before_start():
    at = _page(train_archs=["lstm", "lstm_forget_bias"])  # the LSTM's init is forget_bias already
    assert "same model" in at.sidebar.error[0].value
    assert at.button(key="train_start").disabled


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_set_the_sidebar(name):
    at = _page()
    at.selectbox(key="train_preset").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    preset = PRESETS[name]
    assert at.selectbox(key="train_task").value == preset.config.task
    assert at.slider(key="train_lag").value == preset.config.lag
    assert at.multiselect(key="train_archs").value == list(preset.config.archs)
    assert preset.paper in at.caption[0].value  # credited while the settings are the preset's
    at.slider(key="train_lag").set_value(20).run()
    assert not any(preset.paper in c.value for c in at.caption)
