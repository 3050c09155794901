"""Deep and bidirectional recordings against float64 autograd through torch's own cells."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from lstm_viz import build_model, estimate_bytes, make_input, record

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def log10_norm(g: torch.Tensor) -> np.ndarray:
    peak = g.abs().amax(dim=-1, keepdim=True)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return (safe[..., 0].log10() + (g / safe).norm(dim=-1).log10()).numpy()


def autograd_reference(model, x, grad_output):
    """Every layer and direction's (B, T) log10 ||dL/dh_t||, ||dL/dc_t|| (LSTM), ||dL/d input_t||
    (input order), and ||dL/dx_t|| for the network input, by one float64 backward through
    torch.nn.*Cells stepped over time, stacked layer on layer. Its outputs are checked against
    torch's fused module holding the same weights first.

    grad_output: (B, D*H) into the top layer's final states (forward at T-1, backward at 0),
    or (B, T, D*H) into its output at every step.
    """
    L, D = getattr(model, "num_layers", 1), getattr(model, "num_directions", 1)
    H = model.hidden_size
    kwargs = {"nonlinearity": model.nonlinearity} if model.arch == "rnn" else {}
    module = MODULES[model.arch](
        model.input_size, H, num_layers=L, bidirectional=D == 2, batch_first=True, **kwargs
    ).double()
    module.load_state_dict(model.state_dict())
    state = module.state_dict()
    x = x.double().clone().requires_grad_(True)
    B, T, _ = x.shape
    inputs, kept = x, {}
    for layer in range(L):
        outputs = []
        for d in range(D):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            cell = CELLS[model.arch](inputs.shape[-1], H, **kwargs).double()
            cell.load_state_dict(
                {k: state[f"{k}{suffix}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            )
            own = inputs.clone()  # this direction's own copy: its gradient is this direction's alone
            own.retain_grad()
            h = torch.zeros(B, H, dtype=torch.float64)
            carried = (h, h.clone()) if model.arch == "lstm" else h
            hs, cs = [None] * T, [None] * T
            for t in reversed(range(T)) if d else range(T):
                carried = cell(own[:, t], carried)
                h, c = carried if model.arch == "lstm" else (carried, None)
                h.retain_grad()
                if c is not None:
                    c.retain_grad()
                hs[t], cs[t] = h, c
            kept[layer, d] = (hs, cs, own)
            outputs.append(torch.stack(hs, dim=1))
        inputs = torch.cat(outputs, dim=-1)
    reference_out, _ = module(x.detach())
    torch.testing.assert_close(inputs.detach(), reference_out)
    if grad_output.dim() == 2:
        finals = [kept[L - 1, d][0][0 if d else T - 1] for d in range(D)]
        loss = (torch.cat(finals, dim=-1) * grad_output.double()).sum()
    else:
        loss = (inputs * grad_output.double()).sum()
    loss.backward()
    result = {}
    for (layer, d), (hs, cs, own) in kept.items():
        grad_h = np.stack([log10_norm(h.grad) for h in hs], axis=1)
        grad_c = np.stack([log10_norm(c.grad) for c in cs], axis=1) if cs[0] is not None else None
        result[layer, d] = (grad_h, grad_c, log10_norm(own.grad))
    return result, log10_norm(x.grad)


CASES = [(arch, L, bi) for arch in ("rnn", "lstm", "gru") for L in (2, 3) for bi in (False, True)]


@pytest.mark.parametrize("loss", ["final", "every_step"])
@pytest.mark.parametrize(
    ("arch", "num_layers", "bidirectional"), CASES + [("lstm", 1, True), ("gru", 1, False)]
)
def test_every_layer_and_direction_matches_float64_autograd(arch, num_layers, bidirectional, loss):
    D, H, T = 1 + bidirectional, 3, 7
    model = build_model(
        arch, 2, H, seed=num_layers, num_layers=num_layers, bidirectional=bidirectional, dtype=torch.float64
    )
    x = make_input("gaussian", 2, T, 2, seed=1).double()
    shape = (2, D * H) if loss == "final" else (2, T, D * H)
    grad_output = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    rec = record(model, x, grad_output=grad_output)
    assert (rec.num_layers, rec.num_directions) == (num_layers, D)
    reference, grad_input = autograd_reference(model, x, grad_output)
    for (layer, d), (grad_h, grad_c, grad_x) in reference.items():
        one = rec.layer(layer, d)
        assert one.num_layers == 1 and one.hidden.shape == (2, T, H)
        np.testing.assert_allclose(
            one.log10_grad_h, grad_h, atol=1e-9, err_msg=f"layer {layer} direction {d}"
        )
        np.testing.assert_allclose(
            one.log10_grad_x, grad_x, atol=1e-9, err_msg=f"layer {layer} direction {d}"
        )
        if arch == "lstm":
            np.testing.assert_allclose(one.log10_grad_c, grad_c, atol=1e-9)
    np.testing.assert_allclose(rec.log10_grad_x, grad_input, atol=1e-9)  # the network's input, all directions
    np.testing.assert_array_equal(rec.log10_grad_h, rec.layer(num_layers - 1, 0).log10_grad_h)


def test_hidden_states_of_each_layer_are_pytorchs_in_input_order():
    model = build_model("lstm", 2, 4, seed=0, num_layers=2, bidirectional=True)
    x = make_input("gaussian", 1, 9, 2, seed=0)
    rec = record(model, x)
    with torch.no_grad():
        out, (h_n, c_n) = model.fused()(x)
    np.testing.assert_allclose(rec.layer(1, 0).hidden, out[..., :4].numpy(), atol=1e-6)
    np.testing.assert_allclose(rec.layer(1, 1).hidden, out[..., 4:].numpy(), atol=1e-6)
    np.testing.assert_allclose(
        rec.layer(0, 1).hidden[:, 0], h_n[1].numpy(), atol=1e-6
    )  # reverse ends at t = 0
    np.testing.assert_allclose(rec.layer(0, 1).cell[:, 0], c_n[1].numpy(), atol=1e-6)
    gates = rec.layer(0, 1).gates
    np.testing.assert_allclose(
        rec.layer(0, 1).hidden, gates["output"] * np.tanh(rec.layer(0, 1).cell), atol=1e-6
    )


def test_default_loss_gives_each_top_direction_a_final_gradient_of_norm_one():
    rec = record(build_model("gru", 2, 5, num_layers=3, bidirectional=True), make_input("gaussian", 3, 8, 2))
    np.testing.assert_allclose(rec.layer(2, 0).log10_grad_h[:, -1], 0.0, atol=1e-6)
    np.testing.assert_allclose(rec.layer(2, 1).log10_grad_h[:, 0], 0.0, atol=1e-6)


def test_one_layer_recordings_are_their_own_layer_and_take_a_loss_at_every_step():
    model = build_model("lstm", 2, 3, seed=0, dtype=torch.float64)
    x = make_input("gaussian", 2, 6, 2, seed=0).double()
    rec = record(model, x)
    assert rec.layer(0, 0) is rec and (rec.num_layers, rec.num_directions) == (1, 1)
    with pytest.raises(ValueError, match=r"layers 0 to 0 and directions 0 to 0, got \(0, 1\)"):
        rec.layer(0, 1)
    grad_output = torch.randn(2, 6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    every = record(model, x, grad_output=grad_output)
    reference, grad_input = autograd_reference(model, x, grad_output)
    np.testing.assert_allclose(every.log10_grad_h, reference[0, 0][0], atol=1e-9)
    np.testing.assert_allclose(every.log10_grad_c, reference[0, 0][1], atol=1e-9)
    np.testing.assert_allclose(every.log10_grad_x, grad_input, atol=1e-9)


def test_torch_modules_with_layers_are_recorded_like_ours():
    torch.manual_seed(0)
    theirs = nn.LSTM(2, 4, num_layers=2, bidirectional=True, batch_first=True, dropout=0.5)
    ours = build_model("lstm", 2, 4, num_layers=2, bidirectional=True)
    ours.load_state_dict(theirs.state_dict())
    x = make_input("gaussian", 1, 12, 2)
    a, b = record(theirs, x), record(ours, x)
    for layer in (0, 1):
        for d in (0, 1):
            # float32 products may sum in another order (buffer alignment): equal up to rounding
            np.testing.assert_allclose(
                a.layer(layer, d).log10_grad_h, b.layer(layer, d).log10_grad_h, atol=1e-6
            )


@pytest.mark.parametrize("every_step", [False, True])
@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_float32_deep_recordings_match_float64(arch, every_step):
    model64 = build_model(arch, 2, 8, seed=3, num_layers=2, bidirectional=True, dtype=torch.float64)
    model32 = build_model(arch, 2, 8, num_layers=2, bidirectional=True)
    model32.load_state_dict(model64.state_dict())
    x = make_input("sine", 2, 150, 2, seed=2)
    grad_output = torch.randn(2, 150, 16, generator=torch.Generator().manual_seed(0)) if every_step else None
    rec64 = record(model64, x, grad_output=grad_output)
    rec32 = record(model32, x, grad_output=grad_output)
    assert rec32.dtype == "float32"
    for layer in (0, 1):
        for d in (0, 1):
            np.testing.assert_allclose(
                rec32.layer(layer, d).log10_grad_h, rec64.layer(layer, d).log10_grad_h, atol=1e-4
            )
    np.testing.assert_allclose(rec32.log10_grad_x, rec64.log10_grad_x, atol=1e-4)


def test_thousands_of_steps_through_three_layers_never_underflow():
    model = build_model("rnn", 2, 8, seed=0, num_layers=3, bidirectional=True)
    rec = record(model, make_input("gaussian", 1, 3000, 2, seed=0), grad_output=torch.ones(1, 3000, 16))
    for layer in range(3):
        for d in (0, 1):
            assert np.isfinite(rec.layer(layer, d).log10_grad_h).all()
    one_way = build_model("rnn", 2, 8, seed=0, num_layers=3)  # the loss reaches t = 0 only through time
    bottom = record(one_way, make_input("gaussian", 1, 3000, 2, seed=0)).layer(0, 0).log10_grad_h
    assert np.isfinite(bottom).all() and bottom[0, 0] < -300  # below float64, still carried


def test_a_deep_float32_overflow_is_recorded_in_float64():
    model = build_model("rnn", 2, 8, seed=0, init="identity", spectral_radius=1.5, num_layers=2)
    x = make_input("gaussian", 1, 250, 2, seed=0)
    rec = record(model, x)
    assert rec.dtype == "float64" and rec.layer(0, 0).dtype == "float64"
    assert all(np.isfinite(rec.layer(layer, 0).hidden).all() for layer in (0, 1))


def test_tidy_frame_of_a_deep_recording_has_layer_and_direction_columns():
    rec = record(build_model("lstm", 2, 3, num_layers=2, bidirectional=True), make_input("gaussian", 2, 4, 2))
    frame = rec.to_frame()
    assert list(frame.columns) == ["arch", "layer", "direction", "sample", "t", "unit", "quantity", "value"]
    assert len(frame) == 4 * (3 * 2 * 4 + 6 * 2 * 4 * 3)
    row = frame.query(
        "layer == 1 and direction == 1 and quantity == 'cell' and sample == 1 and t == 2 and unit == 0"
    )
    assert row["value"].item() == pytest.approx(float(rec.layer(1, 1).cell[1, 2, 0]))
    one = record(build_model("lstm", 2, 3), make_input("gaussian", 2, 4, 2))
    assert "layer" not in one.to_frame().columns
    assert list(one.to_frame(layer_columns=True)["layer"].unique()) == [0]


def test_deep_memory_estimate_grows_with_layers_and_directions_and_refuses():
    one = estimate_bytes("lstm", 4, 1000, 64, 4)
    deep = estimate_bytes("lstm", 4, 1000, 64, 4, num_layers=3, num_directions=2)
    assert deep > 6 * one
    model = build_model("lstm", 2, 64, num_layers=4, bidirectional=True)
    with pytest.raises(ValueError, match=r"needs about .* GiB.*raise max_bytes"):
        record(model, torch.zeros(2, 100, 2), max_bytes=deep // 100)


@pytest.mark.parametrize(
    ("grad_output", "message"),
    [
        (torch.zeros(2, 3), r"grad_output must have shape .* = \(2, 6\) .* = \(2, 5, 6\)"),
        (torch.zeros(2, 4, 6), r"grad_output must have shape"),
    ],
)
def test_bad_deep_grad_output_says_what_shape_is_wanted(grad_output, message):
    model = build_model("rnn", 2, 3, num_layers=2, bidirectional=True)
    with pytest.raises(ValueError, match=message):
        record(model, torch.zeros(2, 5, 2), grad_output=grad_output)


def test_progress_of_a_deep_recording_is_in_order_up_to_one():
    seen = []
    record(
        build_model("gru", 2, 4, num_layers=2, bidirectional=True),
        make_input("gaussian", 1, 300, 2),
        progress=seen.append,
    )
    assert seen == sorted(seen) and 0 < seen[0] < 1 and seen[-1] == pytest.approx(1.0)
    assert len(seen) >= 5


def test_zero_gradient_into_one_direction_is_exactly_zero_there():
    model = build_model("lstm", 2, 3, num_layers=1, bidirectional=True)
    grad_output = torch.cat([torch.ones(1, 3), torch.zeros(1, 3)], dim=-1)
    rec = record(model, make_input("gaussian", 1, 5, 2), grad_output=grad_output)
    assert np.isneginf(rec.layer(0, 1).log10_grad_h).all()
    assert np.isfinite(rec.layer(0, 0).log10_grad_h).all()
    assert math.isfinite(rec.log10_grad_x[0, 0])


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_deep_memory_estimate_covers_what_a_run_really_holds(arch):
    code = (  # VmHWM: the child's own peak resident size (see test_record.py)
        "import torch, lstm_viz as lv\n"
        "def peak(): return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) * 1024\n"
        f"m = lv.build_model('{arch}', 4, 128, num_layers=2, bidirectional=True)\n"
        "x = torch.randn(4, 1000, 4)\n"
        "lv.record(m, x[:, :20])\n"
        "before = peak()\n"
        "rec = lv.record(m, x)\n"
        f"need = lv.estimate_bytes('{arch}', 4, 1000, 128, 4, num_layers=2, num_directions=2)\n"
        "print(peak() - before, need)\n"
    )
    used, estimate = map(int, subprocess.check_output([sys.executable, "-c", code], text=True).split())
    assert 0.3 * estimate < used <= estimate
