"""Sweep rows -> phase diagrams: where across two settings a gradient survives.

Pure functions, no streamlit: `phase_table` takes the median over seeds of one result on a grid
of two swept settings, `phase_figure` draws it as a heatmap (half-life on a log colour scale).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .settings import BY_NAME
from .sweep import KEYS

AXIS_TITLES = {
    "seq_len": "sequence length T (steps)",
    "hidden_size": "hidden size H (units)",
    "num_layers": "layers",
    "batch_size": "batch (sequences)",
    "input_size": "input features I",
    "seed": "seed",
    "forget_bias": "forget-gate bias b<sub>if</sub> + b<sub>hf</sub>",
    "spectral_radius": "spectral radius ρ of W<sub>hh</sub>",
    "t_max": "chrono's longest time scale t<sub>max</sub> (steps)",
}
VALUE_TITLES = {
    "half_life": "gradient half-life (steps)",
    "decades_per_step": "decay rate (decades per step)",
    "lyapunov": "top Lyapunov exponent (decades per step)",
    "log10_grad_h0": "log10 ||dL/dh_0|| at the first step",
    "keep_frac_below": "keep gate < 0.1 (share of values)",
    "keep_frac_above": "keep gate > 0.9 (share of values)",
}
VALUE_READINGS = {  # what a brighter square means
    "half_life": "the gradient survives longer",
    "decades_per_step": "the gradient vanishes faster",
    "lyapunov": "the gradient shrinks less per step",
    "log10_grad_h0": "more of the gradient reaches the first step",
    "keep_frac_below": "more keep gates are shut",
    "keep_frac_above": "more keep gates are open",
}
AXIS_DEFAULTS = {  # values a phase diagram starts with, per axis
    "seq_len": "50 100 200 400",
    "hidden_size": "8 16 32 64",
    "num_layers": "1 2 3 4",
    "batch_size": "1 4 16",
    "input_size": "1 4 16",
    "spectral_radius": "0.5 0.8 0.9 1 1.1 1.5",
    "forget_bias": "0 1 2 3 5",
    "t_max": "10 100 1000",
}
FAVOURITE_Y = {"rnn": "spectral_radius", "lstm": "forget_bias", "gru": "hidden_size"}
LOG_SCALE = ("half_life",)  # spans decades: coloured by log10
MAX_CELL_TEXT = 400  # cells above this many carry no printed value


def varying(frame: pd.DataFrame) -> dict[str, list]:
    """Key columns (arch and settings, not seed) that take more than one value, with their values sorted."""
    return {
        name: sorted(frame[name].dropna().unique().tolist())
        for name in KEYS
        if name != "seed" and name in frame and frame[name].nunique() > 1
    }


def phase_table(frame: pd.DataFrame, x: str, y: str, value: str = "half_life") -> pd.DataFrame:
    """Median over seeds of `value` with y down the rows and x across the columns, both sorted.

    Failed cells (an error) are left out of the median; a grid point where every seed failed is
    NaN. ValueError if another setting varies in frame (select one slice of the sweep first),
    or x and y are the same.
    """
    if x == y:
        raise ValueError(f"pick two different axes, got {x!r} twice")
    for name in (x, y, value):
        if name not in frame:
            raise ValueError(f"the sweep has no column {name!r}")
    others = [name for name in varying(frame) if name not in (x, y)]
    if others:
        name = others[0]
        raise ValueError(
            f"{name} also varies in these rows ({', '.join(map(str, varying(frame)[name]))}): "
            f"keep one {name} to draw {y} against {x}"
        )
    good = frame[frame["error"].isna()] if "error" in frame else frame
    table = good.groupby([y, x])[value].median().unstack(x)
    return table.reindex(index=sorted(frame[y].unique()), columns=sorted(frame[x].unique()))


def _log_ticks(low: float, high: float) -> list[float]:
    """log10 of 1, 2, 5 x 10^k within [low, high] (decades only over a wide range), at least one."""
    mantissas = (1,) if high - low > 2 else (1, 2, 5)
    ticks = [
        math.log10(m) + k
        for k in range(math.floor(low), math.ceil(high) + 1)
        for m in mantissas
        if low - 1e-9 <= math.log10(m) + k <= high + 1e-9
    ]
    return ticks or [low]


def _label(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)


def _cell_text(value: float) -> str:
    if math.isnan(value):
        return ""
    return "∞" if math.isinf(value) else f"{value:.3g}"


def phase_figure(frame: pd.DataFrame, x: str, y: str, value: str = "half_life") -> go.Figure:
    """Heatmap of the median over seeds of `value` over settings x (across) and y (up), from sweep
    rows of one slice (see phase_table). Half-life is coloured on a log scale; an infinite one
    (no decay) takes the top colour and reads ∞; grid points whose cells all failed are blank."""
    table = phase_table(frame, x, y, value)
    values = table.to_numpy(dtype=np.float64)  # (len(y values), len(x values))
    log = value in LOG_SCALE
    finite = values[np.isfinite(values)]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log10(values) if log else values.copy()
    colorbar = {"title": {"text": VALUE_TITLES.get(value, value), "side": "right"}}
    if log and finite.size:
        low, high = np.log10(finite.min()), np.log10(finite.max())
        ticks = _log_ticks(low, high)
        if np.isposinf(values).any():  # no decay: one step above the top, labelled as such
            ticks.append(max(high, ticks[-1]) + 0.3)
        colorbar.update(tickvals=ticks, ticktext=[f"{10.0**k:.3g}" for k in ticks])
        if np.isposinf(values).any():
            colorbar["ticktext"][-1] = "∞ (no decay)"
            z[np.isposinf(values)] = ticks[-1]
    elif finite.size:
        z[np.isposinf(values)] = finite.max()
    text = [[_cell_text(v) for v in row] for row in values]
    small = values.size <= MAX_CELL_TEXT
    fig = go.Figure(
        go.Heatmap(
            x=[_label(v) for v in table.columns],
            y=[_label(v) for v in table.index],
            z=z,
            text=text,
            texttemplate="%{text}" if small else None,
            colorscale="Viridis",
            colorbar=colorbar,
            hoverongaps=False,
            hovertemplate=f"{x} = %{{x}}<br>{y} = %{{y}}<br>{value} = %{{text}}<extra></extra>",
        )
    )
    archs = frame["arch"].unique() if "arch" in frame else []
    seeds = frame["seed"].nunique() if "seed" in frame else 1
    who = f"{archs[0].upper()}: " if len(archs) == 1 else ""
    fig.update_layout(
        title=f"{who}{VALUE_TITLES.get(value, value)}, median over {seeds} seed{'s' * (seeds != 1)}",
        xaxis={"title": AXIS_TITLES.get(x, BY_NAME[x].label if x in BY_NAME else x), "type": "category"},
        yaxis={"title": AXIS_TITLES.get(y, BY_NAME[y].label if y in BY_NAME else y), "type": "category"},
        margin={"t": 60},
    )
    return fig
