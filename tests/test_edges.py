"""record() at the edges of floating point (issue 8): each case was wrong once and is held here
to a reference nobody here wrote the arithmetic of: float64 autograd through torch's own cells,
or a 60-digit mpmath recursion (mpmath ships with torch, through sympy), where float64
autograd itself cancels (1 - tanh(20)^2 is 0 in float64)."""

import math

import mpmath
import numpy as np
import pytest
import torch
from torch import nn

from lstm_viz import build_model, make_input, record
from lstm_viz.training import TrainConfig, Trainer

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def log10_norm(g: torch.Tensor) -> np.ndarray:
    """log10 ||g|| over the last axis without squaring tiny entries into 0."""
    peak = g.abs().amax(dim=-1, keepdim=True)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return (safe[..., 0].log10() + (g / safe).norm(dim=-1).log10()).numpy()


def autograd_float64(model, x, grad_output):
    """(B, T) log10 ||dL/dh_t|| (total) by float64 autograd through torch.nn.*Cell, one backward."""
    kwargs = {"nonlinearity": model.nonlinearity} if model.arch == "rnn" else {}
    cell = CELLS[model.arch](model.input_size, model.hidden_size, **kwargs).double()
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in model.state_dict().items()})
    x = x.double()
    h = torch.zeros(x.shape[0], model.hidden_size, dtype=torch.float64)
    state = (h, h.clone()) if model.arch == "lstm" else h
    hiddens = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        hidden = state[0] if model.arch == "lstm" else state
        hidden.retain_grad()
        hiddens.append(hidden)
    (hiddens[-1] * grad_output.double()).sum().backward()
    return np.stack([log10_norm(h.grad) for h in hiddens], axis=1)


def mpmath_reference(model, x, grad_output, digits: int = 60):
    """(T,) log10 ||dL/dh_t|| and (for the LSTM) log10 ||dL/dc_t|| of sample 0, in `digits` digits.

    The plain textbook recursion (sigmoid' = s(1 - s), tanh' = 1 - tanh^2): at 60 digits
    nothing cancels. RNN (tanh) and LSTM.
    """
    mp = mpmath.mp
    mp.dps = digits
    H, T = model.hidden_size, x.shape[1]

    def matrix(name):
        return mpmath.matrix(getattr(model, name).detach().double().tolist())

    w_ih, w_hh = matrix("weight_ih_l0"), matrix("weight_hh_l0")
    bias = mpmath.matrix((model.bias_ih_l0 + model.bias_hh_l0).detach().double().tolist())
    h, c = mpmath.matrix(H, 1), mpmath.matrix(H, 1)
    steps = []
    for t in range(T):
        a = w_ih * mpmath.matrix(x[0, t].double().tolist()) + w_hh * h + bias
        if model.arch == "rnn":
            h = a.apply(mpmath.tanh)
            steps.append((a,))
            continue
        i, f, o = (mpmath.matrix([1 / (1 + mpmath.exp(-a[k * H + j])) for j in range(H)]) for k in (0, 1, 3))
        g = mpmath.matrix([mpmath.tanh(a[2 * H + j]) for j in range(H)])
        c_prev = c
        c = mpmath.matrix([f[j] * c[j] + i[j] * g[j] for j in range(H)])
        h = mpmath.matrix([o[j] * mpmath.tanh(c[j]) for j in range(H)])
        steps.append((i, f, g, o, c_prev, c))

    def log10_norm_mp(v):
        return float(mpmath.log10(mpmath.sqrt(sum(v[j] ** 2 for j in range(H)))))

    dh = mpmath.matrix(grad_output[0].double().tolist())
    dc_next = mpmath.matrix(H, 1)
    grad_h, grad_c = np.empty(T), np.empty(T)
    for t in range(T - 1, -1, -1):
        grad_h[t] = log10_norm_mp(dh)
        if model.arch == "rnn":
            (a,) = steps[t]
            da = mpmath.matrix([dh[j] * (1 - mpmath.tanh(a[j]) ** 2) for j in range(H)])
        else:
            i, f, g, o, c_prev, c = steps[t]
            f_next = steps[t + 1][1] if t + 1 < T else mpmath.matrix(H, 1)
            dc = mpmath.matrix(
                [dh[j] * o[j] * (1 - mpmath.tanh(c[j]) ** 2) + dc_next[j] * f_next[j] for j in range(H)]
            )
            grad_c[t] = log10_norm_mp(dc)
            da = mpmath.matrix(4 * H, 1)
            for j in range(H):
                da[j] = dc[j] * g[j] * i[j] * (1 - i[j])
                da[H + j] = dc[j] * c_prev[j] * f[j] * (1 - f[j])
                da[2 * H + j] = dc[j] * i[j] * (1 - g[j] ** 2)
                da[3 * H + j] = dh[j] * mpmath.tanh(c[j]) * o[j] * (1 - o[j])
            dc_next = dc
        dh = w_hh.T * da
    return grad_h, grad_c if model.arch == "lstm" else None


