"""loading.record_files and describe: what the Your model page and the CLI's --model run."""

import io

import numpy as np
import pytest
import torch

from lstm_viz.inputs import make_input
from lstm_viz.loading import connectivity_files, describe, load_model, record_files
from lstm_viz.record import record


def saved(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def gru() -> torch.nn.GRU:
    with torch.random.fork_rng():
        torch.manual_seed(3)
        return torch.nn.GRU(2, 3, num_layers=2, batch_first=True)


def test_record_files_on_a_csv_equals_record(gru):
    rec, about = record_files(saved(gru), b"0.5,1\n-1,2\n0,0\n", kind="csv", label="mine")
    direct = record(gru, torch.tensor([[[0.5, 1.0], [-1.0, 2.0], [0.0, 0.0]]]))
    np.testing.assert_array_equal(rec.log10_grad_h, direct.log10_grad_h)
    np.testing.assert_array_equal(rec.layer(0).hidden, direct.layer(0).hidden)
    assert rec.label == "mine" and rec.num_layers == 2
    assert about == "GRU, 2 layers, 2 inputs, 3 units"


def test_record_files_generates_the_input_at_the_models_size(gru):
    rec, _ = record_files(saved(gru), generate=("sine", 2, 7, 4))
    direct = record(gru, make_input("sine", 2, 7, 2, seed=4))
    np.testing.assert_array_equal(rec.log10_grad_x, direct.log10_grad_x)
    assert rec.label == "GRU"


def test_record_files_needs_an_input(gru):
    with pytest.raises(ValueError, match="give a sequence file, or generate="):
        record_files(saved(gru))


def test_describe_names_direction_nonlinearity_and_readout():
    rnn = torch.nn.RNN(1, 2, nonlinearity="relu", bidirectional=True, batch_first=True)
    state = rnn.state_dict() | {"nonlinearity": "relu", "fc.weight": torch.zeros(5, 4)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    assert describe(load_model(buffer.getvalue())) == (
        "RNN (relu), 1 layer, bidirectional, 1 input, 2 units, readout to 5 outputs"
    )


def test_connectivity_files_rows_are_record_on_the_prefix():
    with torch.random.fork_rng():
        torch.manual_seed(4)
        rnn = torch.nn.RNN(2, 3, batch_first=True)
    values = connectivity_files(saved(rnn), generate=("gaussian", 1, 9, 2))
    x = make_input("gaussian", 1, 9, 2, seed=2)
    np.testing.assert_allclose(values[0, 5, :6], record(rnn, x[:, :6]).log10_grad_x[0], atol=1e-6)


def test_connectivity_files_refuses_what_connectivity_refuses(gru):
    with pytest.raises(ValueError, match="connectivity covers at most 2,000 steps"):
        connectivity_files(saved(torch.nn.RNN(1, 2, batch_first=True)), generate=("gaussian", 1, 2001, 0))
