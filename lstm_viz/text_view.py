"""Text coloured character by character: a passage of the validation text, each character's
background set by one unit's activation or by how much it still reaches a later prediction
(Karpathy, Johnson & Fei-Fei 2015, figs. 3-4), as HTML; and the recordings the text page shows.

    html = text_html(text, values, vmin=-1, vmax=1, scale="diverging", label="cell 42")
    rec = passage_recording("lstm", start, length)          # activations over the passage
    rec = influence_recording("rnn", start, length, 120)    # log10 ||d loss_120 / d x_t||
    d = fall_distance(rec.log10_grad_x[0], 120)             # characters back to 1e-3 of the peak

text_html is pure (str and numbers in, str out): every character is escaped, colours are
inline styles, nothing is fetched, so the page can show it with st.html.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from .charlm import CharLM, load_charlm, next_char_grad_output
from .connectivity import connectivity
from .connectivity_figures import connectivity_figure
from .corpus import VOCAB, UnitMatch, load_corpus
from .record import Recording, record

# About a screenful: every character readable, connectivity (T x T) quick. record() itself takes
# longer passages (docs/charlm.md, "How long a passage record() can take").
MAX_PASSAGE = 500
DEFAULT_START = 39_368  # argparse's _check_value in CPython 3.11: strings, a comment, brackets
FALL_DECADES = 3.0  # "falls below 1e-3 of its peak"
WINDOW = 40  # characters on each axis of the connectivity heatmap: each one still readable
CONNECTIVITY_DECADES = 10.0  # the heatmap's colour scale, as the per-character gradient's
FEATURE_LABELS = {
    "in_string": "inside a string literal",
    "in_comment": "inside a comment",
    "bracket_depth": "bracket depth",
    "line_position": "position in the line",
    "indentation": "indentation",
}
QUANTITY_LABELS = {"cell": "cell state c", "hidden": "hidden state h"}
_GATES01 = {"input", "forget", "output", "reset", "update"}  # sigmoid gates: values in (0, 1)
# RdBu_r's ends and middle (blue low, white 0, red high); a white-to-blue and a white-to-orange ramp.
_DIVERGING = ((33, 102, 172), (247, 247, 247), (178, 24, 43))
_SEQUENTIAL = ((247, 251, 255), (107, 174, 214), (8, 48, 107))
_INFLUENCE = ((255, 255, 255), (253, 174, 107), (166, 54, 3))
SCALES = {"diverging": _DIVERGING, "sequential": _SEQUENTIAL, "influence": _INFLUENCE}


def colors(values: np.ndarray, vmin: float, vmax: float, scale: str = "diverging") -> list[str | None]:
    """(T,) values -> T "#rrggbb" colours on the named scale between vmin and vmax (clipped);
    None where a value is NaN (left uncoloured)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    if not vmax > vmin:
        raise ValueError(f"vmax must be above vmin, got vmin={vmin}, vmax={vmax}")
    low, mid, high = (np.array(c, float) for c in SCALES[scale])
    v = np.asarray(values, float)
    share = np.clip((v - vmin) / (vmax - vmin), 0.0, 1.0)
    out = []
    for s, value in zip(share, v, strict=True):
        if math.isnan(value):
            out.append(None)
            continue
        rgb = low + (mid - low) * 2 * s if s < 0.5 else mid + (high - mid) * (2 * s - 1)
        out.append("#{:02x}{:02x}{:02x}".format(*np.rint(rgb).astype(int)))
    return out


def _ink(color: str) -> str:
    """Black or white text, whichever reads on the background."""
    r, g, b = (int(color[k : k + 2], 16) for k in (1, 3, 5))
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


def _shown(char: str) -> str:
    if char == "\n":
        return "↵\n"  # the line break's own colour stays visible
    return html.escape(char)


def tick_label(char: str) -> str:
    """A character as an axis label: the invisible ones get a visible sign."""
    return {" ": "␣", "\n": "↵", "\t": "⇥"}.get(char, char)


def legend_html(vmin: float, vmax: float, scale: str, label: str, ends: tuple[str, str] | None = None) -> str:
    """A colour bar from vmin to vmax on the scale, with the label and the end values (or `ends`)."""
    stops = ", ".join("rgb({},{},{})".format(*c) for c in SCALES[scale])
    left, right = ends or (f"{vmin:.3g}", f"{vmax:.3g}")
    return (
        '<div class="lv-legend" style="display:flex;flex-wrap:wrap;align-items:center;gap:6px;'
        'font-size:0.85rem;margin:0 0 6px 0">'
        f"<span>{html.escape(label)}</span><span>{html.escape(left)}</span>"
        f'<span style="display:inline-block;width:100px;height:12px;border:1px solid #ccc;'
        f'background:linear-gradient(to right, {stops})"></span>'
        f"<span>{html.escape(right)}</span></div>"
    )


