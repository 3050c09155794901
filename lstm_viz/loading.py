"""Load a user's own network and sequence, safely: a `.pt` state dict -> LoadedModel, a CSV or a
text file -> the (1, T, I) input record() takes.

Model files are read with `torch.load(weights_only=True)` only: a pickle that would import or
call anything (the way a malicious file runs code) is refused with a ValueError before any of it
runs. Accepted (MAX_MODEL_BYTES, 64 MiB, checked before reading):

- a state dict of torch.nn.RNN / LSTM / GRU, any number of layers (up to record()'s 4), either
  direction, as `module.state_dict()` gives it; the keys may share one prefix ("lstm.") and one
  Linear readout may sit beside it ("fc.weight", "fc.bias"); an entry "nonlinearity" ("tanh" or
  "relu") says what an RNN uses, since weights cannot tell (default tanh);
- a checkpoint {"recurrent": state dict, "readout": Linear state dict, "vocab": [characters],
  "nonlinearity", "arch", "meta": {...}}: the char-LM files in lstm_viz/weights/ and
  training.Trainer.checkpoint's dict.

The architecture and sizes come from the keys and shapes: weight_hh_l0 is (k*H, H) with k = 4
for an LSTM, 3 for a GRU, 1 for an RNN. A module without biases gets zero biases (the same
function; record() needs the tensors). Half-precision weights are widened to float32.

    loaded = load_model("model.pt")                 # path, bytes or an open binary file
    x = load_sequence("input.csv", loaded)          # (1, T, input_size) float32
    rec = record(loaded.module, x)
"""

from __future__ import annotations

import csv
import io
import math
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from .checks import check_int
from .connectivity import connectivity
from .corpus import Vocabulary
from .inputs import MAX_BATCH_SIZE, MAX_SEQ_LEN, make_input
from .models import GATE_COUNT, MAX_LAYERS
from .record import DEFAULT_MAX_BYTES, Recording, memory_error, record

MAX_MODEL_BYTES = 64 * 1024**2
MAX_SEQUENCE_BYTES = 16 * 1024**2
Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO
ARCH_OF_ROWS = {k: arch for arch, k in GATE_COUNT.items()}  # rows per unit of weight_hh -> arch
CHECKPOINT_KEYS = {"recurrent", "readout", "vocab", "nonlinearity", "arch", "meta", "format"}
TRAINER_KEYS = {"label", "step", "config"}  # training.Trainer.checkpoint's extras, kept in meta
_PARAM = re.compile(  # prefix, name, layer, "_reverse": torch.nn.RNNBase's parameter names
    r"^(?P<prefix>.*?)(?P<name>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)(?P<reverse>_reverse)?$"
)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A recurrent network read from a file, ready for record(module, x)."""

    module: nn.RNNBase  # torch.nn.RNN / LSTM / GRU, batch_first=True, in eval mode
    readout: nn.Linear | None  # (num_directions * hidden_size) -> outputs, if the file has one
    vocab: Vocabulary | None  # a char model's characters: input step t is one-hot over them
    arch: str  # "rnn" | "lstm" | "gru"
    num_layers: int
    bidirectional: bool
    input_size: int
    hidden_size: int
    nonlinearity: str  # the RNN's "tanh" or "relu"; "tanh" for LSTM and GRU
    meta: dict = field(default_factory=dict)  # the checkpoint's other entries (scores, config, ...)


def read_bytes(source: Source, limit: int, what: str = "model file") -> bytes:
    """The bytes of a path, bytes or binary file; ValueError if there are more than `limit`
    (checked before reading a path, and after reading at most limit + 1 bytes of a file)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no {what} at {str(path)!r}")
        size = path.stat().st_size
        if size > limit:
            raise ValueError(f"the {what} {path.name} has {size:,} bytes, more than the {limit:,} allowed")
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(limit + 1)
        if not isinstance(data, bytes):
            raise ValueError(f"the {what} must be opened in binary mode ('rb')")
    else:
        raise ValueError(f"a {what} is a path, bytes or a binary file, got {type(source).__name__}")
    if len(data) > limit:
        raise ValueError(f"the {what} has more than the {limit:,} bytes allowed")
    return data


