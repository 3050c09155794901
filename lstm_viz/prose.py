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
    depth = f"{settings.num_layers} layers, " if settings.num_layers > 1 else ""
    depth += "bidirectional, " if settings.bidirectional else ""
    return (
        f"Gradient flow over T = {settings.seq_len} steps: {depth}hidden size {settings.hidden_size}, "
        f"{settings.input_size} {settings.input_kind} input features, batch {settings.batch_size}, "
        f"seed {settings.seed}"
    )


def settings_line(settings) -> str:
    """Every setting of a run of lstm_viz.Settings as one line, name=value, for exports."""
    return ", ".join(f"{k}={v}" for k, v in vars(settings).items())


WHY_IT_VANISHES = (
    "Going back one step multiplies the gradient by the Jacobian ∂h<sub>t</sub>/∂h<sub>t-1</sub> = "
    "diag(tanh′) W<sub>hh</sub>. Its size is at most the largest singular value of W<sub>hh</sub> times "
    "tanh′ ≤ 1, so over k steps the gradient shrinks like a power of that factor: a straight line on "
    "this log scale. The LSTM's cell state adds a second path, c<sub>t</sub> = f<sub>t</sub> ⊙ "
    "c<sub>t-1</sub> + ..., whose Jacobian is just the forget gate: with forget gates near 1 it "
    "carries the gradient back almost intact. See **LSTM equations** for the details."
)
FLOAT64_NOTE = (
    "The {names} overflowed float32 (its state passed 3.4e38) and {verb} recorded again in float64: "
    "every number shown is the float64 run's."
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


def metric_texts(decades_per_step: float) -> tuple[str, str]:
    """(value, note) for a model's metric card: short enough never to be cut off.
    Vanishing: ("4 steps", "0.0753 decades/step"); exploding: ("explodes", "×2 every 3.01 steps back")."""
    if math.isfinite(decades_per_step) and decades_per_step < -1e-6:
        steps = math.log10(2) / -decades_per_step
        return "explodes", f"×2 every {steps:.3g} steps back"
    return half_life_text(decades_per_step), rate_text(decades_per_step)


def power_of_ten(log10_value: float) -> str:
    """10<sup>-71</sup> as HTML, with one decimal where the exponent is small: 10<sup>-0.9</sup>."""
    if not math.isfinite(log10_value):
        return "0" if log10_value < 0 else "∞"
    exponent = f"{log10_value:.1f}" if abs(log10_value) < 10 else f"{log10_value:.0f}"
    return f"10<sup>{exponent.replace('-', '−')}</sup>"


def _is_trained(rec: Recording) -> bool:
    return "task" in rec.meta


def headline(recordings: Sequence[Recording]) -> str:
    """One line with this run's numbers: how much of the gradient each model still has at t = 0,
    e.g. "After 299 steps back in time, the RNN keeps 10^-71 of the gradient, the LSTM 10^-60 and the
    LSTM (chrono) 10^-0.9." (HTML superscripts). Growing gradients are said to explode."""
    if not recordings:
        return ""
    steps = recordings[0].seq_len - 1
    parts = []
    for k, rec in enumerate(recordings):
        curve = analysis.median_curve(rec.log10_grad_h)
        change = float(curve[0] - curve[-1])  # decades gained (> 0) or lost (< 0) from t = T-1 to 0
        amount = f"<b>{power_of_ten(change)}</b>"
        kept = f"keeps {amount} of the gradient" if k == 0 else amount
        kept += " (it explodes)" if change > 0.5 else ""
        parts.append(f"the {rec.name} {kept}")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"After {steps:,} steps back in time, {listed}."


def flow_caption(recordings: Sequence[Recording]) -> str:
    """What to look for in the gradient-flow chart of these recordings: true to its state
    (vanishing or exploding, untrained or trained, LSTM or GRU)."""
    trained = any(_is_trained(rec) for rec in recordings)
    growing = [rec.name for rec in recordings if analysis.decay_fit(rec).decades_per_step < -1e-6]
    start = (
        "Each line starts on the right, where the task's loss enters at the last step"
        if trained
        else "Each line starts at 0 on the right (the loss's gradient has norm 1 at the last step)"
    )
    parts = [
        f"{start}; read it leftwards, back in time: one decade lower means ten times smaller."
        + "".join(f" The {name}'s line rises going back: its gradient explodes." for name in growing)
    ]
    batch = recordings[0].batch_size if recordings else 1
    if batch > 1:
        parts.append(f"Lines are medians over {batch} sequences, bands the 25th to 75th percentile.")
    for rec in recordings:
        if rec.arch == "lstm":
            forget = float(rec.gates["forget"].mean())
            which = "this trained LSTM" if _is_trained(rec) else f"the {rec.name}"
            if forget < 0.9:
                parts.append(
                    f"The forget gates of {which} average {forget:.2f}, so its cell path keeps only that "
                    "share per step and it forgets too"
                    + ("" if _is_trained(rec) else ": the chrono init or a forget bias of 3 or more opens it")
                    + "."
                )
            else:
                parts.append(
                    f"The forget gates of {which} average {forget:.2f}: its cell path (dashed ∂L/∂c) carries "
                    "the gradient back almost undamped."
                )
        elif rec.arch == "gru":
            update = float(rec.gates["update"].mean())
            parts.append(
                f"The GRU keeps its old state through its update gate (mean {update:.2f} here): "
                "the closer to 1, the flatter its line."
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


def _near_half(values: np.ndarray) -> bool:
    """Whether a gate sits near σ(0) = 0.5 almost everywhere, as in an untrained network."""
    return bool(np.mean(np.abs(values.astype(np.float64) - 0.5) < 0.15) > 0.8)


def gate_caption(rec: Recording, quantity: str) -> str:
    """The heatmap's caption: what the quantity is, and when the map is nearly uniform at 0.5 in an
    untrained model, that this uniformity is the finding."""
    text = QUANTITY_CAPTIONS[quantity]
    if quantity == "forget" and rec.arch == "lstm" or quantity == "update" and rec.arch == "gru":
        values = rec.gates[quantity]
        if _near_half(values) and not _is_trained(rec):
            text += (
                f" Nearly uniform at {float(values.mean()):.2f}: that is the finding, not a fault. "
                "An untrained network's gates sit near σ(0) = 0.5 everywhere, so every unit forgets "
                "half its memory per step."
            )
    return text


LAYER_TIME_CAPTION = (
    "Each row is one layer (and direction: → reads forwards, ← backwards, its loss entering at t = 0); "
    "colour is log10 ‖∂L/∂h_t‖, bright where the gradient is large, dark where it has vanished. A lower "
    "layer gets its gradient through the layer above it, at every step."
)
STEP_FACTOR_CAPTION = (
    "Each point is one factor of the product: how many decades the gradient gains (> 0) or loses (< 0) "
    "in one step back. The RNN's sum of these is its total loss; the LSTM's dashed cell path follows "
    "its dotted forget-gate line, and sits at 0 only when the forget gates are near 1. The dip at the "
    "right end is the first step back from the loss: the gradient enters through h_T-1 alone, reaches "
    "the cell only through the output gate and tanh′(c), and nothing has built up in the cell yet; "
    "after that step the cell path carries its share and the factors settle."
)
MEAN_CAPTION = (
    "Line: mean over units (and sequences); band: 25th to 75th percentile over units; coloured lines: the "
    "units picked above (sequence 0). A forget gate whose mean sits near 0.5 keeps half its memory per step."
)


def saturation_caption(rec: Recording, stats: Sequence[analysis.GateStats]) -> str:
    """The saturation view's caption for analysis.gate_stats of the model's sigmoid gates; says so
    when no gate ever commits (every point near (0, 0))."""
    frac_below = np.concatenate([s.frac_below for s in stats])
    frac_above = np.concatenate([s.frac_above for s in stats])
    text = (
        "One point per unit: the share of steps its gate is below 0.1 (shut) against above 0.9 (open), "
        "after Karpathy et al. 2015."
    )
    if float(np.max(frac_below, initial=0)) < 0.05 and float(np.max(frac_above, initial=0)) < 0.05:
        text += (
            " Every point sits at (0, 0): no gate ever shuts or opens fully. For an untrained network "
            "with gates near 0.5 that is the finding: nothing is kept and nothing is wiped, everything "
            "fades at the same rate."
            if not _is_trained(rec)
            else " Every point sits near (0, 0): this model's gates never commit."
        )
    else:
        keep = "forget" if rec.arch == "lstm" else "update"
        text += (
            f" Units high on the left edge keep their state (their {keep} gate is mostly open); chrono "
            "init starts the LSTM's forget gates there, and training pushes them there."
        )
    return text
