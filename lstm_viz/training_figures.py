"""TrainingResult -> plotly Figure: loss curves, gradient flow over training, keep gates, grad norms.

Pure functions named *_figure (no streamlit), taking `{arch: TrainingResult}` as
returned by `Trainer.results()`. Colours are the app's ARCH_COLORS (EXTRA_COLORS for a second model
of the same architecture, e.g. two LSTM inits side by side); long histories
are averaged over blocks of steps (`figures.decimate`) and the chart says so.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .analysis import batch_percentile
from .figures import ARCH_COLORS, EXTRA_COLORS, MAX_LINE_POINTS, band, block_size, decimate, floor_lines
from .tasks import get_task
from .training import GATE_BINS, KEEP_GATE, TrainingResult

LOSS_TITLES = {"mse": "loss (MSE)", "cross_entropy": "loss (cross-entropy, nats per step)"}
KEEP_GATE_TITLES = {"forget": "forget gate f_t", "update": "update gate z_t"}
MAX_HEATMAP_STEPS = 400  # timesteps (columns) per heatmap


def _reference_line(fig: go.Figure, y: float, text: str) -> None:
    """A dashed grey horizontal line with its label at the right."""
    fig.add_hline(
        y=y, line=dict(color="gray", dash="dash"), annotation_text=text, annotation_position="top right"
    )


def _legend(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0),
        margin=dict(l=60, r=20, t=40, b=40),
        height=height,
        hovermode="x unified",
    )
    return fig


def model_colors(results: Mapping[str, TrainingResult]) -> dict[str, str]:
    """model name -> colour: each architecture's own colour for its first model, EXTRA_COLORS after."""
    colors, used, extra = {}, set(), iter(EXTRA_COLORS * 4)
    for name, res in results.items():
        colors[name] = next(extra) if res.arch in used else ARCH_COLORS.get(res.arch, "#888888")
        used.add(res.arch)
    return colors


def _per_step(values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(block means, training steps 1..N at block centres, block size)."""
    means, centres = decimate(values, max_points)
    return means, centres + 1, block_size(len(values), max_points)


def _corner_note(fig: go.Figure, text: str) -> None:
    """A small note above the plot's top-left corner (e.g. how the chart was thinned)."""
    fig.add_annotation(
        text=text, xref="paper", yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom", showarrow=False
    )


def loss_figure(
    results: Mapping[str, TrainingResult], step: int | None = None, *, max_points: int = 500
) -> go.Figure:
    """Test loss (solid, markers) and training loss (faint, block means) against step, log axis,
    with the memoryless baseline as a dashed line and, if given, a dotted line at the step shown
    by the other charts (the snapshot at or before `step`)."""
    fig = go.Figure()
    block, baseline, loss_kind = 1, None, "mse"
    colors = model_colors(results)
    for name, res in results.items():
        color = colors[name]
        baseline, loss_kind = res.baseline, get_task(res.task).loss
        if len(res.loss):
            means, steps, block = _per_step(res.loss, max_points)
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=means,
                    mode="lines",
                    name=f"{res.label}: training batches",
                    line=dict(color=color, width=1),
                    opacity=0.35,
                    legendgroup=res.model,
                )
            )
        fig.add_trace(
            go.Scatter(
                x=res.eval_steps,
                y=res.test_loss,
                mode="lines+markers",
                name=f"{res.label}: test set",
                line=dict(color=color, width=2.5),
                marker=dict(size=5),
                legendgroup=res.model,
            )
        )
    if baseline is not None:
        _reference_line(fig, baseline, f"memoryless baseline {baseline:.3g}")
    if step is not None and results:
        first = next(iter(results.values()))
        shown = int(first.snapshot_steps[first.snapshot_index(step)])
        fig.add_vline(
            x=shown,
            line=dict(color="gray", width=1.5, dash="dot"),
            annotation_text=f"shown: step {shown}",
            annotation_position="bottom left",  # the baseline's label sits at the top right
        )
    fig.update_layout(
        xaxis_title="training step", yaxis_title=LOSS_TITLES[loss_kind], yaxis_type="log", yaxis_dtick=1
    )
    if block > 1:
        _corner_note(fig, f"training loss: mean of {block} steps per point")
    return _legend(fig, 420)


