"""record() on a large batch runs its two halves on two threads: the numbers are the whole batch's."""

import threading

import numpy as np
import pytest
import torch

import lstm_viz
from lstm_viz.record import SPLIT_BATCH


@pytest.mark.parametrize(("arch", "layers", "bidirectional"), [("lstm", 1, False), ("gru", 2, True)])
def test_a_split_batch_records_what_each_sample_records_alone(arch, layers, bidirectional, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # as on a machine with two cores
    model = lstm_viz.build_model(arch, 3, 5, seed=1, num_layers=layers, bidirectional=bidirectional)
    x = lstm_viz.make_input("gaussian", SPLIT_BATCH + 1, 30, 3, seed=2)  # halves 4 and 5
    whole = lstm_viz.record(model, x)
    assert whole.batch_size == x.shape[0]
    for b in (0, 4, 5, 8):  # both sides of the seam
        alone = lstm_viz.record(model, x[b : b + 1])
        np.testing.assert_allclose(whole.log10_grad_h[b], alone.log10_grad_h[0], atol=1e-4)
        np.testing.assert_allclose(whole.log10_grad_x[b], alone.log10_grad_x[0], atol=1e-4)
        np.testing.assert_allclose(whole.hidden[b], alone.hidden[0], atol=1e-5)
        for layer in range(layers):
            for direction in range(whole.num_directions):
                ours, theirs = whole.layer(layer, direction), alone.layer(layer, direction)
                np.testing.assert_allclose(ours.log10_grad_h[b], theirs.log10_grad_h[0], atol=1e-4)
        for name, values in whole.gates.items():
            np.testing.assert_allclose(values[b], alone.gates[name][0], atol=1e-5)


def test_progress_comes_from_the_calling_thread_only(monkeypatch):
    """A UI may only be updated from its own thread: the worker's half reports nothing."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    model = lstm_viz.build_model("lstm", 3, 5, seed=1)
    x = lstm_viz.make_input("gaussian", 16, 40, 3, seed=2)
    callers = []
    fractions = []
    lstm_viz.record(model, x, progress=lambda f: (callers.append(threading.get_ident()), fractions.append(f)))
    assert set(callers) == {threading.get_ident()}
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_an_error_in_either_half_is_raised(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    model = lstm_viz.build_model("rnn", 2, 4, seed=0, init="identity", spectral_radius=1.5)
    x = torch.ones(10, 3000, 2) * 5  # relu units all on: the state passes float64's range
    with pytest.raises(ValueError, match="explodes"):
        lstm_viz.record(model, x)
