"""What the app's pages compute, without streamlit: settings -> recordings -> tables and exports.

Pages hold widgets only; everything they show is computed here or in figures.py,
so it is testable without a browser and reusable from the command line.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from . import analysis
from .inputs import make_input
from .models import LSTM, build_model
from .record import Recording, record

SEQ_LEN_RANGE = (10, 10_000)
HIDDEN_SIZE_RANGE = (1, 512)
# Above this many (sample, step, unit) values the CSV export holds the per-step norms only.
MAX_EXPORT_CELLS = 2_000_000


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides a recording: one input batch, one model per architecture."""

    seq_len: int = 300
    hidden_size: int = 64
    seed: int = 0
    input_kind: str = "gaussian"
    input_size: int = 4
    batch_size: int = 1
    lstm_init: str = "default"
    forget_bias: float = 1.0
    rnn_init: str = "default"
    spectral_radius: float = 1.0
    rnn_nonlinearity: str = "tanh"
    gru_init: str = "default"

    def model_kwargs(self, arch: str) -> dict:
        """Keyword arguments of lstm_viz.build_model for arch under these settings."""
        kwargs: dict = {"seed": self.seed, "init": getattr(self, f"{arch}_init")}
        if arch == "rnn":
            kwargs.update(nonlinearity=self.rnn_nonlinearity, spectral_radius=self.spectral_radius)
        elif arch == "lstm":
            kwargs.update(forget_bias=self.forget_bias, spectral_radius=1.0)
        if kwargs["init"] == "chrono":
            kwargs["t_max"] = max(self.seq_len, 2)  # dependencies span up to the whole sequence
        return kwargs

    def label(self, arch: str) -> str:
        """Legend name, e.g. 'LSTM (chrono)' or 'RNN (orthogonal, ρ=0.9)'."""
        init = getattr(self, f"{arch}_init")
        details = [] if init == "default" else [init.replace("_", " ")]
        if arch == "rnn" and init in ("orthogonal", "identity"):
            details.append(f"ρ={self.spectral_radius:g}")
        if arch == "rnn" and self.rnn_nonlinearity == "relu":
            details.append("relu")
        if arch == "lstm" and init == "forget_bias":
            details[-1] = f"forget bias {self.forget_bias:g}"
        return arch.upper() + (f" ({', '.join(details)})" if details else "")


