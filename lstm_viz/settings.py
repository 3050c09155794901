"""Every setting of a run, declared once, and the run those settings describe.

Each `Setting` below is the one place a knob is named. From it come the `Settings`
dataclass field, the app's sidebar widget (its key is the name), the URL parameter
(the same name; older keys stay as aliases), the command-line flag (`--name-with-dashes`)
and a sweep axis. Adding a setting is one declaration plus the code that uses it
(usually `Settings.model_kwargs`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, make_dataclass, replace

import torch

from .checks import check_float, check_int, finite_number, shown
from .inputs import INPUTS, MAX_BATCH_SIZE, MAX_SEQ_LEN, make_input
from .models import INITS, LSTM, MAX_HIDDEN_SIZE, MAX_INPUT_SIZE, MAX_LAYERS, RecurrentModel, build_model
from .record import DEFAULT_MAX_BYTES, Recording, memory_error, record

MAX_SEED = 2**31 - 1
_INIT_TEXTS = {
    "default": "PyTorch's uniform(±1/√H)",
    "forget_bias": "the effective forget-gate bias below",
    "chrono": "forget (GRU: update) bias ~ log U(1, T-1), input bias = minus that (Tallec & Ollivier 2018)",
    "orthogonal": "W_hh = ρ·Q, Q random orthogonal",
    "identity": "W_hh = ρ·I, zero biases, relu (IRNN, Le et al. 2015)",
}


def init_help(arch: str) -> str:
    """What each of arch's inits does, one clause each."""
    return ". ".join(f"{name}: {_INIT_TEXTS[name]}" for name in INITS[arch]) + "."


def parse_bool(raw: str, name: str = "value") -> bool:
    """true/false, 1/0, yes/no, on/off (any case) as a bool; ValueError otherwise."""
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Setting:
    """One knob of a run. `bounds` is what the library accepts; `widget_bounds` the app's narrower
    slider range (default: bounds). `when` maps other settings to the values under which this one
    is used at all (any one suffices); `arch` names the only model it changes."""

    name: str
    type: type  # int, float, str or bool
    default: object
    label: str
    help: str = ""
    bounds: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    widget: str | None = "slider"  # slider | number | select | radio | toggle; None: not in the sidebar
    widget_bounds: tuple[float, float] | None = None
    step: float | None = None
    group: str = "Run"  # the sidebar header it sits under
    arch: str | None = None
    when: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # older URL keys and flags that still work
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def slider_range(self) -> tuple[float, float] | None:
        return self.widget_bounds or self.bounds

    def check(
        self, value: object, bounds: tuple[float, float] | None = None, typed: str | None = None
    ) -> object:
        """value if it is allowed (within bounds, default self.bounds), else ValueError saying what is
        (quoting `typed`, the text value was read from, if given)."""
        low, high = bounds or self.bounds or (-math.inf, math.inf)
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return value
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}")
            return value
        if self.type is int:
            return check_int(self.name, value, int(low), int(high), typed)
        return check_float(self.name, value, low, high, typed)

    def parse(self, raw: str, bounds: tuple[float, float] | None = None) -> object:
        """A value typed as text (URL, command line), converted and checked."""
        if self.type is str:
            return self.check(raw, bounds)
        if self.type is bool:
            return self.check(parse_bool(raw, self.name), bounds)
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"{self.name} must be a number, got {shown(repr(raw))}") from None
        if self.type is int and number.is_integer() and abs(number) < 2**63:
            number = int(number)  # "1e3" is 1000; 1e300 stays a float, which check_int refuses
        return self.check(number, bounds, typed=raw.strip())

    def applies(self, values: Mapping[str, object]) -> bool:
        """Whether this setting changes anything under the other values."""
        return not self.when or any(values.get(k) in allowed for k, allowed in self.when.items())

    def requirement(self) -> str:
        """What this setting needs to act, in flags: "--arch lstm and --lstm-init forget_bias"."""
        needs = [f"--arch {self.arch}"] if self.arch else []
        if self.when:
            needs.append(" or ".join(f"{BY_NAME[k].flag} {' or '.join(v)}" for k, v in self.when.items()))
        return " and ".join(needs)


