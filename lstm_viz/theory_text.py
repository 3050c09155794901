"""The theory page's words and table: what each estimate gets right or wrong, the Pascanu
bound said honestly, and how much of the Lyapunov / singular-value work the page runs.

Pure functions of recordings, theory_table frames and plain numbers; every text is written
from the run's own numbers, so it stays true when the settings change. See docs/theory.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .analysis import decay_fit, median_curve
from .prose import half_life_text
from .record import Recording
from .theory import ACTIVATION_SLOPE_BOUND, bound_curve, pascanu_rate

MAX_K = 8  # the page's slider: the k largest exponents / singular values
ROUNDING = 1e-3  # decades: a float32 recording may touch a tight bound by this much
TRACKS = 0.01  # decades per step: an estimate this close to the measured slope tracks it
# What the page spends on each model, from a cost model of this project's 2-core machine
# (seconds per step: fixed + per (sample x unit^2 x gate block) or x state size):
LYAPUNOV_SECONDS, SINGULAR_SECONDS = 1.5, 3.0
_LYAPUNOV_STEP = (7e-5, 1e-8)
_SINGULAR_STEP = (3e-4, 2e-9)
MIN_LYAPUNOV_STEPS = 50
_BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3}  # rows of W_hh per unit


INTRO = (
    "Each chart puts the measured log10 ‖∂L/∂h<sub>t</sub>‖ beside straight lines at the slopes that "
    "theory predicts from the weights and the recorded gates. Rates are decades lost per step back "
    "(> 0: vanishing). The formulas, what each assumes, and seeded measurements are in `docs/theory.md`."
)
ONLY_LYAPUNOV = (
    "Only the **top Lyapunov exponent**, computed from the whole per-step Jacobian, tracks every "
    "configuration measured in `docs/theory.md`. Each closed form leaves out part of that Jacobian: the "
    "per-step estimate its directions, the mean field its structure, the cell path the route through "
    "W<sub>hh</sub>."
)
TABLE_CAPTION = (
    "Measured: the slope of a straight line through log10 ‖∂L/∂h_t‖. An estimate tracks it within "
    f"±{TRACKS} decades/step. The bound's rate is negative when it grows going back."
)


def layer_note(settings) -> str:
    """Why the page shows nothing for a deep or bidirectional lstm_viz.Settings ("" for one layer,
    one direction): theory.py states each result for one layer read forwards."""
    layers, both = getattr(settings, "num_layers", 1), getattr(settings, "bidirectional", False)
    if layers == 1 and not both:
        return ""
    what = " and ".join(([f"{layers} layers"] if layers > 1 else []) + (["two directions"] if both else []))
    return (
        f"The theory on this page is stated for one layer read forwards, and these settings have {what}: "
        "set Layers to 1 and turn Bidirectional off to compare it with measurement."
    )


def rate_headline(rec: Recording) -> str:
    """A model's measured rate for a heading, e.g. 'loses 0.237 decades per step (half-life 1.27 steps)'."""
    rate = decay_fit(rec).decades_per_step
    if not math.isfinite(rate):
        return "no finite slope to compare"
    verb = "loses" if rate >= 0 else "gains"
    return f"{verb} {abs(rate):.3g} decades per step back (half-life {half_life_text(rate)})"


@dataclass(frozen=True)
class SpectrumPlan:
    """What the page computes for the spectra: the Lyapunov exponents on the first
    lyapunov_steps steps (0: not at all), the singular values (over all steps) or not,
    and one sentence per cap or refusal, saying why and what would fit."""

    lyapunov_steps: int
    singular: bool
    notes: tuple[str, ...]


