"""Recording -> plotly Figure: pure functions named *_figure, no streamlit.

Every figure ships at most what a screen can show: long sequences are cut into
blocks of consecutive steps (and wide layers into blocks of units) by
`decimate`, and the chart says so. Colours: one per architecture (ARCH_COLORS),
the same on every page. Figures set no template, so Streamlit themes them for
light and dark mode and exports fall back to Plotly's default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .analysis import DecayFit, batch_percentile
from .record import Recording

# Tableau 10 red / blue / green: distinct for common colour-vision deficiencies and
# readable on white and on Streamlit's dark background.
ARCH_COLORS = {"rnn": "#E15759", "lstm": "#4E79A7", "gru": "#59A14F"}
# A second model of the same architecture on one chart (e.g. the LSTM with its cell path open
# beside the default-init one): Tableau orange, purple, brown.
EXTRA_COLORS = ("#F28E2B", "#B07AA1", "#9C755F")
# Traced units: eight colours apart from the architectures' own (ColorBrewer Dark2).
UNIT_COLORS = ("#1B9E77", "#D95F02", "#7570B3", "#E7298A", "#66A61E", "#E6AB02", "#A6761D", "#666666")
MAX_LINE_POINTS = 2000  # per trace
MAX_HEATMAP_CELLS = (2000, 256)  # (steps, units) per heatmap
SIGMOID_GATES = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}
QUANTITY_TITLES = {
    "input": "input gate i<sub>t</sub>",
    "forget": "forget gate f<sub>t</sub>",
    "candidate": "candidate g<sub>t</sub>",
    "output": "output gate o<sub>t</sub>",
    "reset": "reset gate r<sub>t</sub>",
    "update": "update gate z<sub>t</sub>",
    "cell": "cell state c<sub>t</sub>",
    "hidden": "hidden state h<sub>t</sub>",
}
# Value range of each quantity (None: unbounded), for colour scales and axes.
QUANTITY_RANGES = {
    "input": (0, 1),
    "forget": (0, 1),
    "output": (0, 1),
    "reset": (0, 1),
    "update": (0, 1),
    "candidate": (-1, 1),
    "hidden": (-1, 1),
    "cell": None,
}


# log10 of the smallest normal float: below it a float loses digits (subnormal) and soon
# underflows to 0, so autograd in that precision returns an exact 0 for such gradients.
FLOORS = {
    "float32": math.log10(float(np.finfo(np.float32).tiny)),  # -37.93 (1.18e-38)
    "float64": math.log10(float(np.finfo(np.float64).tiny)),  # -307.65 (2.23e-308)
}
_SMALLEST_SUBNORMAL = {"float32": "1.4e-45", "float64": "4.9e-324"}


def floors_in_view(y_min: float) -> list[str]:
    """The floors ("float32", "float64") at or above y_min less a margin of max(10, 25% of
    |y_min|) decades: near enough to the data to be worth drawing, never stretching the axis
    by hundreds of decades for a run that stays far above them."""
    margin = max(10.0, 0.25 * abs(y_min))
    return [name for name, level in FLOORS.items() if level >= y_min - margin]


def floor_lines(
    fig: go.Figure, y_min: float, *, x_range: tuple[float, float] | None = None, row=None, col=None
) -> go.Figure:
    """Add the float32 / float64 floors that floors_in_view(y_min) picks as dotted grey
    horizontal lines, with a legend entry and a hover note; returns fig.

    x_range defaults to the x extent of the traces already in fig (0..1 when there are none).
    """
    if x_range is None:
        xs = [float(v) for trace in fig.data if getattr(trace, "x", None) is not None for v in trace.x]
        x_range = (min(xs), max(xs)) if xs else (0.0, 1.0)
    kw = {} if row is None else {"row": row, "col": col}
    for name in floors_in_view(y_min):
        level = FLOORS[name]
        note = (
            f"{name} floor: 10^{level:.1f} = {10**level:.3g}, the smallest normal {name}. Below this "
            f"PyTorch's own autograd in {name} loses digits and returns exactly 0 "
            f"(below {_SMALLEST_SUBNORMAL[name]}); lstm-viz keeps the scale in log space"
        )
        fig.add_trace(
            go.Scatter(
                x=list(x_range),
                y=[level, level],
                mode="lines",
                line=dict(color="grey", width=1, dash="dot"),
                name=f"{name} floor ({10**level:.2g}): autograd returns 0 below",
                legendgroup="floors",
                hovertemplate=note + "<extra></extra>",
                meta={"floor": name},
            ),
            **kw,
        )
    return fig


def decimate(values: np.ndarray, max_len: int, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Means over blocks of consecutive entries along `axis`, so at most `max_len` remain.

    Returns (values with that axis cut to ceil(n / k) blocks of k = ceil(n / max_len)
    entries, the last block possibly shorter; the centre index of each block, float (n_blocks,)).
    Arrays already short enough come back unchanged with centres 0, 1, ..., n - 1.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    values = np.asarray(values)
    n = values.shape[axis]
    if n <= max_len:
        return values, np.arange(n, dtype=np.float64)
    k = math.ceil(n / max_len)
    starts = np.arange(0, n, k)
    counts = np.diff(np.append(starts, n))
    sums = np.add.reduceat(values.astype(np.float64), starts, axis=axis)
    shape = [1] * values.ndim
    shape[axis] = len(starts)
    means = sums / counts.reshape(shape)
    return means.astype(values.dtype if values.dtype.kind == "f" else np.float64), starts + (counts - 1) / 2


def block_size(n: int, max_len: int) -> int:
    """Entries per block that `decimate` uses for an axis of length n (1 = not decimated)."""
    return 1 if n <= max_len else math.ceil(n / max_len)


def rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def band(fig: go.Figure, x, low, high, color: str, group: str, row=None, col=None) -> None:
    """Shaded area between low and high (two traces, the second filled to the first)."""
    kw = {} if row is None else {"row": row, "col": col}
    common = dict(
        x=x, mode="lines", line=dict(width=0), legendgroup=group, showlegend=False, hoverinfo="skip"
    )
    fig.add_trace(go.Scatter(y=low, **common), **kw)
    fig.add_trace(go.Scatter(y=high, fill="tonexty", fillcolor=rgba(color, 0.2), **common), **kw)


def _note(fig: go.Figure, text: str) -> None:
    fig.add_annotation(
        name="note",
        text=text,
        xref="paper",
        yref="paper",
        x=1,
        y=1.0,
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        font=dict(size=11),
        opacity=0.8,
    )


def recording_colors(recordings: Sequence[Recording]) -> dict[str, str]:
    """name -> colour: each architecture's own colour for its first recording, EXTRA_COLORS after."""
    colors, used, extra = {}, set(), iter(EXTRA_COLORS * 4)
    for rec in recordings:
        if rec.arch in used:
            colors[rec.name] = next(extra)
        else:
            colors[rec.name] = ARCH_COLORS.get(rec.arch, "#888888")
            used.add(rec.arch)
    return colors