SETTINGS: tuple[Setting, ...] = (
    Setting("seq_len", int, 300, "Sequence length", "Steps T in the input sequence.",
            bounds=(1, MAX_SEQ_LEN), widget_bounds=(10, MAX_SEQ_LEN), step=10, metavar="T"),
    Setting("hidden_size", int, 64, "Hidden size", "Units H in each model's state.",
            bounds=(1, MAX_HIDDEN_SIZE), widget_bounds=(1, 512), metavar="H"),
    Setting("batch_size", int, 1, "Batch of sequences", "More than one: lines are medians with the "
            "interquartile band.", bounds=(1, MAX_BATCH_SIZE), widget_bounds=(1, 64), aliases=("batch",),
            metavar="B"),
    Setting("num_layers", int, 1, "Layers", "Stacked recurrent layers; each reads the one below.",
            bounds=(1, MAX_LAYERS), metavar="L"),
    Setting("bidirectional", bool, False, "Bidirectional", "A second direction reads the sequence "
            "backwards; its loss enters at t = 0.", widget="toggle"),
    Setting("input_kind", str, "gaussian", "Input", "Kind of input sequence.", choices=tuple(INPUTS),
            widget="select", aliases=("input",)),
    Setting("input_size", int, 4, "Input features", "Features per step.", bounds=(1, MAX_INPUT_SIZE),
            widget="number", widget_bounds=(1, 64), metavar="I"),
    Setting("seed", int, 0, "Seed", "Seed of the input and the weights.", bounds=(0, MAX_SEED),
            widget="number"),
    Setting("lstm_init", str, "default", "LSTM init", init_help("lstm"), choices=INITS["lstm"],
            widget="select", group="LSTM", arch="lstm"),
    Setting("forget_bias", float, 1.0, "Forget-gate bias (effective)", "b_if + b_hf. PyTorch adds both "
            "biases, so 1 in each means 2.", bounds=(-50.0, 50.0), widget_bounds=(-3.0, 10.0), step=0.5,
            group="LSTM", arch="lstm", when={"lstm_init": ("forget_bias",)}, metavar="BIAS"),
    Setting("rnn_init", str, "default", "RNN init", init_help("rnn"), choices=INITS["rnn"],
            widget="select", group="RNN", arch="rnn"),
    Setting("spectral_radius", float, 1.0, "Spectral radius ρ of W_hh", "Used by the orthogonal and "
            "identity inits; above 1 gradients explode.", bounds=(0.0, 10.0), widget_bounds=(0.1, 2.0),
            step=0.05, group="RNN", arch="rnn", when={"rnn_init": ("orthogonal", "identity")},
            aliases=("rho",), metavar="RHO"),
    Setting("rnn_nonlinearity", str, "tanh", "RNN activation", "tanh, or relu (the identity init's "
            "default).", choices=("tanh", "relu"), widget="radio", group="RNN", arch="rnn",
            aliases=("rnn_act", "nonlinearity")),
    Setting("gru_init", str, "default", "GRU init", init_help("gru"), choices=INITS["gru"],
            widget="select", group="GRU", arch="gru"),
    Setting("t_max", int, 0, "Chrono's longest time scale", "With chrono init: forget biases span "
            "log U(1, t_max - 1); 0 means the sequence length.", bounds=(0, 10**7), widget=None, group="LSTM",
            when={"lstm_init": ("chrono",), "gru_init": ("chrono",)}, metavar="STEPS"),
)  # fmt: skip
BY_NAME = {s.name: s for s in SETTINGS}
ALIASES = {alias: s.name for s in SETTINGS for alias in s.aliases}


def for_archs(values: Mapping[str, object], archs: Sequence[str]) -> dict:
    """The values of the settings that act on any of archs (those of no one arch included)."""
    return {k: v for k, v in values.items() if BY_NAME[k].arch in (None, *archs)}


def _model_kwargs(self, arch: str) -> dict:
    """Keyword arguments of lstm_viz.build_model for arch under these settings."""
    kwargs: dict = {"seed": self.seed, "init": getattr(self, f"{arch}_init")}
    kwargs.update(num_layers=self.num_layers, bidirectional=self.bidirectional)
    if arch == "rnn":
        kwargs.update(nonlinearity=self.rnn_nonlinearity, spectral_radius=self.spectral_radius)
    elif arch == "lstm":
        kwargs.update(forget_bias=self.forget_bias, spectral_radius=1.0)
    if kwargs["init"] == "chrono":  # dependencies span up to the whole sequence unless told otherwise
        kwargs["t_max"] = self.t_max or max(self.seq_len, 2)
    return kwargs


def _label(self, arch: str) -> str:
    """Legend name, e.g. 'LSTM (chrono)' or 'RNN (orthogonal, ρ=0.9)'."""
    init = getattr(self, f"{arch}_init")
    details = [] if init == "default" else [init.replace("_", " ")]
    if arch == "rnn" and init in ("orthogonal", "identity"):
        details.append(f"ρ={self.spectral_radius:g}")
    if arch == "rnn" and self.rnn_nonlinearity == "relu":
        details.append("relu")
    if arch == "lstm" and init == "forget_bias":
        details[-1] = f"forget bias {self.forget_bias:g}"
    if self.num_layers > 1:
        details.append(f"{self.num_layers} layers")
    if self.bidirectional:
        details.append("bidirectional")
    return arch.upper() + (f" ({', '.join(details)})" if details else "")


Settings = make_dataclass(
    "Settings",
    [(s.name, s.type, field(default=s.default)) for s in SETTINGS],
    frozen=True,
    namespace={"model_kwargs": _model_kwargs, "label": _label, "replace": replace},
)
Settings.__module__ = __name__
Settings.__doc__ = "Everything that decides a recording: one input batch, one model per architecture."