def load_model(source: Source, nonlinearity: str | None = None) -> LoadedModel:
    """LoadedModel from a file saved by torch.save (path, bytes or binary file), read with
    weights_only=True. nonlinearity overrides the file's entry for an RNN. ValueError naming
    what is wrong: too large, not a torch file, a pickle that would run code, unknown or missing
    keys, shapes that fit no RNN/LSTM/GRU."""
    data = read_bytes(source, MAX_MODEL_BYTES)
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        code = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if code:
            raise ValueError(
                f"refused: the file asks to import or call code ({code.group(1)}), which could run "
                "anything; only tensors, dicts, lists, strings and numbers load. Save the weights with "
                "torch.save(module.state_dict(), path)"
            ) from None
        raise ValueError(
            "refused: not a weights-only torch file (a pickle instruction outside what torch.load("
            "weights_only=True) reads); save the weights with torch.save(module.state_dict(), path)"
        ) from None
    except Exception as error:  # noqa: BLE001  torch raises many kinds on garbage
        raise ValueError(
            f"not a file saved by torch.save ({type(error).__name__}: {str(error)[-120:].strip()})"
        ) from None
    return model_from_dict(obj, nonlinearity)


def model_from_dict(obj: object, nonlinearity: str | None = None) -> LoadedModel:
    """LoadedModel from what torch.load gave: a state dict or a checkpoint (see the module doc)."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a state dict or a checkpoint dict, got {type(obj).__name__}")
    if "recurrent" in obj:
        unknown = set(obj) - CHECKPOINT_KEYS - TRAINER_KEYS
        if unknown:
            raise ValueError(
                f"unknown checkpoint keys {sorted(map(str, unknown))}; allowed: {sorted(CHECKPOINT_KEYS)}"
            )
        recurrent, readout = obj["recurrent"], obj.get("readout")
        if not isinstance(recurrent, Mapping) or (readout is not None and not isinstance(readout, Mapping)):
            raise ValueError("'recurrent' and 'readout' must be state dicts (dicts of tensors)")
        if not isinstance(obj.get("meta") or {}, Mapping):
            raise ValueError(f"'meta' must be a dict, got {type(obj['meta']).__name__}")
        meta = dict(obj.get("meta") or {}) | {k: obj[k] for k in TRAINER_KEYS if k in obj}
        entries = dict(recurrent) | {"nonlinearity": obj.get("nonlinearity", "tanh")}
        vocab, stated_arch = obj.get("vocab"), obj.get("arch")
    else:
        entries, readout, meta, vocab, stated_arch = dict(obj), None, {}, None, None
    if nonlinearity is not None:
        entries["nonlinearity"] = nonlinearity
    act = entries.pop("nonlinearity", "tanh")
    recurrent, extra = _split_keys(entries)
    if readout is None and extra:
        readout = _readout_entries(extra)
    elif extra:
        raise ValueError(f"unexpected keys in 'recurrent': {sorted(extra)}")
    layout = _layout(recurrent)
    arch, layers, directions, input_size, hidden, dtype = layout
    if stated_arch is not None and stated_arch != arch:
        raise ValueError(f"the checkpoint says arch {stated_arch!r} but its weights make a {arch.upper()}")
    if act not in ("tanh", "relu") or (arch != "rnn" and act != "tanh"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu' (an RNN's only), got {act!r} for {arch}")
    module = _build_module(recurrent, layout, act)
    head = _build_readout(readout, directions * hidden, dtype) if readout is not None else None
    chars = _vocabulary(vocab, input_size, head)
    return LoadedModel(module, head, chars, arch, layers, directions == 2, input_size, hidden, act, meta)


def _split_keys(entries: Mapping) -> tuple[dict[tuple[str, int, int], torch.Tensor], dict]:
    """((name, layer, direction) -> tensor for the recurrent keys, {key: value} of the others)."""
    found, prefixes, extra = {}, set(), {}
    for key, value in entries.items():
        match = _PARAM.match(key) if isinstance(key, str) else None
        if match is None:
            extra[key] = value
            continue
        if match["name"] == "weight_hr":
            raise ValueError(f"{key}: LSTMs with projections (proj_size) are not supported")
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ValueError(f"{key} must be a floating-point tensor, got {type(value).__name__}")
        prefixes.add(match["prefix"])
        found[match["name"], int(match["layer"]), int(bool(match["reverse"]))] = value
    if not found:
        raise ValueError(
            "no recurrent weights found: expected keys like weight_ih_l0, weight_hh_l0, bias_ih_l0, "
            f"bias_hh_l0 (torch.nn.RNN/LSTM/GRU state_dict()), got {sorted(map(str, entries))[:8]}"
        )
    if len(prefixes) > 1:
        raise ValueError(f"the recurrent keys carry different prefixes {sorted(prefixes)}: save one module")
    return found, extra


def _readout_entries(extra: Mapping) -> dict:
    """One Linear's {"weight", "bias"?} among the keys that are not recurrent weights."""
    weights = [k for k in extra if isinstance(k, str) and k.endswith("weight")]
    if len(weights) != 1:
        raise ValueError(f"unexpected keys {sorted(map(str, extra))}: only one Linear readout may sit beside "
                         "the recurrent weights")  # fmt: skip
    prefix = weights[0][: -len("weight")]
    readout = {"weight": extra[weights[0]]}
    if prefix + "bias" in extra:
        readout["bias"] = extra[prefix + "bias"]
    unknown = set(extra) - {prefix + "weight", prefix + "bias"}
    if unknown:
        raise ValueError(f"unexpected keys {sorted(map(str, unknown))} beside the readout {prefix}weight")
    return readout


