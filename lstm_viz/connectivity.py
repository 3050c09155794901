"""connectivity(model, x): how much every input step still moves every output step, exactly.

Entry [b, t_out, t_in] is log10 ||d(u . y_{t_out}) / d x_{t_in}||, with y the model's output and
u = (1, ..., 1) / sqrt(H). Row t_out is what record(model, x[:, :t_out + 1]).log10_grad_x holds;
all rows come from one backward sweep in which the output positions are a batch of adjoints, each
entering at its own step. Every adjoint is renormalised to a peak of 1 at every step and its scale
kept in log10 (float64), as passes.Adjoint does, so an entry of 1e-3000 is carried like one of 1e-3.
A float32 model whose state overflows or whose derivative factors fall below float32's range is
run again in float64, as record() does. docs/engine.md, "Connectivity", says what is exact.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch

from .passes import FloatRangeError, Forward, log10_norm, one_thread
from .record import DEFAULT_MAX_BYTES, _as_model, _beyond_float64, _check_input, estimate_bytes

MAX_SEQ_LEN = 2000
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def connectivity_bytes(
    arch: str, batch_size: int, seq_len: int, hidden_size: int, input_size: int, dtype=torch.float32
) -> int:
    """Upper estimate of the memory connectivity() needs, in bytes: record()'s forward pass and
    factors, the batch of T adjoints per sample (their products with W_hh at one step), and the
    (B, T, T) float64 result with its float64 working copy."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    adjoints = batch_size * seq_len * hidden_size * (3 * _GATES[arch] + 4) * itemsize
    result = 2 * 8 * batch_size * seq_len * seq_len
    return estimate_bytes(arch, batch_size, seq_len, hidden_size, input_size, dtype) + adjoints + result


