"""Tables and exports of recordings: the summary per model, tidy frames, CSV and HTML bytes,
per-step values, unit orders. Numbers only; the words around them live in prose.py."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import analysis
from .prose import half_life_text
from .record import Recording

# Above this many (sample, step, unit) values the CSV export holds the per-step norms only.
MAX_EXPORT_CELLS = 2_000_000
UNIT_ORDERS = {  # id -> what the rows are sorted by; ids are what links carry
    "unit": "unit index",
    "forget": "mean forget gate",
    "input": "mean input gate",
    "output": "mean output gate",
    "cell": "mean |cell state|",
    "update": "mean update gate",
    "reset": "mean reset gate",
}


def decay_fits(recordings: Sequence[Recording]) -> dict[str, analysis.DecayFit]:
    """name -> fitted decay line of log10 ||dL/dh_t||, the `fits` of gradient_flow_figure."""
    return {rec.name: analysis.decay_fit(rec) for rec in recordings}


def flow_summary(recordings: Sequence[Recording]) -> pd.DataFrame:
    """One row per recording: decay rate, half-life and the total decades lost over the sequence."""
    rows = []
    for rec in recordings:
        fit = analysis.decay_fit(rec)
        cell = analysis.median_curve(rec.log10_grad_c)[0] if rec.log10_grad_c is not None else math.nan
        rows.append(
            {
                "model": rec.name,
                "arch": rec.arch,
                "decades_per_step": fit.decades_per_step,
                "half_life_steps": fit.half_life,
                "log10_grad_h_at_t0": float(analysis.median_curve(rec.log10_grad_h)[0]),
                "log10_grad_c_at_t0": float(cell),
            }
        )
    return pd.DataFrame(rows)


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """flow_summary with column titles for people; "—" where a model has no cell state."""
    cell = "log10 ‖∂L/∂c‖ at t=0"
    table = summary.drop(columns="arch").rename(
        columns={
            "decades_per_step": "decades lost per step",
            "half_life_steps": "half-life (steps)",
            "log10_grad_h_at_t0": "log10 ‖∂L/∂h‖ at t=0",
            "log10_grad_c_at_t0": cell,
        }
    )
    table[cell] = ["—" if math.isnan(v) else f"{v:.4f}" for v in table[cell]]
    return table


def summary_text(recordings: Sequence[Recording]) -> str:
    """Decay rate and half-life per model as aligned plain text (the command line's table)."""
    rows = [("model", "decades/step", "half-life", "log10 ||dL/dh_0||")]
    for row in flow_summary(recordings).itertuples():
        half = half_life_text(row.decades_per_step)
        rows.append((row.model, f"{row.decades_per_step:.4g}", half, f"{row.log10_grad_h_at_t0:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)])
        for r in rows
    )


def tidy_frame(recordings: Sequence[Recording], per_unit: bool | None = None) -> pd.DataFrame:
    """The recordings' tidy frames stacked, with a first column 'model' (the legend name).

    per_unit None: per-unit values only for recordings of at most MAX_EXPORT_CELLS values
    (a T = 10,000, H = 512 export stays downloadable); see `drops_per_unit`.
    """
    frames = []
    for rec in recordings:
        keep = not drops_per_unit(rec) if per_unit is None else per_unit
        frame = rec.to_frame(per_unit=keep)
        frame.insert(0, "model", rec.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def drops_per_unit(rec: Recording) -> bool:
    """Whether the default export leaves out this recording's per-unit rows (it is too big)."""
    return rec.batch_size * rec.seq_len * rec.hidden_size > MAX_EXPORT_CELLS


def tidy_csv(recordings: Sequence[Recording]) -> bytes:
    """tidy_frame(recordings) as CSV bytes."""
    return tidy_frame(recordings).to_csv(index=False).encode()


def figure_html(fig: go.Figure, *, title: str = "", caption: str = "", settings: str = "") -> bytes:
    """A self-contained HTML page of the figure (plotly.js inlined: opens offline) under its title
    and caption, with the settings that made it in a line below."""
    title = title or "lstm-viz chart"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)} · lstm-viz</title>",
        '</head><body style="font-family: sans-serif; max-width: 1200px; margin: 1em auto">',
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(caption)}</p>" if caption else "",
        fig.to_html(include_plotlyjs=True, full_html=False),
        f'<p style="color: #666">Settings: {html.escape(settings)}</p>' if settings else "",
        '<p style="color: #666">Made with lstm-viz.</p>',
        "</body></html>",
    ]
    return "\n".join(parts).encode()


def unit_orders(rec: Recording) -> dict[str, str]:
    """The sort keys that make sense for this recording's model: id -> label (its own gates only)."""
    own = {"unit", *rec.gates, *(["cell"] if rec.cell is not None else [])}
    return {key: label for key, label in UNIT_ORDERS.items() if key in own}


def unit_order(rec: Recording, by: str) -> np.ndarray:
    """Unit indices (H,) sorted by `by` (an id of unit_orders(rec), or its label), largest first."""
    by = {label: key for key, label in UNIT_ORDERS.items()}.get(by, by)
    orders = unit_orders(rec)
    if by not in orders:
        raise ValueError(f"sort the {rec.name}'s units by one of {', '.join(orders)}, got {by!r}")
    if by == "unit":
        return np.arange(rec.hidden_size)
    key = np.abs(rec.cell) if by == "cell" else rec.gates[by]
    return np.argsort(-key.mean(axis=(0, 1)), kind="stable")


def layer_parts(rec: Recording) -> dict[str, str]:
    """id -> label of each layer and direction of a recording, the top layer first: "2" -> "layer 2
    (top) →", "2b" -> "layer 2 (top) ←"; ids are what links carry."""
    parts = {}
    for layer in reversed(range(rec.num_layers)):
        top = " (top)" if layer == rec.num_layers - 1 and rec.num_layers > 1 else ""
        for direction in range(rec.num_directions):
            arrow = ("", " →", " ←")[direction + 1 if rec.num_directions == 2 else 0]
            parts[f"{layer + 1}{'b' if direction else ''}"] = f"layer {layer + 1}{top}{arrow}"
    return parts


def layer_part(rec: Recording, part: str) -> Recording:
    """The one-layer Recording a layer_parts id names."""
    if part not in layer_parts(rec):
        raise ValueError(f"{rec.name} has layers {', '.join(layer_parts(rec))}, got {part!r}")
    return rec.layer(int(part.rstrip("b")) - 1, int(part.endswith("b")))


def step_values(rec: Recording, t: int, units: int = 6) -> pd.DataFrame:
    """Gate, cell and hidden values of sample 0 at step t for the first `units` units:
    one row per unit, one column per quantity (f_t, i_t, g_t, o_t, c_{t-1}, c_t, h_t)."""
    t = int(np.clip(t, 0, rec.seq_len - 1))
    k = min(units, rec.hidden_size)
    frame = pd.DataFrame({"unit": np.arange(k)})
    for name, values in rec.gates.items():
        frame[name] = values[0, t, :k]
    if rec.cell is not None:
        frame["cell (previous)"] = rec.cell[0, t - 1, :k] if t > 0 else np.zeros(k, dtype=rec.cell.dtype)
        frame["cell"] = rec.cell[0, t, :k]
    frame["hidden"] = rec.hidden[0, t, :k]
    return frame
