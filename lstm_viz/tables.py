"""Tables and exports of recordings: the summary per model, tidy frames, CSV and HTML bytes,
per-step values, unit orders. Numbers only; the words around them live in prose.py."""

from __future__ import annotations

import html
import io
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import analysis
from .prose import half_life_text
from .record import Recording

# The app's CSV download holds at most this many rows (47 bytes each, measured: about 100 MB): per-unit
# values are left out first, then the later sequences of the batch (export_plan). The command line
# writes every row, streamed to its file in chunks.
MAX_EXPORT_ROWS = 2_000_000
CSV_BYTES_PER_ROW = 50  # rounded up; for the words around the download
EXPORT_CHUNK_ROWS = 500_000  # rows built at once when streaming an export (about 40 MB in pandas)
_NORMS = ("log10_grad_h", "log10_grad_c", "log10_grad_x")
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

    per_unit None: what the app's download holds (export_plan: at most MAX_EXPORT_ROWS rows).
    A frame holds every row in memory; `write_tidy` streams any size to a file instead.
    """
    return pd.concat(list(tidy_chunks(recordings, per_unit)), ignore_index=True)


def norm_rows(rec: Recording) -> int:
    """Rows of rec's per-step gradient norms in a tidy export (every layer and direction)."""
    per_part = sum(getattr(rec, name) is not None for name in _NORMS)
    return rec.batch_size * rec.seq_len * per_part * rec.num_layers * rec.num_directions


def unit_rows(rec: Recording) -> int:
    """Rows of rec's per-unit values (hidden, cell, gates) in a tidy export."""
    per_part = 1 + (rec.cell is not None) + len(rec.gates)
    return rec.batch_size * rec.seq_len * rec.hidden_size * per_part * rec.num_layers * rec.num_directions


def export_plan(recordings: Sequence[Recording], max_rows: int | None = None) -> list[tuple[bool, int]]:
    """(per-unit values kept, sequences kept) for each recording, so that the export holds at most
    max_rows rows (default MAX_EXPORT_ROWS): every model's per-step norms first, then the per-unit
    values of as many models as fit, in order; if the norms alone are too many, the first sequences
    of the batch only (at least one)."""
    max_rows = MAX_EXPORT_ROWS if max_rows is None else max_rows
    total = sum(norm_rows(rec) for rec in recordings)
    if total > max_rows:
        per_sample = sum(norm_rows(rec) / rec.batch_size for rec in recordings)
        keep = max(1, int(max_rows // per_sample))
        return [(False, min(keep, rec.batch_size)) for rec in recordings]
    plan = []
    for rec in recordings:
        fits = total + unit_rows(rec) <= max_rows
        total += unit_rows(rec) if fits else 0
        plan.append((fits, rec.batch_size))
    return plan


def drops_per_unit(rec: Recording, recordings: Sequence[Recording] | None = None) -> bool:
    """Whether the app's download of recordings (default: rec alone) leaves out rec's per-unit rows."""
    recordings = [rec] if recordings is None else list(recordings)
    return not export_plan(recordings)[recordings.index(rec)][0]


def tidy_chunks(
    recordings: Sequence[Recording],
    per_unit: bool | None = None,
    chunk_rows: int | None = None,
    layer_columns: bool | None = None,
) -> Iterator[pd.DataFrame]:
    """The rows of tidy_frame(recordings, per_unit), in order, as frames of about chunk_rows rows
    (default EXPORT_CHUNK_ROWS; at least one step of one sequence), so that an export of any size
    is built a chunk at a time.

    Columns: model, arch, layer and direction (when any recording is deep or bidirectional), sample,
    t, unit (<NA> for per-step norms), quantity, value. per_unit None follows export_plan.
    layer_columns None: when any recording is deep or bidirectional.
    """
    chunk_rows = chunk_rows or EXPORT_CHUNK_ROWS
    plan = export_plan(recordings)
    if per_unit is not None:
        plan = [(per_unit, rec.batch_size) for rec in recordings]
    if layer_columns is None:
        layer_columns = any(rec.layers for rec in recordings)
    for rec, (keep_units, samples) in zip(recordings, plan, strict=True):
        for layer in range(rec.num_layers):
            for direction in range(rec.num_directions):
                part = rec.layer(layer, direction)
                front = {"model": rec.name, "arch": rec.arch}
                if layer_columns:
                    front |= {"layer": layer, "direction": direction}
                arrays = {name: getattr(part, name) for name in _NORMS}
                if keep_units:
                    arrays |= {"hidden": part.hidden, "cell": part.cell, **part.gates}
                for name, values in arrays.items():
                    if values is not None:
                        yield from _chunks(front, name, values[:samples], chunk_rows)


def _chunks(front: dict, quantity: str, values: np.ndarray, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Tidy frames of one quantity, values (B, T) per step or (B, T, H) per unit, in row order."""
    B, T = values.shape[:2]
    H = values.shape[2] if values.ndim == 3 else 1
    if T * H <= chunk_rows:  # whole sequences at once
        n = max(1, chunk_rows // (T * H))
        blocks = [(b, min(b + n, B), 0, T) for b in range(0, B, n)]
    else:  # a run of steps of one sequence at once
        n = max(1, chunk_rows // H)
        blocks = [(b, b + 1, t, min(t + n, T)) for b in range(B) for t in range(0, T, n)]
    for b0, b1, t0, t1 in blocks:
        block = values[b0:b1, t0:t1]  # reshaped below: a copy of this block only, even of a strided view
        rows = block.size
        columns = dict(front)
        columns["sample"] = np.repeat(np.arange(b0, b1), (t1 - t0) * H)
        columns["t"] = np.tile(np.repeat(np.arange(t0, t1), H), b1 - b0)
        if values.ndim == 3:
            columns["unit"] = pd.array(np.tile(np.arange(H), rows // H), dtype="Int64")
        else:  # all missing: no unit
            columns["unit"] = pd.arrays.IntegerArray(np.zeros(rows, np.int64), np.ones(rows, bool))
        columns["quantity"] = quantity
        columns["value"] = block.reshape(-1).astype(np.float64)
        yield pd.DataFrame(columns)


def write_tidy(
    recordings: Sequence[Recording], out: Path | IO[bytes], per_unit: bool | None = True, fmt: str = "csv"
) -> int:
    """Write the tidy rows of recordings to out (a path or a binary file) as CSV or Parquet, a chunk
    at a time (memory stays at one chunk whatever the size); returns the number of rows. per_unit as
    in tidy_chunks."""
    rows = 0
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        try:
            for chunk in tidy_chunks(recordings, per_unit):
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table.cast(writer.schema))
                rows += len(chunk)
        finally:
            if writer is not None:
                writer.close()
        return rows
    if fmt != "csv":
        raise ValueError(f"fmt must be csv or parquet, got {fmt!r}")
    handle = open(out, "wb") if isinstance(out, (str, Path)) else out
    try:
        for chunk in tidy_chunks(recordings, per_unit):
            chunk.to_csv(handle, header=rows == 0, index=False, encoding="utf-8")
            rows += len(chunk)
    finally:
        if handle is not out:
            handle.close()
    return rows


def tidy_csv(recordings: Sequence[Recording]) -> bytes:
    """The app's download: tidy_frame(recordings) as CSV bytes, at most MAX_EXPORT_ROWS rows (see
    export_plan), built a chunk at a time."""
    buffer = io.BytesIO()
    write_tidy(recordings, buffer, per_unit=None)
    return buffer.getvalue()


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
