"""Theory beside measurement as plotly Figures: the measured log10 ||dL/dh_t|| with the
predicted slopes (theory.Estimate), the Pascanu et al. (2013) bound and the float floors, and
the Lyapunov and singular-value spectra (spectrum_figure). Pure functions, no streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .analysis import decay_fit, median_curve
from .figures import ARCH_COLORS, MAX_LINE_POINTS, decimate, floor_lines
from .record import Recording
from .theory import Estimate, bound_curve

_LINE_DASHES = ("dash", "dot", "dashdot", "longdash", "longdashdot")
# Tableau 10 orange, purple, teal, brown, yellow: apart from the architecture colours.
_ESTIMATE_COLORS = ("#F28E2B", "#B07AA1", "#76B7B2", "#9C755F", "#EDC948")
Y_TITLE = "log10 ||dL/dh<sub>t</sub>|| (decades)"
X_TITLE = "t (step)"
BOUND_NAME = "Pascanu et al. bound"  # theory.estimates' name for it
# Below the axis title at any width (a phone's legend wraps onto many rows): at the figure's bottom edge.
LEGEND_BELOW = dict(orientation="h", yref="container", yanchor="bottom", y=0, xanchor="left", x=0)


def _anchored(t_last: float, y_last: float, decades_per_step: float) -> tuple[list[float], list[float]]:
    """A straight line through (t_last, y_last) rising decades_per_step per step, at t = 0 and t_last."""
    return [0.0, t_last], [y_last - decades_per_step * t_last, y_last]


def theory_figure(
    rec: Recording,
    estimates: Sequence[Estimate] = (),
    *,
    bound: bool = True,
    floors: bool = True,
    max_points: int = MAX_LINE_POINTS,
) -> go.Figure:
    """The batch median of the measured log10 ||dL/dh_t|| over t, each estimate as a dashed
    straight line anchored at the measured value at t = T-1 (0 for record()'s default loss),
    the Pascanu bound (RNN only, when bound is True) and the float floors near the data."""
    T = rec.seq_len
    color = ARCH_COLORS.get(rec.arch, "#444444")
    curve = median_curve(rec.log10_grad_h)
    measured, t = decimate(curve, max_points)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=t,
            y=measured,
            mode="lines",
            line=dict(color=color, width=2),
            name=f"{rec.name} measured (batch median)",
            hovertemplate="t = %{x}<br>log10 ||dL/dh_t|| = %{y:.2f}<extra>measured</extra>",
        )
    )
    y_last = float(curve[-1]) if np.isfinite(curve[-1]) else 0.0
    for k, est in enumerate(estimates):
        drawn_below = bound and rec.arch == "rnn" and est.name == BOUND_NAME  # from bound_curve
        if drawn_below or not math.isfinite(est.decades_per_step):
            continue
        x, y = _anchored(T - 1, y_last, est.decades_per_step)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                line=dict(
                    color=_ESTIMATE_COLORS[k % len(_ESTIMATE_COLORS)],
                    dash=_LINE_DASHES[k % len(_LINE_DASHES)],
                    width=1.5,
                ),
                name=f"{est.name}: {est.decades_per_step:.3g} decades/step",
                hovertemplate=f"{est.note}<extra>{est.name}</extra>",
            )
        )
    if bound and rec.arch == "rnn":
        upper = bound_curve(rec)
        fig.add_trace(
            go.Scatter(
                x=[0.0, T - 1.0],
                y=[float(upper[0]), float(upper[-1])],
                mode="lines",
                line=dict(color="black", width=1, dash="longdash"),
                name=f"Pascanu et al. bound (σ₁γ)^k: {upper[0] - curve[0]:.0f} decades above at t = 0",
                hovertemplate=(
                    "||dL/dh_t|| <= ||dL/dh_T-1|| (σ₁γ)^(T-1-t). Loose: it lets every step "
                    "reach the largest gain σ₁γ, while long products of W_hh grow like its "
                    "spectral radius, about half of σ₁ at default init<extra>bound</extra>"
                ),
            )
        )
    if floors:
        finite = curve[np.isfinite(curve)]
        if len(finite):
            floor_lines(fig, float(finite.min()), x_range=(0.0, T - 1.0))
    fig.update_layout(
        title=f"{rec.name}: measured vs predicted",  # short: a phone shows about 45 characters
        xaxis_title=X_TITLE,
        yaxis_title=Y_TITLE,
        legend=LEGEND_BELOW,
        margin=dict(l=60, r=20, t=50, b=40),
        height=520,
    )
    return fig


def spectrum_figure(recs: Sequence[Recording], values: Sequence[np.ndarray], *, kind: str) -> go.Figure:
    """One line of markers per recording over i = 1..k, with a dotted reference line in its colour.

    kind "lyapunov": values[j] (k,) Lyapunov exponents (theory.lyapunov_exponents), decades per
    step; the reference is minus the measured slope (decay_fit), where the top one should sit.
    kind "singular": values[j] (k,) log10 singular values of dh_{T-1}/dh_0
    (theory.jacobian_singular_values); the reference is the measured log10 ||dL/dh_0|| (batch
    median), at most the top value for record()'s unit-norm loss.
    """
    if kind not in ("lyapunov", "singular"):
        raise ValueError(f"kind must be 'lyapunov' or 'singular', got {kind!r}")
    fig = go.Figure()
    k_max = max((len(v) for v in values), default=1)
    for rec, vals in zip(recs, values, strict=True):
        color = ARCH_COLORS.get(rec.arch, "#444444")
        vals = np.asarray(vals, dtype=np.float64)
        if kind == "lyapunov":
            ref, ref_name = -decay_fit(rec).decades_per_step, "minus the measured slope"
            fmt = "λ<sub>%{x}</sub> = %{y:.4f} decades/step"
        else:
            ref, ref_name = float(median_curve(rec.log10_grad_h)[0]), "measured log10 ||dL/dh<sub>0</sub>||"
            fmt = "log10 σ<sub>%{x}</sub> = %{y:.2f}"
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(vals) + 1),
                y=vals,
                mode="lines+markers",
                line=dict(color=color, width=1.5),
                marker=dict(size=8),
                name=rec.name,
                hovertemplate=f"{fmt}<extra>{rec.name}</extra>",
            )
        )
        if math.isfinite(ref):
            fig.add_trace(
                go.Scatter(
                    x=[0.8, k_max + 0.2],
                    y=[ref, ref],
                    mode="lines",
                    line=dict(color=color, width=1, dash="dot"),
                    name=f"{rec.name}: {ref_name} ({ref:.3g})",
                    hovertemplate=f"{ref_name}: %{{y:.4g}}<extra>{rec.name}</extra>",
                )
            )
    if kind == "lyapunov":
        title, y_title = "Lyapunov exponents of the backward dynamics", "λ<sub>i</sub> (decades/step back)"
    else:
        title, y_title = "Singular values of ∂h<sub>T−1</sub>/∂h<sub>0</sub>", "log10 σ<sub>i</sub> (decades)"
    fig.update_layout(
        title=title,
        xaxis=dict(title="i (largest first)", tickmode="linear", dtick=1),
        yaxis_title=y_title,
        legend=LEGEND_BELOW,
        margin=dict(l=60, r=20, t=50, b=40),
        height=440,
    )
    return fig