def model_and_input(settings: RunSettings, arch: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """The seeded model and input batch (B, T, I) these settings describe."""
    model = build_model(arch, settings.input_size, settings.hidden_size, **settings.model_kwargs(arch))
    x = make_input(
        settings.input_kind, settings.batch_size, settings.seq_len, settings.input_size, seed=settings.seed
    )
    return model, x


def run(settings: RunSettings, arch: str) -> Recording:
    """Record arch on the settings' input; ValueError (with a fix in the message) on bad settings."""
    model, x = model_and_input(settings, arch)
    return record(model, x, label=settings.label(arch), meta=asdict(settings))


def decay_fits(recordings: list[Recording]) -> dict[str, analysis.DecayFit]:
    """name -> fitted decay line of log10 ||dL/dh_t||, the `fits` of gradient_flow_figure."""
    return {rec.name: analysis.decay_fit(rec) for rec in recordings}


def flow_summary(recordings: list[Recording]) -> pd.DataFrame:
    """One row per recording: decay rate, half-life and the total decades lost over the sequence."""
    rows = []
    for rec in recordings:
        fit = analysis.decay_fit(rec)
        median = analysis.median_curve(rec.log10_grad_h)
        rows.append(
            {
                "model": rec.name,
                "arch": rec.arch,
                "decades_per_step": fit.decades_per_step,
                "half_life_steps": fit.half_life,
                "log10_grad_h_at_t0": float(median[0]),
                "log10_grad_c_at_t0": (
                    float(analysis.median_curve(rec.log10_grad_c)[0])
                    if rec.log10_grad_c is not None
                    else math.nan
                ),
            }
        )
    return pd.DataFrame(rows)


def describe_decay(decades_per_step: float, half_life: float) -> tuple[str, str]:
    """(half-life, rate) as short texts for a metric: vanishing, exploding or flat."""
    if not math.isfinite(decades_per_step):
        return "n/a", "no finite fit"
    rate = f"{decades_per_step:.3g} decades/step"
    if abs(decades_per_step) < 1e-6:
        return "∞ (flat)", rate
    steps = math.log10(2) / abs(decades_per_step)
    if decades_per_step > 0:
        return f"{steps:.3g} steps", rate
    return f"exploding: ×2 every {steps:.3g} steps", rate


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """flow_summary with column titles for people; "—" where a model has no cell state."""
    table = summary.drop(columns="arch").rename(
        columns={
            "decades_per_step": "decades lost per step",
            "half_life_steps": "half-life (steps)",
            "log10_grad_h_at_t0": "log10 ‖∂L/∂h‖ at t=0",
            "log10_grad_c_at_t0": "log10 ‖∂L/∂c‖ at t=0",
        }
    )
    cell = "log10 ‖∂L/∂c‖ at t=0"
    table[cell] = ["—" if math.isnan(v) else f"{v:.4f}" for v in table[cell]]
    return table


def tidy_csv(recordings: list[Recording]) -> bytes:
    """The recordings' tidy frames stacked (column 'model' added) as CSV bytes.

    Per-unit quantities are left out (per-step norms only) when they would exceed
    MAX_EXPORT_CELLS values, which keeps a T = 10,000, H = 512 export downloadable.
    """
    frames = []
    for rec in recordings:
        per_unit = rec.batch_size * rec.seq_len * rec.hidden_size <= MAX_EXPORT_CELLS
        frame = rec.to_frame(per_unit=per_unit)
        frame.insert(0, "model", rec.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).to_csv(index=False).encode()


def figure_html(fig: go.Figure) -> bytes:
    """A self-contained HTML page of the figure (plotly.js inlined: opens offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode()


UNIT_ORDERS = ("unit index", "mean forget gate", "mean |cell state|", "mean output gate")


def unit_order(rec: Recording, by: str) -> np.ndarray:
    """Unit indices (H,) sorted by `by` (one of UNIT_ORDERS), largest first; gates the
    architecture lacks (GRU: forget -> update, output -> none) fall back to the index order."""
    if by not in UNIT_ORDERS:
        raise ValueError(f"sort units by one of {UNIT_ORDERS}, got {by!r}")
    key = {
        "mean forget gate": rec.gates.get("forget", rec.gates.get("update")),
        "mean |cell state|": None if rec.cell is None else np.abs(rec.cell),
        "mean output gate": rec.gates.get("output"),
    }.get(by)
    if key is None:
        return np.arange(rec.hidden_size)
    return np.argsort(-key.mean(axis=(0, 1)), kind="stable")


def lstm_parity(settings: RunSettings) -> dict[str, float]:
    """Max abs difference between our hand-stepped LSTM and torch.nn.LSTM with the same
    weights on the settings' input: {'hidden': ..., 'cell': ... (last step), 'steps': T}."""
    model, x = model_and_input(settings, "lstm")
    with torch.no_grad():
        ours, (_, c_ours) = model(x)
        theirs, (_, c_theirs) = model.fused()(x)
    return {
        "hidden": float((ours - theirs).abs().max()),
        "cell": float((c_ours - c_theirs[0]).abs().max()),
        "steps": settings.seq_len,
    }


def lstm_cell_lines() -> dict[str, str]:
    """The source lines of our LSTM cell, read from the code itself, keyed by what they compute:
    'preactivation', 'split', 'cell', 'hidden'."""
    lines = [line.strip() for line in inspect.getsource(LSTM.cell).splitlines()]
    found = {
        "preactivation": next(line for line in lines if line.startswith("gates =")),
        "split": next(line for line in lines if line.startswith("i, f, g, o")),
        "cell": next(line for line in lines if line.startswith("c =")),
        "hidden": next(line for line in lines if line.startswith("h =")),
    }
    return found


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


def flow_caption(recordings: list[Recording]) -> str:
    """What to look for in the gradient-flow chart of these recordings, honest about the LSTM."""
    parts = [
        "Each line starts at 0 on the right (the loss's gradient has norm 1 at the last step) "
        "and falls as it travels back in time: one decade lower means ten times smaller."
    ]
    batch = recordings[0].batch_size if recordings else 1
    if batch > 1:
        parts.append(f"Lines are medians over {batch} sequences, bands the 25th to 75th percentile.")
    for rec in recordings:
        if rec.arch == "lstm":
            forget = float(rec.gates["forget"].mean())
            if forget < 0.9:
                parts.append(
                    f"The LSTM's forget gates average {forget:.2f} here, so its cell path keeps only that "
                    "share per step and this untrained LSTM forgets too: try the chrono init or a forget "
                    "bias of 3 or more and watch the dashed ∂L/∂c line flatten."
                )
            else:
                parts.append(
                    f"The LSTM's forget gates average {forget:.2f}: the cell path (dashed ∂L/∂c) carries "
                    "the gradient back almost undamped, while the RNN's product of Jacobians shrinks."
                )
    return " ".join(parts)


QUANTITY_CAPTIONS = {
    "forget": "Forget gate: 1 keeps the cell's memory, 0 wipes it. Rows near 0.5 (default init) halve the "
    "memory every step; bright rows are long-memory units.",
    "input": "Input gate: how much of the candidate is written into the cell at each step.",
    "candidate": "Candidate: the new content proposed at each step, in (-1, 1), driven by the input.",
    "output": "Output gate: how much of the cell is shown in the hidden state.",
    "cell": "Cell state: the memory itself. Slow, smooth rows are units that integrate over many steps.",
    "hidden": "Hidden state: what the next layer sees, o ⊙ tanh(c) for the LSTM.",
    "reset": "Reset gate: how much of the previous state feeds the candidate.",
    "update": "Update gate: 1 keeps the previous state, 0 replaces it by the candidate (GRU's memory gate).",
}


def vanishing_explanation(rnn: Recording, lstm: Recording) -> list[tuple[str, str]]:
    """Why the RNN's Jacobian products vanish and the cell path need not, with this run's numbers
    (spectral radius, mean activation slope, mean forget gate, fitted rate), as a list of
    ("markdown", text) and ("latex", display equation) parts in reading order."""
    rho = analysis.recurrent_spectral_radii(rnn)["hidden"]
    slope = float(np.mean(1 - rnn.hidden**2) if rnn.nonlinearity == "tanh" else np.mean(rnn.hidden > 0))
    act, act_tex = ("tanh′", r"\tanh'") if rnn.nonlinearity == "tanh" else ("relu′", r"\mathrm{relu}'")
    forget = float(lstm.gates["forget"].mean())
    rnn_rate = analysis.decay_fit(rnn).decades_per_step
    cell_loss = -math.log10(max(forget, 1e-12))
    return [
        ("markdown", "Backpropagation through time multiplies the gradient by one Jacobian per step back:"),
        (
            "latex",
            r"\frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_{T-1}}"
            r"\prod_{k=t+1}^{T-1} \frac{\partial h_k}{\partial h_{k-1}},\qquad"
            r"\frac{\partial h_k}{\partial h_{k-1}} = \mathrm{diag}\big(" + act_tex + r"(a_k)\big)\, W_{hh}",
        ),
        (
            "markdown",
            "Each factor scales the gradient by roughly the spectral radius of $W_{hh}$ times the "
            "slope of the activation, and the same kind of factor repeats $T-1-t$ times, so the norm "
            "falls (or grows) geometrically: a straight line on the log scale of the first page. "
            f"In this run the RNN's $W_{{hh}}$ has spectral radius **{rho:.2f}** and its mean {act} "
            f"is **{slope:.2f}**, so a typical step keeps about **{rho * slope:.2f}** of the "
            f"gradient; the fitted decay is **{rnn_rate:.3g} decades per step**. With every factor "
            "below 1, nothing later in the product can bring the gradient back.",
        ),
        (
            "markdown",
            "The LSTM's cell state has a second, additive path. Through "
            r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$:",
        ),
        (
            "latex",
            r"\frac{\partial c_k}{\partial c_{k-1}} = \mathrm{diag}(f_k)\quad\Rightarrow\quad"
            r"\frac{\partial L}{\partial c_t} \approx \frac{\partial L}{\partial c_{T-1}}"
            r"\prod_{k=t+1}^{T-1} \mathrm{diag}(f_k)",
        ),
        (
            "markdown",
            "(plus the terms through $h_{k-1}$): no weight matrix and no squashing slope, only "
            "forget gates. With $f \\approx 1$ the product stays near 1, Hochreiter & "
            "Schmidhuber's constant error carousel. Nothing makes $f$ close to 1 by itself, "
            f"though: here the forget gates average **{forget:.2f}**, so the cell path loses about "
            f"**{cell_loss:.2f} decades per step**. PyTorch's default init puts $f$ near "
            "$\\sigma(0) = 0.5$; a forget-gate bias of a few units or chrono init (sidebar) opens "
            "the path before any training, and training learns to open it where the task needs memory.",
        ),
    ]
