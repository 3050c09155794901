"""The Char-model lab: a tiny run trains, draws its curve against the baselines, and its download
loads back through lstm_viz.load_model and records."""

import io

import pagetest
import pytest
import torch

from lstm_viz import charlm_lab, load_model, load_text, record
from lstm_viz.charlm import CharLMConfig, CharLMTrainer

TEXT = "def f(x):\n    return [x, (x + 1)]  # a comment\n" * 200


@pytest.fixture(scope="module")
def trainer():
    config = CharLMConfig(arch="gru", hidden_size=16, steps=6, batch_size=4, chunk_len=20, eval_every=3)
    trainer = CharLMTrainer(config, train_text=TEXT, validation_text=TEXT[:2000])
    trainer.advance(6)
    return trainer


def test_training_figure_shows_every_step_the_probe_and_both_baselines(trainer):
    fig = charlm_lab.training_figure(trainer, {"unigram": 4.4, "bigram": 3.4})
    batches, probe = fig.data
    assert list(batches.x) == [1, 2, 3, 4, 5, 6] and list(batches.y) == pytest.approx(trainer.history.loss)
    assert list(probe.x) == [0, 3, 6] and list(probe.y) == pytest.approx(trainer.history.probe_bits)
    assert sorted(a.text for a in fig.layout.annotations) == ["bigram baseline 3.40", "unigram baseline 4.40"]


def test_the_download_loads_back_and_records(trainer):
    loaded = load_model(charlm_lab.checkpoint_bytes(trainer))
    assert loaded.arch == "gru" and loaded.hidden_size == 16 and loaded.vocab is not None
    x = load_text(io.BytesIO(TEXT[:50].encode()), loaded.vocab)
    rec = record(loaded.module, x)
    assert rec.log10_grad_h.shape == (1, 50) and torch.isfinite(torch.from_numpy(rec.log10_grad_h)).all()


def test_the_page_trains_a_tiny_model_to_the_end():
    at = pagetest.run_page("pages/10_Char_model_lab.py", {"charlab_hidden": "64", "charlab_steps": "50"})
    assert "press **Start**" in at.info[0].value
    at.button(key="charlab_start").click().run(timeout=300)
    assert not at.exception and not at.error
    assert at.session_state["charlab_trainer"].step == 50 and not at.session_state["charlab_running"]
    assert at.get("plotly_chart") and at.button(key="charlab_continue").disabled  # done: nothing to continue
