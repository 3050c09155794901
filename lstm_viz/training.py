"""Train RNN, LSTM and GRU side by side on a long-range task and record their gradients as they learn.

Every selected architecture gets the same seed, the same batches and the same optimiser
settings; training runs PyTorch's fused modules (`build_model(...).fused()`) with a
linear readout. Every `record_every` steps the trained weights are loaded into the
instrumented model and `record()` measures log10 ||dL/dh_t|| on a fixed probe batch,
with the gradient of the task loss entering at the last step through the readout, so
what is shown is exactly the network being trained.

    trainer = Trainer(TrainConfig(task="adding", lag=100, archs=("rnn", "lstm")))
    while not trainer.done:
        trainer.advance(50)             # a page redraws between chunks, and can stop
    results = trainer.results()         # arch -> TrainingResult (numpy arrays)

`train(config, callback)` is the same loop for scripts.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .analysis import KEEP_GATE  # the gate that decides how much of the past survives
from .checks import check_int
from .models import ARCHS, INITS, RecurrentModel, build_model
from .record import Recording, record
from .tasks import check_lag, get_task, make_batch

# Effective forget bias 1 (Gers et al. 2000; Jozefowicz et al. 2015): the LSTM starts out remembering.
DEFAULT_INITS = {"rnn": "default", "lstm": "forget_bias", "gru": "default"}
GATE_BINS = np.linspace(0.0, 1.0, 41)  # edges of the keep-gate histograms


@dataclass(frozen=True)
class TrainConfig:
    """One training run of every arch in `archs` (same seed, same batches)."""

    task: str = "adding"
    lag: int = 50  # adding: sequence length; copy_memory: blanks between symbols and recall
    hidden_size: int = 32
    archs: tuple[str, ...] = ("rnn", "lstm", "gru")
    steps: int = 500
    batch_size: int = 64
    lr: float = 3e-3  # Adam, as in benchmarks/reproduce_adding.py
    clip: float | None = 1.0  # max global gradient norm; None trains without clipping
    inits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INITS))  # arch -> INITS name
    forget_bias: float = 1.0  # for init "forget_bias"
    spectral_radius: float = 1.0  # for inits "orthogonal" and "identity"
    seed: int = 0
    record_every: int = 25  # steps between gradient snapshots (and test-set evaluations)
    probe_size: int = 16  # sequences in the probe batch (the first ones of the test set)
    test_size: int = 512
    threads: int | None = 1  # torch threads while training: small recurrent steps run fastest on one

    def init(self, arch: str) -> str:
        return self.inits.get(arch, "default")  # an arch left out gets PyTorch's default

    def check(self) -> None:
        """ValueError naming the first bad setting and what is allowed."""
        task = get_task(self.task)
        check_lag(task, self.lag)
        if (
            not self.archs
            or any(a not in ARCHS for a in self.archs)
            or len(set(self.archs)) != len(self.archs)
        ):
            raise ValueError(f"archs must be distinct names from {ARCHS}, got {self.archs!r}")
        for arch in self.archs:
            if self.init(arch) not in INITS[arch]:
                raise ValueError(f"init for {arch!r} must be one of {INITS[arch]}, got {self.init(arch)!r}")
        for name, low, high in (
            ("hidden_size", 1, 1024),
            ("steps", 1, 1_000_000),
            ("batch_size", 1, 4096),
            ("record_every", 1, 1_000_000),
            ("probe_size", 1, 256),
            ("test_size", 1, 100_000),
        ):
            check_int(name, getattr(self, name), low, high)
        if not 0 < self.lr <= 1:
            raise ValueError(f"lr must be in (0, 1], got {self.lr!r}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(
                f"clip must be a positive gradient norm or None (no clipping), got {self.clip!r}"
            )
        if self.probe_size > self.test_size:
            raise ValueError(f"probe_size ({self.probe_size}) must not exceed test_size ({self.test_size})")


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """One architecture's training history (S snapshots, E evaluations, N steps done)."""

    arch: str
    label: str  # "LSTM (chrono)"
    task: str  # tasks.TASKS name
    lag: int
    baseline: float  # loss of the best memoryless predictor
    loss: np.ndarray  # (N,) training loss at steps 1..N
    grad_norm: np.ndarray  # (N,) global gradient norm before clipping
    grad_norm_clipped: np.ndarray  # (N,) after clipping (equal to grad_norm without clipping)
    eval_steps: np.ndarray  # (E,) steps at which the test set was scored (0 = before training)
    test_loss: np.ndarray  # (E,)
    test_accuracy: np.ndarray  # (E,) adding: fraction within 0.04; copy: symbols recalled
    snapshot_steps: np.ndarray  # (S,) steps of the gradient snapshots (0 = before training)
    log10_grad_h: np.ndarray  # (S, P, T) log10 ||dL/dh_t|| on the probe batch
    keep_gate_hist: np.ndarray | None  # (S, len(GATE_BINS) - 1) fraction of keep-gate values per bin
    train_seconds: float  # wall time in optimiser steps (snapshots excluded)

    @property
    def steps_done(self) -> int:
        return len(self.loss)

    def snapshot_index(self, step: int) -> int:
        """Index of the snapshot at or before `step` (the first one if none is)."""
        return max(int(np.searchsorted(self.snapshot_steps, step, side="right")) - 1, 0)


