"""Why each gradient line has its slope: Lyapunov exponents, Jacobian singular values,
closed-form estimates of the decay rate and the Pascanu et al. (2013) bound.

Backpropagation through time runs the adjoint recursion dL/ds_{t-1} = J_t^T dL/ds_t,
with J_t = ds_t/ds_{t-1} the per-step Jacobian of the state s_t (h_t for the RNN and
the GRU, (h_t, c_t) for the LSTM, so 2H x 2H there). Everything here is in decades
(log10) and in float64; the forward pass is rerun in float64 from the model's four
weight tensors (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`).

Two sign conventions meet here, and they are opposite:
  - Lyapunov exponents (lyapunov_exponents) follow dynamics: decades gained per step
    *going back*, negative when the gradient shrinks.
  - Decay rates (Estimate, analysis.DecayFit) follow the charts: the slope of
    log10 ||dL/dh_t|| against t, positive when the gradient vanishes.
  So far from the loss, the top Lyapunov exponent = - decay_fit(rec).decades_per_step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .analysis import decay_fit, median_curve
from .checks import check_int
from .passes import one_thread
from .record import DEFAULT_MAX_BYTES, Recording

ACTIVATION_SLOPE_BOUND = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25}  # gamma: max |phi'|
_JACOBIAN_BYTES = 32 * 2**20  # per-step factors made at once; step_jacobians returns at most 8x this
_SPLIT_DECADES = 8.0  # rows this far below all rows above them are split off (see _graded_log_svd)
_SVD_SPAN = 250.0  # decades of row scales one float64 SVD takes without underflow
_ARCHS = {torch.nn.RNN: "rnn", torch.nn.LSTM: "lstm", torch.nn.GRU: "gru"}


# ---------------------------------------------------------------- per-step Jacobians


def _arch(model) -> str:
    arch = getattr(model, "arch", None) or _ARCHS.get(type(model))
    if arch not in ("rnn", "lstm", "gru"):
        name = type(model).__name__
        raise ValueError(f"model must come from lstm_viz.build_model or be torch.nn.RNN/LSTM/GRU, not {name}")
    if getattr(model, "num_layers", 1) != 1 or getattr(model, "bidirectional", False):
        raise ValueError("theory works on one unidirectional layer: pass a model with num_layers=1")
    return arch


def _numpy64(t) -> np.ndarray:
    return (t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)).astype(np.float64)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _sigmoid_grad(a: np.ndarray) -> np.ndarray:
    return _sigmoid(a) * _sigmoid(-a)  # no cancellation where the gate saturates


def _tanh_grad(a: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.cosh(a) ** -2.0  # stays > 0 where 1 - tanh^2 rounds to 0


class _Forward:
    """The forward pass in float64, time-major, keeping what the Jacobians need."""

    def __init__(self, model, x, frame_columns: int = 1, max_bytes: int = DEFAULT_MAX_BYTES):
        self.arch = _arch(model)
        self.nonlinearity = getattr(model, "nonlinearity", "tanh")
        w_ih, self.w_hh = _numpy64(model.weight_ih_l0), _numpy64(model.weight_hh_l0)
        b_ih, b_hh = _numpy64(model.bias_ih_l0), _numpy64(model.bias_hh_l0)
        x = _numpy64(x)
        if x.ndim != 3 or x.shape[2] != w_ih.shape[1] or min(x.shape) < 1:
            raise ValueError(
                f"x must have shape (batch, seq_len, {w_ih.shape[1]}) with batch, seq_len >= 1, got {x.shape}"
            )
        B, T, _ = x.shape
        H = self.H = self.w_hh.shape[1]
        self.size = 2 * H if self.arch == "lstm" else H  # state size n
        rows = self.w_hh.shape[0]
        need = 8 * (T * B * (2 * rows + 2 * H) + 4 * B * self.size * frame_columns + B * frame_columns**2)
        if need > max_bytes:
            raise ValueError(
                f"this needs about {need / 2**30:.2f} GiB (batch {B} x {T} steps x {H} units, "
                f"{frame_columns} frame columns) in float64, over max_bytes = {max_bytes / 2**30:.2f} GiB: "
                "pass fewer samples or steps, a smaller k, or raise max_bytes"
            )
        x_pre = np.einsum("bti,gi->tbg", x, w_ih) + b_ih  # (T, B, G*H)
        self.pre = np.empty_like(x_pre)  # pre-activations (GRU: x part + b_ih, h part apart)
        self.h_prev = np.empty((T, B, H))
        self.cell = np.zeros((T + 1, B, H))  # LSTM: c_{t-1} at t, c_t at t + 1
        self.from_h = np.empty_like(x_pre) if self.arch == "gru" else None
        h = np.zeros((B, H))
        for t in range(T):
            self.h_prev[t] = h
            from_h = h @ self.w_hh.T + b_hh
            if self.arch == "rnn":
                a = self.pre[t] = x_pre[t] + from_h
                h = np.tanh(a) if self.nonlinearity == "tanh" else np.maximum(a, 0.0)
            elif self.arch == "lstm":
                a = self.pre[t] = x_pre[t] + from_h
                i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H]), _sigmoid(a[:, 3 * H :])
                c = self.cell[t + 1] = f * self.cell[t] + i * np.tanh(a[:, 2 * H : 3 * H])
                h = o * np.tanh(c)
            else:
                self.pre[t], self.from_h[t] = x_pre[t], from_h
                r = _sigmoid(x_pre[t, :, :H] + from_h[:, :H])
                z = _sigmoid(x_pre[t, :, H : 2 * H] + from_h[:, H : 2 * H])
                n = np.tanh(x_pre[t, :, 2 * H :] + r * from_h[:, 2 * H :])
                h = (1 - z) * n + z * h

    def factors(self, t0: int, t1: int) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """(keep, out, mix) for steps t0..t1-1, each (t1 - t0, B, .), for transpose_times.

        Every J_t is W_hh times per-unit factors (mix, one per gate block), plus a diagonal
        (keep: the LSTM's f_t, the GRU's z_t) and, for the LSTM, dh_t/dc_t (out), so
        J_t^T q costs one product with W_hh^T and J_t itself is never built.
        """
        H = self.H
        if self.arch == "rnn":
            a = self.pre[t0:t1]
            return None, None, _tanh_grad(a) if self.nonlinearity == "tanh" else (a > 0).astype(np.float64)
        if self.arch == "lstm":
            a = self.pre[t0:t1]
            a_i, a_f, a_g, a_o = (a[..., k * H : (k + 1) * H] for k in range(4))
            i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
            c_prev, c = self.cell[t0:t1], self.cell[t0 + 1 : t1 + 1]
            mix = [g * _sigmoid_grad(a_i), c_prev * _sigmoid_grad(a_f), i * _tanh_grad(a_g)]
            mix.append(np.tanh(c) * _sigmoid_grad(a_o))  # d pre-activation -> c_t, then o -> h_t
            return f, o * _tanh_grad(c), np.concatenate(mix, axis=-1)
        x_pre, from_h, h_prev = self.pre[t0:t1], self.from_h[t0:t1], self.h_prev[t0:t1]
        a_r = x_pre[..., :H] + from_h[..., :H]
        a_z = x_pre[..., H : 2 * H] + from_h[..., H : 2 * H]
        r, z, h_n = _sigmoid(a_r), _sigmoid(a_z), from_h[..., 2 * H :]
        a_n = x_pre[..., 2 * H :] + r * h_n
        dn = _sigmoid(-a_z) * _tanh_grad(a_n)  # (1 - z) tanh'(a_n)
        mix = [dn * h_n * _sigmoid_grad(a_r), (h_prev - np.tanh(a_n)) * _sigmoid_grad(a_z), dn * r]
        return z, None, np.concatenate(mix, axis=-1)

    def transpose_times(self, keep, out, mix, q: np.ndarray) -> np.ndarray:
        """J_t^T q for one step's factors (keep, out: (B, H); mix: (B, G*H)); q (B, n, k)."""
        H = self.H
        if self.arch == "rnn":
            return self._w_t_times(mix[..., None] * q)
        if self.arch == "gru":
            return keep[..., None] * q + self._w_t_times(mix[..., None] * np.concatenate([q] * 3, axis=1))
        q_h, q_c = q[:, :H], q[:, H:]
        v = out[..., None] * q_h + q_c  # dL/dc_t, total, per column
        top = self._w_t_times(mix[..., None] * np.concatenate([v, v, v, q_h], axis=1))
        return np.concatenate([top, keep[..., None] * v], axis=1)

    def _w_t_times(self, a: np.ndarray) -> np.ndarray:
        """W_hh^T a for a (B, G*H, k), as one matrix product over the whole batch."""
        B, rows, k = a.shape
        flat = np.swapaxes(a, 1, 2).reshape(B * k, rows) @ self.w_hh
        return np.swapaxes(flat.reshape(B, k, self.H), 1, 2)

    def backward(self):
        """(keep, out, mix) of steps t = T-1 down to 1, for transpose_times; made in chunks."""
        T, B = self.pre.shape[:2]
        chunk = max(1, _JACOBIAN_BYTES // (8 * B * (self.w_hh.shape[0] + 2 * self.H)))
        t1 = T
        while t1 > 1:
            t0 = max(1, t1 - chunk)
            yield from reversed(list(zip(*_rows(self.factors(t0, t1), t1 - t0), strict=True)))
            t1 = t0


def _rows(factors, length: int):
    """Each factor as a list of per-step rows; None (no such factor) as a list of None."""
    return [[None] * length if f is None else list(f) for f in factors]


def step_jacobians(model, x) -> np.ndarray:
    """Per-step Jacobians J_t = ds_t/ds_{t-1}, float64 (T, B, n, n); n = H, or 2H for the
    LSTM's state (h, c) with h first. J_0 is taken at s_{-1} = 0. Small runs only."""
    fwd = _Forward(model, x)
    T, B = fwd.pre.shape[:2]
    n = fwd.size
    need = 8 * T * B * n**2
    if need > 8 * _JACOBIAN_BYTES:
        raise ValueError(
            f"{T} steps x {B} samples of {n}x{n} Jacobians need {need / 2**20:.0f} MiB: "
            "shorten x; lyapunov_exponents and jacobian_singular_values never build them"
        )
    eye = np.broadcast_to(np.eye(n), (B, n, n))
    steps = zip(*_rows(fwd.factors(0, T), T), strict=True)
    return np.stack([np.swapaxes(fwd.transpose_times(*step, eye), -1, -2) for step in steps])


# ---------------------------------------------------------------- QR iteration in log space


def _loss_frame(B: int, n: int, H: int, k: int, seed: int) -> np.ndarray:
    """(B, n, k) orthonormal: first column record()'s loss direction (1, ..., 1)/sqrt(H) on h,
    the rest a seeded random completion."""
    rng = np.random.default_rng(seed)
    frame = rng.standard_normal((B, n, k))
    frame[:, :, 0] = 0.0
    frame[:, :H, 0] = 1.0 / math.sqrt(H)
    q, r = np.linalg.qr(frame)
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]


