"""Char-level language models: training steps, truncated BPTT, bits per character against brute
force and closed-form baselines, checkpoints through load_model, and the shipped weights."""

from __future__ import annotations

import math
import platform
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from lstm_viz.charlm import (
    FORMAT,
    WEIGHTS_DIR,
    CharLM,
    CharLMConfig,
    CharLMTrainer,
    bigram_bits,
    bits_per_char,
    load_charlm,
    next_char_grad_output,
    probe_streams,
    shipped_models,
    streams,
    unigram_bits,
)
from lstm_viz.corpus import CORPUS_FILES, VOCAB, load_corpus
from lstm_viz.record import record

ROOT = Path(__file__).resolve().parents[1]
SMALL = CharLMConfig(arch="lstm", hidden_size=8, steps=12, batch_size=4, chunk_len=10, lr=1e-2, eval_every=6)


@pytest.fixture(scope="module")
def text() -> tuple[str, str]:
    corpus = load_corpus(CORPUS_FILES[2:3])  # argparse.py: about 90,000 and 10,000 characters
    return corpus.train[:4000], corpus.validation[:1600]


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_training_lowers_the_loss_and_leaves_the_global_generator_alone(text, arch):
    before = torch.random.get_rng_state()
    trainer = CharLMTrainer(SMALL.__class__(**{**SMALL.__dict__, "arch": arch}), *text)
    assert trainer.advance(100) == 12 and trainer.done
    assert torch.equal(torch.random.get_rng_state(), before)
    history = trainer.history
    assert history.eval_steps == [0, 6, 12] and len(history.loss) == 12
    assert history.probe_bits[0] == pytest.approx(math.log2(len(VOCAB)), abs=0.3)  # untrained: near uniform
    assert history.probe_bits[-1] < history.probe_bits[0] - 0.7


def test_stop_and_resume_is_the_same_run(text):
    whole = CharLMTrainer(SMALL, *text)
    whole.advance(12)
    parts = CharLMTrainer(SMALL, *text)
    assert parts.advance(5) == 5 and not parts.done
    parts.advance(7)
    for a, b in zip(whole.model.parameters(), parts.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert whole.history.loss == parts.history.loss


def test_truncated_bptt_carries_the_state_without_its_graph(text):
    trainer = CharLMTrainer(SMALL, *text)
    length = trainer.data.shape[1]  # 4 streams of 1,000 characters: 99 chunks of 10 (+1 target)
    trainer.advance(1)
    h, c = trainer.state
    assert h.shape == (1, 4, 8) and not h.requires_grad and trainer.position == 10
    trainer.position = length - 10  # the next chunk would run past the end: start over, fresh state
    trainer.advance(1)
    assert trainer.position == 10


def test_bits_per_char_matches_one_full_pass():
    model = CharLM.build(CharLMConfig(arch="gru", hidden_size=6, seed=2))
    ids = torch.from_numpy(VOCAB.encode("for i in range(10):\n    print(i)\n" * 4)).view(2, -1)
    with torch.no_grad():
        logits, _ = model(model.one_hot(ids[:, :-1]))
        expected = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten()).item() / math.log(2)
    threads = torch.get_num_threads()
    assert bits_per_char(model, ids, chunk_len=7) == pytest.approx(expected, rel=1e-6)  # state carried
    assert model.training and torch.get_num_threads() == threads  # mode and threads restored


def test_per_character_gradient_matches_autograd():
    model = CharLM.build(CharLMConfig(arch="lstm", hidden_size=6, seed=4))
    ids = torch.from_numpy(VOCAB.encode("x = [a, (b)]\ny = 22\n")).view(2, -1)  # (2, 10)
    x, grad_output = next_char_grad_output(model, ids, position=6)
    assert x.shape == (2, 7, len(VOCAB)) and grad_output.shape == (2, 7, 6)
    rec = record(model.recurrent, x, grad_output=grad_output)
    x_ = x.clone().requires_grad_(True)
    out, _ = model.recurrent(x_)
    F.cross_entropy(model.readout(out[:, -1]), ids[:, 7], reduction="sum").backward()
    expected = x_.grad.norm(dim=-1).log10().numpy()
    np.testing.assert_allclose(rec.log10_grad_x, expected, atol=1e-4)
    with pytest.raises(ValueError, match="position must be between 0 and 8"):
        next_char_grad_output(model, ids, position=9)


