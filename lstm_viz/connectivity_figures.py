"""connectivity() result -> plotly Figure: the T x T heatmap of how much each input step still moves
each output step. Pure (no streamlit); long sequences are averaged in square blocks (figures.decimate)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .figures import block_size, decimate

MAX_CELLS_PER_AXIS = 300  # a 300 x 300 heatmap: finer than a side-by-side column shows
COLOUR_DECADES = 20.0  # the colour scale spans this many decades below the top; lower is clipped


def block_means(values: np.ndarray, max_points: int = MAX_CELLS_PER_AXIS) -> tuple[np.ndarray, np.ndarray]:
    """(T, T) log10 values -> (blocks, blocks) means over the finite entries of each square block
    (NaN where a block has none: the future, or exact zeros) and the block centres (blocks,)."""
    finite = np.isfinite(values)
    kept = np.where(finite, values, 0.0)
    sums, centres = decimate(decimate(kept, max_points, axis=0)[0], max_points, axis=1)
    counts, _ = decimate(decimate(finite.astype(np.float64), max_points, axis=0)[0], max_points, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan), centres


def connectivity_figure(values: np.ndarray, name: str, *, max_points: int = MAX_CELLS_PER_AXIS) -> go.Figure:
    """Heatmap of log10 ||d(u . y_{t_out}) / d x_{t_in}|| from connectivity() (B, T, T) or (T, T):
    rows t_out (top: t = 0), columns t_in, the median over the batch. The colour scale spans
    COLOUR_DECADES below the largest value; the future (t_in > t_out) and exact zeros are blank."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 3:
        with np.errstate(invalid="ignore"):
            values = np.median(values, axis=0)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise ValueError(f"values must be (T, T) or (B, T, T) from lstm_viz.connectivity, got {values.shape}")
    T = values.shape[0]
    z, t = block_means(values, max_points)
    top = float(np.nanmax(z)) if np.isfinite(z).any() else 0.0
    zmax = float(np.ceil(top))
    title = f"{name}<br><sup>log<sub>10</sub> ‖∂(u·y<sub>t_out</sub>)/∂x<sub>t_in</sub>‖</sup>"
    if (k := block_size(T, max_points)) > 1:
        title += f"<br><sup>each cell = mean of {k} x {k} steps</sup>"
    fig = go.Figure(
        go.Heatmap(
            z=z, x=t, y=t, zmin=zmax - COLOUR_DECADES, zmax=zmax, colorscale="Viridis",
            colorbar=dict(thickness=12, title="decades"),
            hovertemplate="output t=%{y:.0f}<br>input t=%{x:.0f}<br>log10 norm=%{z:.2f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        xaxis=dict(title="input step t_in", range=[-0.5, T - 0.5], showgrid=False, zeroline=False),
        yaxis=dict(title="output step t_out", range=[T - 0.5, -0.5], showgrid=False, zeroline=False),
        height=480,
        margin=dict(l=70, r=20, t=80, b=50),
    )
    return fig
