"""Hand-stepped RNN, LSTM and GRU cells with PyTorch's parameter layout.

Each model owns the four tensors `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
`bias_hh_l0` with the names, shapes and gate order of `torch.nn.RNN/LSTM/GRU`
(one layer, biases, `batch_first=True`), so a state dict loads both ways. The
cells are stepped by hand so that every gate can be seen; `fused()` returns
PyTorch's own module with the same weights, for speed.

Gate order (rows of the weight matrices), as in PyTorch:
    LSTM: input i, forget f, candidate g, output o
    GRU:  reset r, update z, candidate n
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .checks import check_int, check_seed

ARCHS = ("rnn", "lstm", "gru")
INITS = {
    "rnn": ("default", "orthogonal", "identity"),
    "lstm": ("default", "forget_bias", "chrono", "orthogonal"),
    "gru": ("default", "chrono", "orthogonal"),
}
GATE_COUNT = {"rnn": 1, "lstm": 4, "gru": 3}
MAX_INPUT_SIZE = 4096
MAX_HIDDEN_SIZE = 4096
MAX_LAYERS = 4


class RecurrentModel(nn.Module):
    """One recurrent layer; subclasses define `cell` (one step, by hand)."""

    arch: str = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = GATE_COUNT[self.arch] * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size, dtype=dtype))
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size, dtype=dtype))
        self.bias_ih_l0 = nn.Parameter(torch.empty(rows, dtype=dtype))
        self.bias_hh_l0 = nn.Parameter(torch.empty(rows, dtype=dtype))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default: every entry uniform in (-1/sqrt(H), 1/sqrt(H)), drawn in parameter
        order from `generator` (default: torch's global one, as torch.nn.RNN/LSTM/GRU do)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound, generator=generator)

    def initial_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        h = self.weight_hh_l0.new_zeros(batch_size, self.hidden_size)
        return (h,)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Step the cell over x (B, T, I); returns outputs (B, T, H) and the last state."""
        if state is None:
            state = self.initial_state(x.shape[0])
        outputs = []
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
            outputs.append(state[0])
        return torch.stack(outputs, dim=1), state

    def cell(self, x_t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def fused(self, batch_first: bool = True) -> nn.Module:
        """PyTorch's own module (nn.RNN / nn.LSTM / nn.GRU) holding a copy of these weights."""
        kwargs = {"batch_first": batch_first}
        if self.arch == "rnn":
            kwargs["nonlinearity"] = self.nonlinearity
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[self.arch]
        return _copy_into(cls, self, self.input_size, self.hidden_size, **kwargs)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNN(RecurrentModel):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

    arch = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        nonlinearity: str = "tanh",
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, dtype, generator)

    def cell(self, x_t, state):
        (h,) = state
        a = x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T + self.bias_hh_l0
        return (a.tanh() if self.nonlinearity == "tanh" else a.relu(),)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class LSTM(RecurrentModel):
    """Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate).

    i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)
    """

    arch = "lstm"

    def initial_state(self, batch_size):
        h = self.weight_hh_l0.new_zeros(batch_size, self.hidden_size)
        return (h, torch.zeros_like(h))

    def cell(self, x_t, state):
        h, c = state
        gates = x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T + self.bias_hh_l0
        i, f, g, o = gates.chunk(4, dim=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        return (h, c)


class GRU(RecurrentModel):
    """Gated recurrent unit (Cho et al. 2014), in PyTorch's convention.

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    """

    arch = "gru"

    def cell(self, x_t, state):
        (h,) = state
        xr, xz, xn = (x_t @ self.weight_ih_l0.T + self.bias_ih_l0).chunk(3, dim=-1)
        hr, hz, hn = (h @ self.weight_hh_l0.T + self.bias_hh_l0).chunk(3, dim=-1)
        r = (xr + hr).sigmoid()
        z = (xz + hz).sigmoid()
        n = (xn + r * hn).tanh()
        return ((1 - z) * n + z * h,)


class StackedModel(nn.Module):
    """num_layers recurrent layers, one or two directions each, in torch.nn.RNN/LSTM/GRU's layout.

    Parameters are named and ordered as in torch (weight_ih_l0, weight_hh_l0, bias_ih_l0,
    bias_hh_l0, then the same with _reverse, then _l1, ...); layer l > 0 reads the outputs of
    layer l - 1, both directions concatenated (D * H features). `layer(l, d)` hands out one
    layer and direction as a one-layer model, which is how it is stepped and recorded.
    """

    def __init__(
        self,
        arch: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        nonlinearity: str = "tanh",
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.arch, self.input_size, self.hidden_size = arch, input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.nonlinearity = nonlinearity
        rows = GATE_COUNT[arch] * hidden_size
        for suffix in _suffixes(num_layers, bidirectional):
            size = input_size if suffix.startswith("_l0") else self.num_directions * hidden_size
            for name, shape in (
                ("weight_ih", (rows, size)),
                ("weight_hh", (rows, hidden_size)),
                ("bias_ih", (rows,)),
                ("bias_hh", (rows,)),
            ):
                setattr(self, f"{name}{suffix}", nn.Parameter(torch.empty(shape, dtype=dtype)))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """torch's default: uniform(-1/sqrt(H), 1/sqrt(H)) in parameter order, from `generator`."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound, generator=generator)

    def layer(self, layer: int, direction: int = 0) -> RecurrentModel:
        """A one-layer model holding a copy of layer `layer`'s weights in `direction` (1: reverse)."""
        if not (0 <= layer < self.num_layers and 0 <= direction < self.num_directions):
            raise ValueError(
                f"this model has layers 0 to {self.num_layers - 1} and directions 0 to "
                f"{self.num_directions - 1}, got ({layer}, {direction})"
            )
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        size = self.input_size if layer == 0 else self.num_directions * self.hidden_size
        dtype = self.weight_hh_l0.dtype
        cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[self.arch]
        kwargs = {"nonlinearity": self.nonlinearity} if self.arch == "rnn" else {}
        with torch.device("meta"):  # no storage and no random draws: the weights are copied next
            one = cls(size, self.hidden_size, dtype=dtype, generator=torch.Generator(), **kwargs)
        one = one.to_empty(device=self.weight_hh_l0.device)
        one.load_state_dict({f"{k}_l0": getattr(self, f"{k}{suffix}") for k in _NAMES})
        return one.train(self.training)

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Step every layer over x (B, T, I); returns the top layer's outputs (B, T, D*H) and the
        final states as torch returns them: h_n (and c_n), each (num_layers * D, B, H)."""
        if state is not None:
            raise ValueError("a StackedModel starts from zero states; pass state=None")
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for d in range(self.num_directions):
                seq = x.flip(1) if d else x
                out, last = self.layer(layer, d)(seq)
                outputs.append(out.flip(1) if d else out)
                finals.append(last)
            x = torch.cat(outputs, dim=-1)
        return x, tuple(torch.stack(parts) for parts in zip(*finals, strict=True))

    def fused(self, batch_first: bool = True) -> nn.Module:
        """torch's own module (nn.RNN / nn.LSTM / nn.GRU) holding a copy of these weights."""
        kwargs = {
            "batch_first": batch_first,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
        }
        if self.arch == "rnn":
            kwargs["nonlinearity"] = self.nonlinearity
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[self.arch]
        return _copy_into(cls, self, self.input_size, self.hidden_size, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"{self.arch!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}"
        )


_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _copy_into(cls: type[nn.Module], model: nn.Module, *args, **kwargs) -> nn.Module:
    """cls(*args, **kwargs) holding a copy of model's state dict, in its dtype, device and mode.
    Built on the meta device, then given empty storage: no init and no random draws, so torch's
    global generator is neither read nor saved and restored (fork_rng races between threads)."""
    w = model.weight_hh_l0
    module = cls(*args, dtype=w.dtype, device="meta", **kwargs).to_empty(device=w.device)
    module.load_state_dict(model.state_dict())
    return module.train(model.training)


def seeded_linear(in_features: int, out_features: int, generator: torch.Generator) -> nn.Linear:
    """nn.Linear(in_features, out_features) with the weights torch's own draws from `generator`
    (seeded with s: those of nn.Linear built right after torch.manual_seed(s)); torch's global
    generator is never touched, so threads building at once cannot move each other's draws."""
    linear = nn.utils.skip_init(nn.Linear, in_features, out_features)
    bound = 1 / math.sqrt(in_features)
    with torch.no_grad():
        nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=generator)  # bound as below
        nn.init.uniform_(linear.bias, -bound, bound, generator=generator)
    return linear


def _orthogonal(n: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """A random orthogonal n x n matrix (QR of a Gaussian, signs fixed so it is Haar)."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).to(dtype)


def build_model(
    arch: str,
    input_size: int,
    hidden_size: int,
    *,
    seed: int = 0,
    init: str = "default",
    nonlinearity: str | None = None,
    forget_bias: float = 1.0,
    t_max: int = 1000,
    spectral_radius: float = 1.0,
    dtype: torch.dtype = torch.float32,
    num_layers: int = 1,
    bidirectional: bool = False,
) -> RecurrentModel | StackedModel:
    """Build a seeded "rnn", "lstm" or "gru" with PyTorch's state-dict layout.

    One layer, one direction (the default): a hand-stepped RecurrentModel. num_layers 2 to 4
    or bidirectional=True: a StackedModel whose state_dict is exactly that of
    torch.nn.LSTM(input_size, hidden_size, num_layers, bidirectional=..., batch_first=True).
    Every init applies to every layer and direction. The default init draws what torch's own
    module draws after torch.manual_seed(seed); torch's global generator is never touched.

    init (per arch, see INITS):
      "default"      PyTorch's uniform(-1/sqrt(H), 1/sqrt(H)) on every tensor;
      "forget_bias"  LSTM: the *effective* forget bias (bias_ih + bias_hh) set to forget_bias;
      "chrono"       LSTM: forget bias ~ log U(1, t_max - 1), input bias = minus that
                     (Tallec & Ollivier 2018); GRU: the same for the update gate;
      "orthogonal"   every recurrent block W_hh = spectral_radius * Q, Q random orthogonal;
      "identity"     RNN: W_hh = spectral_radius * I, zero biases, relu by default (IRNN).
    nonlinearity is the RNN's "tanh" (default) or "relu".
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    seed = check_seed(seed)
    check_int("input_size", input_size, 1, MAX_INPUT_SIZE)
    check_int("hidden_size", hidden_size, 1, MAX_HIDDEN_SIZE)
    if init not in INITS[arch]:
        raise ValueError(f"init for {arch!r} must be one of {INITS[arch]}, got {init!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    numbers_given = [("spectral_radius", spectral_radius, 0), ("forget_bias", forget_bias, -math.inf)]
    for name, value, low in numbers_given:
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and value >= low):
            raise ValueError(f"{name} must be a finite number{' >= 0' if low == 0 else ''}, got {value!r}")
    if init == "chrono":
        check_int("t_max", t_max, 2, 10**7)
    if arch != "rnn" and nonlinearity is not None:
        raise ValueError(f"nonlinearity applies to the 'rnn' only, not to {arch!r}")
    check_int("num_layers", num_layers, 1, MAX_LAYERS)
    if not isinstance(bidirectional, bool):
        raise ValueError(f"bidirectional must be True or False, got {bidirectional!r}")

    # Private generators: torch's global one is left as it was. The default init draws from
    # one seeded like torch.manual_seed(seed), so the weights equal a torch.nn module's
    # built right after torch.manual_seed(seed); the named inits draw from a second one.
    defaults = torch.Generator().manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    act = nonlinearity or ("relu" if init == "identity" else "tanh")
    if num_layers > 1 or bidirectional:
        kwargs = {"nonlinearity": act} if arch == "rnn" else {}
        model = StackedModel(arch, input_size, hidden_size, num_layers, bidirectional, dtype=dtype, **kwargs)
        model.reset_parameters(defaults)
    elif arch == "rnn":
        model = RNN(input_size, hidden_size, act, dtype, defaults)
    else:
        model = {"lstm": LSTM, "gru": GRU}[arch](input_size, hidden_size, dtype, defaults)

    for suffix in _suffixes(num_layers, bidirectional):
        w_hh, b_ih, b_hh = (getattr(model, f"{name}{suffix}") for name in ("weight_hh", "bias_ih", "bias_hh"))
        _apply_init(arch, init, w_hh, b_ih, b_hh, generator, forget_bias, t_max, spectral_radius)
    return model


def _suffixes(num_layers: int, bidirectional: bool) -> list[str]:
    """Parameter-name suffixes in torch's order: _l0, _l0_reverse, _l1, ..."""
    return [f"_l{layer}{d}" for layer in range(num_layers) for d in ("", "_reverse")[: 1 + bidirectional]]


def _apply_init(arch, init, w_hh, b_ih, b_hh, generator, forget_bias, t_max, spectral_radius) -> None:
    """Overwrite one layer and direction's defaults with the named init (draws from generator)."""
    H, dtype = w_hh.shape[1], w_hh.dtype
    with torch.no_grad():
        if init in ("orthogonal", "identity"):
            for k in range(GATE_COUNT[arch]):
                block = torch.eye(H, dtype=dtype) if init == "identity" else _orthogonal(H, generator, dtype)
                w_hh[k * H : (k + 1) * H] = spectral_radius * block
            if init == "identity":
                b_ih.zero_()
                b_hh.zero_()
        elif init == "forget_bias":
            b_ih[H : 2 * H] = forget_bias
            b_hh[H : 2 * H] = 0.0
        elif init == "chrono":
            u = 1.0 + (t_max - 2) * torch.rand(H, generator=generator, dtype=torch.float64)
            keep = torch.log(u).to(dtype)
            keep_slice = slice(H, 2 * H)  # LSTM forget gate; GRU update gate z
            b_ih[keep_slice] = keep
            b_hh[keep_slice] = 0.0
            if arch == "lstm":
                b_ih[:H] = -keep
                b_hh[:H] = 0.0
