"""Derived numbers on recordings whose answer is known in closed form."""

import math

import numpy as np
import pytest
import torch

from lstm_viz import build_model, decay_fit, gate_stats, make_input, record, recurrent_spectral_radii
from lstm_viz.analysis import median_curve


def linear_rnn_recording(rho, seq_len=200, hidden_size=8):
    model = build_model("rnn", 1, hidden_size, init="orthogonal", spectral_radius=rho, dtype=torch.float64)
    with torch.no_grad():
        model.bias_ih_l0.zero_()
        model.bias_hh_l0.zero_()
    return record(model, torch.zeros(2, seq_len, 1, dtype=torch.float64))


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_decay_rate_and_half_life_of_a_linear_rnn(rho):
    fit = decay_fit(linear_rnn_recording(rho))
    assert fit.decades_per_step == pytest.approx(-math.log10(rho), rel=1e-9)
    assert fit.half_life == pytest.approx(math.log(2) / -math.log(rho), rel=1e-9)
    assert fit.line(np.array([199]))[0] == pytest.approx(0.0, abs=1e-9)


def test_an_exploding_gradient_has_a_negative_rate_and_no_half_life():
    fit = decay_fit(linear_rnn_recording(1.2))
    assert fit.decades_per_step == pytest.approx(-math.log10(1.2), rel=1e-9)
    assert fit.half_life == math.inf


def test_spectral_radius_per_block():
    rec = linear_rnn_recording(0.7)
    assert recurrent_spectral_radii(rec) == {"hidden": pytest.approx(0.7, rel=1e-9)}
    lstm = record(build_model("lstm", 1, 6, init="orthogonal", spectral_radius=0.4), torch.zeros(1, 3, 1))
    radii = recurrent_spectral_radii(lstm)
    assert set(radii) == {"input", "forget", "candidate", "output"}
    assert all(r == pytest.approx(0.4, rel=1e-5) for r in radii.values())


def test_forget_gate_statistics_and_time_constant():
    H = 4
    model = build_model("lstm", 1, H, init="forget_bias", forget_bias=math.log(9), dtype=torch.float64)
    with torch.no_grad():
        model.weight_hh_l0.zero_()  # with zero input every forget gate is sigmoid(log 9) = 0.9
    rec = record(model, torch.zeros(1, 50, 1, dtype=torch.float64))
    stats = gate_stats(rec)
    assert stats.gate == "forget"
    np.testing.assert_allclose(stats.mean, 0.9)
    np.testing.assert_allclose(stats.time_constant, 10.0)
    # 0.9 exactly in float64 rounds just above or below; either way it is not below 0.1
    np.testing.assert_array_equal(stats.frac_below, 0.0)


def test_saturation_fractions_count_steps_beyond_the_thresholds():
    rec = record(build_model("gru", 2, 5, seed=1), make_input("gaussian", 3, 40, 2))
    stats = gate_stats(rec, "reset")
    gate = rec.gates["reset"]
    np.testing.assert_allclose(stats.frac_above, (gate > 0.9).mean(axis=(0, 1)))
    assert gate_stats(rec).gate == "update"
    with pytest.raises(ValueError, match="not 'forget'"):
        gate_stats(rec, "forget")


def test_median_curve_ignores_exact_zeros():
    values = np.array([[-np.inf, 1.0], [2.0, 3.0], [4.0, -np.inf]])
    np.testing.assert_allclose(median_curve(values), [3.0, 2.0])
