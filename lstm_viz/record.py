"""record(model, x): one forward and one backward pass, every timestep's internals kept.

This module owns the Recording, the checks on what comes in and the memory
estimate; the passes themselves live in passes.py. The backward pass
renormalises the adjoint (dL/dh_t, dL/dc_t) block by block and keeps the scale
in log space, so log10 ||dL/dh_t|| stays exact where the gradient itself is far
below the smallest float (1e-3000 at T = 10,000).

The default loss (when grad_output is None) is L = sum_b u . h_{b,T-1} with
u = (1, ..., 1) / sqrt(H): every sample's gradient enters the last step with
norm exactly 1, so log10 ||dL/dh_t|| reads as "decades lost after T-1-t steps".

Deep and bidirectional models are recorded layer by layer and direction by
direction (passes.StackedPasses); the result hands out one-layer Recordings,
rec.layer(l, d). docs/engine.md states what is exact and what happens at the
edges of floating point.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .models import MAX_LAYERS, RecurrentModel, StackedModel
from .passes import (
    SMALLEST_FACTOR,
    Adjoint,
    FloatRangeError,
    Forward,
    StackedPasses,
    log10_norm,
    lost_to_underflow,
    one_thread,
    to_numpy,
)

DEFAULT_MAX_BYTES = 2 * 1024**3
_FORWARD_SHARE = 0.45  # of record()'s time, for progress reports
GATE_NAMES = {
    "rnn": (),
    "lstm": ("input", "forget", "candidate", "output"),
    "gru": ("reset", "update", "candidate"),
}
# Bytes per (sample, step, unit) held at once during record(), in units of the
# model's float size: pre-activations, activations, derivative terms, adjoints
# and the numpy copies handed back (measured peak, rounded up).
_FLOATS_PER_CELL = {"rnn": 14, "lstm": 30, "gru": 26}
# Floats per (sample, step, input feature): the input, its time-major copies and dL/dx; in float64
# also the two float64 copies log10_norm makes of dL/dx and the float32 input of a run that fell
# back to float64 (measured at I = 1024: 11 to 12 bytes per input value in float32, 35 to 42 in
# float64; docs/limits.md).
_INPUT_FLOATS = {torch.float32: 4, torch.float64: 6}


@dataclass(frozen=True, eq=False)
class Recording:
    """One model's per-timestep internals on one batch (index t: state after reading x[:, t])."""

    arch: str  # "rnn" | "lstm" | "gru"
    log10_grad_h: np.ndarray  # (B, T) log10 ||dL/dh_t||, total derivative
    log10_grad_c: np.ndarray | None  # (B, T) log10 ||dL/dc_t||, LSTM only
    log10_grad_x: np.ndarray  # (B, T) log10 ||dL/dx_t||
    hidden: np.ndarray  # (B, T, H) h_t
    cell: np.ndarray | None  # (B, T, H) c_t, LSTM only
    gates: dict[str, np.ndarray]  # name -> (B, T, H); empty for the RNN
    weight_hh: np.ndarray  # (G*H, H) recurrent weights, PyTorch's gate order
    nonlinearity: str = "tanh"  # the RNN's activation; "tanh" for gated models
    label: str = ""  # legend name, e.g. "LSTM (chrono)"
    meta: dict = field(default_factory=dict)  # settings that made it (seed, init, ...)
    dtype: str = "float32"  # the float type every number was computed in (see float64_reason)
    float64_reason: str = ""  # why a float32 model was recorded in float64; "" if it was not
    num_layers: int = 1
    num_directions: int = 1  # 2 for a bidirectional model
    layers: tuple = ()  # deep models: layers[l][d] the one-layer Recording; () for one layer

    def layer(self, layer: int, direction: int = 0) -> Recording:
        """Layer `layer` (0 = bottom) in `direction` (0 forward, 1 backward, t in input order) as a
        one-layer Recording; a one-layer, one-direction recording returns itself for (0, 0)."""
        if not (0 <= layer < self.num_layers and 0 <= direction < self.num_directions):
            raise ValueError(
                f"this recording has layers 0 to {self.num_layers - 1} and directions 0 to "
                f"{self.num_directions - 1}, got ({layer}, {direction})"
            )
        return self.layers[layer][direction] if self.layers else self

    @property
    def batch_size(self) -> int:
        return self.hidden.shape[0]

    @property
    def seq_len(self) -> int:
        return self.hidden.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.hidden.shape[2]

    @property
    def name(self) -> str:
        return self.label or self.arch.upper()

    def to_frame(self, per_unit: bool = True, layer_columns: bool | None = None) -> pd.DataFrame:
        """Tidy frame: columns arch, sample, t, unit (<NA> for per-step norms), quantity, value.

        Per-step quantities: log10_grad_h, log10_grad_c (LSTM), log10_grad_x.
        Per-unit quantities (per_unit=True): hidden, cell (LSTM), and each gate by name.
        With layer_columns (default: for deep or bidirectional recordings), every layer and
        direction's rows, with columns layer and direction after arch.
        """
        from .tables import tidy_chunks  # the one builder of tidy rows (tables imports this module)

        chunks = tidy_chunks([self], per_unit, layer_columns=layer_columns)
        return pd.concat(list(chunks), ignore_index=True).drop(columns="model")


