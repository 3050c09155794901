"""load_model / load_sequence: the Training lab's downloads and torch's own modules load back exactly;
a pickle that would run code is refused before it runs; every malformed file gets a ValueError naming
what is wrong."""

from __future__ import annotations

import builtins
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lstm_viz import loading
from lstm_viz.corpus import VOCAB, Vocabulary
from lstm_viz.loading import LoadedModel, load_csv, load_model, load_sequence, load_text
from lstm_viz.record import record
from lstm_viz.training import TrainConfig, Trainer

CLASSES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def torch_module(arch: str, input_size=3, hidden=4, layers=1, bidirectional=False, seed=0, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLASSES[arch](
            input_size, hidden, layers, batch_first=True, bidirectional=bidirectional, **kwargs
        )


def x_for(input_size: int, steps: int = 6) -> torch.Tensor:
    return torch.randn(2, steps, input_size, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def lab() -> Trainer:
    config = TrainConfig(task="adding", lag=5, hidden_size=4, steps=2, test_size=8, probe_size=2)
    trainer = Trainer(config)
    trainer.advance(2)
    return trainer


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_training_lab_download_loads_back(lab, arch):
    loaded = load_model(lab.model_bytes(arch))
    assert isinstance(loaded, LoadedModel) and isinstance(loaded.module, CLASSES[arch])
    assert (loaded.arch, loaded.num_layers, loaded.bidirectional) == (arch, 1, False)
    assert (loaded.input_size, loaded.hidden_size, loaded.readout, loaded.vocab) == (2, 4, None, None)
    assert loaded.module.batch_first and not loaded.module.training
    for key, value in lab.state_dict(arch).items():
        assert torch.equal(loaded.module.state_dict()[key], value)
    # record() of the loaded module equals record() of the lab's own instrumented model
    x = lab.test_x[:2]
    lab.runs[arch].instrumented.load_state_dict(lab.state_dict(arch))
    ours, theirs = record(loaded.module, x), record(lab.runs[arch].instrumented, x)
    np.testing.assert_array_equal(ours.log10_grad_h, theirs.log10_grad_h)
    np.testing.assert_array_equal(ours.hidden, theirs.hidden)


def test_training_lab_checkpoint_loads_with_its_readout(lab):
    checkpoint = lab.checkpoint("lstm")
    loaded = load_model(saved(checkpoint))
    assert loaded.readout is not None and loaded.readout.out_features == 1
    assert torch.equal(loaded.readout.weight, checkpoint["readout"]["weight"])
    assert loaded.meta["step"] == 2 and loaded.meta["config"]["task"] == "adding"


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers, bidirectional", [(2, False), (1, True), (3, True)])
def test_torch_modules_round_trip(arch, layers, bidirectional, tmp_path):
    module = torch_module(arch, layers=layers, bidirectional=bidirectional)
    path = tmp_path / "model.pt"
    torch.save(module.state_dict(), path)
    before = torch.random.get_rng_state()
    loaded = load_model(path)
    assert torch.equal(torch.random.get_rng_state(), before)  # the global generator is left alone
    assert (loaded.arch, loaded.num_layers, loaded.bidirectional) == (arch, layers, bidirectional)
    assert (loaded.input_size, loaded.hidden_size) == (3, 4)
    x = x_for(3)
    torch.testing.assert_close(loaded.module(x)[0], module(x)[0], rtol=0, atol=0)


def test_rnn_nonlinearity_from_the_file_or_the_caller():
    relu = torch_module("rnn", nonlinearity="relu")
    x = x_for(3)
    loaded = load_model(saved(relu.state_dict() | {"nonlinearity": "relu"}))
    assert loaded.nonlinearity == "relu"
    torch.testing.assert_close(loaded.module(x)[0], relu(x)[0], rtol=0, atol=0)
    assert load_model(saved(relu.state_dict())).nonlinearity == "tanh"  # weights cannot tell: the default
    assert load_model(saved(relu.state_dict()), nonlinearity="relu").module.nonlinearity == "relu"


def test_prefixed_keys_readout_no_bias_and_half_precision():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch_module("gru", bias=False)
            with torch.random.fork_rng(devices=[]):
                self.fc = nn.Linear(4, 2)

    net = Net()
    loaded = load_model(saved(net.state_dict()))
    x = x_for(3)
    torch.testing.assert_close(loaded.module(x)[0], net.gru(x)[0], rtol=0, atol=0)  # zero biases
    assert torch.equal(loaded.readout.weight, net.fc.weight) and torch.equal(loaded.readout.bias, net.fc.bias)
    half = {k: v.half() for k, v in torch_module("lstm").state_dict().items()}
    assert load_model(saved(half)).module.weight_hh_l0.dtype == torch.float32


class Evil:
    """Unpickling calls open(marker, "w"): what a malicious file would do, harmlessly."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path):
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Evil(proof)))  # the payload works: plain unpickling creates the file
    assert proof.exists()
    torch.load(io.BytesIO(saved(Evil(tmp_path / "proof2"))), weights_only=False)
    assert (tmp_path / "proof2").exists()

    marker = tmp_path / "marker"
    for data, named in [
        (pickle.dumps(Evil(marker), protocol=2), "io.open"),  # builtins.open is io.open
        (pickle.dumps(Evil(marker)), None),  # protocol 4 framing: refused before its global is read
        (saved(Evil(marker)), "io.open"),
        (saved({"weight_ih_l0": Evil(marker)}), "io.open"),
    ]:
        message = rf"refused: the file asks to import or call code \({named}\)" if named else "refused"
        with pytest.raises(ValueError, match=message):
            load_model(data)
        assert not marker.exists()
    path = tmp_path / "evil.pt"
    path.write_bytes(saved(Evil(marker)))
    with pytest.raises(ValueError, match="refused"):
        load_model(path)
    assert not marker.exists()


def test_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.pt"
    path.write_bytes(saved(torch_module("rnn").state_dict()))
    monkeypatch.setattr(loading, "MAX_MODEL_BYTES", 100)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    with pytest.raises(ValueError, match=r"more than the 100 allowed"):
        load_model(path)
    with pytest.raises(ValueError, match="more than"):
        load_model(io.BytesIO(b"x" * 101))
    assert loading.MAX_MODEL_BYTES == 100 and 64 * 1024**2 == 67_108_864  # the stated limit below
    monkeypatch.undo()
    assert loading.MAX_MODEL_BYTES == 64 * 1024**2


def drop(state: dict, key: str) -> dict:
    return {k: v for k, v in state.items() if k != key}


LSTM2 = torch_module("lstm", layers=2).state_dict()
GRU1 = torch_module("gru").state_dict()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"this is not a torch file", "not a file saved by torch.save"),
        (b"PK\x03\x04 a broken zip", "not a file saved by torch.save"),
        (b"", "not a file saved by torch.save"),
        (b"\x00\xff random", "refused: not a weights-only torch file"),
        (saved([1, 2, 3]), "expected a state dict or a checkpoint dict, got list"),
        (saved({"fc.weight": torch.ones(2, 2), "x": torch.ones(1)}), "no recurrent weights found"),
        (saved(drop(LSTM2, "weight_hh_l0")), "weight_hh_l0 is missing"),
        (saved(drop(LSTM2, "bias_hh_l1")), "bias_hh_l1 is missing"),
        (saved(drop(LSTM2, "weight_ih_l1")), "weight_ih_l1 is missing"),
        (saved(GRU1 | {"foo": torch.ones(1)}), r"unexpected keys \['foo'\]"),
        (saved(GRU1 | {"a.weight": torch.ones(2, 4), "b.weight": torch.ones(2, 4)}), "only one Linear"),
        (saved(GRU1 | {"weight_hh_l0": torch.ones(8, 4)}), r"k = 1 \(RNN\), 3 \(GRU\) or 4 \(LSTM\)"),
        (saved(GRU1 | {"bias_ih_l0": torch.ones(5)}), r"bias_ih_l0 must be \(12,\)"),
        (saved(LSTM2 | {"weight_ih_l1": torch.ones(16, 3)}), r"weight_ih_l1 must be \(16, 4\)"),
        (saved(GRU1 | {"weight_hh_l0": torch.full((12, 4), float("nan"))}), "NaN"),
        (saved(GRU1 | {"weight_ih_l0": torch.ones(12, 3, dtype=torch.long)}), "floating-point tensor"),
        (saved(GRU1 | {"nonlinearity": "relu"}), "nonlinearity must be"),
        (saved(torch_module("lstm", proj_size=2).state_dict()), "projections"),
        (saved(torch_module("rnn", layers=5).state_dict()), "5 layers"),
        (saved({"recurrent": GRU1, "optimizer": {}}), r"unknown checkpoint keys \['optimizer'\]"),
        (saved({"recurrent": GRU1, "arch": "lstm"}), "says arch 'lstm' but its weights make a GRU"),
        (saved({"recurrent": GRU1, "readout": {"weight": torch.ones(2, 5)}}), r"must be \(outputs, 4\)"),
        (
            saved({"recurrent": GRU1, "readout": {"weight": torch.full((2, 4), torch.inf)}}),
            "readout holds NaN",
        ),
        (saved({"recurrent": GRU1, "vocab": ["a", "b"]}), "reads and predicts its 2 characters"),
        (saved({"recurrent": GRU1, "vocab": ["a", "b", "a"]}), "twice"),
    ],
)
def test_each_malformed_file_is_named(data, message):
    with pytest.raises(ValueError, match=message):
        load_model(data)


def test_missing_path():
    with pytest.raises(ValueError, match="no model file at"):
        load_model("/nonexistent/model.pt")


def test_csv_sequences(tmp_path):
    path = tmp_path / "seq.csv"
    path.write_text("a,b,c\n1,2,3\n\n4,5.5,-6e-1\n")
    x = load_csv(path, 3)
    assert x.dtype == torch.float32 and torch.equal(x, torch.tensor([[[1, 2, 3], [4, 5.5, -0.6]]]))
    loaded = load_model(saved(torch_module("lstm").state_dict()))
    assert torch.equal(load_sequence(path, loaded), x)
    assert torch.equal(
        load_sequence(path.read_bytes(), loaded), x
    )  # bytes, no name: CSV for a non-char model
    rec = record(loaded.module, x)
    assert rec.hidden.shape == (1, 2, 4)
    for text, message in [
        ("1,2,3\n4,5\n", "line 2 has 2 columns, expected 3"),
        ("1,2,3\n4,x,6\n", "line 2, column 2: 'x' is not a number"),
        ("1,2,3\n4,nan,6\n", "line 2, column 2 is nan"),
        ("1,2,3\ninf,5,6\n", "line 2, column 1 is inf"),
        ("a,b,c\n", "no rows of numbers"),
        ("1,2\n", "line 1 has 2 columns, expected 3"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_csv(text.encode(), 3)
    with pytest.raises(ValueError, match="at most 10,000 steps"):
        load_csv(b"1\n" * 10_001, 1)
    with pytest.raises(ValueError, match="not UTF-8"):
        load_csv(b"\xff\xfe1,2", 2)


def test_text_sequence_for_a_char_model(tmp_path):
    recurrent = torch_module("lstm", input_size=len(VOCAB), hidden=8)
    with torch.random.fork_rng(devices=[]):
        readout = nn.Linear(8, len(VOCAB))
    checkpoint = {
        "format": "lstm_viz.charlm/1",
        "arch": "lstm",
        "nonlinearity": "tanh",
        "recurrent": recurrent.state_dict(),
        "readout": readout.state_dict(),
        "vocab": list(VOCAB.chars),
        "meta": {"note": "test"},
    }
    path = tmp_path / "model.pt"
    torch.save(checkpoint, path)
    loaded = load_model(path)
    assert (
        loaded.vocab == VOCAB
        and loaded.meta == {"note": "test"}
        and loaded.readout.out_features == len(VOCAB)
    )
    text_path = tmp_path / "input.txt"
    text_path.write_bytes("def f(x):\r\n    return 'é'\n".encode())
    x = load_sequence(text_path, loaded)
    expected = "def f(x):\n    return 'é'\n"
    assert x.shape == (1, len(expected), len(VOCAB))
    assert torch.equal(x[0].argmax(-1), torch.from_numpy(VOCAB.encode(expected)))
    assert torch.equal(load_text(text_path, loaded.vocab), x)
    x_ = torch.cat([x, x], dim=0)
    torch.testing.assert_close(loaded.module(x_)[0], recurrent(x_)[0], rtol=0, atol=0)
    rec = record(loaded.module, x)  # per-character gradients: dL/dx_t over the one-hot input
    assert rec.hidden.shape == (1, len(expected), 8)
    strict = Vocabulary(tuple("abc"))
    with pytest.raises(ValueError, match="'d' at position 3"):
        load_text(b"abcd", strict)
    with pytest.raises(ValueError, match="empty"):
        load_text(b"", strict)
    with pytest.raises(ValueError, match="needs a char model"):
        load_sequence(text_path, load_model(saved(GRU1)), kind="text")
