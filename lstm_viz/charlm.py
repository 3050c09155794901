"""Character-level language models on the standard-library corpus: the model, its trainer,
bits per character and the unigram and bigram baselines.

A CharLM is torch's own nn.RNN / nn.LSTM / nn.GRU (batch_first=True, 1 or 2 layers) reading
one-hot characters, so record()'s gradient with respect to x_t is the gradient with respect to
character t, followed by a linear readout to next-character logits. The trainer follows
training.Trainer: `advance(n, seconds=...)` runs more steps (a page redraws between calls,
stops by not calling, resumes by calling again). Training is next-character prediction with
the loss at every step and truncated backpropagation through time: the training text is cut
into `batch_size` streams read in chunks of `chunk_len` characters, the state carried from
chunk to chunk but not its gradient. Adam, clipped gradients, private generators: torch's
global random state is never used.

    trainer = CharLMTrainer(CharLMConfig(arch="lstm", steps=2000))
    while not trainer.done:
        trainer.advance(100)
    checkpoint = trainer.checkpoint()        # plain dict: torch.save it, load_model reads it
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .checks import check_int
from .corpus import VOCAB, Vocabulary, load_corpus
from .loading import LoadedModel, Source, load_model
from .models import ARCHS, build_model
from .training import run_steps

FORMAT = "lstm_viz.charlm/1"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # made by benchmarks/train_charlm.py
PROBE_WINDOWS = 8  # validation windows scored during training and by the reproduction test
PROBE_LENGTH = 2000  # characters per window


@dataclass(frozen=True)
class CharLMConfig:
    """One char-level language model and how to train it."""

    arch: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    steps: int = 2000
    batch_size: int = 32  # parallel streams over the training text
    chunk_len: int = 100  # truncated BPTT: characters per chunk; gradients stop at its start
    lr: float = 3e-3  # Adam
    clip: float | None = 1.0  # max global gradient norm; None: no clipping
    seed: int = 0
    eval_every: int = 250  # steps between scores of the validation probe

    def check(self) -> None:
        """ValueError naming the first bad setting and what is allowed."""
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        check_int("hidden_size", self.hidden_size, 1, 1024)
        check_int("num_layers", self.num_layers, 1, 4)
        check_int("steps", self.steps, 0, 10_000_000)
        check_int("batch_size", self.batch_size, 1, 4096)
        check_int("chunk_len", self.chunk_len, 1, 10_000)
        check_int("eval_every", self.eval_every, 1, 10_000_000)
        if not 0 < self.lr <= 1:
            raise ValueError(f"lr must be in (0, 1], got {self.lr!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"clip must be a positive gradient norm or None, got {self.clip!r}")


class CharLM(nn.Module):
    """recurrent (torch.nn.RNN/LSTM/GRU, batch_first, input = one-hot characters) + readout Linear."""

    def __init__(self, recurrent: nn.RNNBase, readout: nn.Linear, vocab: Vocabulary = VOCAB):
        super().__init__()
        if recurrent.input_size != len(vocab) or readout.out_features != len(vocab):
            raise ValueError(
                f"a char model reads and predicts its {len(vocab)} characters: got input_size "
                f"{recurrent.input_size} and {readout.out_features} outputs"
            )
        self.recurrent, self.readout, self.vocab = recurrent, readout, vocab

    @classmethod
    def build(cls, config: CharLMConfig, vocab: Vocabulary = VOCAB) -> CharLM:
        """Seeded fresh model: the recurrent weights from build_model (the LSTM with forget bias 1),
        the readout uniform(-1/sqrt(H), 1/sqrt(H)) like nn.Linear's, from a private generator."""
        init = "forget_bias" if config.arch == "lstm" else "default"
        recurrent = build_model(
            config.arch, len(vocab), config.hidden_size, seed=config.seed, init=init,
            num_layers=config.num_layers,
        ).fused()  # fmt: skip
        readout = nn.utils.skip_init(nn.Linear, config.hidden_size, len(vocab))  # no draws; set next
        generator = torch.Generator().manual_seed(config.seed + 1)
        bound = 1 / math.sqrt(config.hidden_size)
        for p in readout.parameters():
            nn.init.uniform_(p, -bound, bound, generator=generator)
        return cls(recurrent, readout, vocab)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> CharLM:
        """The CharLM of a loaded checkpoint (ValueError if it has no vocabulary or readout)."""
        if loaded.vocab is None or loaded.readout is None:
            raise ValueError("not a char model: the checkpoint needs a 'vocab' and a 'readout'")
        return cls(loaded.module, loaded.readout, loaded.vocab)

    def forward(self, x: torch.Tensor, state=None) -> tuple[torch.Tensor, object]:
        """x (B, T, V) one-hot -> logits (B, T, V) of the next character, and the final state."""
        out, state = self.recurrent(x, state)
        return self.readout(out), state

    def one_hot(self, ids: torch.Tensor) -> torch.Tensor:
        return F.one_hot(ids, len(self.vocab)).to(self.readout.weight.dtype)

    def checkpoint(self, meta: dict | None = None) -> dict:
        """The shipped layout (plain tensors, lists, strings, numbers; loads with weights_only=True):
        {"format", "arch", "nonlinearity", "recurrent", "readout", "vocab", "meta"}."""
        arch = {nn.LSTM: "lstm", nn.GRU: "gru", nn.RNN: "rnn"}[type(self.recurrent)]
        return {
            "format": FORMAT,
            "arch": arch,
            "nonlinearity": getattr(self.recurrent, "nonlinearity", "tanh"),
            "recurrent": {k: v.detach().clone() for k, v in self.recurrent.state_dict().items()},
            "readout": {k: v.detach().clone() for k, v in self.readout.state_dict().items()},
            "vocab": list(self.vocab.chars),
            "meta": dict(meta or {}),
        }