def _median(values: np.ndarray) -> np.ndarray:
    """Median over the probe batch (axis -2) of log10 norms; NaN where it is -inf (a gradient
    exactly zero, e.g. behind dead relu units), which Plotly leaves as a gap."""
    median = np.median(values.astype(np.float64), axis=-2)
    return np.where(np.isneginf(median), np.nan, median)


def gradient_heatmap_figure(results: Mapping[str, TrainingResult], step: int | None = None) -> go.Figure:
    """Median log10 ||dL/dh_t|| over the probe batch: one heatmap per arch, timestep t across,
    training step down, one colour scale; a line marks `step` if given."""
    archs = list(results)
    fig = make_subplots(
        rows=1,
        cols=len(archs),
        shared_yaxes=True,
        horizontal_spacing=0.03,
        subplot_titles=[results[a].label for a in archs],
    )
    grids = {a: _median(results[a].log10_grad_h) for a in archs}
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()])
    zmin, zmax = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    block = 1
    for col, arch in enumerate(archs, start=1):
        res = results[arch]
        z, t = decimate(grids[arch], MAX_HEATMAP_STEPS, axis=1)
        block = max(block, block_size(grids[arch].shape[1], MAX_HEATMAP_STEPS))
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=t,
                y=res.snapshot_steps,
                zmin=zmin,
                zmax=zmax,
                colorscale="Viridis",
                showscale=col == len(archs),
                colorbar=dict(title=dict(text="log<sub>10</sub> ‖∂L/∂h<sub>t</sub>‖", side="right")),
                hovertemplate="t=%{x:.0f}<br>step %{y}<br>log10 ‖∂L/∂h_t‖=%{z:.2f}<extra>"
                + res.label
                + "</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="timestep t", row=1, col=col)
        if step is not None:
            shown = int(res.snapshot_steps[res.snapshot_index(step)])
            fig.add_hline(y=shown, line=dict(color="white", width=1.5, dash="dot"), row=1, col=col)
    fig.update_yaxes(title_text="training step", autorange="reversed", row=1, col=1)
    fig.update_layout(height=420, margin=dict(l=60, r=20, t=40, b=40))
    if block > 1:
        _corner_note(fig, f"each column is the mean of {block} timesteps")
    return fig


def gradient_profile_figure(results: Mapping[str, TrainingResult], step: int) -> go.Figure:
    """log10 ||dL/dh_t|| against t at the snapshot at or before `step`, median with the interquartile
    band over the probe batch, one line per arch, and each arch's profile before training (dotted)."""
    fig = go.Figure()
    colors = model_colors(results)
    lowest = 0.0
    for name, res in results.items():
        color, k = colors[name], res.snapshot_index(step)
        values = res.log10_grad_h[k]
        if np.isfinite(values).any():
            lowest = min(lowest, float(np.min(values[np.isfinite(values)])))
        q25, q50, q75 = (decimate(batch_percentile(values, q), MAX_LINE_POINTS)[0] for q in (25, 50, 75))
        t = decimate(values[0], MAX_LINE_POINTS)[1]
        band(fig, t, q25, q75, color, res.model)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=q50,
                mode="lines",
                line=dict(color=color, width=2.5),
                name=f"{res.label} at step {int(res.snapshot_steps[k])}",
                legendgroup=res.model,
            )
        )
        first = decimate(_median(res.log10_grad_h[0]), MAX_LINE_POINTS)[0]
        fig.add_trace(
            go.Scatter(
                x=t,
                y=first,
                mode="lines",
                line=dict(color=color, width=1.5, dash="dot"),
                name=f"{res.label} before training",
                legendgroup=res.model,
            )
        )
    if results:
        floor_lines(fig, lowest, x_range=(0, next(iter(results.values())).log10_grad_h.shape[-1] - 1))
    fig.update_layout(
        xaxis_title="timestep t", yaxis_title="log<sub>10</sub> ‖∂L/∂h<sub>t</sub>‖   (decades)"
    )
    return _legend(fig, 420)