# 1. Forward overflow


def test_float32_overflow_is_recorded_again_in_float64_and_says_so():
    """The app's IRNN at rho = 1.5, T = 300: float32 state passes 3.4e38 near t = 220."""
    model = build_model("rnn", 4, 64, seed=0, init="identity", spectral_radius=1.5)
    x = make_input("gaussian", 1, 300, 4, seed=0)
    rec = record(model, x)
    assert rec.dtype == "float64" and "overflows at step" in rec.float64_reason
    assert np.isfinite(rec.hidden).all() and rec.hidden.dtype == np.float64
    assert np.isfinite(rec.log10_grad_h).all()
    assert rec.log10_grad_h[0, 0] == pytest.approx(52.5, abs=0.1)  # decades gained over 299 steps
    truth = autograd_float64(model, x, torch.full((1, 64), 1 / 8))
    np.testing.assert_allclose(rec.log10_grad_h, truth, atol=1e-8)
    step = int(rec.float64_reason.split("step ")[1])
    with torch.no_grad():
        out, _ = model.fused()(x)
    assert torch.isfinite(out[0, :step]).all() and not torch.isfinite(out[0, step]).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_state_beyond_float64_raises_and_names_the_step(dtype):
    model = build_model("rnn", 4, 8, seed=0, init="identity", spectral_radius=1.5, dtype=dtype)
    x = make_input("gaussian", 1, 2500, 4, seed=0)
    with torch.no_grad():
        out, _ = model.fused().double()(x.double())
    first = int((~torch.isfinite(out[0])).any(dim=-1).nonzero()[0, 0])
    with pytest.raises(
        ValueError, match=rf"the network explodes.*at step t = {first} of 2500.*at most {first}"
    ):
        record(model, x)


def test_a_float64_model_is_recorded_in_float64_without_a_reason():
    rec = record(build_model("gru", 2, 3, dtype=torch.float64), make_input("gaussian", 1, 5, 2).double())
    assert rec.dtype == "float64" and rec.float64_reason == ""
    rec = record(build_model("gru", 2, 3), make_input("gaussian", 1, 5, 2))
    assert rec.dtype == "float32" and rec.float64_reason == ""


# 2. Saturated LSTM gates


@pytest.mark.parametrize("bias", [12.0, 20.0])
def test_saturated_lstm_gates_keep_their_derivatives(bias):
    """sigmoid(20) and tanh(20) are 1.0 in float32: s(1 - s) and 1 - g^2 gave 0 (-inf) or far too little."""
    model = build_model("lstm", 2, 4, seed=1)
    with torch.no_grad():
        model.bias_ih_l0.fill_(bias)
        model.bias_hh_l0.zero_()
    x = make_input("gaussian", 1, 20, 2, seed=3)
    rec = record(model, x)
    assert rec.dtype == "float32"  # every factor is above 1e-30: no float64 re-run needed
    grad_h, grad_c = mpmath_reference(model, x, torch.full((1, 4), 0.5))
    assert grad_h[0] < -20
    np.testing.assert_allclose(rec.log10_grad_h[0], grad_h, atol=1e-3)
    np.testing.assert_allclose(rec.log10_grad_c[0], grad_c, atol=1e-3)


def test_a_cell_state_past_float32s_tanh_slope_is_carried_in_float64():
    """Biases 20 for 60 steps: c_t ~ t, so tanh'(c_t) ~ 4 exp(-2t) leaves float32 near t = 35."""
    model = build_model("lstm", 2, 4, seed=1)
    with torch.no_grad():
        model.bias_ih_l0.fill_(20.0)
        model.bias_hh_l0.zero_()
    x = make_input("gaussian", 1, 60, 2, seed=3)
    rec = record(model, x)
    assert rec.dtype == "float64" and "below float32's range" in rec.float64_reason
    grad_h, grad_c = mpmath_reference(model, x, torch.full((1, 4), 0.5))
    np.testing.assert_allclose(rec.log10_grad_h[0], grad_h, atol=1e-8)
    np.testing.assert_allclose(rec.log10_grad_c[0], grad_c, atol=1e-8)


# 3. Derivatives below float32's range


def test_spikes_that_saturate_a_tanh_unit_give_the_finite_truth():
    """Three input spikes drive every unit to |a| ~ 60: tanh'(60) = 3e-52, 0 in float32."""
    model = build_model("rnn", 1, 3, seed=0)
    with torch.no_grad():
        model.weight_ih_l0.copy_(torch.tensor([[60.0], [-58.0], [61.0]]))
    x = torch.zeros(1, 12, 1)
    x[0, [3, 6, 9], 0] = 1.0
    rec = record(model, x)
    assert rec.dtype == "float64" and "below float32's range" in rec.float64_reason
    grad_h, _ = mpmath_reference(model, x, torch.full((1, 3), 1 / math.sqrt(3)))
    assert grad_h[0] < -150  # about 1e-155: below float32 altogether, finite all the same
    np.testing.assert_allclose(rec.log10_grad_h[0], grad_h, atol=1e-8)
    assert np.isfinite(rec.log10_grad_x).all()