def shipped_models() -> dict[str, Path]:
    """name ("charlm-lstm") -> path of every char model shipped in lstm_viz/weights/."""
    return {path.stem: path for path in sorted(WEIGHTS_DIR.glob("*.pth"))}


def load_charlm(source: Source) -> tuple[CharLM, dict]:
    """(CharLM, meta) from a checkpoint: a shipped name ("charlm-lstm"), a path, bytes or a file."""
    if isinstance(source, str) and source in shipped_models():
        source = shipped_models()[source]
    loaded = load_model(source)
    return CharLM.from_loaded(loaded), loaded.meta


def streams(ids: np.ndarray, count: int) -> torch.Tensor:
    """(count, L) int64: ids cut into `count` contiguous streams of equal length (the rest dropped)."""
    length = len(ids) // count
    if length < 2:
        raise ValueError(f"{len(ids)} characters cannot fill {count} streams of at least 2")
    return torch.from_numpy(np.ascontiguousarray(ids[: count * length])).view(count, length)


def probe_streams(ids: np.ndarray, windows: int = PROBE_WINDOWS, length: int = PROBE_LENGTH) -> torch.Tensor:
    """(windows, length) int64: evenly spaced windows of the validation text, each scored from a
    fresh state; a fixed, quick sample of it."""
    if len(ids) < windows * length:
        raise ValueError(f"the text has {len(ids)} characters, fewer than {windows} x {length}")
    starts = np.linspace(0, len(ids) - length, windows).astype(np.int64)
    return torch.from_numpy(np.stack([ids[s : s + length] for s in starts]))


@torch.no_grad()
def bits_per_char(model: CharLM, data: torch.Tensor, chunk_len: int = 1000) -> float:
    """Mean -log2 p(next character) over data (S, L) int64: each row a stream read from a fresh
    state, its first character given, every later one predicted."""
    total, count, state = 0.0, 0, None
    training = model.training
    model.eval()
    try:
        for start in range(0, data.shape[1] - 1, chunk_len):
            chunk = data[:, start : start + chunk_len + 1]
            logits, state = model(model.one_hot(chunk[:, :-1]), state)
            total += F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum").item()
            count += chunk[:, 1:].numel()
    finally:
        model.train(training)
    return total / count / math.log(2)


