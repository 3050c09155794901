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
from .record import DEFAULT_MAX_BYTES, _as_model, _beyond_float64, _check_input, _depth, estimate_bytes

MAX_SEQ_LEN = 2000
_BLOCK_BYTES = 512 * 2**20  # per block of output positions: their input gradients at every step
_ROW_BYTES = 4 * 8  # per output position, step and input feature: a few gradient arrays at once, rounded up
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def connectivity_bytes(
    arch: str,
    batch_size: int,
    seq_len: int,
    hidden_size: int,
    input_size: int,
    dtype=torch.float32,
    num_layers: int = 1,
    num_directions: int = 1,
) -> int:
    """Upper estimate of the memory connectivity() needs, in bytes: record()'s forward pass and
    factors, the batch of T adjoints per sample (their products with W_hh at one step), and the
    (B, T, T) float64 result with its float64 working copy. Deep or bidirectional: every layer's
    forward pass and factors, and one block of output positions' input gradients (at most _BLOCK_BYTES)."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    result = 2 * 8 * batch_size * seq_len * seq_len
    if num_layers * num_directions > 1:
        held = estimate_bytes(
            arch, batch_size, seq_len, hidden_size, input_size, dtype, num_layers, num_directions
        )
        per_row = _ROW_BYTES * seq_len * batch_size * max(input_size, num_directions * hidden_size)
        return held + 2 * min(_BLOCK_BYTES, per_row * seq_len) + result
    adjoints = batch_size * seq_len * hidden_size * (3 * _GATES[arch] + 4) * itemsize
    return estimate_bytes(arch, batch_size, seq_len, hidden_size, input_size, dtype) + adjoints + result


def connectivity_work(
    arch: str,
    batch_size: int,
    seq_len: int,
    hidden_size: int,
    input_size: int,
    num_layers: int = 1,
    num_directions: int = 1,
) -> float:
    """Multiply-adds connectivity() spends in its products with [W_hh | W_ih]: T^2/2 adjoint steps
    for one layer and direction; T^2 per layer and direction for deep or bidirectional models (every
    block of output positions sweeps all T steps). About 3e10 a second on one core here."""
    G, H = _GATES[arch], hidden_size
    if num_layers * num_directions == 1:
        return batch_size * seq_len**2 / 2 * G * H * (H + input_size)
    upper = num_directions * H
    per_step = G * H * (H + input_size) + (num_layers - 1) * G * H * (H + upper)
    return batch_size * seq_len**2 * num_directions * per_step


def connectivity(
    model,
    x,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """(B, T, T) float64: [b, t_out, t_in] = log10 ||d(u . y_{t_out}) / d x_{t_in}||, y the top layer's
    output (both directions concatenated), u = 1/sqrt(D*H) per unit; -inf wherever no path carries
    any gradient: t_in > t_out for a one-direction model (the future cannot move the past), and
    exactly zero derivatives (e.g. through relu units that are off).

    model: from build_model (any depth, either direction), or a torch.nn.RNN/LSTM/GRU with biases
    (1 to 4 layers). x: (B, T, I), T at most MAX_SEQ_LEN (2,000). Refuses (ValueError) longer
    sequences and runs whose connectivity_bytes exceed max_bytes. progress, if given, is called
    with the fraction done (0 to 1) as the sweep goes.
    """
    model = _as_model(model)
    given = x
    x, _ = _check_input(model, given, None)
    B, T, _ = x.shape
    if T > MAX_SEQ_LEN:
        need = connectivity_bytes(
            model.arch, B, T, model.hidden_size, model.input_size, x.dtype, *_depth(model)
        )
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
    need = connectivity_bytes(model.arch, B, T, model.hidden_size, model.input_size, x.dtype, *_depth(model))
    if need > max_bytes:
        raise ValueError(
            f"this connectivity run needs about {need / 2**30:.2f} GiB{note} (batch {B} x {T} x {T} "
            f"steps x {model.hidden_size} units), over the limit of {max_bytes / 2**30:.2f} GiB: "
            "shorten the sequence, shrink the batch or hidden size, or raise max_bytes"
        )


def _connectivity(model, x: torch.Tensor, progress) -> np.ndarray:
    """The sweep in the model's own dtype (FloatRangeError if that dtype cannot carry it)."""
    B, T, _ = x.shape
    if _depth(model) != (1, 1):
        with torch.no_grad(), one_thread():
            return _stacked(model, x, progress)
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