def _layout(
    found: Mapping[tuple[str, int, int], torch.Tensor],
) -> tuple[str, int, int, int, int, torch.dtype]:
    """(arch, num_layers, num_directions, input_size, hidden_size, dtype), every shape checked."""
    layers = 1 + max(layer for _, layer, _ in found)
    directions = 1 + max(d for _, _, d in found)
    if layers > MAX_LAYERS:
        raise ValueError(f"the file has {layers} layers; record() takes 1 to {MAX_LAYERS}")
    w_hh = found.get(("weight_hh", 0, 0))
    if w_hh is None or w_hh.dim() != 2:
        raise ValueError("weight_hh_l0 is missing or not a matrix")
    rows, hidden = w_hh.shape
    arch = ARCH_OF_ROWS.get(rows // hidden if hidden and rows % hidden == 0 else 0)
    if arch is None:
        raise ValueError(
            f"weight_hh_l0 must be (k*H, H) with k = 1 (RNN), 3 (GRU) or 4 (LSTM), got {tuple(w_hh.shape)}"
        )
    w_ih = found.get(("weight_ih", 0, 0))
    if w_ih is None or w_ih.dim() != 2 or w_ih.shape[1] < 1:
        raise ValueError("weight_ih_l0 is missing or not a (k*H, input_size) matrix")
    input_size = w_ih.shape[1]
    has_bias = ("bias_ih", 0, 0) in found
    for layer in range(layers):
        for d in range(directions):
            suffix = f"_l{layer}{'_reverse' if d else ''}"
            width = input_size if layer == 0 else directions * hidden
            shapes = {"weight_ih": (rows, width), "weight_hh": (rows, hidden)}
            if has_bias:
                shapes |= {"bias_ih": (rows,), "bias_hh": (rows,)}
            for name, shape in shapes.items():
                tensor = found.get((name, layer, d))
                if tensor is None:
                    raise ValueError(f"{name}{suffix} is missing (a {layers}-layer {arch.upper()} needs it)")
                if tuple(tensor.shape) != shape:
                    raise ValueError(f"{name}{suffix} must be {shape} for this {arch.upper()}, got "
                                     f"{tuple(tensor.shape)}")  # fmt: skip
                if not bool(torch.isfinite(tensor).all()):
                    raise ValueError(f"{name}{suffix} holds NaN or infinite values")
    if len(found) != layers * directions * len(shapes):
        names = {f"{n}_l{layer}{'_reverse' if d else ''}" for n, layer, d in found}
        raise ValueError(f"keys {sorted(names)} do not make a {layers}-layer "
                         f"{'bidirectional ' if directions == 2 else ''}{arch.upper()}")  # fmt: skip
    dtype = torch.float64 if all(t.dtype == torch.float64 for t in found.values()) else torch.float32
    return arch, layers, directions, input_size, hidden, dtype


def _build_module(found: Mapping, layout: tuple, nonlinearity: str) -> nn.RNNBase:
    arch, layers, directions, input_size, hidden, dtype = layout
    kwargs = {"nonlinearity": nonlinearity} if arch == "rnn" else {}
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[arch]
    # built on the meta device then given empty storage: no init draws from torch's global
    # generator, and no fork_rng (saving and restoring it races between threads); every entry is set below
    module = cls(input_size, hidden, layers, batch_first=True, bidirectional=directions == 2, device="meta",
                 **kwargs).to_empty(device="cpu")  # fmt: skip
    state = {}
    for name, tensor in module.state_dict().items():
        m = _PARAM.match(name)
        key = (m["name"], int(m["layer"]), int(bool(m["reverse"])))
        state[name] = found.get(key, torch.zeros_like(tensor)).to(dtype)  # no biases in the file: zero
    module.load_state_dict(state)
    return module.to(dtype).eval()


def _build_readout(entries: Mapping, width: int, dtype: torch.dtype) -> nn.Linear:
    weight, bias = entries.get("weight"), entries.get("bias")
    if set(entries) - {"weight", "bias"} or not isinstance(weight, torch.Tensor):
        raise ValueError(
            f"the readout must be a Linear's state dict {{'weight', 'bias'}}, got {sorted(entries)}"
        )
    if weight.dim() != 2 or weight.shape[1] != width:
        raise ValueError(f"readout weight must be (outputs, {width}) to read the last layer, got "
                         f"{tuple(weight.shape)}")  # fmt: skip
    if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)):
        raise ValueError(f"readout bias must be ({weight.shape[0]},)")
    if not all(bool(torch.isfinite(t).all()) for t in entries.values()):
        raise ValueError("the readout holds NaN or infinite values")
    readout = nn.utils.skip_init(nn.Linear, width, weight.shape[0], bias=bias is not None)  # set next
    readout.load_state_dict(dict(entries))
    return readout.to(dtype).eval()


