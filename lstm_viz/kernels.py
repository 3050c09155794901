"""The per-step loops of the backward recursion, compiled with numba.

One step back is a few elementwise products and one (G*H) x H matrix-vector
product. Called from Python, each of those costs a microsecond of call overhead,
more than the arithmetic at H = 128; compiled, a step costs what its arithmetic
costs (LSTM, H = 128: 4.4 us a step instead of 7.5 us in numpy).

Every kernel walks t = t_end-1 down to t_start and writes dh[t-1] (and dc[t]);
factor arrays (carry, mix) are indexed by k = t - t0, the row of the chunk they
were made for. Arrays are time-major: dh, dc (T, B, H); w (G*H, H) is W_hh.
Only reassociation and contraction are allowed to the compiler (no fast-math
assumptions about inf or NaN): the caller checks every block for overflow.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# nogil: record() may run the two halves of a large batch on two threads at once.
_JIT = {"cache": True, "nogil": True, "fastmath": {"reassoc", "contract", "arcp"}}


@njit(**_JIT)
def _matmul_into(rows, w, out):
    """out[:, :] = rows @ w (rows (B, G*H)), four rows of w at a time: each output
    element is loaded and stored a quarter as often as in the plain loop."""
    B, n = rows.shape
    acc = np.zeros((B, w.shape[1]), w.dtype)
    i = 0
    while i + 4 <= n:
        for b in range(B):
            v0, v1, v2, v3 = rows[b, i], rows[b, i + 1], rows[b, i + 2], rows[b, i + 3]
            for j in range(w.shape[1]):
                acc[b, j] += v0 * w[i, j] + v1 * w[i + 1, j] + v2 * w[i + 2, j] + v3 * w[i + 3, j]
        i += 4
    while i < n:
        for b in range(B):
            v = rows[b, i]
            for j in range(w.shape[1]):
                acc[b, j] += v * w[i, j]
        i += 1
    out[:, :] = acc


@njit(**_JIT)
def lstm_steps(dh, dc, carry, forget, mix, w, dc_in, t_end, t_start, t0):
    """LSTM: dc_t = dh_t * carry_t + dc_{t+1} * f_{t+1}; dh_{t-1} = ((dc, dc, dc, dh) * mix_t) @ W_hh.

    forget is the whole (T, B, H) forget gate; returns dc[t_start].
    """
    B, H = dh.shape[1], dh.shape[2]
    mixed = np.empty((B, 4 * H), dh.dtype)
    last = dh.shape[0] - 1
    for t in range(t_end - 1, t_start - 1, -1):
        k = t - t0
        for b in range(B):
            for j in range(H):
                value = dh[t, b, j] * carry[k, b, j]
                if t < last:
                    value += dc_in[b, j] * forget[t + 1, b, j]
                dc[t, b, j] = value
                mixed[b, j] = value * mix[k, b, j]
                mixed[b, H + j] = value * mix[k, b, H + j]
                mixed[b, 2 * H + j] = value * mix[k, b, 2 * H + j]
                mixed[b, 3 * H + j] = dh[t, b, j] * mix[k, b, 3 * H + j]
        if t > 0:
            _matmul_into(mixed, w, dh[t - 1])
        dc_in = dc[t]
    return dc_in


@njit(**_JIT)
def rnn_steps(dh, mix, w, t_end, t_start, t0):
    """RNN: dh_{t-1} = (dh_t * act'(a_t)) @ W_hh."""
    B, H = dh.shape[1], dh.shape[2]
    mixed = np.empty((B, H), dh.dtype)
    for t in range(t_end - 1, max(t_start, 1) - 1, -1):
        k = t - t0
        for b in range(B):
            for j in range(H):
                mixed[b, j] = dh[t, b, j] * mix[k, b, j]
        _matmul_into(mixed, w, dh[t - 1])


@njit(**_JIT)
def gru_steps(dh, carry, mix, w, t_end, t_start, t0):
    """GRU: dh_{t-1} = dh_t * z_t + ((dh, dh, dh) * mix_t) @ W_hh."""
    B, H = dh.shape[1], dh.shape[2]
    G = w.shape[0] // H
    mixed = np.empty((B, G * H), dh.dtype)
    for t in range(t_end - 1, max(t_start, 1) - 1, -1):
        k = t - t0
        for b in range(B):
            for g in range(G):
                for j in range(H):
                    mixed[b, g * H + j] = dh[t, b, j] * mix[k, b, g * H + j]
        _matmul_into(mixed, w, dh[t - 1])
        for b in range(B):
            for j in range(H):
                dh[t - 1, b, j] += dh[t, b, j] * carry[k, b, j]


# Injected variants: a gradient arrives at every step (a loss on every output, or the layer
# above's dL/dx_t). inj[t] is stored with its peak at 1 and its log10 scale in inj_scale[t]
# (-inf: none); the running adjoint has scale sc (per sample, updated in place). Each step
# adds the two at the larger scale, renormalises to a peak of 1 and writes scale[t], so no
# value leaves the float range however far apart the two scales are.


@njit(**_JIT)
def _join(dh, inj, inj_scale, sc, t, b):
    """dh[t, b] (at scale sc[b]) += inj[t, b] (at inj_scale[t, b]); returns the factor applied to
    dh's old part and sets sc[b] to the joint scale."""
    s_in = inj_scale[t, b]
    if s_in == -np.inf:
        return 1.0
    if s_in > sc[b]:
        old = 10.0 ** (sc[b] - s_in)  # 0 where nothing came before (sc = -inf)
        for j in range(dh.shape[2]):
            dh[t, b, j] = dh[t, b, j] * old + inj[t, b, j]
        sc[b] = s_in
        return old
    new = 10.0 ** (s_in - sc[b])
    for j in range(dh.shape[2]):
        dh[t, b, j] += inj[t, b, j] * new
    return 1.0


@njit(**_JIT)
def _renormalise(a, t, b, peak, scale, sc):
    """Divide a[t, b] by peak (> 0 or skipped), fold it into sc[b], write scale[t, b]."""
    if peak > 0:
        for j in range(a.shape[2]):
            a[t, b, j] /= peak
        sc[b] += np.log10(peak)
    scale[t, b] = sc[b]


@njit(**_JIT)
def rnn_steps_injected(dh, scale, inj, inj_scale, sc, mix, w, t_end, t_start, t0):
    """RNN with a gradient injected at every step (see above): dh_{t-1} = (dh_t * act'(a_t)) @ W_hh."""
    B, H = dh.shape[1], dh.shape[2]
    mixed = np.empty((B, H), dh.dtype)
    for t in range(t_end - 1, t_start - 1, -1):
        k = t - t0
        for b in range(B):
            _join(dh, inj, inj_scale, sc, t, b)
            peak = 0.0
            for j in range(H):
                peak = max(peak, abs(dh[t, b, j]))
            _renormalise(dh, t, b, peak, scale, sc)
            for j in range(H):
                mixed[b, j] = dh[t, b, j] * mix[k, b, j]
        if t > 0:
            _matmul_into(mixed, w, dh[t - 1])


@njit(**_JIT)
def gru_steps_injected(dh, scale, inj, inj_scale, sc, carry, mix, w, t_end, t_start, t0):
    """GRU with a gradient injected at every step: dh_{t-1} = dh_t * z_t + ((dh, dh, dh) * mix_t) @ W_hh."""
    B, H = dh.shape[1], dh.shape[2]
    G = w.shape[0] // H
    mixed = np.empty((B, G * H), dh.dtype)
    for t in range(t_end - 1, t_start - 1, -1):
        k = t - t0
        for b in range(B):
            _join(dh, inj, inj_scale, sc, t, b)
            peak = 0.0
            for j in range(H):
                peak = max(peak, abs(dh[t, b, j]))
            _renormalise(dh, t, b, peak, scale, sc)
            for g in range(G):
                for j in range(H):
                    mixed[b, g * H + j] = dh[t, b, j] * mix[k, b, g * H + j]
        if t > 0:
            _matmul_into(mixed, w, dh[t - 1])
            for b in range(B):
                for j in range(H):
                    dh[t - 1, b, j] += dh[t, b, j] * carry[k, b, j]


@njit(**_JIT)
def lstm_steps_injected(dh, dc, scale, inj, inj_scale, sc, carry, forget, mix, w, dc_in, t_end, t_start, t0):
    """LSTM with a gradient injected into dh at every step; dh[t] and dc[t] share scale[t].

    dc_in is dc[t_end] (at the scale sc held on entry); returns dc[t_start].
    """
    B, H = dh.shape[1], dh.shape[2]
    mixed = np.empty((B, 4 * H), dh.dtype)
    last = dh.shape[0] - 1
    for t in range(t_end - 1, t_start - 1, -1):
        k = t - t0
        for b in range(B):
            old = _join(dh, inj, inj_scale, sc, t, b)
            peak = 0.0
            for j in range(H):
                value = dh[t, b, j] * carry[k, b, j]
                if t < last:
                    value += dc_in[b, j] * forget[t + 1, b, j] * old
                dc[t, b, j] = value
                peak = max(peak, abs(value), abs(dh[t, b, j]))
            if peak > 0:
                for j in range(H):
                    dc[t, b, j] /= peak
            _renormalise(dh, t, b, peak, scale, sc)
            for j in range(H):
                value = dc[t, b, j]
                mixed[b, j] = value * mix[k, b, j]
                mixed[b, H + j] = value * mix[k, b, H + j]
                mixed[b, 2 * H + j] = value * mix[k, b, 2 * H + j]
                mixed[b, 3 * H + j] = dh[t, b, j] * mix[k, b, 3 * H + j]
        if t > 0:
            _matmul_into(mixed, w, dh[t - 1])
        dc_in = dc[t]
    return dc_in


@njit(**_JIT)
def cell_states(forget, update, cell):
    """The LSTM's cell recurrence: cell[0] = 0, cell[t + 1] = forget[t] * cell[t] + update[t];
    forget and update (T, B, H) (strided views are fine), cell (T + 1, B, H)."""
    T, B, H = update.shape
    cell[0, :, :] = 0
    for t in range(T):
        for b in range(B):
            for j in range(H):
                cell[t + 1, b, j] = forget[t, b, j] * cell[t, b, j] + update[t, b, j]
