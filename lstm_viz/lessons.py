"""Guided lessons: short steps that each set the app's controls through a link, say what to look
at, and ask one question the chart answers. Plain data; the Lessons page draws it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Lesson:
    """One step: the page it opens (a file under the app's root) with these URL parameters."""

    title: str
    page: str
    params: dict[str, str] = field(default_factory=dict)
    look: str = ""  # what to look at, two or three sentences
    question: str = ""
    answer: str = ""


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "The RNN's straight line",
        "app.py",
        {"flow_open": "false"},
        "The red line is an untrained vanilla RNN's gradient ‖∂L/∂h_t‖ at every step t, on a log scale. "
        "Read it from the right, where the loss enters, back to the left. A straight line on a log scale "
        "means the gradient loses the same share at every step back.",
        "How many decades does the RNN lose per step back, and how many steps does it take to halve?",
        "About 0.24 decades per step (the card under the chart): the gradient halves every 1.3 steps, "
        "because every step multiplies it by diag(tanh′) W_hh, whose size is about 0.58 here.",
    ),
    Lesson(
        "Longer sequences",
        "app.py",
        {"flow_open": "false", "seq_len": "1000"},
        "The same RNN over 1,000 steps. The line keeps falling at the same slope, far below the smallest "
        "float32 number (the dotted floor at 10^-38): there PyTorch's own autograd returns exactly 0, while "
        "lstm-viz keeps the number exact in log space.",
        "How small is the RNN's gradient at t = 0?",
        "About 10^-237: 999 steps of about 0.24 decades each. In float32 it would be exactly zero.",
    ),
    Lesson(
        "The untrained LSTM forgets too",
        "pages/1_Gates_and_cell_state.py",
        {"hidden_size": "64"},
        "The forget gate decides how much of the cell survives each step. Look at its heatmap: in an "
        "untrained LSTM (PyTorch's default init) it is a uniform grey-green near 0.5 at every unit and "
        "step. That uniformity is the finding.",
        "What does a forget gate of 0.5 do to a memory after 10 steps?",
        "It keeps 0.5^10 ≈ 0.001 of it: three decades gone in ten steps. The untrained LSTM's cell path "
        "forgets almost as fast as the RNN (its line on the first page falls 0.2 decades per step).",
    ),
    Lesson(
        "Open the cell path",
        "app.py",
        {},
        "The orange line is the same LSTM with chrono init (Tallec & Ollivier 2018): forget biases of "
        "log U(1, T-1), so its forget gates start near 1. The cell path c_t = f_t ⊙ c_t-1 + ... then "
        "carries the gradient back nearly unchanged: Hochreiter & Schmidhuber's constant error carousel.",
        "How much of the gradient does the chrono LSTM keep after 299 steps, and the default one?",
        "The headline above the chart says it: about 10^-3.5 for chrono against 10^-61 for the default "
        "init. Same architecture; only the forget-gate biases differ.",
    ),
    Lesson(
        "An exploding relu RNN",
        "app.py",
        {"flow_open": "false", "rnn_init": "identity", "spectral_radius": "1.5"},
        "An IRNN (Le et al. 2015): relu units, W_hh = ρ·I, here with ρ = 1.5. Every active unit multiplies "
        "the gradient by 1.5 per step back. The red line now rises to the left: the gradient explodes.",
        "How large is the RNN's gradient at t = 0, and why does the page mention float64?",
        "About 10^53. The network's state itself grows as 1.5^t and passes float32's largest number "
        "(3.4e38), so lstm-viz recorded it again in float64 and says so under the chart.",
    ),
    Lesson(
        "The LSTM learns the adding task; the RNN cannot",
        "pages/3_Training_lab.py",
        {"train_task": "adding", "train_lag": "50"},
        "Press Start. All models train on the same batches of the adding problem: two marked numbers "
        "50 steps apart must be added. The dashed line is the baseline of always answering 1 (MSE 1/6).",
        "Which model's loss goes clearly below the baseline within 1,000 steps?",
        "The LSTM's. The tanh RNN stays near 1/6: the gradient from the answer cannot reach the first "
        "marker, so it never learns to remember it. The heatmap shows the LSTM's gradient reaching back.",
    ),
    Lesson(
        "The GRU",
        "app.py",
        {"flow_open": "false", "flow_gru": "true"},
        "The green line is a GRU. Its memory is h itself: h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_t-1, so its "
        "update gate z plays the forget gate's part, without a separate cell.",
        "Where does the untrained GRU's line sit between the RNN and the LSTM, and which gate decides it?",
        "Close to the untrained LSTM's (about 0.19 decades per step): its update gates sit near 0.5 too. "
        "Chrono init for the GRU (sidebar) opens the update gate the same way.",
    ),
)