def _vocabulary(vocab: object, input_size: int, readout: nn.Linear | None) -> Vocabulary | None:
    if vocab is None:
        return None
    if not isinstance(vocab, list | tuple):
        raise ValueError(f"vocab must be a list of characters, got {type(vocab).__name__}")
    chars = Vocabulary(tuple(vocab))
    if len(chars) != input_size or (readout is not None and readout.out_features != len(chars)):
        raise ValueError(f"a char model reads and predicts its {len(chars)} characters, but its input "
                         f"size is {input_size}" + (f" and its readout has {readout.out_features} outputs"
                                                     if readout is not None else ""))  # fmt: skip
    return chars


def load_csv(source: Source, input_size: int | None = None) -> torch.Tensor:
    """(1, T, I) float32 from a CSV of T rows and I numeric columns (one optional header row of
    names; blank lines skipped). ValueError naming the row and column of a wrong column count,
    a field that is not a number, NaN or infinity, and for more than MAX_SEQ_LEN rows."""
    data = read_bytes(source, MAX_SEQUENCE_BYTES, "sequence file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"the CSV is not UTF-8 text (byte {error.start})") from None
    rows = [
        (n, row)
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if any(f.strip() for f in row)
    ]
    if rows and not any(_is_number(f) for f in rows[0][1]):
        rows = rows[1:]  # a header of column names
    if not rows:
        raise ValueError("the CSV has no rows of numbers")
    if len(rows) > MAX_SEQ_LEN:
        raise ValueError(f"the CSV has {len(rows):,} rows; record() takes at most {MAX_SEQ_LEN:,} steps")
    width = input_size if input_size is not None else len(rows[0][1])
    values = []
    for n, row in rows:
        if len(row) != width:
            expected = "the model's input_size" if input_size is not None else "the first row's"
            raise ValueError(f"line {n} has {len(row)} columns, expected {width} ({expected})")
        try:
            numbers = [float(f) for f in row]
        except ValueError:
            bad = next(j for j, f in enumerate(row) if not _is_number(f))
            raise ValueError(f"line {n}, column {bad + 1}: {row[bad].strip()!r} is not a number") from None
        for j, v in enumerate(numbers):
            if not math.isfinite(v):
                raise ValueError(
                    f"line {n}, column {j + 1} is {row[j].strip()}: record() needs finite numbers"
                )
        values.append(numbers)
    return torch.tensor(values, dtype=torch.float32).unsqueeze(0)


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def load_text(source: Source, vocab: Vocabulary) -> torch.Tensor:
    """(1, T, V) float32 one-hot of a UTF-8 text file over a char model's vocabulary (line breaks
    \\r\\n read as \\n; characters outside it become its fallback, or a ValueError if it has none)."""
    data = read_bytes(source, MAX_SEQUENCE_BYTES, "sequence file")
    try:
        text = data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        raise ValueError(f"the text is not UTF-8 (byte {error.start})") from None
    if not text:
        raise ValueError("the text file is empty")
    if len(text) > MAX_SEQ_LEN:
        raise ValueError(
            f"the text has {len(text):,} characters; record() takes at most {MAX_SEQ_LEN:,} steps"
        )
    return vocab.one_hot(text)


def load_sequence(source: Source, model: LoadedModel, kind: str | None = None) -> torch.Tensor:
    """(1, T, model.input_size) for record(model.module, x): kind "csv", "text", or None to decide
    by the file name (.csv) and otherwise by the model (text for a char model, else CSV)."""
    if kind is None:
        is_csv = isinstance(source, str | os.PathLike) and Path(source).suffix.lower() == ".csv"
        kind = "csv" if is_csv or model.vocab is None else "text"
    if kind == "csv":
        return load_csv(source, model.input_size)
    if kind == "text":
        if model.vocab is None:
            raise ValueError("a text sequence needs a char model (a checkpoint with a 'vocab'); use a CSV")
        return load_text(source, model.vocab)
    raise ValueError(f"kind must be 'csv', 'text' or None, got {kind!r}")


def describe(model: LoadedModel) -> str:
    """One line: "LSTM, 2 layers, bidirectional, 3 inputs, 64 units, readout to 10 outputs"."""
    parts = [model.arch.upper() + (f" ({model.nonlinearity})" if model.arch == "rnn" else "")]
    parts.append(f"{model.num_layers} layer{'s' if model.num_layers > 1 else ''}")
    if model.bidirectional:
        parts.append("bidirectional")
    parts.append(f"{model.input_size} input{'s' if model.input_size > 1 else ''}")
    parts.append(f"{model.hidden_size} units")
    if model.readout is not None:
        parts.append(f"readout to {model.readout.out_features} outputs")
    if model.vocab is not None:
        parts.append(f"a char model over {len(model.vocab)} characters")
    return ", ".join(parts)


def model_and_input(
    model: Source,
    sequence: Source | None = None,
    *,
    kind: str | None = None,
    generate: tuple[str, int, int, int] | None = None,
) -> tuple[LoadedModel, torch.Tensor]:
    """(LoadedModel, x) of a model file and a sequence file, or, without one, a generated input:
    generate = (input kind, batch_size, seq_len, seed) for inputs.make_input at the model's input_size."""
    loaded = load_model(model)
    if sequence is not None:
        return loaded, load_sequence(sequence, loaded, kind)
    if generate is None:
        raise ValueError("give a sequence file, or generate=(input kind, batch_size, seq_len, seed)")
    input_kind, batch_size, seq_len, seed = generate
    check_int("batch_size", batch_size, 1, MAX_BATCH_SIZE)
    check_int("seq_len", seq_len, 1, MAX_SEQ_LEN)
    shape = (loaded.arch, batch_size, seq_len, loaded.hidden_size, loaded.input_size, DEFAULT_MAX_BYTES)
    if error := memory_error(*shape, dtype=loaded.module.weight_ih_l0.dtype, num_layers=loaded.num_layers,
                             num_directions=2 if loaded.bidirectional else 1):  # fmt: skip
        raise error  # before the input is built: 64 x 10,000 steps x 4,096 features alone is 10 GB
    return loaded, make_input(input_kind, batch_size, seq_len, loaded.input_size, seed=seed)


def record_files(
    model: Source,
    sequence: Source | None = None,
    *,
    kind: str | None = None,
    generate: tuple[str, int, int, int] | None = None,
    label: str = "",
) -> tuple[Recording, str]:
    """(Recording, describe(model)) of a model file run on a sequence (see model_and_input). The
    loss is record()'s default (norm 1 into the final state). Every problem with the files or the
    run is a ValueError that says what is wrong."""
    loaded, x = model_and_input(model, sequence, kind=kind, generate=generate)
    rec = record(loaded.module, x, label=label or loaded.arch.upper(), meta={"model": describe(loaded)})
    return rec, describe(loaded)


def connectivity_files(
    model: Source,
    sequence: Source | None = None,
    *,
    kind: str | None = None,
    generate: tuple[str, int, int, int] | None = None,
) -> np.ndarray:
    """(B, T, T) connectivity() of a model file on a sequence (see model_and_input); ValueError for
    deep or bidirectional models and sequences over connectivity's 2,000 steps."""
    loaded, x = model_and_input(model, sequence, kind=kind, generate=generate)
    return connectivity(loaded.module, x)