def test_baselines_in_closed_form():
    train = np.array([0, 1, 0, 1, 0, 2])  # counts 3, 2, 1 (+1 each: 4, 3, 2 of 9)
    val = np.array([1, 0, 2])
    unigram = -(math.log2(4 / 9) + math.log2(2 / 9)) / 2
    assert unigram_bits(train, val, 3) == pytest.approx(unigram)
    # after 1: 0 seen twice (3 of 2 + 3); after 0: 2 seen once (2 of 3 + 3)
    bigram = -(math.log2(3 / 5) + math.log2(2 / 6)) / 2
    assert bigram_bits(train, val, 3) == pytest.approx(bigram)


def test_streams_and_probe():
    ids = np.arange(23)
    assert streams(ids, 4).tolist() == [
        [0, 1, 2, 3, 4],
        [5, 6, 7, 8, 9],
        [10, 11, 12, 13, 14],
        [15, 16, 17, 18, 19],
    ]
    probe = probe_streams(ids, windows=3, length=4)
    assert probe.tolist() == [[0, 1, 2, 3], [9, 10, 11, 12], [19, 20, 21, 22]]
    with pytest.raises(ValueError, match="fewer than"):
        probe_streams(ids, windows=6, length=4)


def test_checkpoint_loads_with_weights_only_and_predicts_the_same(text, tmp_path):
    trainer = CharLMTrainer(SMALL, *text)
    trainer.advance(3)
    checkpoint = trainer.checkpoint(name="test")
    assert checkpoint["format"] == FORMAT and checkpoint["meta"]["steps_done"] == 3
    path = tmp_path / "lm.pth"
    torch.save(checkpoint, path)
    assert torch.load(path, weights_only=True)["vocab"] == list(VOCAB.chars)
    model, meta = load_charlm(path)
    assert meta["name"] == "test" and meta["probe_bits"] == bits_per_char(trainer.model, trainer.probe)
    x = model.one_hot(torch.from_numpy(VOCAB.encode(text[1][:50]))[None])
    torch.testing.assert_close(model(x)[0], trainer.model(x)[0], rtol=0, atol=0)


def test_config_errors():
    with pytest.raises(ValueError, match="arch must be one of"):
        CharLMConfig(arch="transformer").check()
    with pytest.raises(ValueError, match="chunk_len must be an integer between 1 and 10000"):
        CharLMConfig(chunk_len=0).check()
    with pytest.raises(ValueError, match="too short for chunk_len=10"):
        CharLMTrainer(SMALL, "x" * 30, "y" * 1600)


SHIPPED = ("charlm-rnn", "charlm-lstm", "charlm-gru")


def test_shipped_weights_reproduce_their_recorded_bits_per_char():
    assert set(SHIPPED) <= set(shipped_models())
    assert sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir()) < 5 * 1024**2
    validation = VOCAB.encode(load_corpus().validation)
    table = (ROOT / "docs" / "charlm.md").read_text()
    for name, path in shipped_models().items():
        model, meta = load_charlm(path)
        probe = probe_streams(validation, meta["probe_windows"], meta["probe_length"])
        bits = bits_per_char(model, probe)
        same_versions = meta["python_version"] == platform.python_version()
        # the same text and torch: equal to float noise; another Python's stdlib text differs a little
        assert bits == pytest.approx(meta["probe_bits"], abs=1e-3 if same_versions else 0.15), name
        assert meta["validation_bits"] < meta["bigram_bits"] < meta["unigram_bits"], name
        row = re.search(rf"^\| {re.escape(meta['name'])} \|.*$", table, re.M)
        assert row and f"| {meta['validation_bits']:.3f} |" in row.group(0), (
            f"docs/charlm.md is stale for {name}"
        )


def test_shipped_models_record_500_character_passages():
    """The text page's passages: record() handles 500 characters of every shipped model (the LSTM's
    counting cells pass float64's range for tanh' after about 700 to 1,000; docs/charlm.md)."""
    validation = load_corpus().validation
    for name in SHIPPED:
        model, _ = load_charlm(name)
        for start in (0, 300_000):
            rec = record(model.recurrent, VOCAB.one_hot(validation[start : start + 500]))
            assert np.isfinite(rec.log10_grad_x).all(), (name, start)


def test_shipped_lstm_records_per_character_gradients():
    model, _ = load_charlm("charlm-lstm")
    text = "def f(x):\n    return (x + 1)\n"
    rec = record(model.recurrent, VOCAB.one_hot(text))
    assert rec.hidden.shape == (1, len(text), model.recurrent.hidden_size)
    assert np.isfinite(rec.log10_grad_h).all()


def test_weights_reach_the_docker_image():
    import test_docker  # tests/ is on sys.path under pytest

    rules = test_docker.dockerignore_rules()
    paths = [path.relative_to(ROOT).as_posix() for path in shipped_models().values()]
    assert paths and [p for p in paths if not test_docker.in_context(p, rules)] == []