class _Run:
    """One architecture's fused model, readout, optimiser and history."""

    def __init__(self, arch: str, config: TrainConfig, input_size: int, output_size: int):
        init = config.init(arch)
        self.instrumented: RecurrentModel = build_model(
            arch,
            input_size,
            config.hidden_size,
            seed=config.seed,
            init=init,
            forget_bias=config.forget_bias,
            spectral_radius=config.spectral_radius,
            t_max=max(config.lag + get_task(config.task).extra_steps, 2),
        )
        self.arch = arch
        self.label = arch.upper() if init == "default" else f"{arch.upper()} ({init.replace('_', ' ')})"
        self.recurrent = self.instrumented.fused()
        with torch.random.fork_rng(devices=[]):  # seeded readout; the global generator is left as it was
            torch.manual_seed(config.seed)
            self.readout = nn.Linear(config.hidden_size, output_size)
        self.params = [*self.recurrent.parameters(), *self.readout.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr)
        self.loss, self.norm, self.norm_clipped = [], [], []
        self.eval_steps, self.test_loss, self.test_accuracy = [], [], []
        self.snapshot_steps, self.grad_h, self.gate_hist = [], [], []
        self.seconds = 0.0


class Trainer:
    """Trains every arch of a TrainConfig in lock step; `advance(n)` runs n more steps."""

    def __init__(self, config: TrainConfig):
        config.check()
        self.config = config
        self.task = get_task(config.task)
        self.step = 0
        self.batches = torch.Generator().manual_seed(config.seed)
        self.test_x, self.test_y = self.task.batch(
            config.test_size, config.lag, torch.Generator().manual_seed(config.seed + 1_000_003)
        )
        self.runs = {a: _Run(a, config, self.task.input_size, self.task.output_size) for a in config.archs}
        for run in self.runs.values():
            self._evaluate(run)
            self._snapshot(run)

    @property
    def done(self) -> bool:
        return self.step >= self.config.steps

    def _predict(self, run: _Run, x: torch.Tensor) -> torch.Tensor:
        """Readout on the last hidden state (adding, (B,)) or on every state (copy, (B, T, classes))."""
        out, _ = run.recurrent(x)
        if self.task.loss == "mse":
            return run.readout(out[:, -1]).squeeze(-1)
        return run.readout(out)

    def _loss(self, prediction: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if self.task.loss == "mse":
            return F.mse_loss(prediction, y, reduction=reduction)
        return F.cross_entropy(prediction.flatten(0, 1), y.flatten(), reduction=reduction)

    def advance(self, n: int = 1, *, seconds: float | None = None) -> int:
        """Train every arch for up to n more steps on the same batches, stopping early once
        `seconds` have passed (so a page can redraw); returns the steps taken."""
        taken, start = 0, time.perf_counter()
        threads = torch.get_num_threads()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        try:
            while taken < n and not self.done:
                if seconds is not None and taken and time.perf_counter() - start > seconds:
                    break
                self._train_step()
                taken += 1
        finally:
            torch.set_num_threads(threads)
        return taken

    def _train_step(self) -> None:
        x, y = self.task.batch(self.config.batch_size, self.config.lag, self.batches)
        self.step += 1
        max_norm = self.config.clip if self.config.clip is not None else float("inf")
        for run in self.runs.values():
            start = time.perf_counter()
            run.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(self._predict(run, x), y)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(run.params, max_norm)
            clipped = nn.utils.get_total_norm([p.grad for p in run.params if p.grad is not None])
            run.optimizer.step()
            run.seconds += time.perf_counter() - start
            run.loss.append(loss.item())
            run.norm.append(float(norm))
            run.norm_clipped.append(float(clipped))
            if self.step % self.config.record_every == 0 or self.done:
                self._evaluate(run)
                self._snapshot(run)

    def finish(self) -> None:
        """Score the test set and take a snapshot at the current step if the last ones are older
        (after stopping before config.steps)."""
        for run in self.runs.values():
            if run.eval_steps[-1] != self.step:
                self._evaluate(run)
                self._snapshot(run)

    @torch.no_grad()
    def _evaluate(self, run: _Run) -> None:
        prediction = self._predict(run, self.test_x)
        run.eval_steps.append(self.step)
        run.test_loss.append(float(self._loss(prediction, self.test_y)))
        run.test_accuracy.append(self.task.accuracy(prediction, self.test_y))

    def _snapshot(self, run: _Run) -> None:
        """record() the trained weights on the probe batch, the task loss entering at the last step."""
        x, y = self.test_x[: self.config.probe_size], self.test_y[: self.config.probe_size]
        run.instrumented.load_state_dict(run.recurrent.state_dict())
        rec = record(
            run.instrumented,
            x,
            grad_output=task_grad_output(self.task.name, run.readout, run.recurrent, x, y),
        )
        run.snapshot_steps.append(self.step)
        run.grad_h.append(rec.log10_grad_h.astype(np.float32))
        if run.arch in KEEP_GATE:
            counts, _ = np.histogram(rec.gates[KEEP_GATE[run.arch]], bins=GATE_BINS)
            run.gate_hist.append(counts / max(counts.sum(), 1))

    def results(self) -> dict[str, TrainingResult]:
        """arch -> TrainingResult of everything trained so far (copies; training may go on)."""
        out = {}
        for arch, run in self.runs.items():
            out[arch] = TrainingResult(
                arch=arch,
                label=run.label,
                task=self.task.name,
                lag=self.config.lag,
                baseline=self.task.baseline(self.config.lag),
                loss=np.array(run.loss),
                grad_norm=np.array(run.norm),
                grad_norm_clipped=np.array(run.norm_clipped),
                eval_steps=np.array(run.eval_steps),
                test_loss=np.array(run.test_loss),
                test_accuracy=np.array(run.test_accuracy),
                snapshot_steps=np.array(run.snapshot_steps),
                log10_grad_h=np.stack(run.grad_h),
                keep_gate_hist=np.stack(run.gate_hist) if run.gate_hist else None,
                train_seconds=run.seconds,
            )
        return out

    def state_dict(self, arch: str) -> dict[str, torch.Tensor]:
        """The recurrent layer's weights: loads into torch.nn.RNN/LSTM/GRU and into build_model(arch, ...)."""
        return {k: v.detach().clone() for k, v in self.runs[arch].recurrent.state_dict().items()}

    def checkpoint(self, arch: str) -> dict:
        """What `record_trained` needs: {"arch", "label", "step", "nonlinearity" (the RNN's),
        "recurrent" (state dict), "readout" (nn.Linear state dict), "config" (TrainConfig as a dict)}."""
        run = self.runs[arch]
        config = asdict(self.config) | {"inits": dict(self.config.inits)}
        return {
            "arch": arch,
            "label": run.label,
            "step": self.step,
            "nonlinearity": getattr(run.instrumented, "nonlinearity", "tanh"),
            "recurrent": self.state_dict(arch),
            "readout": {k: v.detach().clone() for k, v in run.readout.state_dict().items()},
            "config": config,
        }

    def model_bytes(self, arch: str) -> bytes:
        """torch.save of state_dict(arch): the .pt a user downloads."""
        buffer = io.BytesIO()
        torch.save(self.state_dict(arch), buffer)
        return buffer.getvalue()


def task_grad_output(
    task: str, readout: nn.Module, recurrent: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """dL/dh_{T-1} (B, H) of each sequence's own task loss through the readout, for record().

    adding: the squared error of the answer read from the last state; copy_memory: the
    cross-entropy of the last recalled symbol (read lag + 10 steps earlier). Per sequence,
    not averaged over the batch, so the size does not depend on the batch size.
    """
    with torch.no_grad():
        out, _ = recurrent(x)
    last = out[:, -1].detach().requires_grad_(True)
    with torch.enable_grad():
        if get_task(task).loss == "mse":
            loss = F.mse_loss(readout(last).squeeze(-1), y, reduction="sum")
        else:
            loss = F.cross_entropy(readout(last), y[:, -1], reduction="sum")
        (grad,) = torch.autograd.grad(loss, last)
    return grad


def record_trained(checkpoint: Mapping, *, batch_size: int = 8, seed: int = 0) -> Recording:
    """record() a Trainer.checkpoint on fresh sequences of its own task, the task loss of each
    sequence entering at the last step through its readout."""
    config = checkpoint["config"]
    task = get_task(config["task"])
    model = model_from_state_dict(checkpoint["recurrent"], checkpoint.get("nonlinearity", "tanh"))
    readout = nn.Linear(model.hidden_size, task.output_size)
    readout.load_state_dict(checkpoint["readout"])
    x, y = make_batch(task.name, batch_size, config["lag"], seed=seed)
    grad_output = task_grad_output(task.name, readout, model.fused(), x, y)
    label = f"{checkpoint['label']}, trained {checkpoint['step']} steps"
    return record(model, x, grad_output=grad_output, label=label, meta={"task": task.name, **config})


def model_from_state_dict(
    state_dict: Mapping[str, torch.Tensor], nonlinearity: str = "tanh"
) -> RecurrentModel:
    """An instrumented lstm_viz model holding a one-layer RNN/LSTM/GRU state dict (arch from its shapes)."""
    keys = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
    if set(state_dict) != keys:
        raise ValueError(
            f"expected a one-layer recurrent state dict with keys {sorted(keys)}, got {sorted(state_dict)}"
        )
    rows, hidden = state_dict["weight_hh_l0"].shape
    arch = {1: "rnn", 3: "gru", 4: "lstm"}.get(rows // hidden if rows % hidden == 0 else 0)
    if arch is None:
        raise ValueError(
            f"weight_hh_l0 must be (k*H, H) with k = 1 (RNN), 3 (GRU) or 4 (LSTM), got {(rows, hidden)}"
        )
    kwargs = {"nonlinearity": nonlinearity} if arch == "rnn" else {}
    model = build_model(arch, state_dict["weight_ih_l0"].shape[1], hidden, **kwargs)
    model.load_state_dict(state_dict)
    return model


def train(
    config: TrainConfig, callback: Callable[[Trainer], bool | None] | None = None, chunk: int = 25
) -> dict[str, TrainingResult]:
    """Train to config.steps; callback(trainer) after every chunk of steps may return False to stop."""
    trainer = Trainer(config)
    while not trainer.done:
        trainer.advance(chunk)
        if callback is not None and callback(trainer) is False:
            break
    return trainer.results()
