"""Paper reproductions as Training-lab presets, and the lab's link values (ids, old labels too).

Each preset is a TrainConfig sized for two CPU cores (fewer units, steps and seeds than
the paper; its note says what differs), the Training lab's one-click setting and the
run behind `benchmarks/reproduce_papers.py`:

    le2015        Le, Jaitly & Hinton 2015: tanh RNN vs IRNN (identity init, relu) vs LSTM,
                  adding problem at T = 150, against the 1/6 baseline
    arjovsky_T100 Arjovsky, Shah & Bengio 2016: copy memory at T = 100 (and arjovsky_T200),
                  against 10 ln 8 / (T + 20)
    tallec2018    Tallec & Ollivier 2018: LSTM with chrono init vs forget bias 1 on copy memory
                  at T = 200, the longest lag of the lab's slider

    config = PRESETS["le2015"].scaled(steps=20, hidden_size=4)   # a tiny version, for tests
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, replace

from .models import ARCHS
from .tasks import TASKS
from .training import DEFAULT_INITS, MODEL_NAMES, TrainConfig

DEFAULT_TASK, DEFAULT_MODELS = "adding", list(ARCHS)
MODELS_HELP = (
    "A plain architecture takes its init from the Initialisation section below; a model named with "
    "an init (e.g. RNN (identity, relu), the IRNN of Le et al. 2015, or LSTM (chrono)) brings its own, "
    "so two inits of one architecture can train side by side."
)


@dataclass(frozen=True)
class Preset:
    """One paper's experiment at a size that runs in minutes on two cores."""

    name: str
    title: str  # for the selectbox
    paper: str  # the citation
    config: TrainConfig
    note: str  # what the paper did and what differs here

    def scaled(self, **changes) -> TrainConfig:
        """The preset's config with some fields changed (e.g. steps=20 for a quick run)."""
        return replace(self.config, **changes)

    def widget_values(self) -> dict:
        """Training-lab widget key (without the "train_" prefix) -> value that shows this preset."""
        c = self.config
        return {"task": c.task, "lag": c.lag, "hidden": c.hidden_size, "archs": list(c.archs),
                "steps": c.steps, "lr": c.lr, "clip_on": c.clip is not None, "clip": c.clip or 1.0,
                "seed": c.seed} | {f"init_{a}": c.init(a) for a in ARCHS}  # fmt: skip