def _check_k(k: int, n: int, what: str) -> None:
    check_int(f"k ({what})", k, 1, n)


def _per_sample(values: np.ndarray, per_sample: bool) -> np.ndarray:
    if per_sample:
        return values
    with np.errstate(invalid="ignore"):
        return np.median(values, axis=0)


def lyapunov_exponents(
    model, x, k: int = 1, *, per_sample: bool = False, seed: int = 0, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """The k largest Lyapunov exponents of the backward (adjoint) dynamics, decades per step.

    QR iteration (Benettin et al. 1980; Eckmann & Ruelle 1985): a k-column orthonormal
    frame is carried back from t = T-1 to t = 0 by Z = J_t^T Q, Q R = Z, and the exponents
    are the sums of log10 |diag R| over the T-1 steps divided by T-1. Nothing is ever
    multiplied out, so exponents far below float range come out exactly.

    Returns (k,) float64, the median over the batch, largest first (per_sample=True:
    (B, k), one row per sample). Negative: the gradient shrinks going back; -inf: it
    becomes exactly zero (dead relu units). The frame starts at record()'s loss direction
    (plus a seeded random completion), so for the RNN with k=1 the exponent is exactly
    log10 ||dL/dh_0|| / (T-1) of record(model, x). Far from the loss the largest equals
    -analysis.decay_fit(record(model, x)).decades_per_step (opposite sign conventions).
    Refuses (ValueError) runs that would hold more than max_bytes.
    """
    fwd = _Forward(model, x, k, max_bytes)
    T, B = fwd.pre.shape[:2]
    _check_k(k, fwd.size, f"the {fwd.arch} state has {fwd.size} dimensions")
    if T < 2:
        raise ValueError("Lyapunov exponents need seq_len >= 2")
    q = _loss_frame(B, fwd.size, fwd.H, k, seed)
    total = np.zeros((B, k))
    with np.errstate(divide="ignore"), one_thread():  # small per-step products: see passes.one_thread
        for step in fwd.backward():
            q, r = np.linalg.qr(fwd.transpose_times(*step, q))
            total += np.log10(np.abs(np.diagonal(r, axis1=-2, axis2=-1)))
    exponents = -np.sort(-total / (T - 1), axis=1)
    return _per_sample(exponents, per_sample)


def _push(scale: np.ndarray, rows: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r @ (diag(10^scale) @ rows) kept as diag(10^scale') @ rows', rows' with max |entry| 1.

    r (B, m, m) upper triangular; scale (B, m) log10 row scales; rows (B, m, m). Each new row
    is scaled by the largest scale it draws on, so no factor exceeds 1 and only terms
    more than ~308 decades below the row's own size underflow.
    """
    top = np.maximum.accumulate(scale[:, ::-1], axis=1)[:, ::-1]  # max over l >= i
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        weights = r * 10.0 ** np.minimum(scale[:, None, :] - top[:, :, None], 0.0)
    new = weights @ rows
    peak = np.abs(new).max(axis=-1)
    with np.errstate(divide="ignore"):
        return top + np.log10(peak), new / np.where(peak > 0, peak, 1.0)[..., None]


def _block_log_svd(scale: np.ndarray, rows: np.ndarray) -> list[float]:
    """log10 singular values of diag(10^scale) @ rows by one float64 SVD, rescaled to the top row."""
    top = scale.max()
    if not np.isfinite(top):
        return [-math.inf] * len(scale)
    with np.errstate(under="ignore", divide="ignore"):
        return list(top + np.log10(np.linalg.svd(10.0 ** (scale - top)[:, None] * rows, compute_uv=False)))


def _graded_log_svd(scale: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """log10 of the k largest singular values of diag(10^scale) @ rows (one sample, upper
    triangular rows with max |entry| 1), sorted descending.

    Where every row above index p is at least _SPLIT_DECADES above every row below it, the
    top block's singular values come from one SVD and the bottom block's from the same
    recursion on its projection orthogonal to the top block's row space (a Schur
    complement, still triangular); the coupling moves either by about 10^(-2 x gap),
    relative. Rows spanning more than _SVD_SPAN decades with no such gap are split at the
    widest gap that leaves the top block within _SVD_SPAN; within a block, LAPACK's SVD
    keeps the small values' relative accuracy as long as the rows are graded (largest first).
    """
    out: list[float] = []
    while len(out) < k and len(scale):
        m = len(scale)
        with np.errstate(invalid="ignore"):  # -inf - -inf (dead units on both sides): nan, never split on
            gaps = np.array([scale[:p].min() - scale[p:].max() for p in range(1, m)])
        wide = np.flatnonzero(gaps >= _SPLIT_DECADES)
        p = m if not len(wide) else int(wide[0]) + 1
        finite = scale[np.isfinite(scale)]
        if p == m and len(gaps) and len(finite) and finite.max() - finite.min() > _SVD_SPAN:
            # too wide for one SVD: split at the widest gap below a top block that one SVD takes
            spans = np.array([scale[:p].max() - scale[:p].min() for p in range(1, m)])
            p = int(np.argmax(np.where(spans <= _SVD_SPAN, gaps, -np.inf))) + 1
        out += _block_log_svd(scale[:p], rows[:p])
        if p == m:
            break
        try:
            w = np.linalg.solve(rows[:p, :p], rows[:p, p:])  # R11^-1 R12: the row scales cancel
        except np.linalg.LinAlgError:  # a singular top block (dead units): one SVD of the rest
            out += _block_log_svd(scale[p:], rows[p:])
            break
        c = np.linalg.cholesky(np.eye(m - p) + w.T @ w).T  # upper, C^T C = I + W^T W
        rest = np.linalg.solve(c.T, rows[p:, p:].T).T  # R22 C^-1: the bottom rows, projected
        peak = np.abs(rest).max(axis=-1)
        with np.errstate(divide="ignore"):
            scale = scale[p:] + np.log10(peak)
        rows = rest / np.where(peak > 0, peak, 1.0)[:, None]
    return np.sort(np.array(out[:k]))[::-1]


def jacobian_singular_values(
    model, x, k: int = 1, *, per_sample: bool = False, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """log10 of the k largest singular values of dh_{T-1}/dh_0, largest first.

    For the LSTM this is the h -> h block of the state Jacobian, c_0 held fixed: the matrix
    that carries dL/dh_{T-1} to dL/dh_0. Returns (k,) float64, the median over the batch
    (per_sample=True: (B, k)).

    The product is never formed. (dh_{T-1}/dh_0)^T = E^T Q R_1 ... R_{T-1}, E the h part of
    the state, is accumulated by QR steps as diag(10^s) A: s the log10 row scales (float64,
    no range limit), A upper triangular with rows of max |entry| 1; values like 1e-3000
    come out as -3000. Exactness limits: float64 rounding in each QR step (a relative
    1e-16 per step, so about T x 1e-16 in all); each value then comes from a float64 SVD of
    a block of rows, accurate relative to itself while the rows are graded largest first,
    as QR iteration orders them; blocks split where all rows above are 8 decades above
    all rows below (coupling error ~1e-16), or at the widest gap when a block spans over
    250 decades (coupling error ~10^(-2 x gap)). Measured against mpmath products at 300
    to 1200 digits (H 4 to 16, T 40 to 600, values down to -567): within 1e-12 decades.
    Carries all H columns (cost ~ T x B x H^2 x n); refuses runs over max_bytes.
    """
    fwd = _Forward(model, x, model.hidden_size, max_bytes)
    T, B = fwd.pre.shape[:2]
    H = fwd.H
    _check_k(k, H, f"dh_{{T-1}}/dh_0 is {H} x {H}")
    q = np.zeros((B, fwd.size, H))
    q[:, np.arange(H), np.arange(H)] = 1.0  # E: the h part of the state
    scale, rows = np.zeros((B, H)), np.broadcast_to(np.eye(H), (B, H, H)).copy()
    with one_thread():  # small per-step products: see passes.one_thread
        for step in fwd.backward():
            q, r = np.linalg.qr(fwd.transpose_times(*step, q))
            scale, rows = _push(scale, rows, r)
        _, r = np.linalg.qr(q[:, :H, :])  # E^T Q: square, orthogonal unless the state is (h, c)
        scale, rows = _push(scale, rows, r)
        values = np.stack([_graded_log_svd(scale[b], rows[b], k) for b in range(B)])
    return _per_sample(values, per_sample)


# ---------------------------------------------------------------- estimates from a recording


@dataclass(frozen=True)
class Estimate:
    """A predicted decay rate, with analysis.DecayFit's sign: > 0 vanishing, < 0 exploding."""

    name: str
    decades_per_step: float
    note: str


def _slopes(rec: Recording) -> np.ndarray:
    """phi'(a_t) for every (sample, step, unit) of the RNN, from h_t alone."""
    h = rec.hidden.astype(np.float64)
    return 1.0 - h**2 if rec.nonlinearity == "tanh" else (h > 0).astype(np.float64)


def pascanu_rate(rec: Recording) -> float:
    """log10(sigma_1 gamma), the bound's decades gained per step back (RNN): sigma_1 the
    largest singular value of W_hh, gamma the largest activation slope."""
    if rec.arch != "rnn":
        raise ValueError(f"the Pascanu bound is stated for the plain RNN, got the {rec.arch}")
    sigma_1 = np.linalg.norm(rec.weight_hh.astype(np.float64), 2)
    return float(np.log10(sigma_1 * ACTIVATION_SLOPE_BOUND[rec.nonlinearity]))


def bound_curve(rec: Recording) -> np.ndarray:
    """(T,) log10 of Pascanu et al.'s bound ||dL/dh_t|| <= ||dL/dh_{T-1}|| (sigma_1 gamma)^(T-1-t),
    anchored at the largest ||dL/dh_{T-1}|| in the batch, so it bounds every sample (RNN only)."""
    steps_back = np.arange(rec.seq_len - 1, -1, -1, dtype=np.float64)
    return float(np.max(rec.log10_grad_h[:, -1])) + steps_back * pascanu_rate(rec)


def estimates(rec: Recording) -> list[Estimate]:
    """The closed-form decay rates that apply to this recording's architecture."""
    if rec.arch == "rnn":
        act = f"{rec.nonlinearity}'"
        slopes = _slopes(rec)
        w = rec.weight_hh.astype(np.float64)
        rho = float(np.abs(np.linalg.eigvals(w)).max())
        mean_field = np.sum(w**2) / rec.hidden_size * float(np.mean(slopes**2))
        with np.errstate(divide="ignore"):
            return [
                Estimate(
                    "per-step: spectral radius x mean slope",
                    -float(np.log10(rho * slopes.mean())),
                    f"-log10(rho(W_hh) mean {act}); treats every step's Jacobian as rho times the mean slope",
                ),
                Estimate(
                    "mean field",
                    -0.5 * float(np.log10(mean_field)),
                    f"-1/2 log10(||W_hh||_F^2 / H mean({act}^2)); W_hh random, slopes independent of it",
                ),
                Estimate(
                    "Pascanu et al. bound",
                    -pascanu_rate(rec),
                    "-log10(sigma_1 gamma): the fastest growth any input allows; a bound, not an estimate",
                ),
            ]
    keep = {"lstm": ("forget", "cell path"), "gru": ("update", "carry path z")}[rec.arch]
    with np.errstate(divide="ignore"):
        logs = np.log10(rec.gates[keep[0]].astype(np.float64))
    per_unit = logs.mean(axis=1)  # (B, H) mean over steps
    return [
        Estimate(
            f"{keep[1]}: mean log10 of the {keep[0]} gate",
            -float(logs.mean()),
            f"-mean log10 of the {keep[0]} gate over samples, steps and units (the log of the mean "
            "overstates the keep); ignores the path through W_hh",
        ),
        Estimate(
            f"{keep[1]}: slowest unit",
            -float(np.median(per_unit.max(axis=1))),
            f"-max over units of mean log10 {keep[0]} (batch median): far back the best-kept unit dominates",
        ),
    ]


def theory_table(*recordings: Recording, extra: dict[str, list[Estimate]] | None = None) -> pd.DataFrame:
    """One row per (recording, estimate): columns model, estimate, predicted, measured,
    difference (predicted - measured), note; rates in decades per step, > 0 vanishing.
    extra maps a recording's name (rec.name) to more estimates, e.g. [lyapunov_estimate(...)]."""
    rows = []
    for rec in recordings:
        measured = decay_fit(rec).decades_per_step
        for est in estimates(rec) + list((extra or {}).get(rec.name, [])):
            rows.append(
                {
                    "model": rec.name,
                    "estimate": est.name,
                    "predicted": est.decades_per_step,
                    "measured": measured,
                    "difference": est.decades_per_step - measured,
                    "note": est.note,
                }
            )
    return pd.DataFrame(rows, columns=["model", "estimate", "predicted", "measured", "difference", "note"])


def lyapunov_estimate(model, x) -> Estimate:
    """The top Lyapunov exponent as a decay rate (its negative), for theory_table's extra."""
    top = float(lyapunov_exponents(model, x, 1)[0])
    return Estimate(
        "top Lyapunov exponent",
        -top,
        "QR iteration on the exact per-step Jacobians; equals the measured slope far from the loss",
    )


def bound_gap(rec: Recording) -> float:
    """Decades between Pascanu's bound and the batch-median measured curve at t = 0."""
    return float(bound_curve(rec)[0] - median_curve(rec.log10_grad_h)[0])
