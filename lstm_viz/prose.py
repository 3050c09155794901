"""The words around the numbers: half-life texts, chart captions and the explanations the
pages show, each written from a recording's own numbers so it stays true to the run."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import numpy as np

from . import analysis
from .models import LSTM
from .record import Recording


def half_life_text(decades_per_step: float) -> str:
    """The half-life for a metric or table: 'n/a', '∞ (flat)', '4 steps' or 'exploding: ×2 every 4 steps'."""
    if not math.isfinite(decades_per_step):
        return "n/a"
    if abs(decades_per_step) < 1e-6:
        return "∞ (flat)"
    steps = math.log10(2) / abs(decades_per_step)
    return f"{steps:.3g} steps" if decades_per_step > 0 else f"exploding: ×2 every {steps:.3g} steps"


def rate_text(decades_per_step: float) -> str:
    """The fitted slope as a short text, e.g. '0.0753 decades/step'."""
    if not math.isfinite(decades_per_step):
        return "no finite fit"
    return f"{decades_per_step:.3g} decades/step"


def run_title(settings) -> str:
    """One line naming a run of lstm_viz.Settings, e.g. for a chart's title."""
    return (
        f"Gradient flow over T = {settings.seq_len} steps: hidden size {settings.hidden_size}, "
        f"{settings.input_size} {settings.input_kind} input features, batch {settings.batch_size}, "
        f"seed {settings.seed}"
    )


def lstm_cell_lines() -> dict[str, str]:
    """The source lines of our LSTM cell, read from the code itself, keyed by what they compute:
    'preactivation', 'split', 'cell', 'hidden'."""
    lines = [line.strip() for line in inspect.getsource(LSTM.cell).splitlines()]
    starts = {"preactivation": "gates =", "split": "i, f, g, o", "cell": "c =", "hidden": "h ="}
    return {key: next(line for line in lines if line.startswith(start)) for key, start in starts.items()}


def mean_log10(values: np.ndarray) -> float:
    """Mean of log10 over every entry: the per-step factor a product of these values keeps, in decades."""
    return float(np.mean(np.log10(np.maximum(values.astype(np.float64), 1e-300))))


def flow_caption(recordings: Sequence[Recording]) -> str:
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
    # The cell path multiplies forget gates: it loses the mean of their logs per step, which is
    # more than minus the log of their mean wherever the gates spread out (Jensen).
    cell_loss = -mean_log10(lstm.gates["forget"])
    cell_rate = analysis.decay_fit(lstm, "log10_grad_c").decades_per_step
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
            f"though: here the forget gates average **{forget:.2f}**, and a product of them alone "
            f"would lose the mean of their logarithms, **{cell_loss:.2f} decades per step**. The measured "
            f"‖∂L/∂c_t‖ falls at **{cell_rate:.2f}**: "
            + ("slower, because" if cell_rate < cell_loss else "and")
            + " the gradient also returns into the cell through $h_{k-1}$ and the gates (the terms "
            "left out above), and the norm of a product follows its slowest direction. "
            "PyTorch's default init puts $f$ near "
            "$\\sigma(0) = 0.5$; a forget-gate bias of a few units or chrono init (sidebar) opens "
            "the path before any training, and training learns to open it where the task needs memory.",
        ),
    ]
