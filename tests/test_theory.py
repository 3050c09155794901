"""Theory against measurement: Lyapunov exponents, Jacobian singular values, closed-form
decay estimates and the Pascanu bound, checked against closed forms, torch.autograd,
400-digit mpmath products and record()'s measured slopes.

Tolerances are what these seeded configs measured, with some room (numbers in comments).
"""

import math

import numpy as np
import pytest
import torch

from lstm_viz import build_model, decay_fit, make_input, record, theory
from lstm_viz.analysis import median_curve
from lstm_viz.figures import FLOORS, floor_lines, floors_in_view
from lstm_viz.theory_figures import theory_figure


def _cell_jacobian(model, x_t, state_vector):
    """ds_t/ds_{t-1} of one sample by torch.autograd on the model's own cell."""
    H = model.hidden_size

    def step(s):
        state = (s[:H][None], s[H:][None]) if model.arch == "lstm" else (s[None],)
        return torch.cat([part[0] for part in model.cell(x_t[None], state)])

    return torch.autograd.functional.jacobian(step, state_vector).numpy()


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_step_jacobians_match_autograd(arch):
    model = build_model(arch, 3, 4, seed=1, dtype=torch.float64)
    x = make_input("gaussian", 2, 5, 3, seed=2).double()
    jac = theory.step_jacobians(model, x)
    assert jac.shape == (5, 2, 8 if arch == "lstm" else 4, 8 if arch == "lstm" else 4)
    state = model.initial_state(2)
    for t in range(5):
        for b in range(2):
            expected = _cell_jacobian(model, x[b, t], torch.cat([part[b] for part in state]))
            np.testing.assert_allclose(jac[t, b], expected, rtol=0, atol=1e-13)
        state = model.cell(x[:, t], state)


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.3])
def test_lyapunov_exponents_of_rho_identity_with_every_relu_unit_active(rho):
    model = build_model("rnn", 2, 6, init="identity", spectral_radius=rho, dtype=torch.float64)
    with torch.no_grad():
        model.bias_ih_l0.fill_(1.0)  # pre-activations >= 1: every unit active, J_t = rho I
        model.weight_ih_l0.abs_()
    x = make_input("uniform", 3, 50, 2, seed=0).abs()
    exponents = theory.lyapunov_exponents(model, x, 6, per_sample=True)
    assert exponents.shape == (3, 6)
    np.testing.assert_allclose(exponents, math.log10(rho), rtol=0, atol=1e-12)
    assert theory.lyapunov_exponents(model, x, 2).shape == (2,)


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_lyapunov_exponents_of_gated_models_against_explicit_products(arch):
    model = build_model(arch, 3, 4, seed=3, dtype=torch.float64)
    x = make_input("gaussian", 2, 30, 3, seed=4).double()
    jac = theory.step_jacobians(model, x)
    n = jac.shape[-1]
    exponents = theory.lyapunov_exponents(model, x, n, per_sample=True)
    top = theory.lyapunov_exponents(model, x, 1, per_sample=True)[:, 0]
    for b in range(2):
        # all n together: the volume growth, log10 |det| of the product (LAPACK's slogdet)
        volume = sum(np.linalg.slogdet(jac[t, b])[1] for t in range(1, 30)) / math.log(10)
        assert exponents[b].sum() * 29 == pytest.approx(volume, abs=1e-9)
        start = np.zeros(n)
        start[:4] = 0.5  # record()'s loss direction (1, ..., 1) / sqrt(H) on h
        for t in range(29, 0, -1):
            start = jac[t, b].T @ start
        assert top[b] * 29 == pytest.approx(math.log10(np.linalg.norm(start)), abs=1e-9)


def test_top_lyapunov_exponent_is_minus_the_measured_slope_of_a_tanh_rnn_at_t_3000():
    model = build_model("rnn", 4, 64, seed=0)
    x = make_input("gaussian", 4, 3000, 4, seed=0)
    rec = record(model, x)
    exponents = theory.lyapunov_exponents(model, x, 3, per_sample=True)
    measured = decay_fit(rec).decades_per_step  # 0.2356 here
    assert np.median(exponents[:, 0]) == pytest.approx(-measured, abs=0.01)  # measured gap 0.0004
    assert (np.diff(exponents, axis=1) <= 0).all()  # largest first
    # With k = 1 the frame starts on record()'s loss direction: the exponent is exactly the
    # end-to-end slope of that sample's measured curve (float32 recording: 1e-6).
    np.testing.assert_allclose(exponents[:, 0], rec.log10_grad_h[:, 0] / 2999, atol=1e-6)