def spectrum_plan(seq_len: int, batch_size: int, hidden_size: int, archs: list[str]) -> SpectrumPlan:
    """Cap the Lyapunov iteration's steps and refuse the singular values so that each model
    takes about LYAPUNOV_SECONDS + SINGULAR_SECONDS; the costliest arch in archs decides."""
    blocks = max(_BLOCKS[a] for a in archs)
    state = max(2 if a == "lstm" else 1 for a in archs) * hidden_size
    size = f"batch {batch_size} × hidden size {hidden_size}"
    notes = []
    per_step = _LYAPUNOV_STEP[0] + _LYAPUNOV_STEP[1] * batch_size * hidden_size**2 * blocks
    steps = min(seq_len, int(LYAPUNOV_SECONDS / per_step))
    if steps < min(seq_len, MIN_LYAPUNOV_STEPS):
        steps = 0
        notes.append(
            f"Lyapunov exponents: not computed at {size}, where even {MIN_LYAPUNOV_STEPS} steps would "
            "take more than a few seconds; lower the batch or the hidden size."
        )
    elif steps < seq_len:
        notes.append(
            f"Lyapunov exponents: from the first {steps:,} of the {seq_len:,} steps, to keep this page "
            f"within a few seconds at {size}. They are rates per step, so a long stretch is enough."
        )
    per_step = _SINGULAR_STEP[0] + _SINGULAR_STEP[1] * batch_size * hidden_size**2 * state
    fits = int(SINGULAR_SECONDS / per_step)
    singular = seq_len <= fits
    if not singular:
        fix = f"a sequence length up to {fits:,}" if fits >= 10 else "a smaller hidden size or batch"
        notes.append(
            f"Singular values of ∂h<sub>T</sub>/∂h<sub>0</sub>: not computed. They carry all "
            f"{hidden_size} directions through all {seq_len:,} steps, more than a few seconds at {size}; "
            f"{fix} would fit."
        )
    return SpectrumPlan(steps, singular, tuple(notes))


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}".replace("-", "−")


def pascanu_text(rec: Recording) -> str:
    """Markdown: whether Pascanu et al.'s bound holds on this RNN recording, how many decades
    above the measured curve it sits at t = 0, and why (sigma_1 against the spectral radius)."""
    bound = bound_curve(rec)
    grad = rec.log10_grad_h.astype(np.float64)
    finite = np.isfinite(grad)
    excess = float(np.max(np.where(finite, grad - bound, -np.inf))) if finite.any() else -math.inf
    w = rec.weight_hh.astype(np.float64)
    sigma_1 = float(np.linalg.norm(w, 2))
    rho = float(np.abs(np.linalg.eigvals(w)).max())
    gamma = ACTIVATION_SLOPE_BOUND[rec.nonlinearity]
    rate = pascanu_rate(rec)  # log10(sigma_1 gamma): decades the bound gains per step back
    measured = decay_fit(rec).decades_per_step
    start = median_curve(rec.log10_grad_h)[0]
    intro = (
        "**Pascanu et al. (2013)**: ‖∂L/∂h<sub>t</sub>‖ ≤ ‖∂L/∂h<sub>T−1</sub>‖ (σ₁γ)<sup>T−1−t</sup>, "
        f"with σ₁ = {sigma_1:.3g} the largest singular value of W<sub>hh</sub> and γ = {gamma:g} the "
        f"largest slope of {rec.nonlinearity}. "
    )
    if excess > ROUNDING:
        return intro + (
            f"Here it does **not** hold: the measured gradient exceeds it by {excess:.3g} decades. "
            "That should not happen: please report it with this page's link."
        )
    gap = bound[0] - start
    if math.isfinite(start):
        where = f"it sits **{max(gap, 0.0):.0f} decades** above the measured gradient at t = 0"
    else:
        where = "the measured gradient is exactly 0 at t = 0 (dead relu units), infinitely far below it"
    rounding = " (to float rounding)" if excess > 0 else ""
    holds = f"It holds at every step of every sequence here{rounding}, and {where}. "
    slope = f"measured slope {_fmt(measured)} decades/step"
    if gap < 1:
        return intro + holds + (
            f"Here it is tight ({slope}, bound {_fmt(-rate)}): nearly every step takes the largest gain σ₁γ, "
            f"as with W<sub>hh</sub> = ρI (here ρ = {rho:.3g}) and every relu unit active."
        )  # fmt: skip
    if rate <= 0:
        return intro + holds + (
            f"With σ₁γ = {sigma_1 * gamma:.3g} ≤ 1 it guarantees vanishing at least {_fmt(-rate)} decades "
            f"per step ({slope}); the rest of the gap is the activation's slope, which the bound takes at "
            f"its largest γ at every step (ρ = {rho:.3g})."
        )  # fmt: skip
    trend = "falls" if measured > 0 else "grows more slowly"
    why = (
        f"It is loose because σ₁γ = {sigma_1 * gamma:.3g} > 1, so the bound *grows* {_fmt(rate)} decades "
        f"per step going back, while the gradient {trend} ({slope}). "
    )
    if rho < 1 <= sigma_1:
        why += (
            f"The spectral radius of W<sub>hh</sub> is ρ = {rho:.3g} < 1, and long products of "
            f"W<sub>hh</sub> grow like ρ<sup>k</sup>, not σ₁<sup>k</sup>: a random non-normal matrix's "
            "norm is about twice its spectral radius. The bound lets every step reach the largest gain."
        )
    else:
        why += (
            f"With ρ = {rho:.3g}, what keeps the gradient down is the activation's slope, which the bound "
            "takes at its largest."
        )
    return intro + holds + why