def estimate_bytes(
    arch: str,
    batch_size: int,
    seq_len: int,
    hidden_size: int,
    input_size: int,
    dtype: torch.dtype = torch.float32,
    num_layers: int = 1,
    num_directions: int = 1,
) -> int:
    """Upper estimate of the memory record() needs for this run, in bytes."""
    if arch not in _FLOATS_PER_CELL:
        raise ValueError(f"arch must be one of {tuple(_FLOATS_PER_CELL)}, got {arch!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    itemsize = torch.empty((), dtype=dtype).element_size()
    cells = batch_size * seq_len * (hidden_size * _FLOATS_PER_CELL[arch] + _INPUT_FLOATS[dtype] * input_size)
    one = int(cells * itemsize + 8 * 8 * batch_size * seq_len)
    if num_layers == 1 and num_directions == 1:
        return one
    # every layer and direction is held until the end; upper layers read D*H features; the
    # gradients passed down between layers are float64 (a few (T, B, D*H) arrays at once)
    width = num_directions * hidden_size
    upper = batch_size * seq_len * 3 * (width - input_size) * (num_layers - 1) * itemsize
    passed = 8 * 6 * batch_size * seq_len * max(width, input_size)
    return one * num_layers * num_directions + max(upper, 0) + passed


def _as_model(model) -> RecurrentModel | StackedModel:
    """Accept our models, or a torch.nn.RNN/LSTM/GRU with biases and no projection (1 to 4
    layers, either direction; its dropout between layers is an eval-time no-op, so ignored)."""
    if isinstance(model, RecurrentModel | StackedModel):
        return model
    from .models import build_model

    kinds = {torch.nn.LSTM: "lstm", torch.nn.GRU: "gru", torch.nn.RNN: "rnn"}
    arch = kinds.get(type(model))
    if arch is None:
        raise ValueError(
            "model must come from lstm_viz.build_model or be a torch.nn.RNN/LSTM/GRU, "
            f"got {type(model).__name__}"
        )
    if not model.bias or getattr(model, "proj_size", 0) or not 1 <= model.num_layers <= MAX_LAYERS:
        raise ValueError(
            f"only torch modules with biases, no projection and 1 to {MAX_LAYERS} layers can be recorded"
        )
    dtype = model.weight_hh_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the module's weights are {dtype}; record() runs float32 or float64: use .float()")
    kwargs = {"nonlinearity": model.nonlinearity} if arch == "rnn" else {}
    kwargs |= {"num_layers": model.num_layers, "bidirectional": model.bidirectional}
    ours = build_model(arch, model.input_size, model.hidden_size, dtype=dtype, **kwargs)
    ours.load_state_dict(model.state_dict())
    return ours.to(model.weight_hh_l0.device)


def _check_weights(model) -> None:
    """ValueError for a model without usable weights: on the meta device, or NaN or infinite."""
    if not isinstance(model, torch.nn.Module):
        return  # _as_model says what a model must be
    params = dict(model.named_parameters())
    if any(p.is_meta for p in params.values()):
        raise ValueError(
            "the model is on the meta device and has no weights: build it on the CPU, or give it "
            "weights first (model.to_empty(device='cpu'), then model.load_state_dict(...))"
        )
    bad = [name for name, p in params.items() if p.is_floating_point() and not bool(torch.isfinite(p).all())]
    if bad:
        raise ValueError(
            f"the model's weights {', '.join(bad)} hold NaN or infinite values, so every recorded number "
            "would be NaN: record a model with finite weights (a training run that diverged gives such "
            "weights; clip its gradients or lower its learning rate)"
        )


def _check_options(max_bytes, progress, label, meta) -> None:
    if not isinstance(label, str):
        raise TypeError(f"label must be a string (the legend name), not {type(label).__name__}")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be None or a dict (the settings of the run), not {type(meta).__name__}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Real):
        raise TypeError(
            f"max_bytes must be a number of bytes, e.g. 4 * 1024**3 for 4 GiB, got {type(max_bytes).__name__}"
        )
    if math.isnan(max_bytes) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a number of bytes above 0 (math.inf: no limit), not {max_bytes}")
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be None or a function of the fraction done (0 to 1), not {progress!r:.40}"
        )