def next_char_grad_output(
    model: CharLM, ids: torch.Tensor, position: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, grad_output) for record(model.recurrent, x, grad_output=grad_output): the loss is the
    cross-entropy of predicting character position + 1 from the readout at step `position`, so
    record()'s log10_grad_x[b, t] is log10 ||d loss / d x_t|| for every character t <= position.

    ids (B, L) int64 with L > position + 1; x (B, position + 1, V) one-hot; grad_output
    (B, position + 1, D*H) zero except at the last step (the per-step form record() takes).
    """
    if not 0 <= position < ids.shape[1] - 1:
        raise ValueError(f"position must be between 0 and {ids.shape[1] - 2} (a next character to predict), "
                         f"got {position}")  # fmt: skip
    x = model.one_hot(ids[:, : position + 1])
    with torch.no_grad():
        out, _ = model.recurrent(x)
    last = out[:, -1].detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model.readout(last), ids[:, position + 1], reduction="sum")
        (grad,) = torch.autograd.grad(loss, last)
    grad_output = torch.zeros_like(out)
    grad_output[:, -1] = grad
    return x, grad_output


def unigram_bits(train_ids: np.ndarray, val_ids: np.ndarray, size: int) -> float:
    """Bits per character on val_ids[1:] of character frequencies counted on train_ids
    (add-one smoothing, so an unseen character costs a finite amount)."""
    counts = np.bincount(train_ids, minlength=size) + 1.0
    logp = np.log2(counts / counts.sum())
    return float(-logp[val_ids[1:]].mean())


def bigram_bits(train_ids: np.ndarray, val_ids: np.ndarray, size: int) -> float:
    """Bits per character on val_ids[1:] of p(next | previous) counted on train_ids (add-one)."""
    counts = np.bincount(train_ids[:-1] * size + train_ids[1:], minlength=size * size).reshape(size, size)
    counts = counts + 1.0
    logp = np.log2(counts / counts.sum(axis=1, keepdims=True))
    return float(-logp[val_ids[:-1], val_ids[1:]].mean())


@dataclass
class CharLMHistory:
    """What a trainer has done so far (N steps, E evaluations)."""

    loss: list[float] = field(default_factory=list)  # (N,) training bits per character of each step
    eval_steps: list[int] = field(default_factory=list)  # (E,)
    probe_bits: list[float] = field(default_factory=list)  # (E,) bits per character on the probe
    seconds: float = 0.0  # wall time in optimiser steps


class CharLMTrainer:
    """Trains one CharLM on the corpus; `advance(n)` runs up to n more steps."""

    def __init__(
        self,
        config: CharLMConfig,
        train_text: str | None = None,
        validation_text: str | None = None,
        vocab: Vocabulary = VOCAB,
    ):
        config.check()
        if train_text is None or validation_text is None:
            corpus = load_corpus()
            train_text = corpus.train if train_text is None else train_text
            validation_text = corpus.validation if validation_text is None else validation_text
        self.config, self.vocab = config, vocab
        self.train_ids = vocab.encode(train_text)
        self.val_ids = vocab.encode(validation_text)
        self.data = streams(self.train_ids, config.batch_size)
        if self.data.shape[1] < config.chunk_len + 1:
            raise ValueError(
                f"the training text gives {config.batch_size} streams of {self.data.shape[1]} characters, "
                f"too short for chunk_len={config.chunk_len}: use a smaller batch_size or chunk_len"
            )
        self.probe = probe_streams(self.val_ids, PROBE_WINDOWS, min(PROBE_LENGTH, len(self.val_ids) // 8))
        self.model = CharLM.build(config, vocab)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.step, self.position, self.state = 0, 0, None
        self.history = CharLMHistory()
        self._evaluate()

    @property
    def done(self) -> bool:
        return self.step >= self.config.steps

    def advance(self, n: int = 1, *, seconds: float | None = None) -> int:
        """Train up to n more steps, stopping early once `seconds` have passed; returns the steps taken."""

        def step() -> bool:
            self._train_step()
            return True

        return run_steps(step, lambda: self.done, n, seconds)

    def _train_step(self) -> None:
        c = self.config
        if self.position + c.chunk_len + 1 > self.data.shape[1]:  # end of the streams: start over
            self.position, self.state = 0, None
        chunk = self.data[:, self.position : self.position + c.chunk_len + 1]
        self.position += c.chunk_len
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        logits, state = self.model(self.model.one_hot(chunk[:, :-1]), self.state)
        loss = F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten())
        loss.backward()
        if c.clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), c.clip)
        self.optimizer.step()
        # truncated BPTT: the next chunk starts from this state, without a path back through it
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        self.history.seconds += time.perf_counter() - start
        self.history.loss.append(loss.item() / math.log(2))
        self.step += 1
        if self.step % c.eval_every == 0 or self.done:
            self._evaluate()

    def _evaluate(self) -> None:
        self.history.eval_steps.append(self.step)
        self.history.probe_bits.append(bits_per_char(self.model, self.probe))

    def validation_bits(self, stream_count: int = 64) -> float:
        """Bits per character on the whole validation text, read as `stream_count` streams."""
        return bits_per_char(self.model, streams(self.val_ids, stream_count))

    def baselines(self) -> dict[str, float]:
        """{"unigram": bits, "bigram": bits} on the validation text, counted on the training text."""
        size = len(self.vocab)
        return {
            "unigram": unigram_bits(self.train_ids, self.val_ids, size),
            "bigram": bigram_bits(self.train_ids, self.val_ids, size),
        }

    def checkpoint(self, **meta) -> dict:
        """CharLM.checkpoint with the config, steps, probe score and versions in meta, plus `meta`."""
        info = asdict(self.config) | {
            "steps_done": self.step,
            "probe_bits": self.history.probe_bits[-1] if self.history.eval_steps[-1] == self.step
            else bits_per_char(self.model, self.probe),
            "probe_windows": int(self.probe.shape[0]),
            "probe_length": int(self.probe.shape[1]),
            "train_seconds": round(self.history.seconds, 1),
            "python_version": platform.python_version(),
            "torch_version": str(torch.__version__),
        }  # fmt: skip
        return self.model.checkpoint(info | meta)


def train_charlm(
    config: CharLMConfig, callback: Callable[[CharLMTrainer], bool | None] | None = None, chunk: int = 50
) -> CharLMTrainer:
    """Train to config.steps; callback(trainer) after every chunk of steps may return False to stop."""
    trainer = CharLMTrainer(config)
    while not trainer.done:
        trainer.advance(chunk)
        if callback is not None and callback(trainer) is False:
            break
    return trainer
