"""connectivity(model, x) (issue 8): against its row identity with record(), float64 autograd
brute force through torch's own modules (one backward per output step; deep and bidirectional
too), exactness far below float32's range, the float64 re-run, the refusals and the global
generator."""

import importlib

import numpy as np
import pytest
import torch

from lstm_viz import build_model, connectivity, make_input, record
from lstm_viz.connectivity import MAX_SEQ_LEN, connectivity_bytes, connectivity_work

ARCHS = ("rnn", "lstm", "gru")
# the module, not the function of the same name that lstm_viz exports
connectivity_module = importlib.import_module("lstm_viz.connectivity")


def brute_force(module: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """(B, T, T) log10 ||d(u . y_{t_out}) / d x_{t_in}|| by float64 autograd, one backward per t_out."""
    module = module.double()
    x = x.double().requires_grad_(True)
    y, _ = module(x)
    B, T, _ = x.shape
    u = 1 / np.sqrt(y.shape[-1])
    out = np.empty((B, T, T))
    for t_out in range(T):
        (grad,) = torch.autograd.grad((y[:, t_out] * u).sum(), x, retain_graph=True)
        with np.errstate(divide="ignore"):
            out[:, t_out] = np.log10(grad.norm(dim=-1).numpy())
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_each_row_is_records_input_gradient_on_that_prefix(arch):
    model = build_model(arch, 3, 5, seed=1)
    x = make_input("gaussian", 2, 9, 3, seed=2)
    values = connectivity(model, x)
    assert values.shape == (2, 9, 9) and values.dtype == np.float64
    for t_out in range(9):
        row = record(model, x[:, : t_out + 1]).log10_grad_x
        np.testing.assert_allclose(values[:, t_out, : t_out + 1], row, atol=1e-5)
        assert np.isneginf(values[:, t_out, t_out + 1 :]).all()  # the future cannot move the past


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_modules_match_float64_autograd(arch, dtype):
    model = build_model(arch, 2, 4, seed=3, dtype=dtype)
    module = model.fused()
    x = make_input("gaussian", 2, 8, 2, seed=4)
    truth = brute_force(model.fused(), x)
    values = connectivity(module, x)
    lower = np.tril(np.ones((8, 8), dtype=bool))
    atol = 1e-10 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(values[:, lower], truth[:, lower], atol=atol)
    assert np.isneginf(values[:, ~lower]).all()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(2, False), (1, True), (3, True)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_deep_and_bidirectional_models_match_float64_autograd(
    arch, num_layers, bidirectional, dtype, monkeypatch
):
    """Through every layer and both directions (y: both directions concatenated); blocks of 3
    output positions, so the block seams are crossed too."""
    monkeypatch.setattr(
        connectivity_module, "_BLOCK_BYTES", 3 * 4 * 8 * 7 * 2 * (2 if bidirectional else 1) * 4
    )
    model = build_model(arch, 2, 4, seed=3, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype)
    x = make_input("gaussian", 2, 7, 2, seed=4)
    truth = brute_force(model.fused(), x)
    for given in (model, model.fused()):
        values = connectivity(given, x)
        finite = np.isfinite(truth)
        assert np.array_equal(np.isfinite(values), finite)
        np.testing.assert_allclose(
            values[finite], truth[finite], atol=1e-5 if dtype == torch.float32 else 1e-10
        )
    if not bidirectional:
        assert not finite[:, np.triu(np.ones((7, 7), dtype=bool), 1)].any()
        np.testing.assert_allclose(values[:, 4, :5], record(model, x[:, :5]).log10_grad_x, atol=1e-5)
    else:
        assert finite.all()  # the backward direction hears the future


def test_a_default_tanh_rnn_stays_exact_two_hundred_decades_down():
    """Entries near t_in = 0 at T = 400 are far below 1e-38: the float32 sweep carries them."""
    model = build_model("rnn", 1, 32, seed=0)
    x = make_input("gaussian", 1, 400, 1, seed=0)
    values = connectivity(model, x)
    assert np.isfinite(values[0][np.tril(np.ones((400, 400), dtype=bool))]).all()
    assert values[0, -1, 0] < -40
    np.testing.assert_allclose(values[0, -1], record(model, x).log10_grad_x[0], atol=1e-3)
    short = brute_force(model.fused(), x[:, :60])  # float64 autograd where it still fits
    np.testing.assert_allclose(values[0, 59, :60], short[0, 59], atol=1e-3)


def test_a_deep_rnn_stays_exact_far_below_float32s_range():
    """Two tanh layers, T = 300: the last output's row reaches far below 1e-38 and is record()'s."""
    model = build_model("rnn", 1, 16, seed=0, num_layers=2)
    x = make_input("gaussian", 1, 300, 1, seed=0)
    values = connectivity(model, x)
    assert np.isfinite(values[0][np.tril(np.ones((300, 300), dtype=bool))]).all()
    assert values[0, -1, 0] < -40
    np.testing.assert_allclose(values[0, -1], record(model, x).log10_grad_x[0], atol=1e-3)


def test_float32_overflow_runs_again_in_float64_like_record():
    """The app's IRNN at rho = 1.5 overflows float32 near t = 220; rows stay record()'s."""
    model = build_model("rnn", 2, 8, seed=0, init="identity", spectral_radius=1.5)
    x = make_input("gaussian", 1, 300, 2, seed=0)
    values = connectivity(model, x)
    rec = record(model, x)
    assert rec.dtype == "float64"
    np.testing.assert_allclose(values[0, -1], rec.log10_grad_x[0], atol=1e-8)


def test_refuses_long_sequences_projections_and_runs_over_the_memory_limit():
    model = build_model("lstm", 1, 4, seed=0)
    long = make_input("gaussian", 1, MAX_SEQ_LEN + 1, 1, seed=0)
    with pytest.raises(ValueError, match=r"at most 2,000 steps.*got 2,001 \(about .* GiB\)"):
        connectivity(model, long)
    x = make_input("gaussian", 1, 50, 1, seed=0)
    need = connectivity_bytes("lstm", 1, 50, 4, 1)
    with pytest.raises(ValueError, match=r"needs about .* GiB .*over the limit of"):
        connectivity(model, x, max_bytes=need - 1)
    assert connectivity(model, x, max_bytes=need).shape == (1, 50, 50)
    deep = build_model("lstm", 1, 4, seed=0, num_layers=2, bidirectional=True)
    need = connectivity_bytes("lstm", 1, 50, 4, 1, num_layers=2, num_directions=2)
    assert need < 4 * 2**20  # a small deep run reserves no 512 MiB block of output positions
    with pytest.raises(ValueError, match=r"needs about .* GiB .*over the limit of"):
        connectivity(deep, x, max_bytes=need - 1)
    assert connectivity(deep, x, max_bytes=need).shape == (1, 50, 50)
    with pytest.raises(ValueError, match="with biases, no projection"):
        connectivity(torch.nn.LSTM(1, 4, proj_size=2, batch_first=True), x)


def test_work_counts_the_adjoint_steps_of_each_path():
    one = connectivity_work("lstm", 1, 100, 8, 2)
    assert one == 100**2 / 2 * 4 * 8 * (8 + 2)  # T^2/2 steps back, each one (4H) x (H + I) product
    assert connectivity_work("lstm", 3, 100, 8, 2) == 3 * one
    assert connectivity_work("lstm", 1, 100, 8, 2, num_directions=2) == 4 * one  # all T steps, twice
    assert connectivity_work("rnn", 1, 100, 8, 2, num_layers=2) == 100**2 * (8 * 10 + 8 * 16)  # T^2 a layer


def test_progress_rises_to_one_and_the_global_generator_is_untouched():
    model = build_model("gru", 2, 4, seed=0)
    x = make_input("gaussian", 1, 40, 2, seed=0)
    before = torch.get_rng_state()
    seen = []
    connectivity(model, x, progress=seen.append)
    assert torch.equal(torch.get_rng_state(), before)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 10


def test_relu_units_that_are_off_give_exact_zeros():
    """Nonpositive inputs into a relu RNN with positive-only input weights: nothing is on, so no
    input moves any output; -inf everywhere, not an error."""
    model = build_model("rnn", 1, 4, seed=0, nonlinearity="relu")
    with torch.no_grad():
        model.weight_ih_l0.abs_()
        model.bias_ih_l0.fill_(-1.0)
        model.bias_hh_l0.zero_()
    x = -make_input("gaussian", 1, 6, 1, seed=0).abs()
    assert np.isneginf(connectivity(model, x)).all()