def complete(values: Mapping[str, object]) -> dict:
    """values (names or aliases) with the defaults filled in for every missing setting.

    The one derived default: identity init (IRNN, Le et al. 2015) makes a relu RNN unless
    the activation is given.
    """
    given = {ALIASES.get(k, k): v for k, v in values.items()}
    unknown = set(given) - set(BY_NAME)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {', '.join(BY_NAME)}")
    out = {s.name: given.get(s.name, s.default) for s in SETTINGS}
    if "rnn_nonlinearity" not in given and out["rnn_init"] == "identity":
        out["rnn_nonlinearity"] = "relu"
    return out


def from_query(params: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
    """Settings given in a URL's query (names or old aliases), checked against the app's ranges.

    Returns (values, problems): values holds the valid settings found, by name; problems maps
    each dropped setting's name to why, e.g. "seq_len=5: seq_len must be an integer between ...".
    Parameters that are not settings are ignored.
    """
    values, problems = {}, {}
    for key, raw in params.items():
        name = ALIASES.get(key, key)
        setting = BY_NAME.get(name)
        if setting is None or setting.widget is None or (key != name and name in params):
            continue
        try:
            values[name] = setting.parse(raw, setting.slider_range)
        except ValueError as err:
            problems[name] = f"{key}={shown(raw)}: {err}"
    return values, problems


def non_finite_params(params: Mapping[str, str | Sequence[str]]) -> dict[str, str]:
    """The URL parameters that read as numbers beyond any range (inf, -inf, nan, 1e400, a
    20,000-digit integer), key -> why: a number widget bound to the URL would raise on them
    (Streamlit converts them with int()), so a page drops them before drawing its widgets."""
    out = {}
    for key, value in params.items():
        for raw in [value] if isinstance(value, str) else value:
            if finite_number(raw) is False:
                out[key] = f"{key}={shown(raw)} is not a finite number"
    return out


def to_query(values: Mapping[str, object]) -> dict[str, str]:
    """The settings of values worth writing into a URL: those that differ from what `complete`
    would fill in without them (so a link stays short and still reproduces the view)."""
    full = complete(values)
    out = {}
    for s in SETTINGS:
        if s.widget is None:
            continue
        others = {k: v for k, v in full.items() if k != s.name}
        if complete(others)[s.name] != full[s.name]:
            value = full[s.name]
            out[s.name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def model_and_input(settings: Settings, arch: str) -> tuple[RecurrentModel, torch.Tensor]:
    """The seeded model and input batch (B, T, I) these settings describe."""
    model = build_model(arch, settings.input_size, settings.hidden_size, **settings.model_kwargs(arch))
    x = make_input(
        settings.input_kind, settings.batch_size, settings.seq_len, settings.input_size, seed=settings.seed
    )
    return model, x


def check_memory(
    settings: Settings, archs: Sequence[str], max_bytes: int = DEFAULT_MAX_BYTES, *, can_raise: bool = False
) -> None:
    """lstm_viz.record's memory refusal (ValueError) for the first arch whose run would not fit,
    before anything runs; can_raise: the caller may raise max_bytes (the command line can, the app
    cannot)."""
    s = settings
    for arch in archs:
        error = memory_error(
            arch, s.batch_size, s.seq_len, s.hidden_size, s.input_size, max_bytes,
            num_layers=s.num_layers, num_directions=2 if s.bidirectional else 1, can_raise=can_raise,
        )  # fmt: skip
        if error is not None:
            raise error


def run(settings: Settings, arch: str, **record_kwargs) -> Recording:
    """Record arch on the settings' input; ValueError (with a fix in the message) on bad settings.
    record_kwargs go to lstm_viz.record (max_bytes, progress). The memory the run needs is
    checked before its input is built (a batch of wide inputs alone can exceed it)."""
    check_memory(settings, [arch], record_kwargs.get("max_bytes", DEFAULT_MAX_BYTES), can_raise=True)
    model, x = model_and_input(settings, arch)
    return record(model, x, label=settings.label(arch), meta=asdict(settings), **record_kwargs)


def lstm_parity(settings: Settings) -> dict[str, float]:
    """Max abs difference between our hand-stepped LSTM and torch.nn.LSTM with the same
    weights on the settings' input: {'hidden': ..., 'cell': ... (last step), 'steps': T}."""
    model, x = model_and_input(settings, "lstm")
    assert isinstance(model, LSTM)
    with torch.no_grad():
        ours, (_, c_ours) = model(x)
        theirs, (_, c_theirs) = model.fused()(x)
    return {
        "hidden": float((ours - theirs).abs().max()),
        "cell": float((c_ours - c_theirs[0]).abs().max()),
        "steps": settings.seq_len,
    }