def test_singular_values_match_a_float64_product_on_a_short_run():
    for arch in ("rnn", "lstm", "gru"):
        model = build_model(arch, 3, 4, seed=1, dtype=torch.float64)
        x = make_input("gaussian", 2, 8, 3, seed=2).double()
        jac = theory.step_jacobians(model, x)
        got = theory.jacobian_singular_values(model, x, 4, per_sample=True)
        for b in range(2):
            product = np.eye(jac.shape[-1])
            for t in range(1, 8):
                product = jac[t, b] @ product
            expected = np.log10(np.linalg.svd(product[:4, :4], compute_uv=False))  # dh_7/dh_0
            np.testing.assert_allclose(got[b], expected, rtol=0, atol=1e-12)


def test_singular_values_far_below_float64_match_a_400_digit_product():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 400
    T = 120
    for arch in ("rnn", "lstm"):
        model = build_model(arch, 3, 4, seed=1, dtype=torch.float64)
        x = make_input("gaussian", 1, T, 3, seed=2).double()
        jac = theory.step_jacobians(model, x)
        product = mpmath.eye(jac.shape[-1])
        for t in range(1, T):
            product = mpmath.matrix(jac[t, 0].tolist()) * product
        exact = mpmath.svd_r(product[0:4, 0:4], compute_uv=False)
        expected = sorted((float(mpmath.log10(s)) for s in exact), reverse=True)
        got = theory.jacobian_singular_values(model, x, 4)
        assert expected[-1] < -40  # spread over tens of decades (rnn -35 .. -91, lstm -22 .. -52)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)  # measured 4e-14


@pytest.mark.parametrize(
    "log10_rates",
    [
        np.log10([1.0, 0.5, 0.1, 0.01]),  # 0 .. -400 decades, split where the rows jump
        -0.03 * np.arange(64),  # 6 decades apart, 378 in all: split at the widest gap
    ],
)
def test_singular_values_of_a_diagonal_relu_rnn_below_float64s_range(log10_rates):
    H = len(log10_rates)
    model = build_model("rnn", 1, H, init="identity", dtype=torch.float64)
    with torch.no_grad():
        model.weight_hh_l0.copy_(torch.diag(torch.from_numpy(10.0**log10_rates)))
        model.bias_hh_l0.fill_(1.0)
    x = torch.zeros(1, 201, 1, dtype=torch.float64)
    got = theory.jacobian_singular_values(model, x, H)
    np.testing.assert_allclose(got, 200 * log10_rates, rtol=0, atol=1e-9)


def test_bad_arguments_say_how_to_fix_them():
    model = build_model("lstm", 2, 3)
    x = torch.zeros(1, 4, 2)
    with pytest.raises(ValueError, match="between 1 and 6"):
        theory.lyapunov_exponents(model, x, 7)
    with pytest.raises(ValueError, match="between 1 and 3"):
        theory.jacobian_singular_values(model, x, 4)
    with pytest.raises(ValueError, match=r"\(batch, seq_len, 2\)"):
        theory.lyapunov_exponents(model, torch.zeros(1, 4, 3), 1)
    with pytest.raises(ValueError, match="plain RNN"):
        theory.bound_curve(record(model, x))
    with pytest.raises(ValueError, match="raise max_bytes"):
        theory.jacobian_singular_values(model, x, 1, max_bytes=1000)
    with pytest.raises(ValueError, match="num_layers=1"):
        theory.lyapunov_exponents(torch.nn.LSTM(2, 3, num_layers=2), x, 1)
    torch_lstm = torch.nn.LSTM(2, 3, batch_first=True)  # PyTorch's own module, same weights
    torch_lstm.load_state_dict(model.state_dict())
    ours, theirs = theory.lyapunov_exponents(model, x, 2), theory.lyapunov_exponents(torch_lstm, x, 2)
    np.testing.assert_array_equal(ours, theirs)


