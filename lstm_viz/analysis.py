"""Numbers people quote, derived from a Recording: decay rate, half-life, spectral radius,
gate means, time constants and saturation.

Conventions: t runs forward in time, the loss sits at t = T-1, so a vanishing gradient
*rises* with t. decades_per_step is the slope of log10 ||dL/dh_t|| against t: positive
means the gradient shrinks by that many decades for every step further back.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .record import GATE_NAMES, Recording

KEEP_GATE = {"lstm": "forget", "gru": "update"}  # the gate that keeps the old state
GRADIENT_NORMS = ("log10_grad_h", "log10_grad_c", "log10_grad_x")  # what decay_fit fits, (B, T) each


@dataclass(frozen=True)
class DecayFit:
    """A straight line through the batch median of log10 ||dL/d._t|| over t."""

    decades_per_step: float  # slope; > 0 vanishing, < 0 exploding
    intercept: float  # value of the line at t = 0
    half_life: float  # steps back for the gradient to halve; inf when it does not shrink
    t_first: int  # the fit uses steps t_first .. t_last
    t_last: int

    def line(self, t: np.ndarray) -> np.ndarray:
        """The fitted log10 norm at steps t."""
        return self.intercept + self.decades_per_step * np.asarray(t, dtype=np.float64)


def batch_percentile(values: np.ndarray, q: float) -> np.ndarray:
    """q-th percentile over the batch (axis 0) of log10 norms, ignoring -inf (a gradient that is
    exactly zero, e.g. behind dead relu units); NaN where every sample is zero, which Plotly
    draws as a gap."""
    finite = np.where(np.isfinite(values), values, np.nan)
    # nanpercentile loops over the steps in Python (a second for T = 1000 on a page that needs
    # several); with no NaN the vectorised percentile gives the same numbers, as does one sample.
    if not np.isnan(finite).any():
        return np.percentile(finite, q, axis=0)
    if finite.shape[0] == 1:
        return finite[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN step stays NaN
        return np.nanpercentile(finite, q, axis=0)


def median_curve(values: np.ndarray) -> np.ndarray:
    """Median over the batch of a (B, T) curve, ignoring -inf (exactly zero gradients)."""
    return batch_percentile(values, 50)


def _check_recording(rec: object, function: str) -> None:
    if not isinstance(rec, Recording):
        raise TypeError(f"{function} takes a Recording (from lstm_viz.record), got {type(rec).__name__}")


def decay_fit(rec: Recording, quantity: str = "log10_grad_h") -> DecayFit:
    """Least-squares line through the batch median of `quantity` over every finite step.

    The gradient entering at T-1 is often off the line for a step or two; over
    hundreds of steps that does not move the slope.
    """
    _check_recording(rec, "decay_fit")
    if quantity not in GRADIENT_NORMS:
        raise ValueError(f"quantity must be one of {GRADIENT_NORMS}, got {quantity!r}")
    values = getattr(rec, quantity)
    if values is None:
        raise ValueError(f"{quantity} is not recorded for the {rec.arch}: only the LSTM has a cell state")
    curve = median_curve(values)
    t = np.flatnonzero(np.isfinite(curve))
    if len(t) < 2:
        return DecayFit(math.nan, math.nan, math.nan, 0, rec.seq_len - 1)
    slope, intercept = np.polyfit(t.astype(np.float64), curve[t], 1)
    half_life = math.log10(2) / slope if slope > 0 else math.inf
    return DecayFit(float(slope), float(intercept), float(half_life), int(t[0]), int(t[-1]))


def spectral_radius(matrix: np.ndarray) -> float:
    """Largest absolute eigenvalue of a square matrix."""
    return float(np.abs(np.linalg.eigvals(np.asarray(matrix, dtype=np.float64))).max())


def recurrent_spectral_radii(rec: Recording) -> dict[str, float]:
    """Spectral radius of each H x H block of W_hh: {"hidden": rho} for the RNN, per gate otherwise."""
    _check_recording(rec, "recurrent_spectral_radii")
    H = rec.hidden_size
    names = GATE_NAMES[rec.arch] or ("hidden",)
    return {name: spectral_radius(rec.weight_hh[k * H : (k + 1) * H]) for k, name in enumerate(names)}


@dataclass(frozen=True)
class GateStats:
    """Per-unit statistics of one gate over batch and time."""

    gate: str
    mean: np.ndarray  # (H,) mean activation
    time_constant: np.ndarray  # (H,) 1 / (1 - mean): steps a unit keeps its state
    frac_below: np.ndarray  # (H,) fraction of steps with the gate < 0.1 (shut)
    frac_above: np.ndarray  # (H,) fraction of steps with the gate > 0.9 (open)


def gate_stats(rec: Recording, gate: str | None = None) -> GateStats:
    """Statistics of `gate` (default: the forget gate of the LSTM, the update gate of the GRU).

    The saturation fractions follow Karpathy, Johnson & Fei-Fei (2015): a unit whose gate
    is mostly above 0.9 keeps its state, one mostly below 0.1 resets it.
    """
    _check_recording(rec, "gate_stats")
    gate = gate or KEEP_GATE.get(rec.arch)
    if gate not in rec.gates:
        raise ValueError(f"the {rec.arch} has gates {sorted(rec.gates) or 'none'}, not {gate!r}")
    values = rec.gates[gate].astype(np.float64)
    mean = values.mean(axis=(0, 1))
    with np.errstate(divide="ignore"):
        time_constant = 1.0 / (1.0 - mean)
    return GateStats(
        gate=gate,
        mean=mean,
        time_constant=time_constant,
        frac_below=(values < 0.1).mean(axis=(0, 1)),
        frac_above=(values > 0.9).mean(axis=(0, 1)),
    )
