"""record() against brute force, closed forms and invariants; its errors."""

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lstm_viz import build_model, estimate_bytes, make_input, record

ARCHS = ["rnn", "lstm", "gru"]
TORCH_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def brute_force(model, x, grad_output):
    """Every log10 ||dL/d._t|| by restarting PyTorch's own module from the state at step t.

    One autograd call per step, in float64: slow and obviously right.
    """
    kwargs = {"nonlinearity": model.nonlinearity} if model.arch == "rnn" else {}
    ref = TORCH_MODULES[model.arch](model.input_size, model.hidden_size, batch_first=True, **kwargs)
    ref = ref.double()
    ref.load_state_dict(model.state_dict())
    B, T, _ = x.shape
    lstm = model.arch == "lstm"
    grad_h, grad_c = np.empty((B, T)), np.empty((B, T))
    with torch.no_grad():  # the states after every step, by stepping the fused module
        states = []
        state = None
        for t in range(T):
            _, state = ref(x[:, t : t + 1], state)
            states.append(state)

    def loss_from(t, h, c):
        if t + 1 == T:
            return (h[0] * grad_output).sum()
        out, _ = ref(x[:, t + 1 :], (h, c) if lstm else h)
        return (out[:, -1] * grad_output).sum()

    for t in range(T):
        h = (states[t][0] if lstm else states[t]).clone().requires_grad_(True)
        c = states[t][1] if lstm else None
        (g_h,) = torch.autograd.grad(loss_from(t, h, c), [h])
        grad_h[:, t] = g_h[0].norm(dim=-1).log10().numpy()
        if lstm:  # dL/dc_t in total: through c_{t+1} and through h_t = o_t tanh(c_t)
            c = c.clone().requires_grad_(True)
            H = model.hidden_size
            h_prev = states[t - 1][0][0] if t else torch.zeros_like(h[0])
            pre = x[:, t] @ ref.weight_ih_l0.T + ref.bias_ih_l0 + h_prev @ ref.weight_hh_l0.T + ref.bias_hh_l0
            o = pre[:, 3 * H :].sigmoid()
            (g_c,) = torch.autograd.grad(loss_from(t, (o * c[0].tanh())[None], c), [c])
            grad_c[:, t] = g_c[0].norm(dim=-1).log10().numpy()
    xg = x.clone().requires_grad_(True)
    out, _ = ref(xg)
    (out[:, -1] * grad_output).sum().backward()
    grad_x = xg.grad.norm(dim=-1).log10().numpy()
    return grad_h, grad_c if lstm else None, grad_x


@pytest.mark.parametrize(
    ("arch", "kwargs"), [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})]
)
@pytest.mark.parametrize("seq_len", [1, 5, 37])
def test_every_gradient_norm_matches_brute_force(arch, kwargs, seq_len):
    model = build_model(arch, 3, 4, seed=seq_len, dtype=torch.float64, **kwargs)
    x = make_input("gaussian", 2, seq_len, 3, seed=1).double()
    grad_output = torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    rec = record(model, x, grad_output=grad_output)
    grad_h, grad_c, grad_x = brute_force(model, x, grad_output)
    np.testing.assert_allclose(rec.log10_grad_h, grad_h, atol=1e-9)
    np.testing.assert_allclose(rec.log10_grad_x, grad_x, atol=1e-9)
    if arch == "lstm":
        np.testing.assert_allclose(rec.log10_grad_c, grad_c, atol=1e-9)
    else:
        assert rec.log10_grad_c is None


@pytest.mark.parametrize("arch", ARCHS)
def test_float32_matches_float64(arch):
    model64 = build_model(arch, 2, 8, seed=3, dtype=torch.float64)
    model32 = build_model(arch, 2, 8, dtype=torch.float32)
    model32.load_state_dict(model64.state_dict())
    x = make_input("sine", 3, 200, 2, seed=2)
    rec64, rec32 = record(model64, x), record(model32, x)
    assert rec32.hidden.dtype == np.float32
    np.testing.assert_allclose(rec32.log10_grad_h, rec64.log10_grad_h, atol=1e-4)
    np.testing.assert_allclose(rec32.log10_grad_x, rec64.log10_grad_x, atol=1e-4)