def _batch_major(model, x, grad_output):
    """x and a per-step grad_output batch-major (B, T, .): a torch module built with batch_first=False
    reads them time-major (T, B, .), as it does when called itself."""
    if getattr(model, "batch_first", True) is not False:
        return x, grad_output

    def swap(a):
        if isinstance(a, np.ndarray) and a.ndim == 3:
            return np.swapaxes(a, 0, 1)
        return a.transpose(0, 1) if isinstance(a, torch.Tensor) and a.dim() == 3 else a

    return swap(x), swap(grad_output)


def _check_input(model, x, grad_output) -> tuple[torch.Tensor, torch.Tensor]:
    dtype, device = model.weight_hh_l0.dtype, model.weight_hh_l0.device
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor or numpy array (B, T, I), got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"x must have shape (batch, seq_len, input_size), got shape {tuple(x.shape)}")
    B, T, size = x.shape
    if size != model.input_size:
        raise ValueError(f"x has {size} features per step but the model takes input_size={model.input_size}")
    if B < 1 or T < 1:
        raise ValueError(f"x needs at least one sample and one step, got shape {tuple(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"x must hold floats (float32 or float64), got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or infinite values; recordings need finite inputs")
    x = x.detach().to(device=device, dtype=dtype)
    H = model.hidden_size
    width = _depth(model)[1] * H
    if grad_output is None:  # norm 1 into each direction's final state
        return x, torch.full((B, width), 1 / math.sqrt(H), dtype=dtype, device=device)
    if isinstance(grad_output, np.ndarray):
        grad_output = torch.from_numpy(grad_output)
    if not isinstance(grad_output, torch.Tensor) or tuple(grad_output.shape) not in (
        (B, width),
        (B, T, width),
    ):
        shape = tuple(grad_output.shape) if hasattr(grad_output, "shape") else type(grad_output).__name__
        raise ValueError(
            f"grad_output must have shape (batch, num_directions * hidden_size) = ({B}, {width}) for the "
            f"final states, or (batch, seq_len, num_directions * hidden_size) = ({B}, {T}, {width}) for "
            f"every step, got {shape}"
        )
    if not grad_output.dtype.is_floating_point or not bool(torch.isfinite(grad_output).all()):
        raise ValueError("grad_output must hold finite floats")
    return x, grad_output.detach().to(device=device, dtype=dtype)


def record(
    model,
    x,
    *,
    grad_output=None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    label: str = "",
    meta: dict | None = None,
    progress: Callable[[float], None] | None = None,
) -> Recording:
    """Run model over x (B, T, I) once forward and once backward; keep every step's internals.

    model: from build_model (any depth), or a torch.nn.RNN/LSTM/GRU with biases (1 to 4
    layers, either direction; dropout between layers is an eval-time no-op and is ignored).
    A torch module built with batch_first=False reads x (T, B, I) and a per-step grad_output
    (T, B, D*H) time-major, as it does itself; the Recording is batch-major all the same.
    Weights must be finite and on a real device, max_bytes a number above 0 (math.inf: no
    limit); anything else raises ValueError or TypeError saying what to pass instead.
    grad_output (B, D*H) is dL/d(final state) of the top layer, each direction's in turn
    (forward at t = T-1, backward at t = 0, as in h_n); (B, T, D*H) is a loss on the top
    layer's output at every step. Default: (1, ..., 1) / sqrt(H) into every direction's
    final state, the gradient of L = sum_b sum_j h_{b,j} / sqrt(H), so it enters with norm 1.
    Deep or bidirectional: rec.layer(l, d) is layer l (0 = bottom), direction d, as a
    one-layer Recording; rec's own fields are the top layer's forward direction, except
    log10_grad_x, taken with respect to the network's input x (all directions).
    Refuses (ValueError) runs whose estimate_bytes exceeds max_bytes. progress, if given,
    is called with the fraction done (0 to 1) after the forward pass and every block of
    the backward pass.

    A float32 model whose state overflows, or whose derivative factors fall below
    float32's range (passes.SMALLEST_FACTOR), is recorded again in float64: the result
    then says dtype="float64" and why (float64_reason). A network whose state leaves
    float64's range as well raises ValueError naming the step (docs/engine.md).
    """
    _check_options(max_bytes, progress, label, meta)
    with one_thread():  # a second OpenMP thread, once woken by a check, spins on a core for a while
        _check_weights(model)
        given = _batch_major(model, x, grad_output)
        model = _as_model(model)
        x, grad_output = _check_input(model, *given)
    _check_memory(model, x, max_bytes)
    reached = [0.0]

    def monotone(fraction: float) -> None:  # a float64 re-run starts again from 0: never report less
        reached[0] = max(reached[0], fraction)
        progress(reached[0])

    report = None if progress is None else monotone
    try:
        return _record_halves(model, x, grad_output, label, meta, report)
    except FloatRangeError as error:
        if model.weight_hh_l0.dtype == torch.float64:
            raise _beyond_float64(error, x.shape[1]) from None
        reason = (
            f"the float32 state overflows at step {error.step}"
            if error.what == "overflow"
            else f"a derivative at step {error.step} is below float32's range"
        )
    model64 = copy.deepcopy(model).to(torch.float64)
    x64, grad64 = _check_input(model64, *given)
    _check_memory(model64, x64, max_bytes, note=f" in float64 ({reason})")
    try:
        return _record_halves(model64, x64, grad64, label, meta, report, float64_reason=reason)
    except FloatRangeError as error:
        raise _beyond_float64(error, x.shape[1]) from None


def _depth(model) -> tuple[int, int]:
    """(num_layers, num_directions)."""
    return (model.num_layers, model.num_directions) if isinstance(model, StackedModel) else (1, 1)


def memory_error(
    arch: str,
    batch_size: int,
    seq_len: int,
    hidden_size: int,
    input_size: int,
    max_bytes: int,
    *,
    dtype: torch.dtype = torch.float32,
    num_layers: int = 1,
    num_directions: int = 1,
    can_raise: bool = True,
    note: str = "",
) -> ValueError | None:
    """The one refusal of a run whose estimate_bytes exceeds max_bytes (None when it fits): how much
    it needs, and which sequence length or batch size would fit. can_raise: the caller may raise
    max_bytes (a library call or the command line can; the app cannot). note follows the size."""
    depth = {"dtype": dtype, "num_layers": num_layers, "num_directions": num_directions}
    need = estimate_bytes(arch, batch_size, seq_len, hidden_size, input_size, **depth)
    if need <= max_bytes:
        return None
    per_step = estimate_bytes(arch, batch_size, 1, hidden_size, input_size, **depth)
    per_sample = estimate_bytes(arch, 1, seq_len, hidden_size, input_size, **depth)
    fixes = []
    if max_bytes >= per_step:
        fixes.append(f"seq_len up to {max_bytes // per_step:,}")
    if batch_size > 1 and max_bytes >= per_sample:
        fixes.append(f"batch_size up to {max_bytes // per_sample:,}")
    fixes.append("a smaller hidden_size")
    if can_raise:
        fixes.append("raise max_bytes")
    return ValueError(
        f"the {arch.upper()} run needs about {need / 2**30:.2f} GiB{note} (batch {batch_size} x "
        f"{seq_len} steps x {hidden_size} units), over the limit of {max_bytes / 2**30:.2f} GiB: "
        f"shorten the sequence or shrink the batch or the model; what fits: {'; '.join(fixes)}"
    )


def _check_memory(model, x: torch.Tensor, max_bytes: int, note: str = "") -> None:
    B, T, _ = x.shape
    L, D = _depth(model)
    error = memory_error(
        model.arch, B, T, model.hidden_size, model.input_size, max_bytes,
        dtype=x.dtype, num_layers=L, num_directions=D, note=note,
    )  # fmt: skip
    if error is not None:
        raise error


def _beyond_float64(error: FloatRangeError, seq_len: int) -> ValueError:
    """The error for a run float64 cannot hold either."""
    if error.what == "overflow":
        return ValueError(
            f"the network explodes: its state leaves float64's range (about 1.8e308) at step "
            f"t = {error.step} of {seq_len}; record at most {error.step} steps, or shrink the recurrent "
            "weights (spectral radius) or the inputs"
        )
    return ValueError(
        f"the gradient at step t = {error.step} is lost below float64's range: every path back "
        f"through that step has a derivative under {SMALLEST_FACTOR[torch.float64]:g} (pre-activations "
        "or cell states beyond about +-330); scale the inputs or weights down, or record fewer steps"
    )


# Batches at least this large run as two halves, each its own forward and backward pass (samples
# never interact, so each half's numbers are its own), on two threads where torch may use two.
# Unlike threads woken at every step, two independent halves cannot wait on each other when
# another process holds a core. The split depends on the batch size alone, never on the thread
# count: the same model and input give the same bits however many threads there are (issue #14).
SPLIT_BATCH = 8


def _record_halves(model, x, grad_output, label, meta, progress, float64_reason: str = "") -> Recording:
    """_record on the whole batch, or on its two halves (the second on a worker thread when two
    threads are allowed, else after the first; progress follows the first, on the calling thread,
    since a UI may only be updated from there)."""
    B = x.shape[0]
    if B < SPLIT_BATCH:
        return _record(model, x, grad_output, label, meta, progress, float64_reason)
    halves = [(x[cut], grad_output[cut]) for cut in (slice(0, B // 2), slice(B // 2, B))]
    rest = (label, meta)
    if (os.cpu_count() or 1) < 2 or torch.get_num_threads() < 2:
        head, tail = (_record(model, *half, *rest, _half(progress, k), float64_reason, False)
                      for k, half in enumerate(halves))  # fmt: skip
        return _concat_batch(head, tail)
    with one_thread(), ThreadPoolExecutor(1) as pool:  # the outer limit outlives both inner ones
        later = pool.submit(_record, model, *halves[1], *rest, None, float64_reason, False)
        try:
            head = _record(model, *halves[0], *rest, progress, float64_reason, False)
        finally:
            tail = later.result()  # waits for it, and raises its error if it had one
    return _concat_batch(head, tail)


def _half(progress, which: int):
    """progress of one half run after the other: the first half covers 0 to 0.5, the second the rest."""
    if progress is None:
        return None
    return lambda fraction: progress((which + fraction) / 2)


def _concat_batch(head: Recording, tail: Recording) -> Recording:
    """One Recording of two batches' recordings of one model (every layer and direction)."""

    def join(a, b):
        return None if a is None else np.concatenate([a, b])

    layers = tuple(
        tuple(_concat_batch(h, t) for h, t in zip(row_h, row_t, strict=True))
        for row_h, row_t in zip(head.layers, tail.layers, strict=True)
    )
    return replace(
        head,
        log10_grad_h=join(head.log10_grad_h, tail.log10_grad_h),
        log10_grad_c=join(head.log10_grad_c, tail.log10_grad_c),
        log10_grad_x=join(head.log10_grad_x, tail.log10_grad_x),
        hidden=join(head.hidden, tail.hidden),
        cell=join(head.cell, tail.cell),
        gates={name: join(values, tail.gates[name]) for name, values in head.gates.items()},
        layers=layers,
    )


def _record(
    model, x, grad_output, label, meta, progress, float64_reason: str = "", two_threads: bool | None = None
) -> Recording:
    """One forward and one backward pass in the model's own dtype (FloatRangeError if it cannot).
    two_threads (default: when torch may use two and the machine has them): a bidirectional
    model's two directions run side by side; the halves of a split batch pass False."""
    if two_threads is None:
        two_threads = (os.cpu_count() or 1) >= 2 and torch.get_num_threads() >= 2
    common = {
        "label": label,
        "meta": dict(meta or {}),
        "dtype": str(model.weight_hh_l0.dtype).removeprefix("torch."),
        "float64_reason": float64_reason,
    }
    L, D = _depth(model)
    with torch.no_grad(), one_thread():
        if L == 1 and D == 1 and grad_output.dim() == 2:
            fwd = Forward(model, x.transpose(0, 1).contiguous())
            if progress is not None:
                progress(_FORWARD_SHARE)
            adjoint = Adjoint(model, fwd, grad_output, _backward_share(progress))
            return _layer_recording(model, fwd, adjoint, False, common)
        layers = [[model.layer(ell, d) for d in range(D)] for ell in range(L)] if L * D > 1 else [[model]]
        passes = StackedPasses(
            layers,
            x.transpose(0, 1).contiguous(),
            grad_output if grad_output.dim() == 2 else grad_output.transpose(0, 1),
            _backward_share(progress),
            None if progress is None else (lambda: progress(_FORWARD_SHARE)),
            two_threads=two_threads,
        )
        recordings = tuple(
            tuple(_layer_recording(*passes.runs[ell][d], d == 1, common) for d in range(D))
            for ell in range(L)
        )
    if L * D == 1:
        return recordings[0][0]
    grad_input = log10_norm(passes.grad_input) + passes.grad_input_scale  # (T, B), both directions
    return replace(
        recordings[-1][0],
        log10_grad_x=np.ascontiguousarray(grad_input.T),
        num_layers=L,
        num_directions=D,
        layers=recordings,
    )


def _backward_share(progress):
    if progress is None:
        return None
    return lambda f: progress(_FORWARD_SHARE + (1 - _FORWARD_SHARE) * f)


def _layer_recording(model, fwd, adjoint, reverse: bool, common: dict) -> Recording:
    """One layer and direction's Recording; a reverse direction's t axis put back in input order."""
    grad_h = log10_norm(adjoint.dh) + adjoint.scale  # (T, B), own time order
    grad_c = log10_norm(adjoint.dc) + adjoint.scale if adjoint.dc is not None else None
    grad_x = log10_norm(adjoint.grad_x) + adjoint.scale
    lost = lost_to_underflow(fwd, grad_h, grad_c, grad_x)
    if lost is not None:
        raise FloatRangeError("underflow", len(grad_h) - 1 - lost if reverse else lost)

    def batch_major(a):  # (T, B, ...) -> (B, T, ...), in input order
        if a is None:
            return None
        a = np.swapaxes(to_numpy(a), 0, 1)
        # a view where it can be (copying every gate of a big batch cost a fifth of the run); a
        # reverse direction is copied, so no array handed out has negative strides
        return np.ascontiguousarray(a[:, ::-1]) if reverse else a

    return Recording(
        arch=model.arch,
        log10_grad_h=batch_major(grad_h),
        log10_grad_c=batch_major(grad_c),
        log10_grad_x=batch_major(grad_x),
        hidden=batch_major(fwd.hidden),
        cell=batch_major(None if fwd.cell is None else fwd.cell[1:]),
        gates={name: batch_major(g) for name, g in fwd.gates.items()},
        weight_hh=to_numpy(model.weight_hh_l0).copy(),
        nonlinearity=getattr(model, "nonlinearity", "tanh"),
        **common,
    )