def _stacked(model, x: torch.Tensor, progress) -> np.ndarray:
    """(B, T, T) for a deep or bidirectional model. Output positions go in blocks of S; for each
    block, every layer and direction is swept over all T steps from the top down, the S adjoints
    side by side. The top layer's adjoint s enters at step s (u in every unit of both directions);
    a lower layer's takes the gradient the layer above sends to its input, at every step, added at
    the larger of the two log scales (as InjectedAdjoint does)."""
    B, T, _ = x.shape
    L, D, H = model.num_layers, model.num_directions, model.hidden_size
    layers = [[model.layer(ell, d) for d in range(D)] for ell in range(L)]
    fwds, inputs = [], x.transpose(0, 1).contiguous()
    for row in layers:
        fwds.append([])
        for d, layer in enumerate(row):
            try:
                fwds[-1].append(Forward(layer, inputs.flip(0).contiguous() if d else inputs))
            except FloatRangeError as error:
                raise FloatRangeError(error.what, T - 1 - error.step if d else error.step) from None
        inputs = torch.cat([f.hidden.flip(0) if d else f.hidden for d, f in enumerate(fwds[-1])], dim=-1)
    terms = [[f.terms(0, T) for f in row] for row in fwds]  # FloatRangeError below float32's range
    width = max(model.input_size, D * H)
    S = int(max(1, min(T, _BLOCK_BYTES // (_ROW_BYTES * T * B * width))))
    result = np.empty((B, T, T))
    for s0 in range(0, T, S):
        rows = np.arange(s0, min(T, s0 + S))
        upper = None  # (values (S, T, B, D*H) peak 1, log10 scale (S, T, B)), input order
        for ell in reversed(range(L)):
            parts = []
            for d in range(D):
                if upper is None:
                    inj = None
                else:
                    inj = (upper[0][..., d * H : (d + 1) * H], upper[1])
                    if d:
                        inj = (inj[0].flip(1), inj[1].flip(1))
                steps = T - 1 - rows if d else rows  # the top layer's entry step, own time order
                values, scale = _block_sweep(layers[ell][d], fwds[ell][d], terms[ell][d], inj, steps, D)
                parts.append((values.flip(1), scale.flip(1)) if d else (values, scale))
            upper = _sum_directions(parts)
        result[:, rows] = (log10_norm(upper[0].numpy()) + upper[1].numpy()).transpose(2, 0, 1)
        if progress is not None:
            progress(rows[-1] / (T - 1) if T > 1 else 1.0)
    return result


def _block_sweep(layer, fwd: Forward, terms, injection, steps: np.ndarray, D: int):
    """One layer and direction, own time order, for S output positions at once. injection: the
    layer above's (values (S, T, B, H), scale (S, T, B)), or None for the top layer, where adjoint r
    enters at steps[r] with u = 1/sqrt(D*H). Returns its input gradients peak-normalised as
    (values (S, T, B, I) in the model's dtype, log10 scale (S, T, B) float64)."""
    carry, mix, mix_x = terms
    T, B, H = fwd.hidden.shape
    S = len(steps)
    w_hh, w_ih = layer.weight_hh_l0.detach(), layer.weight_ih_l0.detach()
    dtype = w_hh.dtype
    both = torch.cat([w_hh, w_ih], dim=1) if fwd.arch != "gru" else None
    dh = torch.zeros(S, B, H, dtype=dtype)
    dc = torch.zeros(S, B, H, dtype=dtype) if fwd.arch == "lstm" else None
    sc = torch.full((S, B), -math.inf, dtype=torch.float64)  # nothing has entered yet
    grads = torch.empty(S, T, B, layer.input_size, dtype=dtype)
    scales = torch.empty(S, T, B, dtype=torch.float64)
    forget = fwd.gates.get("forget")
    entry = torch.from_numpy(steps)
    if injection is None:
        last = int(steps.max())
        v_in = torch.full((S, B, H), 1 / math.sqrt(D * H), dtype=dtype)
    else:
        inj_values, inj_scale = injection
        alive = torch.isfinite(inj_scale).any(dim=2).any(dim=0).nonzero()[:, 0].numpy()
        last = int(alive[-1]) if len(alive) else -1
    grads[:, last + 1 :] = 0  # no gradient has entered after the last step anything enters at
    scales[:, last + 1 :] = -math.inf
    for t in range(last, -1, -1):
        if injection is None:
            s_in = torch.where(entry == t, 0.0, -math.inf).to(torch.float64)[:, None].expand(S, B)
        else:
            s_in, v_in = inj_scale[:, t], inj_values[:, t]
        top = torch.maximum(sc, s_in)
        known = torch.isfinite(top)
        old = torch.where(known, torch.pow(10.0, sc - top), 0.0).nan_to_num_(0.0).to(dtype)[..., None]
        new = torch.where(known, torch.pow(10.0, s_in - top), 0.0).nan_to_num_(0.0).to(dtype)[..., None]
        dh = dh * old + v_in * new
        sc = torch.where(known, top, sc)
        if dc is not None:
            dc = dc * old
            if t < T - 1:
                dc = dc * forget[t + 1]
            dc = dc + dh * carry[t]
            mixed = torch.cat(
                [dc.unsqueeze(2) * mix[t].view(B, 4, H)[:, :3], (dh * mix[t][:, 3 * H :])[:, :, None]], 2
            )
            mixed = mixed.view(S * B, 4 * H)
        elif fwd.arch == "rnn":
            mixed = (dh * mix[t]).view(S * B, H)
        else:
            repeated = dh.repeat(1, 1, 3)
            mixed = (repeated * mix[t]).view(S * B, 3 * H)
            mixed_x = (repeated * mix_x[t]).view(S * B, 3 * H)
        if both is not None:
            product = mixed @ both
            back, grads[:, t] = product[:, :H].view(S, B, H), product[:, H:].view(S, B, -1)
        else:
            back, grads[:, t] = (mixed @ w_hh).view(S, B, H), (mixed_x @ w_ih).view(S, B, -1)
        scales[:, t] = sc
        if fwd.arch == "gru":
            back = back + dh * carry[t]
        peak = back.abs().amax(dim=-1)
        if dc is not None:
            peak = torch.maximum(peak, dc.abs().amax(dim=-1))
        peak = torch.where(peak > 0, peak, torch.ones((), dtype=dtype))
        dh = back / peak[..., None]
        if dc is not None:
            dc = dc / peak[..., None]
        sc = sc + peak.to(torch.float64).log10()
    return _peak_normalised(grads, scales)


def _peak_normalised(values: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values / their peak over the last axis, scale + log10 peak; -inf where values are 0)."""
    peak = values.abs().amax(dim=-1)
    values /= torch.where(peak > 0, peak, torch.ones((), dtype=peak.dtype))[..., None]
    return values, scale + peak.to(torch.float64).log10()


def _sum_directions(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of (peak-normalised values, log10 scale) terms at the larger scale, peak-normalised again."""
    if len(parts) == 1:
        return parts[0]
    top = torch.maximum(parts[0][1], parts[1][1])
    total = torch.zeros_like(parts[0][0])
    for values, scale in parts:
        weight = torch.where(torch.isneginf(scale), 0.0, torch.pow(10.0, scale - top))
        total += values * weight.to(values.dtype)[..., None]
    return _peak_normalised(total, torch.where(torch.isneginf(top), 0.0, top))