def test_default_loss_enters_the_last_step_with_norm_one():
    model = build_model("lstm", 2, 9, seed=0)
    rec = record(model, make_input("gaussian", 3, 12, 2))
    np.testing.assert_allclose(rec.log10_grad_h[:, -1], 0.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rho", [0.3, 0.9])
def test_linear_regime_rnn_decays_exactly_as_rho_to_the_lag_even_at_ten_thousand_steps(rho, dtype):
    """tanh RNN, zero input and biases: h stays 0, the Jacobian is W_hh = rho Q exactly."""
    T, H = 10_000, 8
    model = build_model("rnn", 1, H, init="orthogonal", spectral_radius=rho, seed=1, dtype=dtype)
    with torch.no_grad():
        model.bias_ih_l0.zero_()
        model.bias_hh_l0.zero_()
    grad_output = torch.full((1, H), 3.0)
    rec = record(model, torch.zeros(1, T, 1), grad_output=grad_output)
    lag = T - 1 - np.arange(T)
    expected = lag * math.log10(rho) + math.log10(3.0 * math.sqrt(H))
    assert np.isfinite(rec.log10_grad_h).all()
    assert rec.log10_grad_h[0, 0] < -400  # far below float64's smallest number, still carried
    np.testing.assert_allclose(rec.log10_grad_h[0], expected, atol=1e-3 if dtype == torch.float32 else 1e-9)


def test_lstm_cell_gradient_falls_as_forget_gate_to_the_lag():
    """W_hh = 0, zero input: dL/dc_t = dL/dc_{T-1} f^(T-1-t), the constant error carousel."""
    T, H = 3000, 4
    model = build_model("lstm", 1, H, init="forget_bias", forget_bias=3.0, dtype=torch.float64)
    with torch.no_grad():
        model.weight_hh_l0.zero_()
    rec = record(model, torch.zeros(1, T, 1, dtype=torch.float64))
    f = rec.gates["forget"][0, 0, 0]
    expected_f = 1 / (1 + math.exp(-3.0 - model.bias_hh_l0[H].item() * 0))
    assert f == pytest.approx(expected_f, rel=1e-12)
    lag = T - 1 - np.arange(T)
    np.testing.assert_allclose(rec.log10_grad_c[0], rec.log10_grad_c[0, -1] + lag * math.log10(f), atol=1e-8)


@pytest.mark.parametrize("arch", ARCHS)
def test_ten_thousand_steps_never_underflow(arch):
    model = build_model(arch, 2, 16, seed=0)
    rec = record(model, make_input("gaussian", 1, 10_000, 2, seed=0))
    for values in (rec.log10_grad_h, rec.log10_grad_x, rec.log10_grad_c):
        if values is not None:
            assert np.isfinite(values).all()
    assert rec.log10_grad_h[0, 0] < -100


def test_exploding_gradients_are_a_result_not_a_crash():
    model = build_model("rnn", 1, 8, init="orthogonal", spectral_radius=3.0, seed=0)
    with torch.no_grad():
        model.bias_ih_l0.zero_()
        model.bias_hh_l0.zero_()
    rec = record(model, torch.zeros(1, 2000, 1))
    assert np.isfinite(rec.log10_grad_h).all()
    assert rec.log10_grad_h[0, 0] == pytest.approx(1999 * math.log10(3.0), abs=1e-2)


def test_steps_that_lose_thirty_decades_each_are_still_carried():
    """Saturated tanh: tanh'(a) ~ 4 exp(-2|a|) is ~1e-30 at |a| = 36; float32 ends at 1e-38."""
    model = build_model("rnn", 1, 2, dtype=torch.float32)
    with torch.no_grad():
        model.weight_hh_l0.copy_(torch.eye(2))
        model.weight_ih_l0.fill_(35.0)
        model.bias_ih_l0.zero_()
        model.bias_hh_l0.zero_()
    x = torch.ones(1, 40, 1)
    rec = record(model, x)
    assert np.isfinite(rec.log10_grad_h).all()
    steps = np.diff(rec.log10_grad_h[0])
    assert steps.min() > 29  # every step back loses ~30 decades, and each is kept


@pytest.mark.parametrize("arch", ARCHS)
def test_gate_ranges_and_the_lstm_output_identity(arch):
    rec = record(build_model(arch, 3, 6, seed=2), make_input("gaussian", 2, 30, 3))
    assert rec.hidden.shape == (2, 30, 6)
    for name, values in rec.gates.items():
        assert values.shape == (2, 30, 6)
        low = -1 if name == "candidate" else 0
        assert values.min() > low and values.max() < 1, name
    if arch == "lstm":
        np.testing.assert_allclose(rec.hidden, rec.gates["output"] * np.tanh(rec.cell), atol=1e-6)
    else:
        assert rec.cell is None
    assert (
        set(rec.gates)
        == {
            "rnn": set(),
            "lstm": {"input", "forget", "candidate", "output"},
            "gru": {"reset", "update", "candidate"},
        }[arch]
    )


def test_model_mode_parameters_and_threads_are_left_as_they_were():
    model = build_model("lstm", 2, 3).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    record(model, make_input("uniform", 1, 5, 2))
    assert torch.get_num_threads() == threads  # record() runs on one thread, then restores
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_pytorch_modules_can_be_recorded_directly():
    torch.manual_seed(0)
    theirs = nn.LSTM(2, 5, batch_first=True)
    ours = build_model("lstm", 2, 5)
    ours.load_state_dict(theirs.state_dict())
    x = make_input("gaussian", 1, 20, 2)
    np.testing.assert_array_equal(record(theirs, x).log10_grad_h, record(ours, x).log10_grad_h)


def test_tidy_frame_round_trips_through_csv_and_parquet(tmp_path):
    rec = record(build_model("lstm", 2, 3), make_input("gaussian", 2, 4, 2), label="LSTM")
    frame = rec.to_frame()
    assert list(frame.columns) == ["arch", "sample", "t", "unit", "quantity", "value"]
    # per step: 3 norms x B x T; per unit: hidden, cell and 4 gates x B x T x H
    assert len(frame) == 3 * 2 * 4 + 6 * 2 * 4 * 3
    cell = frame.query("quantity == 'cell' and sample == 1 and t == 2 and unit == 0")["value"]
    assert cell.item() == pytest.approx(float(rec.cell[1, 2, 0]))
    frame.to_csv(tmp_path / "r.csv", index=False)
    frame.to_parquet(tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(back, frame)
    assert len(pd.read_csv(tmp_path / "r.csv")) == len(frame)
    assert len(rec.to_frame(per_unit=False)) == 3 * 2 * 4


def test_memory_estimate_refuses_a_run_over_the_limit_and_says_how_much():
    model = build_model("lstm", 2, 512)
    need = estimate_bytes("lstm", 32, 10_000, 512, 2)
    assert need > 4 * 2**30  # the measured ~5 GB for this case
    with pytest.raises(ValueError, match=r"needs about \d+\.\d+ GiB.*raise max_bytes"):
        record(model, torch.zeros(32, 10_000, 2))
    small = record(model, torch.zeros(1, 3, 2), max_bytes=need)
    assert small.seq_len == 3


@pytest.mark.parametrize("arch", ARCHS)
def test_memory_estimate_covers_what_a_run_really_holds(arch):
    # VmHWM (Linux) is the peak resident size of the child's own image; ru_maxrss would
    # start from pytest's peak and hide the run's memory.
    code = (
        "import torch, lstm_viz as lv\n"
        "def peak(): return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024\n"
        f"m = lv.build_model('{arch}', 4, 256); x = torch.randn(4, 1000, 4)\n"
        "lv.record(m, x[:, :20])\n"  # load the compiled kernels first: they are not the run's memory
        "before = peak()\n"
        "rec = lv.record(m, x)\n"
        f"print(peak() - before, lv.estimate_bytes('{arch}', 4, 1000, 256, 4))\n"
    )
    used, estimate = map(int, subprocess.check_output([sys.executable, "-c", code], text=True).split())
    assert 0.3 * estimate < used <= estimate  # the measurement sees the run, and the estimate covers it


@pytest.mark.parametrize(
    ("x", "kwargs", "message"),
    [
        (torch.zeros(4, 3), {}, "x must have shape"),
        (torch.zeros(1, 4, 5), {}, "x has 5 features per step but the model takes input_size=2"),
        (torch.zeros(1, 4, 2, dtype=torch.int64), {}, "x must hold floats"),
        (torch.tensor([[[0.0, math.nan]]]), {}, "NaN or infinite"),
        (torch.zeros(1, 0, 2), {}, "at least one sample and one step"),
        ([[[0.0, 1.0]]], {}, "x must be a torch.Tensor or numpy array"),
        (
            torch.zeros(2, 4, 2),
            {"grad_output": torch.zeros(2, 5)},
            r"grad_output must have shape .* \(2, 3\)",
        ),
        (torch.zeros(2, 4, 2), {"grad_output": torch.full((2, 3), math.inf)}, "grad_output must hold finite"),
    ],
)
def test_bad_input_raises_a_value_error_that_says_what_is_allowed(x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        record(build_model("rnn", 2, 3), x, **kwargs)


def test_modules_that_cannot_be_recorded_are_refused():
    for module in (nn.LSTM(2, 3, proj_size=2), nn.GRU(2, 3, bias=False), nn.RNN(2, 3, num_layers=5)):
        with pytest.raises(
            ValueError, match="only torch modules with biases, no projection and 1 to 4 layers"
        ):
            record(module, torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="model must come from lstm_viz.build_model"):
        record(nn.Linear(2, 3), torch.zeros(1, 2, 2))


def test_the_library_never_imports_streamlit():
    code = "import sys, lstm_viz, lstm_viz.analysis; print('streamlit' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "False"


def test_progress_is_reported_in_order_up_to_one():
    seen = []
    record(build_model("lstm", 2, 4), make_input("gaussian", 1, 300, 2), progress=seen.append)
    assert len(seen) >= 3
    assert seen == sorted(seen) and 0 < seen[0] < 1 and seen[-1] == pytest.approx(1.0)