def text_html(
    text: str,
    values: Sequence[float] | np.ndarray,
    *,
    vmin: float,
    vmax: float,
    scale: str = "diverging",
    label: str = "",
    mark: int | None = None,
    ends: tuple[str, str] | None = None,
    offset: int = 0,
) -> str:
    """HTML of `text` with character t on the colour of values[t] (see `colors`), a legend above
    it, and the value on hover. NaN leaves a character uncoloured and grey; `mark` outlines one
    character (the prediction's position); `offset` numbers the characters in the hover text."""
    values = np.asarray(values, float)
    if values.shape != (len(text),):
        raise ValueError(f"values must be ({len(text)},), one per character, got {values.shape}")
    spans = []
    for t, (char, color) in enumerate(zip(text, colors(values, vmin, vmax, scale), strict=True)):
        style = "color:#999" if color is None else f"background:{color};color:{_ink(color)}"
        if t == mark:
            style += ";outline:2px solid #d62728;outline-offset:-1px"
        tip = f"{t + offset}: {char!r}" + ("" if color is None else f" = {values[t]:.3g}")
        spans.append(f'<span style="{style}" title="{html.escape(tip)}">{_shown(char)}</span>')
    body = "".join(spans)
    return (
        '<div class="lv-text">'
        + legend_html(vmin, vmax, scale, label, ends)
        + '<pre style="white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,Menlo,Consolas,'
        "monospace;font-size:13px;line-height:1.45;margin:0;padding:8px;border:1px solid #e6e6e6;"
        f'border-radius:4px;background:#fff;color:#111">{body}</pre></div>'
    )


def quantity_label(quantity: str) -> str:
    """ "cell state c", "hidden state h", "forget gate", ..."""
    return QUANTITY_LABELS.get(quantity, f"{quantity} gate")


def quantities(rec: Recording) -> dict[str, str]:
    """id -> label of what a character can be coloured by: cell (LSTM), hidden, then each gate."""
    names = (["cell"] if rec.cell is not None else []) + ["hidden", *rec.gates]
    return {name: quantity_label(name) for name in names}


def unit_values(rec: Recording, quantity: str, unit: int, sample: int = 0) -> np.ndarray:
    """(T,) one unit's `quantity` over the passage."""
    values = {"hidden": rec.hidden, "cell": rec.cell, **rec.gates}.get(quantity)
    if values is None:
        raise ValueError(f"{rec.name} has no {quantity!r}; choose one of {list(quantities(rec))}")
    if not 0 <= unit < rec.hidden_size:
        raise ValueError(f"unit must be between 0 and {rec.hidden_size - 1}, got {unit}")
    return values[sample, :, unit]


def unit_scale(quantity: str, values: np.ndarray) -> tuple[float, float, str]:
    """(vmin, vmax, scale): sigmoid gates on a fixed 0 to 1, signed quantities centred on 0."""
    if quantity in _GATES01:
        return 0.0, 1.0, "sequential"
    peak = float(np.nanmax(np.abs(values))) if len(values) else 0.0
    peak = peak if peak > 0 else 1.0
    return -peak, peak, "diverging"


def unit_table(matches: Mapping[str, Sequence[UnitMatch]]) -> pd.DataFrame:
    """One row per (feature, unit) of find_units' result: feature label, quantity, unit, r."""
    rows = [
        {"feature": FEATURE_LABELS.get(m.feature, m.feature), "quantity": quantity_label(m.quantity),
         "unit": m.unit, "r": round(m.r, 3)}
        for found in matches.values() for m in found
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["feature", "quantity", "unit", "r"])


def influence_values(log10_grad_x: np.ndarray, position: int, length: int | None = None) -> np.ndarray:
    """(length,) log10 ||d loss / d x_t|| minus its peak over t <= position (0 at the peak, -3 at 1e-3
    of it); NaN after the position, which the loss does not depend on. length defaults to T."""
    g = np.asarray(log10_grad_x, float)
    if not 0 <= position < len(g):
        raise ValueError(f"position must be between 0 and {len(g) - 1}, got {position}")
    g = np.concatenate([g[: position + 1], np.full(max(length or len(g), len(g)) - position - 1, np.nan)])
    return g - np.nanmax(g[: position + 1])