def connectivity(
    model,
    x,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """(B, T, T) float64: [b, t_out, t_in] = log10 ||d(u . y_{t_out}) / d x_{t_in}||, u = 1/sqrt(H) per
    unit; -inf for t_in > t_out (the future cannot move the past) and wherever no path carries any
    gradient (an exactly zero derivative, e.g. through relu units that are off).

    model: a one-layer, one-direction model from build_model, or a one-layer torch.nn.RNN/LSTM/GRU
    with biases. x: (B, T, I), T at most MAX_SEQ_LEN (2,000). Refuses (ValueError) deep or
    bidirectional models, longer sequences and runs whose connectivity_bytes exceed max_bytes.
    progress, if given, is called with the fraction done (0 to 1) as the sweep goes.
    """
    model = _as_model(model)
    if getattr(model, "num_layers", 1) != 1 or getattr(model, "num_directions", 1) != 1:
        raise ValueError(
            "connectivity covers one-layer, one-direction models so far, got "
            f"{model.num_layers} layers and {model.num_directions} directions: pass model.layer(0, 0), "
            "a one-layer model, or use record() for deep and bidirectional networks"
        )
    given = x
    x, _ = _check_input(model, given, None)
    B, T, _ = x.shape
    if T > MAX_SEQ_LEN:
        need = connectivity_bytes(model.arch, B, T, model.hidden_size, model.input_size, x.dtype)
        raise ValueError(
            f"connectivity covers at most {MAX_SEQ_LEN:,} steps (its result alone is T x T per sample), "
            f"got {T:,} (about {need / 2**30:.2f} GiB): shorten the sequence"
        )
    _check_memory(model, x, max_bytes)
    try:
        return _connectivity(model, x, progress)
    except FloatRangeError as error:
        if model.weight_hh_l0.dtype == torch.float64:
            raise _beyond_float64(error, T) from None
    model64 = copy.deepcopy(model).to(torch.float64)
    x64, _ = _check_input(model64, given, None)
    _check_memory(model64, x64, max_bytes, note=" in float64 (float32 cannot carry this run)")
    try:
        return _connectivity(model64, x64, progress)
    except FloatRangeError as error:
        raise _beyond_float64(error, T) from None


def _check_memory(model, x: torch.Tensor, max_bytes: int, note: str = "") -> None:
    B, T, _ = x.shape
    need = connectivity_bytes(model.arch, B, T, model.hidden_size, model.input_size, x.dtype)
    if need > max_bytes:
        raise ValueError(
            f"this connectivity run needs about {need / 2**30:.2f} GiB{note} (batch {B} x {T} x {T} "
            f"steps x {model.hidden_size} units), over the limit of {max_bytes / 2**30:.2f} GiB: "
            "shorten the sequence, shrink the batch or hidden size, or raise max_bytes"
        )


def _connectivity(model, x: torch.Tensor, progress) -> np.ndarray:
    """The sweep in the model's own dtype (FloatRangeError if that dtype cannot carry it)."""
    B, T, _ = x.shape
    with torch.no_grad(), one_thread():
        fwd = Forward(model, x.transpose(0, 1).contiguous())
        carry, mix, mix_x = fwd.terms(0, T)  # (T, B, .) each; FloatRangeError below float32's range
        result = _sweep(model, fwd, carry, mix, mix_x, progress)  # (T_out, T_in, B)
    result = np.ascontiguousarray(result.transpose(2, 0, 1))
    if fwd.underflow_step is not None and fwd.nonlinearity != "relu":
        # float64 factors below SMALLEST_FACTOR: a whole gradient lost is an error, not a zero
        lower = np.tril(np.ones((T, T), dtype=bool))
        if (np.isneginf(result) & lower).any():
            step = int(np.nonzero((np.isneginf(result) & lower).any(axis=(0, 1)))[0][-1])
            raise FloatRangeError("underflow", step)
    return result


def _sweep(model, fwd: Forward, carry, mix, mix_x, progress) -> np.ndarray:
    """(T_out, T_in, B) log10 norms. Row s of the state arrays is the adjoint of output s: it enters
    at step s with u and is stepped back to 0; at step t the rows s >= t are live and stepped at once
    (one (rows, G*H) x (G*H, H) product), renormalised to a peak of 1, their scale kept in log10."""
    T, B, H = fwd.hidden.shape
    w_hh, w_ih = model.weight_hh_l0.detach(), model.weight_ih_l0.detach()
    dtype = w_hh.dtype
    # RNN and LSTM: one product with [W_hh | W_ih] gives dh_{t-1} and dx_t at once (a separate
    # (rows, G*H) x (G*H, I) product is skinny and costs almost as much as the W_hh one)
    both = torch.cat([w_hh, w_ih], dim=1) if fwd.arch != "gru" else None
    dh = torch.zeros(T, B, H, dtype=dtype)
    dc = torch.zeros(T, B, H, dtype=dtype) if fwd.arch == "lstm" else None
    scale = np.zeros((T, B))
    out = np.full((T, T, B), -np.inf)
    forget = fwd.gates.get("forget")
    buffer = torch.empty(T, B, 4, H, dtype=dtype) if fwd.arch == "lstm" else None
    u = 1 / math.sqrt(H)
    total, reported = T * (T + 1) / 2, 0.0
    for t in range(T - 1, -1, -1):
        dh[t] = u
        n = T - t
        a = dh[t:]
        if fwd.arch == "lstm":
            c = dc[t:]
            if t < T - 1:
                c.mul_(forget[t + 1])  # dc_{t+1} f_{t+1}; row t is still 0
            c.addcmul_(a, carry[t])
            blocks = mix[t].view(B, 4, H)
            mixed = buffer[:n]
            torch.mul(c.unsqueeze(2), blocks[:, :3], out=mixed[:, :, :3])
            torch.mul(a, blocks[:, 3], out=mixed[:, :, 3])
            mixed_x = mixed = mixed.view(n * B, 4 * H)
        elif fwd.arch == "rnn":
            mixed_x = mixed = (a * mix[t]).view(n * B, H)
        else:
            repeated = a.repeat(1, 1, 3)
            mixed = (repeated * mix[t]).view(n * B, 3 * H)
            mixed_x = (repeated * mix_x[t]).view(n * B, 3 * H)
        if both is not None:
            product = mixed @ both
            new, grad_x = product[:, :H].view(n, B, H), product[:, H:].view(n, B, -1)
        else:
            new, grad_x = (mixed @ w_hh).view(n, B, H), (mixed_x @ w_ih).view(n, B, -1)
        out[t:, t] = log10_norm(grad_x.numpy()) + scale[t:]
        if t > 0:
            if fwd.arch == "gru":
                new.addcmul_(a, carry[t])
            peak = new.abs().amax(dim=-1)
            if dc is not None:
                peak = torch.maximum(peak, dc[t:].abs().amax(dim=-1))
            peak = torch.where(peak > 0, peak, torch.ones((), dtype=dtype))
            torch.div(new, peak.unsqueeze(-1), out=a)
            if dc is not None:
                dc[t:].div_(peak.unsqueeze(-1))
            scale[t:] += np.log10(peak.numpy(), dtype=np.float64)
        if progress is not None:
            done = 1.0 - (t * T - t * (t - 1) / 2) / total  # rows left: T - t' for each t' < t
            if done - reported >= 0.01 or t == 0:
                reported = done
                progress(done)
    return out