def _rnn_recording(seed, **kwargs):
    model = build_model("rnn", 4, 64, seed=seed, **kwargs)
    return record(model, make_input("gaussian", 4, 300, 4, seed=seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rnn_estimates_against_measurement(seed):
    rec = _rnn_recording(seed)
    by_name = {e.name: e.decades_per_step for e in theory.estimates(rec)}
    measured = decay_fit(rec).decades_per_step  # 0.237, 0.258, 0.249
    # default tanh init: per-step off by 0.0022, 0.0010, 0.0000; mean field 0.021, 0.004, 0.006
    assert by_name["per-step: spectral radius x mean slope"] == pytest.approx(measured, abs=0.005)
    assert by_name["mean field"] == pytest.approx(measured, abs=0.03)
    for rho in (0.9, 1.2):  # orthogonal W_hh, mean field's best case: off by <= 0.0012
        rec = _rnn_recording(seed, init="orthogonal", spectral_radius=rho)
        mean_field = {e.name: e.decades_per_step for e in theory.estimates(rec)}["mean field"]
        assert mean_field == pytest.approx(decay_fit(rec).decades_per_step, abs=0.003)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lstm_cell_path_estimates_against_measurement(seed):
    x = make_input("gaussian", 4, 300, 4, seed=seed)
    # With the path through W_hh made weak, the gradient rides the cell path alone and the
    # best-kept unit sets the slope: measured gaps 0.0011, 0.0015, 0.0015 (default init)
    # and 0.0003, 0.0005, 0.0005 (forget bias 2, where the mean log10 f is off by 0.0005 too).
    for kwargs in ({}, {"init": "forget_bias", "forget_bias": 2.0}):
        model = build_model("lstm", 4, 64, seed=seed, **kwargs)
        with torch.no_grad():
            model.weight_hh_l0.mul_(0.02)
        rec = record(model, x)
        est = [e.decades_per_step for e in theory.estimates(rec)]
        measured = decay_fit(rec).decades_per_step
        assert est[1] == pytest.approx(measured, abs=0.003)
        if kwargs:
            assert est[0] == pytest.approx(measured, abs=0.002)
    # At PyTorch's default init the path through W_hh carries gradient too: the cell path
    # predicts 0.30 decades/step where 0.19-0.20 is measured, the Lyapunov exponent 0.002 off.
    model = build_model("lstm", 4, 64, seed=seed)
    rec = record(model, x)
    table = theory.theory_table(rec, extra={rec.name: [theory.lyapunov_estimate(model, x)]})
    difference = dict(zip(table["estimate"], table["difference"], strict=True))
    assert 0.09 < difference["cell path: mean log10 of the forget gate"] < 0.13
    assert abs(difference["top Lyapunov exponent"]) < 0.005


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pascanu_bound_holds_and_is_loose_at_default_init(seed):
    rec = _rnn_recording(seed)
    bound = theory.bound_curve(rec)
    assert bound.shape == (300,)
    assert (rec.log10_grad_h <= bound + 1e-5).all()  # every sample, every step
    assert np.linalg.norm(rec.weight_hh, 2) > 1  # sigma_1 1.13, 1.12, 1.09: the bound grows back
    assert 80 < theory.bound_gap(rec) < 100  # measured 87.3, 92.4, 85.5 decades at t = 0
    assert bound[-1] == pytest.approx(0.0, abs=1e-6)


def test_theory_table_rows_and_signs():
    rnn = _rnn_recording(0)
    lstm = record(build_model("lstm", 4, 8, seed=0), make_input("gaussian", 2, 20, 4, seed=0))
    gru = record(build_model("gru", 4, 8, seed=0), make_input("gaussian", 2, 20, 4, seed=0))
    table = theory.theory_table(rnn, lstm, gru)
    assert list(table.columns) == ["model", "estimate", "predicted", "measured", "difference", "note"]
    assert list(table["model"]) == ["RNN"] * 3 + ["LSTM"] * 2 + ["GRU"] * 2
    np.testing.assert_allclose(table["difference"], table["predicted"] - table["measured"])
    bound_row = table[table["estimate"] == "Pascanu et al. bound"].iloc[0]
    assert bound_row["predicted"] == pytest.approx(-theory.pascanu_rate(rnn))  # < 0: grows back
    assert bound_row["predicted"] < 0 < bound_row["measured"]


def test_theory_figure_traces_and_floors():
    rec = _rnn_recording(0)
    ests = theory.estimates(rec)[:2]
    fig = theory_figure(rec, ests)
    names = [trace.name for trace in fig.data]
    assert names[0] == "RNN measured (batch median)"
    assert names[1].startswith("per-step") and names[2].startswith("mean field")
    assert names[3].startswith("Pascanu et al. bound")
    assert [trace.meta["floor"] for trace in fig.data[4:]] == ["float32"]  # data reach -70
    assert "returns exactly 0" in fig.data[4].hovertemplate
    assert fig.data[4].y[0] == pytest.approx(-37.93, abs=0.01)
    assert fig.layout.xaxis.title.text == "t (step)"
    assert "(decades)" in fig.layout.yaxis.title.text
    line = fig.data[1]  # anchored at (T-1, 0), rising by the estimate per step
    assert line.y[1] == pytest.approx(median_curve(rec.log10_grad_h)[-1])
    assert (line.y[1] - line.y[0]) / 299 == pytest.approx(ests[0].decades_per_step)
    assert fig.data[3].y[0] == pytest.approx(theory.bound_curve(rec)[0])
    gated = theory_figure(record(build_model("lstm", 4, 8), torch.zeros(1, 30, 4)), bound=True)
    assert [trace.name for trace in gated.data] == ["LSTM measured (batch median)"]  # no bound, no floor


def test_floor_lines_only_near_the_data():
    assert floors_in_view(-5.0) == []
    assert floors_in_view(-30.0) == ["float32"]
    assert floors_in_view(-280.0) == ["float32", "float64"]
    assert FLOORS["float64"] == pytest.approx(-307.65, abs=0.01)
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[3, 9], y=[0, -300]))
    floor_lines(fig, -300.0)
    assert [trace.meta["floor"] for trace in fig.data[1:]] == ["float32", "float64"]
    assert list(fig.data[2].x) == [3.0, 9.0]