def fall_distance(log10_grad_x: np.ndarray, position: int, decades: float = FALL_DECADES) -> int | None:
    """Characters back from `position` to the first one whose gradient is below 10^-decades of the
    peak over t <= position; None if none within the passage."""
    below = np.flatnonzero(influence_values(log10_grad_x, position)[: position + 1] < -decades)
    return int(position - below[-1]) if len(below) else None


@functools.lru_cache(maxsize=1)
def validation_text() -> str:
    """The corpus's validation text (read once per process)."""
    return load_corpus().validation


@functools.lru_cache(maxsize=3)
def shipped_charlm(arch: str) -> CharLM:
    """The shipped char model of an arch ("rnn", "lstm", "gru")."""
    return load_charlm(f"charlm-{arch}")[0]


def passage(start: int, length: int) -> str:
    """validation_text()[start : start + length]; ValueError when it does not fit."""
    text = validation_text()
    if not 1 <= length <= MAX_PASSAGE:
        raise ValueError(f"length must be between 1 and {MAX_PASSAGE} characters, got {length}")
    if not 0 <= start <= len(text) - length - 1:
        raise ValueError(f"start must be between 0 and {len(text) - length - 1:,}, got {start:,}")
    return text[start : start + length]


def passage_recording(arch: str, start: int, length: int) -> Recording:
    """record() of the shipped `arch` char model reading the passage (its activations)."""
    model = shipped_charlm(arch)
    x = model.one_hot(torch.from_numpy(VOCAB.encode(passage(start, length))).unsqueeze(0))
    return record(model.recurrent, x, label=arch.upper(), meta={"start": start, "length": length})


def influence_recording(arch: str, start: int, length: int, position: int) -> Recording:
    """record() whose loss is the prediction of character position + 1 of the passage, so
    log10_grad_x[0, t] = log10 ||d loss / d x_t|| for t <= position (the record ends there).
    position runs from 0 to length - 1: the last one predicts the character after the passage."""
    model = shipped_charlm(arch)
    passage(start, length)  # checks the range; the passage ends one character before the text does
    ids = torch.from_numpy(VOCAB.encode(validation_text()[start : start + length + 1])).unsqueeze(0)
    x, grad_output = next_char_grad_output(model, ids, position)
    return record(model.recurrent, x, grad_output=grad_output, label=arch.upper())


def passage_connectivity(arch: str, start: int, length: int) -> np.ndarray:
    """(T, T) connectivity() of the shipped `arch` char model over the passage: [t_out, t_in] =
    log10 ||d(u . h_t_out) / d x_t_in||, -inf for t_in > t_out."""
    model = shipped_charlm(arch)
    x = model.one_hot(torch.from_numpy(VOCAB.encode(passage(start, length))).unsqueeze(0))
    return connectivity(model.recurrent, x)[0]


def connectivity_text_figure(values: np.ndarray, text: str, position: int, name: str,
                             window: int = WINDOW) -> go.Figure:  # fmt: skip
    """connectivity_figure of the `window` characters that end at `position`, the characters on
    both axes (rows: the output step, columns: the input character)."""
    values = np.asarray(values)
    if values.shape != (len(text), len(text)):
        raise ValueError(f"values must be ({len(text)}, {len(text)}) for the text, got {values.shape}")
    low = max(0, position - window + 1)
    labels = [tick_label(c) for c in text[low : position + 1]]
    fig = connectivity_figure(values[low : position + 1, low : position + 1], name)
    ticks = dict(tickmode="array", tickvals=list(range(len(labels))), ticktext=labels, tickangle=0,
                 tickfont=dict(family="ui-monospace, Menlo, Consolas, monospace", size=10))  # fmt: skip
    fig.update_xaxes(title=f"input character (t = {low} to {position})", **ticks)
    fig.update_yaxes(title="output after reading", **ticks)
    chars = text[low : position + 1]
    tips = [[f"input {a!r} (t = {low + j})<br>output after {b!r} (t = {low + i})"
             for j, a in enumerate(chars)] for i, b in enumerate(chars)]  # fmt: skip
    fig.update_layout(height=480)
    return fig.update_traces(
        customdata=tips,
        zmin=fig.data[0].zmax - CONNECTIVITY_DECADES,
        hovertemplate="%{customdata}<br>log10 norm=%{z:.2f}<extra></extra>",
    )