def _config(task: str, lag: int, archs: tuple[str, ...], steps: int, lr: float) -> TrainConfig:
    # The lab's page draws a snapshot every steps // 40; the presets do the same.
    return TrainConfig(task=task, lag=lag, hidden_size=64, archs=archs, steps=steps, lr=lr, clip=1.0,
                       inits=dict(DEFAULT_INITS), seed=0, record_every=max(steps // 40, 5))  # fmt: skip


_ARJOVSKY = (
    "Arjovsky, Shah & Bengio 2016, Unitary evolution recurrent neural networks (ICML)",
    "The paper's own model, the unitary RNN, is not built here; it trained with RMSProp at T = 100 "
    "to 500. Here: a tanh RNN and an LSTM (forget bias 1), 64 units, Adam 1e-3, batch 64, 1500 "
    "steps, clipping at 1. A model that remembers nothing sits on 10 ln 8 / (T + 20).",
)
PRESETS: dict[str, Preset] = {
    "le2015": Preset(
        "le2015",
        "Le et al. 2015: IRNN, adding T = 150",
        "Le, Jaitly & Hinton 2015, A simple way to initialize recurrent networks of rectified linear "
        "units (arXiv:1504.00941)",
        _config("adding", 150, ("rnn", "rnn_identity", "lstm"), 2000, 1e-3),
        "Their adding problem, the one this lab trains (values uniform on [0, 1], target X1 + X2; "
        "Hochreiter & Schmidhuber 1997 used values in [-1, 1] and target 0.5 + (X1 + X2)/4). The paper "
        "trained 100 units with SGD for hundreds of thousands of steps at T = 150 to 400; here 64 "
        "units, Adam 1e-3, batch 64, 2000 steps, clipping at 1, the LSTM with forget bias 1.",
    ),
    "arjovsky_T100": Preset(
        "arjovsky_T100",
        "Arjovsky et al. 2016: copy T = 100",
        *_ARJOVSKY[:1],
        _config("copy_memory", 100, ("rnn", "lstm"), 1500, 1e-3),
        _ARJOVSKY[1],
    ),  # fmt: skip
    "arjovsky_T200": Preset(
        "arjovsky_T200",
        "Arjovsky et al. 2016: copy T = 200",
        *_ARJOVSKY[:1],
        _config("copy_memory", 200, ("rnn", "lstm"), 1500, 1e-3),
        _ARJOVSKY[1],
    ),  # fmt: skip
    "tallec2018": Preset(
        "tallec2018",
        "Tallec & Ollivier 2018: chrono",
        "Tallec & Ollivier 2018, Can recurrent neural networks warp time? (ICLR)",
        _config("copy_memory", 200, ("lstm_chrono", "lstm_forget_bias"), 1500, 1e-3),
        "Chrono init draws the forget biases from log U(1, T_max - 1), T_max = T + 20 (the sequence "
        "length), and sets the input biases to minus them; the other LSTM has the usual forget bias "
        "1. The paper's copy tasks are far longer; here T = 200 (the lab's longest), 64 units, Adam "
        "1e-3, batch 64, 1500 steps, clipping at 1.",
    ),
}


def note(name: str, config: TrainConfig) -> str | None:
    """The preset's citation and note while `config` is still the preset's; None once it differs."""
    preset = PRESETS.get(name)
    if preset is None or config != preset.config:
        return None
    return f"**{preset.paper}.** {preset.note}"


def read_link(task: str | None, archs: Sequence[str] | None) -> tuple[str, list[str], list[str]]:
    """(task id, model names, what was dropped) from the URL's train_task and train_archs values.

    Ids ("copy_memory", "lstm_chrono") and the labels older links carried ("Copy memory",
    "LSTM") are both read; None (absent) gives the default; an empty value means no models.
    """
    problems = []
    titles = {t.title.lower(): n for n, t in TASKS.items()}
    task_id = DEFAULT_TASK if task is None else titles.get(task.lower(), task.lower())
    if task_id not in TASKS:
        problems.append(f"train_task={task} is not a task ({', '.join(TASKS)}); using {DEFAULT_TASK}")
        task_id = DEFAULT_TASK
    models = []
    for value in DEFAULT_MODELS if archs is None else [a for a in archs if a]:
        name = value.lower()
        if name not in MODEL_NAMES:
            problems.append(f"train_archs={value} is not a model (e.g. {', '.join(ARCHS)}, lstm_chrono)")
        elif name not in models:
            models.append(name)
    return task_id, models, problems


def link_values(task: str, archs: Sequence[str]) -> dict[str, str | list[str]]:
    """train_task and train_archs as ids for the URL, leaving out defaults ([""] for no models)."""
    out: dict[str, str | list[str]] = {}
    if task != DEFAULT_TASK:
        out["train_task"] = task
    if list(archs) != DEFAULT_MODELS:
        out["train_archs"] = list(archs) or [""]
    return out


def write_link(params: MutableMapping, task: str, archs: Sequence[str]) -> None:
    """Put link_values into st.query_params (or any mapping), removing the defaults' parameters."""
    wanted = link_values(task, archs)
    for key in ("train_task", "train_archs"):
        if key not in wanted:
            params.pop(key, None)
        elif params.get(key) != wanted[key]:
            params[key] = wanted[key]


def follow_step(chosen: int | None, last_seen: int | None, steps: Sequence[int]) -> int:
    """The training step to show: the user's choice while it is one of `steps`, else the last step;
    a choice of the last step (last_seen) follows training to the new last step."""
    return chosen if chosen in steps and chosen != last_seen else steps[-1]