def keep_gate_figure(results: Mapping[str, TrainingResult], step: int) -> go.Figure:
    """Distribution of the LSTM's forget gate (and the GRU's update gate) over probe batch, timesteps
    and units at the snapshot at or before `step` (bars), and before training (outline)."""
    fig = go.Figure()
    centres = (GATE_BINS[:-1] + GATE_BINS[1:]) / 2
    colors = model_colors(results)
    for name, res in results.items():
        if res.keep_gate_hist is None:
            continue
        color, k = colors[name], res.snapshot_index(step)
        gate = KEEP_GATE_TITLES[KEEP_GATE[res.arch]]
        fig.add_trace(
            go.Bar(
                x=centres,
                y=res.keep_gate_hist[k],
                marker_color=color,
                opacity=0.6,
                name=f"{res.label} {gate}, step {int(res.snapshot_steps[k])}",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=centres,
                y=res.keep_gate_hist[0],
                mode="lines",
                line_shape="hvh",
                line=dict(color=color, dash="dot"),
                name=f"{res.label} {gate}, before training",
            )
        )
    fig.update_layout(
        barmode="overlay",
        bargap=0.05,
        xaxis_title="gate value (1 = keep everything)",
        yaxis_title="fraction of gate values",
        xaxis_range=[0, 1],
    )
    return _legend(fig, 380)


def grad_norm_figure(
    results: Mapping[str, TrainingResult], clip: float | None = None, *, max_points: int = 500
) -> go.Figure:
    """Global gradient norm per step before clipping (solid) and after (dotted), log axis,
    with the clipping threshold as a dashed line."""
    fig = go.Figure()
    block = 1
    colors = model_colors(results)
    for name, res in results.items():
        if not len(res.grad_norm):
            continue
        color = colors[name]
        before, steps, block = _per_step(res.grad_norm, max_points)
        after, _, _ = _per_step(res.grad_norm_clipped, max_points)
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=before,
                mode="lines",
                line=dict(color=color, width=1.5),
                name=f"{res.label}: before clipping",
                legendgroup=res.model,
            )
        )
        if clip is not None:
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=after,
                    mode="lines",
                    line=dict(color=color, width=2, dash="dot"),
                    name=f"{res.label}: after clipping",
                    legendgroup=res.model,
                )
            )
    if clip is not None:
        _reference_line(fig, clip, f"clip at {clip:g}")
    fig.update_layout(
        xaxis_title="training step",
        yaxis_title="global gradient norm ‖∇θ L‖",
        yaxis_type="log",
        yaxis_dtick=1,
    )
    if block > 1:
        _corner_note(fig, f"mean of {block} steps per point")
    return _legend(fig, 380)


# One line under each chart of the Training lab: what to look for.
CAPTIONS = {
    "loss": "Solid: loss on a fixed test set; faint: the training batches. Below the dashed memoryless "
    "baseline a model uses what it saw T steps ago: the LSTM tends to leave the baseline suddenly, the RNN "
    "rarely does once T is 50 or more.",
    "heatmap": "One row per snapshot of training, one column per timestep: bright means the loss still "
    "reaches that step. Rows of a model that learns brighten on the left; the RNN's stay dark far from the "
    "end, which is why it cannot learn the task.",
    "profile": "The gradient profile at the chosen step (median and interquartile band over the probe "
    "batch) against the untrained network (dotted).",
    "gates": "Where the keep gates sit: LSTM forget gates (and GRU update gates) moving towards 1 keep the "
    "memory path open over T steps.",
    "inits": "default: PyTorch's uniform(±1/√H). forget_bias: effective forget-gate bias 1, so the LSTM "
    "starts out remembering. chrono: forget bias ~ log U(1, T-1) (Tallec & Ollivier 2018). orthogonal / "
    "identity: W_hh a random orthogonal matrix / the identity (identity makes a relu RNN, Le et al. 2015).",
    "grad_norm": "Global gradient norm per step before and after clipping: spikes are exploding gradients, "
    "which clipping caps without changing their direction.",
}
