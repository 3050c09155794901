"""Bad inputs to the public API get a ValueError or TypeError that says what to pass instead, never
NaN results, swapped axes, a guard turned off, or an error from deep inside torch (issue #14, item 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lstm_viz
from lstm_viz import analysis


@pytest.fixture
def x() -> torch.Tensor:
    return lstm_viz.make_input("gaussian", 2, 12, 3, seed=0)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["weight_hh_l0", "bias_ih_l0"])
def test_weights_that_are_not_finite_are_refused(x, name, value):
    model = lstm_viz.build_model("lstm", 3, 4)
    with torch.no_grad():
        getattr(model, name)[0] = value
    with pytest.raises(ValueError, match=f"weights {name} hold NaN or infinite values.*finite weights"):
        lstm_viz.record(model, x)
    module = torch.nn.GRU(3, 4, num_layers=2, batch_first=True)
    with torch.no_grad():
        module.weight_ih_l1[1, 1] = value
    with pytest.raises(ValueError, match="weight_ih_l1 hold NaN"):
        lstm_viz.record(module, x)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_time_major_torch_module_reads_its_input_time_major(x, bidirectional):
    """batch_first=False: x is (T, B, I), as the module reads it; the recording is (B, T, ...)."""
    batch_major = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=bidirectional)
    time_major = torch.nn.LSTM(3, 4, bidirectional=bidirectional)
    time_major.load_state_dict(batch_major.state_dict())
    per_step = torch.randn(2, 12, 4 * (1 + bidirectional), generator=torch.Generator().manual_seed(1))
    for grad_output in (None, per_step):
        expected = lstm_viz.record(batch_major, x, grad_output=grad_output)
        swapped = None if grad_output is None else grad_output.transpose(0, 1)
        got = lstm_viz.record(time_major, x.transpose(0, 1), grad_output=swapped)
        assert got.hidden.shape == (2, 12, 4)
        np.testing.assert_array_equal(got.hidden, expected.hidden)
        np.testing.assert_array_equal(got.log10_grad_h, expected.log10_grad_h)
        np.testing.assert_array_equal(got.log10_grad_x, expected.log10_grad_x)
    with torch.no_grad():  # the module's own output, to be sure which axis is which
        np.testing.assert_allclose(
            got.hidden, time_major(x.transpose(0, 1))[0].transpose(0, 1)[..., :4], atol=1e-6
        )
    numpy_input = lstm_viz.record(time_major, x.transpose(0, 1).numpy())
    np.testing.assert_array_equal(numpy_input.log10_grad_h, lstm_viz.record(batch_major, x).log10_grad_h)


@pytest.mark.parametrize(
    ("max_bytes", "error", "message"),
    [
        (math.nan, ValueError, "max_bytes must be a number of bytes above 0"),
        (0, ValueError, "above 0"),
        (-5.0, ValueError, "above 0"),
        ("2GB", TypeError, r"max_bytes must be a number of bytes, e.g. 4 \* 1024\*\*3"),
        (None, TypeError, "max_bytes must be a number"),
        (True, TypeError, "max_bytes must be a number"),
    ],
)
def test_max_bytes_must_be_a_number_above_zero(x, max_bytes, error, message):
    model = lstm_viz.build_model("rnn", 3, 4)
    with pytest.raises(error, match=message):
        lstm_viz.record(model, x, max_bytes=max_bytes)


def test_max_bytes_still_guards_and_infinity_lifts_it(x):
    model = lstm_viz.build_model("rnn", 3, 4)
    with pytest.raises(ValueError, match="over the limit"):
        lstm_viz.record(model, x, max_bytes=100.0)
    assert lstm_viz.record(model, x, max_bytes=math.inf).seq_len == 12
    assert lstm_viz.record(model, x, max_bytes=np.int64(10**9)).seq_len == 12


@pytest.mark.parametrize("seed", [1.5, -1, 2**63, "3", None, True])
def test_seeds_must_be_integers_from_zero(seed):
    message = "seed must be an integer between 0 and 9223372036854775807"
    for call in (
        lambda: lstm_viz.build_model("lstm", 3, 4, seed=seed),
        lambda: lstm_viz.make_input("gaussian", 2, 5, 3, seed=seed),
        lambda: lstm_viz.make_batch("adding", 2, 5, seed=seed),
    ):
        with pytest.raises(ValueError, match=message):
            call()


def test_numpy_integer_seeds_are_integers():
    assert torch.equal(
        lstm_viz.build_model("gru", 3, 4, seed=np.int64(7)).weight_hh_l0,
        lstm_viz.build_model("gru", 3, 4, seed=7).weight_hh_l0,
    )
    assert torch.equal(
        lstm_viz.make_input("sine", 2, 5, 3, seed=np.uint8(9)), lstm_viz.make_input("sine", 2, 5, 3, seed=9)
    )


def test_a_model_on_the_meta_device_is_refused(x):
    with torch.device("meta"):
        module = torch.nn.LSTM(3, 4, batch_first=True)
    ours = lstm_viz.build_model("gru", 3, 4).to("meta")
    for model in (module, ours):
        with pytest.raises(ValueError, match=r"meta device and has no weights.*to_empty.*load_state_dict"):
            lstm_viz.record(model, x)


def test_a_half_precision_module_is_refused_with_the_fix(x):
    with pytest.raises(
        ValueError, match=r"torch.float16; record\(\) runs float32 or float64: use .float\(\)"
    ):
        lstm_viz.record(torch.nn.RNN(3, 4, batch_first=True).half(), x)


def test_progress_must_be_callable(x):
    with pytest.raises(TypeError, match="progress must be None or a function"):
        lstm_viz.record(lstm_viz.build_model("rnn", 3, 4), x, progress=0.5)


def test_decay_fit_names_the_quantities_it_fits(x):
    rec = lstm_viz.record(lstm_viz.build_model("gru", 3, 4), x)
    for quantity in ("bogus", "hidden", "gates"):
        with pytest.raises(ValueError, match=r"quantity must be one of \('log10_grad_h', 'log10_grad_c'"):
            analysis.decay_fit(rec, quantity)
    with pytest.raises(ValueError, match="only the LSTM has a cell state"):
        analysis.decay_fit(rec, "log10_grad_c")
    assert analysis.decay_fit(rec, "log10_grad_x").t_last == 11


def test_estimate_bytes_names_the_archs_and_dtypes():
    with pytest.raises(ValueError, match=r"arch must be one of \('rnn', 'lstm', 'gru'\), got 'bogus'"):
        lstm_viz.estimate_bytes("bogus", 1, 10, 4, 3)
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        lstm_viz.estimate_bytes("lstm", 1, 10, 4, 3, dtype=torch.int64)
    assert lstm_viz.estimate_bytes("lstm", 1, 10, 4, 3) > 0


def test_label_and_meta_must_be_a_string_and_a_dict(x):
    model = lstm_viz.build_model("rnn", 3, 4)
    with pytest.raises(TypeError, match="label must be a string"):
        lstm_viz.record(model, x, label=5)
    with pytest.raises(TypeError, match=r"meta must be None or a dict"):
        lstm_viz.record(model, x, meta=[("seed", 0)])


NOT_NUMBERS = [("spectral_radius", "1"), ("spectral_radius", -0.5), ("spectral_radius", True),
               ("forget_bias", "1"), ("forget_bias", math.inf)]  # fmt: skip


@pytest.mark.parametrize(("name", "value"), NOT_NUMBERS)
def test_model_numbers_must_be_finite_numbers(name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        lstm_viz.build_model("lstm", 3, 4, **{name: value})


def test_analysis_takes_a_recording():
    for function in (analysis.decay_fit, analysis.recurrent_spectral_radii, analysis.gate_stats):
        with pytest.raises(
            TypeError, match=f"{function.__name__} takes a Recording \\(from lstm_viz.record\\), got dict"
        ):
            function({"log10_grad_h": np.zeros((1, 5))})