def test_a_gradient_lost_below_float64s_range_raises_instead_of_returning_minus_infinity():
    """Both units at a = 400 on step 2: tanh'(400) ~ 1e-347 on every path back through step 2."""
    model = build_model("rnn", 1, 2, seed=0, dtype=torch.float64)
    with torch.no_grad():
        model.weight_ih_l0.fill_(400.0)
    x = torch.zeros(1, 6, 1, dtype=torch.float64)
    x[0, 2] = 1.0
    with pytest.raises(
        ValueError, match="gradient at step t = 1 is lost below float64's range.*scale the inputs"
    ):
        record(model, x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_counting_cell_past_float64s_tanh_slope_beside_live_units_is_exact(dtype):
    """Unit 0 counts (c_t ~ t, tanh'(c) < 1e-290 after t ~ 335): only a path that is negligible
    beside the other units' falls below float64, so the recording is exact to rounding."""
    model = build_model("lstm", 2, 3, seed=2, dtype=dtype)
    with torch.no_grad():
        for gate in range(4):
            model.bias_ih_l0[gate * 3] = 30.0  # unit 0: input, forget, candidate and output gates open
    x = make_input("gaussian", 1, 420, 2, seed=0).to(dtype)
    rec = record(model, x)
    assert rec.dtype == "float64" and rec.cell[0, -1, 0] > 400
    grad_h, grad_c = mpmath_reference(model, x, torch.full((1, 3), 1 / math.sqrt(3)), digits=30)
    np.testing.assert_allclose(rec.log10_grad_h[0], grad_h, atol=1e-8)
    np.testing.assert_allclose(rec.log10_grad_c[0], grad_c, atol=1e-8)


def test_exact_zeros_stay_exact_and_cost_no_float64_run():
    """A relu unit that is off has slope exactly 0: -inf is the truth there, not an underflow."""
    model = build_model("rnn", 1, 2, seed=0, nonlinearity="relu")
    with torch.no_grad():
        model.weight_ih_l0.fill_(-1.0)
        model.bias_ih_l0.zero_()
        model.bias_hh_l0.zero_()
    rec = record(model, torch.ones(1, 5, 1))
    assert rec.dtype == "float32"
    assert np.isneginf(rec.log10_grad_h[0, :-1]).all()


# 4. torch's global random state


def test_building_recording_and_training_leave_the_global_generator_alone():
    theirs = nn.GRU(2, 3, batch_first=True)  # built first: torch's own init draws from the global generator
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    model = build_model("lstm", 2, 3, seed=5, init="chrono", t_max=50)
    calls = [
        lambda: build_model("rnn", 2, 3, seed=5, init="orthogonal"),
        lambda: build_model("gru", 2, 3, seed=5, num_layers=2, bidirectional=True),
        lambda: make_input("sine", 2, 6, 2, seed=5),
        lambda: record(model, make_input("gaussian", 2, 6, 2)),
        lambda: record(theirs, make_input("gaussian", 2, 6, 2)),
        lambda: record(build_model("rnn", 1, 3, init="identity", spectral_radius=1.5), torch.ones(1, 250, 1)),
        lambda: Trainer(
            TrainConfig(
                task="adding", lag=10, hidden_size=4, steps=2, batch_size=4, test_size=8,
                probe_size=2, record_every=1, archs=("rnn", "lstm"),
            )
        ).advance(2),
    ]  # fmt: skip
    assert torch.equal(torch.get_rng_state(), before)
    for k, call in enumerate(calls):
        call()
        assert torch.equal(torch.get_rng_state(), before), f"call {k} moved torch's global generator"


def test_interleaved_builds_equal_sequential_ones_and_torch_modules_seeded_alike():
    sequential = [build_model("lstm", 2, 3, seed=s).state_dict() for s in (1, 2)]
    a = build_model("lstm", 2, 3, seed=1)
    torch.randn(100)  # another session drawing in between
    b = build_model("lstm", 2, 3, seed=2)
    for ours, ref in zip((a.state_dict(), b.state_dict()), sequential, strict=True):
        assert all(torch.equal(ours[k], ref[k]) for k in ref)
    torch.manual_seed(1)  # same draws as torch's own module built right after torch.manual_seed
    theirs = nn.LSTM(2, 3, batch_first=True)
    assert all(torch.equal(theirs.state_dict()[k], v) for k, v in sequential[0].items())


def test_trainer_runs_are_reproducible_whatever_the_global_generator_did():
    config = TrainConfig(
        task="adding",
        lag=10,
        hidden_size=4,
        steps=3,
        batch_size=4,
        test_size=8,
        probe_size=2,
        record_every=3,
        archs=("lstm",),
    )
    first = Trainer(config)
    first.advance(3)
    torch.randn(1000)
    second = Trainer(config)
    second.advance(3)
    np.testing.assert_array_equal(first.results()["lstm"].loss, second.results()["lstm"].loss)