def tint(hex_color: str, share: float) -> str:
    """The colour mixed with `share` of white (0: unchanged, 1: white)."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(v + (255 - v) * share):02x}" for v in (r, g, b))


def _layer_lines(rec: Recording, color: str):
    """(name, one-layer recording, colour, dash, is the top forward line) for each line of rec:
    one for a one-layer model; for a deep or bidirectional one, one per layer and direction, the
    top layer first and darkest, lower layers lighter, the backward direction dotted."""
    if rec.num_layers * rec.num_directions == 1:
        yield rec.name, rec, color, "solid", True
        return
    for layer in reversed(range(rec.num_layers)):
        shade = tint(color, 0.6 * (rec.num_layers - 1 - layer) / max(rec.num_layers - 1, 1))
        for direction in range(rec.num_directions):
            arrow = ("", " →", " ←")[direction + 1 if rec.num_directions == 2 else 0]
            name = f"layer {layer + 1}{arrow}"
            top = layer == rec.num_layers - 1 and direction == 0
            yield name, rec.layer(layer, direction), shade, "dot" if direction else "solid", top


def gradient_flow_figure(
    recordings: Sequence[Recording],
    fits: Mapping[str, DecayFit] | None = None,
    *,
    max_points: int = MAX_LINE_POINTS,
    annotate: bool = True,
) -> go.Figure:
    """log10 ||dL/dh_t|| against t for each recording on one axis (and the LSTM's ||dL/dc_t||,
    dashed in a lighter shade so it stays visible where it lies on ||dL/dh_t||). A deep or
    bidirectional recording draws one line per layer and direction (see _layer_lines; the cell
    path of its top forward layer only).

    With batch > 1 each line is the median over samples with the interquartile band (the
    legend does not repeat it: say so in the caption).
    fits maps a recording's name to its analysis.decay_fit, drawn as a dotted line over the
    steps it was fitted on; fit lines start hidden (click their legend entry to show them).
    annotate: mark where the loss enters (t = T-1) with an arrow back in time, and write each
    ||dL/dh|| line's value at its left end. The float32 and float64 floors are drawn when the
    data come near them.
    """
    fig = go.Figure()
    worst_block, zero_steps, lowest = 1, 0, 0.0
    colors = recording_colors(recordings)
    deep = 0  # models drawn with a line per layer: each gets a titled group in the legend
    for rec in recordings:
        color = colors[rec.name]
        layered = rec.num_layers * rec.num_directions > 1
        deep += layered
        for name, part, part_color, dash, top in _layer_lines(rec, color):
            # a deep model's lines share one legend group titled with the model's name
            legend = dict(legendgroup=rec.name, legendgrouptitle_text=rec.name) if layered else {}
            series = [("h", part.log10_grad_h, dash, part_color, 2.5 if top else 1.8)]
            if part.log10_grad_c is not None and top and dash == "solid":
                series.append(("c", part.log10_grad_c, "dash", tint(part_color, 0.45), 2))
            for symbol, values, line_dash, line_color, width in series:
                group = f"{rec.name}-{name}-{symbol}"
                median, t = decimate(batch_percentile(values, 50), max_points)
                worst_block = max(worst_block, block_size(values.shape[1], max_points))
                zero_steps = max(zero_steps, int(np.isnan(median).sum()))
                if np.isfinite(median).any():
                    lowest = min(lowest, float(np.nanmin(median)))
                if values.shape[0] > 1:
                    q25, _ = decimate(batch_percentile(values, 25), max_points)
                    q75, _ = decimate(batch_percentile(values, 75), max_points)
                    band(fig, t, q25, q75, line_color, group)
                fig.add_trace(
                    go.Scatter(
                        x=t,
                        y=median,
                        name=f"{name}: ‖∂L/∂{symbol}<sub>t</sub>‖",
                        mode="lines",
                        line=dict(color=line_color, dash=line_dash, width=width),
                        **(legend or {"legendgroup": group}),
                        hovertemplate="t=%{x:.0f}<br>log10 norm"
                        + (" (median)" if values.shape[0] > 1 else "")
                        + "=%{y:.2f}<extra>"
                        + name
                        + f" ∂{symbol}</extra>",
                    )
                )
                if annotate and top and symbol == "h" and dash == "solid" and np.isfinite(median[0]):
                    fig.add_annotation(
                        x=t[0], y=median[0], text=f"10<sup>{median[0]:.1f}</sup>".replace("-", "−"),
                        showarrow=False, xanchor="left", yanchor="bottom", xshift=4,
                        font=dict(color=color, size=12), name=f"start value {rec.name}",
                    )  # fmt: skip
        fit = (fits or {}).get(rec.name)
        if fit is not None and math.isfinite(fit.decades_per_step):
            ends = np.array([fit.t_first, fit.t_last])
            fig.add_trace(
                go.Scatter(
                    x=ends,
                    y=fit.line(ends),
                    mode="lines",
                    name=f"{rec.name}: fit, {fit.decades_per_step:.3g} decades/step",
                    line=dict(color=color, dash="dot", width=1.5),
                    legendgroup=f"{rec.name}-fit",
                    hoverinfo="skip",
                    visible="legendonly",
                )
            )
    if recordings:
        floor_lines(fig, lowest, x_range=(0, recordings[0].seq_len - 1))
    if annotate and recordings:
        last = recordings[0].seq_len - 1
        fig.add_annotation(
            x=last, y=0, ax=-90, ay=-38, text="loss enters at t = T−1", showarrow=True, arrowhead=2,
            arrowwidth=1, xanchor="right", font=dict(size=12), name="loss enters",
        )  # fmt: skip
        fig.add_annotation(
            x=1, y=1.0, xref="x domain", yref="y domain", text="⟵ back in time", showarrow=False,
            xanchor="right", yanchor="bottom", font=dict(size=12), name="back in time",
        )  # fmt: skip
    fig.update_layout(
        xaxis_title="timestep t",
        yaxis_title="log<sub>10</sub> ‖∂L/∂h<sub>t</sub>‖   (decades)",
        hovermode="x unified",
        # below the axis title whatever the width: the legend sits at the figure's bottom edge
        legend=dict(
            orientation="h",
            yref="container",
            yanchor="bottom",
            y=0,
            xanchor="left",
            x=0,
            groupclick="toggleitem",
        ),
        margin=dict(l=60, r=20, t=40, b=40),
        height=480 + 90 * deep,
    )
    notes = []
    if worst_block > 1:
        notes.append(f"long sequence: each point is the mean of {worst_block} steps")
    if zero_steps:
        notes.append("gaps: the gradient is exactly 0 there (dead relu units), log10 = -∞")
    if notes:
        _note(fig, "; ".join(notes))
    return fig


def layer_time_figure(rec: Recording, *, max_points: int = MAX_HEATMAP_CELLS[0]) -> go.Figure:
    """Heatmap of log10 ||dL/dh_t|| (median over the batch) over time (x) and layer and direction
    (y, the top layer on top): how the gradient spreads through depth as well as time."""
    rows, labels = [], []
    for layer in reversed(range(rec.num_layers)):
        for direction in range(rec.num_directions):
            arrow = ("", " →", " ←")[direction + 1 if rec.num_directions == 2 else 0]
            rows.append(batch_percentile(rec.layer(layer, direction).log10_grad_h, 50))
            labels.append(f"layer {layer + 1}{arrow}")
    z, t = decimate(np.vstack(rows), max_points, axis=1)
    title = f"{rec.name}<br><sup>log<sub>10</sub> ‖∂L/∂h<sub>t</sub>‖ by layer and time</sup>"
    if block_size(rec.seq_len, max_points) > 1:
        title += f"<br><sup>each cell = mean of {block_size(rec.seq_len, max_points)} steps</sup>"
    fig = go.Figure(
        go.Heatmap(
            z=z, x=t, y=labels, colorscale="Viridis", colorbar=dict(thickness=12, title="decades"),
            hovertemplate="t=%{x:.0f}<br>%{y}<br>log10 norm=%{z:.2f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        xaxis_title="timestep t",
        yaxis=dict(autorange="reversed"),
        height=140 + 40 * len(labels),
        margin=dict(l=90, r=20, t=60, b=40),
    )
    return fig


def _heatmap_style(quantity: str, z: np.ndarray) -> dict:
    """Gates (0, 1): sequential Viridis; signed quantities: diverging, centred on 0."""
    if QUANTITY_RANGES.get(quantity) == (0, 1):
        return dict(colorscale="Viridis", zmin=0.0, zmax=1.0)
    if quantity == "candidate":
        return dict(colorscale="RdBu_r", zmin=-1.0, zmax=1.0)
    # cell and hidden state: scaled to their largest value, which may be far from 1
    peak = float(np.nanmax(np.abs(z))) if z.size else 1.0
    return dict(colorscale="RdBu_r", zmin=-peak, zmax=peak)


def _values(rec: Recording, quantity: str) -> np.ndarray:
    """(B, T, H) array of a gate, 'cell' or 'hidden'."""
    values = {"hidden": rec.hidden, "cell": rec.cell, **rec.gates}.get(quantity)
    if values is None:
        have = ["hidden"] + (["cell"] if rec.cell is not None else []) + list(rec.gates)
        raise ValueError(f"{rec.name} has no {quantity!r}; choose one of {have}")
    return values


def gate_heatmap_figure(
    rec: Recording,
    quantity: str,
    *,
    sample: int = 0,
    unit_order: Sequence[int] | None = None,
    order_label: str = "",
    max_cells: tuple[int, int] = MAX_HEATMAP_CELLS,
) -> go.Figure:
    """Heatmap over time (x) and unit (y) of one gate, 'cell' or 'hidden' for one sample.

    unit_order lists unit indices top to bottom (default 0..H-1), order_label names the
    sort key for the axis. Beyond max_cells (steps, units) the map shows means over blocks
    of steps and units, and says so under the title.
    """
    values = _values(rec, quantity)[sample]  # (T, H)
    order = np.arange(rec.hidden_size) if unit_order is None else np.asarray(unit_order)
    z = values[:, order].T.astype(np.float32)  # (H, T), row r = unit order[r]
    z, t = decimate(z, max_cells[0], axis=1)
    z, rows = decimate(z, max_cells[1], axis=0)
    kt, ku = block_size(rec.seq_len, max_cells[0]), block_size(rec.hidden_size, max_cells[1])
    title = f"{rec.name}: {QUANTITY_TITLES.get(quantity, quantity)}"
    if kt > 1 or ku > 1:
        title += (
            f"<br><sup>decimated: each cell = mean of {kt} steps × {ku} units "
            f"({rec.seq_len} × {rec.hidden_size} in all)</sup>"
        )
    hover = dict(hovertemplate="t=%{x:.0f}<br>row %{y:.0f}<br>value=%{z:.3f}<extra></extra>")
    if ku == 1:  # each row is one unit: hover names it
        hover = dict(
            customdata=np.broadcast_to(order[:, None], z.shape),
            hovertemplate="t=%{x:.0f}<br>unit %{customdata}<br>value=%{z:.3f}<extra></extra>",
        )
    fig = go.Figure(
        go.Heatmap(z=z, x=t, y=rows, colorbar=dict(thickness=12), **hover, **_heatmap_style(quantity, z))
    )
    fig.update_layout(
        title=dict(text=title, x=0, font=dict(size=14)),
        xaxis_title="timestep t",
        yaxis_title=f"rank by {order_label}" if order_label else "unit",
        yaxis=dict(autorange="reversed"),
        margin=dict(l=60, r=10, t=50, b=40),
        height=320,
    )
    return fig


def gate_mean_figure(
    rec: Recording,
    quantities: Sequence[str] | None = None,
    *,
    units: Sequence[int] = (),
    max_points: int = MAX_LINE_POINTS,
) -> go.Figure:
    """One row per quantity: mean over units and samples against t, with the band between
    the 25th and 75th percentile over units; `units` are drawn as thin lines (sample 0), each in
    its own colour (UNIT_COLORS) with one legend entry per unit."""
    quantities = list(quantities or rec.gates)
    color = ARCH_COLORS.get(rec.arch, "#888888")
    fig = make_subplots(
        rows=len(quantities),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=[QUANTITY_TITLES.get(q, q) for q in quantities],
    )
    for row, quantity in enumerate(quantities, start=1):
        values = _values(rec, quantity)  # (B, T, H)
        per_step = values.transpose(1, 0, 2).reshape(rec.seq_len, -1)  # (T, B*H)
        mean, t = decimate(per_step.mean(axis=1), max_points)
        q25, _ = decimate(np.percentile(per_step, 25, axis=1), max_points)
        q75, _ = decimate(np.percentile(per_step, 75, axis=1), max_points)
        band(fig, t, q25, q75, color, quantity, row=row, col=1)
        fig.add_trace(
            go.Scatter(
                x=t,
                y=mean,
                mode="lines",
                name=f"mean {quantity}",
                showlegend=False,
                line=dict(color=color, width=2),
                hovertemplate="t=%{x:.0f}<br>mean=%{y:.3f}<extra>" + quantity + "</extra>",
            ),
            row=row,
            col=1,
        )
        for k, unit in enumerate(units):
            trace, _ = decimate(values[0, :, unit], max_points)
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=trace,
                    mode="lines",
                    name=f"unit {unit}",
                    legendgroup=f"unit {unit}",
                    showlegend=row == 1,
                    line=dict(color=UNIT_COLORS[k % len(UNIT_COLORS)], width=1.5),
                    hovertemplate="t=%{x:.0f}<br>%{y:.3f}<extra>unit " + str(unit) + "</extra>",
                ),
                row=row,
                col=1,
            )
        if QUANTITY_RANGES.get(quantity):  # fixed range: a gate at 0.5 must look half open
            low, high = QUANTITY_RANGES[quantity]
            fig.update_yaxes(range=[low - 0.02 * (high - low), high + 0.02 * (high - low)], row=row, col=1)
    fig.update_xaxes(title_text="timestep t", row=len(quantities), col=1)
    fig.update_layout(
        height=150 + 150 * len(quantities),
        margin=dict(l=60, r=20, t=40, b=40),
        hovermode="x unified",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1, title_text="traced:"),
    )
    return fig


def saturation_figure(rec: Recording, fractions: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> go.Figure:
    """Per gate, one point per unit: fraction of steps with the gate < 0.1 (x) against > 0.9 (y).

    fractions maps gate name -> (frac_below (H,), frac_above (H,)), e.g. the frac_below and
    frac_above of lstm_viz.analysis.gate_stats. After Karpathy, Johnson & Fei-Fei (2015), Fig. 3:
    points near (0, 0) are gates that never commit; the corners are units that act as
    switches; the diagonal x + y = 1 holds units that are always saturated.
    """
    names = list(fractions)
    color = ARCH_COLORS.get(rec.arch, "#888888")
    fig = make_subplots(
        rows=1,
        cols=len(names),
        subplot_titles=[QUANTITY_TITLES.get(n, n) for n in names],
        shared_yaxes=True,
        horizontal_spacing=0.05,
    )
    for col, name in enumerate(names, start=1):
        below, above = (np.asarray(a, dtype=np.float64) for a in fractions[name])
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[1, 0],
                mode="lines",
                showlegend=False,
                hoverinfo="skip",
                line=dict(color="rgba(128,128,128,0.5)", width=1, dash="dot"),
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=below,
                y=above,
                mode="markers",
                showlegend=False,
                customdata=np.arange(len(below)),
                marker=dict(color=color, size=7, opacity=0.7, line=dict(width=0)),
                hovertemplate="unit %{customdata}<br>< 0.1: %{x:.0%}<br>> 0.9: %{y:.0%}<extra>"
                + name
                + "</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(range=[-0.03, 1.03], title_text="fraction of steps < 0.1", row=1, col=col)
    fig.update_yaxes(range=[-0.03, 1.03], title_text="fraction of steps > 0.9", row=1, col=1)
    fig.update_layout(height=340, margin=dict(l=60, r=20, t=40, b=50))
    return fig


def step_factor_figure(recordings: Sequence[Recording], *, max_points: int = MAX_LINE_POINTS) -> go.Figure:
    """What one step back does to the gradient: log10 ||dL/dh_t|| - log10 ||dL/dh_{t+1}|| against t
    (median over samples), the LSTM's cell path the same way (dashed), and log10 of the LSTM's
    mean forget gate f_{t+1} (dotted), which is the cell path's factor when h adds nothing."""
    fig = go.Figure()
    for rec in recordings:
        color = ARCH_COLORS.get(rec.arch, "#888888")
        series = [("∂L/∂h", rec.log10_grad_h, "solid")]
        if rec.log10_grad_c is not None:
            series.append(("∂L/∂c", rec.log10_grad_c, "dash"))
        for symbol, values, dash in series:
            with np.errstate(invalid="ignore"):  # -inf - -inf where the gradient is exactly 0
                step, t = decimate(batch_percentile(-np.diff(values, axis=1), 50), max_points)
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=step,
                    mode="lines",
                    name=f"{rec.name}: {symbol} per step",
                    line=dict(color=color, dash=dash, width=1.5),
                )
            )
        if "forget" in rec.gates:
            forget, t = decimate(np.log10(rec.gates["forget"][:, 1:].mean(axis=(0, 2))), max_points)
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=forget,
                    mode="lines",
                    name=f"{rec.name}: log10 mean f_t+1",
                    line=dict(color=color, dash="dot", width=1.5),
                )
            )
    fig.add_hline(y=0, line=dict(color="rgba(128,128,128,0.6)", width=1))
    fig.update_layout(
        xaxis_title="timestep t",
        yaxis_title="log<sub>10</sub> of the factor per step back (decades)",
        hovermode="x unified",
        legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0),
        margin=dict(l=60, r=20, t=30, b=40),
        height=380,
    )
    return fig
