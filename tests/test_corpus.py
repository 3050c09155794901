"""The standard-library corpus, the vocabulary, the text features and the unit finder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_viz.corpus import (
    CORPUS_FILES,
    FEATURES,
    UNKNOWN,
    VOCAB,
    Vocabulary,
    find_units,
    load_corpus,
    pearson,
    recording_activations,
    split_text,
    stdlib_dir,
    text_features,
)
from lstm_viz.record import record


def test_every_corpus_file_exists_and_is_read_in_order():
    root = stdlib_dir()
    assert list(CORPUS_FILES) == sorted(CORPUS_FILES)
    sizes = [(root / name).stat().st_size for name in CORPUS_FILES]  # FileNotFoundError if one is gone
    assert 2_000_000 < sum(sizes) < 6_000_000
    corpus = load_corpus(CORPUS_FILES[:2])
    first = (root / CORPUS_FILES[0]).read_text(encoding="utf-8")
    second = (root / CORPUS_FILES[1]).read_text(encoding="utf-8")
    head1, tail1 = split_text(first)
    head2, tail2 = split_text(second)
    assert corpus.train == head1 + head2 and corpus.validation == tail1 + tail2
    assert 0.08 < len(tail1) / len(first) < 0.12 and tail1.startswith(first[len(head1) :])
    assert head1.endswith("\n")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        load_corpus(["nope.py"], root=tmp_path)


def test_vocabulary_round_trip_and_fallback():
    text = "def f(x):\n\treturn 'é'\n"
    ids = VOCAB.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert VOCAB.decode(ids) == text.replace("é", UNKNOWN)
    x = VOCAB.one_hot(text)
    assert x.shape == (1, len(text), len(VOCAB)) and x.dtype == torch.float32
    assert torch.equal(x.argmax(-1)[0], torch.from_numpy(ids)) and torch.equal(
        x.sum(-1), torch.ones(1, len(text))
    )
    strict = Vocabulary(("a", "b"))
    assert strict.unknown is None
    with pytest.raises(ValueError, match="'c' at position 2"):
        strict.encode("abc")
    with pytest.raises(ValueError, match="twice"):
        Vocabulary(("a", "a"))


def test_text_features_by_hand():
    text = 'x = f(a, "b(#")  # c(\n    y = [1,\n  2]\ns = """q\n)"""\n'
    f = text_features(text)
    assert set(f) == set(FEATURES) and all(v.shape == (len(text),) for v in f.values())

    def at(name, sub, offset=0):
        return f[name][text.index(sub) + offset]

    assert at("in_string", '"b(#"') == 1 and at("in_string", "(#") == 1 and at("in_string", "x") == 0
    assert at("in_comment", "# c") == 1 and at("in_comment", "(#") == 0 and at("in_comment", "\n") == 0
    assert (
        at("bracket_depth", "(a") == 1 and at("bracket_depth", "a,") == 1 and at("bracket_depth", "b(") == 1
    )
    assert at("bracket_depth", ")  #") == 1 and at("bracket_depth", "  #") == 0  # the '(' in the comment
    assert (
        at("bracket_depth", "2]") == 1 and at("bracket_depth", "]") == 1 and at("bracket_depth", "s =") == 0
    )
    assert at("in_string", 'q\n)"""') == 1 and at("in_string", ')"""') == 1  # triple quotes span lines
    assert at("bracket_depth", ')"""') == 0  # a bracket inside a string does not count
    assert at("line_position", "y") == 4 and at("line_position", "x") == 0
    assert at("indentation", "y") == 4 and at("indentation", "2]") == 2 and at("indentation", "x") == 0
    assert text_features("")["indentation"].shape == (0,)


def test_pearson_matches_numpy():
    rng = np.random.default_rng(0)
    a, f = rng.normal(size=(50, 3)), rng.normal(size=50)
    expected = [np.corrcoef(a[:, j], f)[0, 1] for j in range(3)]
    np.testing.assert_allclose(pearson(a, f), expected, atol=1e-12)
    assert pearson(np.ones((5, 2)), np.arange(5.0)).tolist() == [0.0, 0.0]  # constant: no correlation


def test_find_units_recovers_a_planted_unit():
    text = load_corpus(CORPUS_FILES[:1]).validation[:3000]
    features = text_features(text)
    rng = np.random.default_rng(1)
    T, H = len(text), 32
    cell = rng.normal(size=(T, H))
    hidden = rng.normal(size=(T, H))
    cell[:, 7] = features["in_string"] + 0.1 * rng.normal(size=T)  # copies a feature, with noise
    hidden[:, 3] = -np.tanh(features["bracket_depth"])  # tracks depth with the opposite sign
    found = find_units({"cell": cell, "hidden": hidden}, features, k=2)
    assert set(found) == set(FEATURES)
    best = found["in_string"][0]
    assert (best.quantity, best.unit) == ("cell", 7) and best.r > 0.9
    assert abs(found["in_string"][1].r) < 0.2  # the runner-up is noise
    best = found["bracket_depth"][0]
    assert (best.quantity, best.unit) == ("hidden", 3) and best.r < -0.8
    assert find_units(cell, {"in_string": features["in_string"]}, k=1)["in_string"][0].unit == 7
    assert find_units(cell, {"flat": np.ones(T)})["flat"] == []  # nothing to correlate with
    cell[:, :] = 1.0
    assert find_units(cell, features)["in_string"] == []


def test_recording_activations_feed_the_finder():
    text = 'x = "a" + "b"\ny = (1, 2)\n'
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.LSTM(len(VOCAB), 5, batch_first=True)
    rec = record(model, VOCAB.one_hot(text))
    acts = recording_activations(rec)
    assert list(acts) == ["hidden", "cell", "input", "forget", "candidate", "output"]
    assert all(a.shape == (len(text), 5) for a in acts.values())
    found = find_units(acts, text_features(text), k=4)
    assert len(found["in_string"]) == 4 and found["in_comment"] == []  # no comment in the text