_REASONS = {  # estimate name prefix -> why it can miss (docs/theory.md, "fails when")
    "per-step": "it treats each step as ρ × the mean slope, while slopes and directions correlate (relu) "
    "or the run is near the edge of chaos",
    "mean field": "it assumes a random W<sub>hh</sub> with independent entries and many units; small or "
    "structured W<sub>hh</sub> break that",
    "top Lyapunov": "the first steps back from the loss are off the line and weigh more in a short run "
    "(or the exponent used fewer steps)",
}
_PATH_LEFT_OUT = (
    "the gradient also returns through W<sub>hh</sub> (h<sub>t−1</sub> → gates → c<sub>t</sub>, "
    "h<sub>t</sub>), which the cell path leaves out"
)


def _why_missed(estimate: str, predicted: float, measured: float) -> str:
    if estimate.startswith(("cell path", "carry path")):
        if predicted > measured:
            return _PATH_LEFT_OUT
        return (
            "the cell path alone would keep more than the whole network does; it leaves out every other path"
        )
    return next(
        (why for name, why in _REASONS.items() if estimate.startswith(name)), "its assumptions fail here"
    )


def verdicts(table: pd.DataFrame) -> list[str]:
    """One markdown sentence per row of theory.theory_table (the Pascanu bound left out: see
    pascanu_text): whether the estimate tracks the measured slope within TRACKS decades per
    step, and if not, by how much and why."""
    out = []
    for row in table.itertuples():
        if row.estimate.startswith("Pascanu"):
            continue
        diff = row.predicted - row.measured
        head = f"**{row.model}, {row.estimate}**: {_fmt(row.predicted)} vs measured {_fmt(row.measured)}"
        if not math.isfinite(diff):
            out.append(f"{head}: no finite prediction.")
        elif abs(diff) <= TRACKS:
            out.append(f"{head}: tracks it (within {abs(diff):.3f}).")
        else:
            side = "predicts faster vanishing" if diff > 0 else "predicts slower vanishing"
            why = _why_missed(row.estimate, row.predicted, row.measured)
            out.append(f"{head}: misses by {abs(diff):.3f} decades/step ({side}), because {why}.")
    return out


def table_view(table: pd.DataFrame) -> pd.DataFrame:
    """theory_table's frame for display: rates rounded, units in the headers, a tracks column."""
    diff = table["predicted"] - table["measured"]
    bound = table["estimate"].str.startswith("Pascanu")
    tracks = np.where(bound, "bound", np.where(diff.abs() <= TRACKS, "yes", "no"))
    return pd.DataFrame(
        {
            "model": table["model"],
            "estimate": table["estimate"],
            "predicted (decades/step)": table["predicted"].round(4),
            "measured (decades/step)": table["measured"].round(4),
            "predicted − measured": diff.round(4),
            f"tracks (±{TRACKS})": tracks,
            "how": table["note"],
        }
    )


def lyapunov_caption(recs: list[Recording], top: list[float]) -> str:
    """One line: what to look for in the Lyapunov spectrum (top: each rec's largest exponent)."""
    pairs = ", ".join(
        f"{rec.name} {_fmt(t)} vs {_fmt(-decay_fit(rec).decades_per_step)}"
        for rec, t in zip(recs, top, strict=True)
    )
    return (
        "Decades gained per step going back (< 0: shrinking), largest first. Look for the top exponent "
        f"on its model's dotted line, minus the measured slope ({pairs}); the others say how fast every "
        "other direction of the gradient dies."
    )


SINGULAR_CAPTION = (
    "log10 of the largest singular values of ∂h_T/∂h_0, the matrix that carries the loss's gradient back "
    "to the first step. Look for the measured log10 ‖∂L/∂h_0‖ (dotted) at or below the top value: no "
    "gradient of norm 1 entering at the last step gets further; a wide gap to the second value means "
    "one direction carries nearly all of what arrives."
)


def figure_caption(rec: Recording) -> str:
    """One line under a model's theory chart."""
    what = "the per-step and mean-field estimates" if rec.arch == "rnn" else "the cell-path estimates"
    bound = " Black long dashes: the Pascanu bound, above the data." if rec.arch == "rnn" else ""
    return (
        f"Solid: the measured log10 ‖∂L/∂h_t‖; dashed and dotted: straight lines at each prediction's slope, "
        f"anchored at the loss. Look for which line lies on the data: far from the loss the top Lyapunov "
        f"exponent does; {what} may not.{bound}"
    )
