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

An entry of `archs` is an architecture ("lstm", its init from `inits`) or an architecture
with its own init ("lstm_chrono", "rnn_identity"), so two LSTMs, or a tanh RNN and an IRNN,
train side by side; results are keyed by these names. `advance()` may run in one thread
while another calls `pause()` or `results()` (a Streamlit rerun starts before the old run
has stopped): every step trains every model under one lock, so all models always stand at
the same step.

`train(config, callback)` is the same loop for scripts.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .analysis import KEEP_GATE  # the gate that decides how much of the past survives
from .checks import check_int
from .loading import model_from_dict
from .models import ARCHS, INITS, RecurrentModel, build_model, seeded_linear
from .passes import one_thread
from .record import Recording, record
from .tasks import check_lag, get_task, make_batch

# Effective forget bias 1 (Gers et al. 2000; Jozefowicz et al. 2015): the LSTM starts out remembering.
DEFAULT_INITS = {"rnn": "default", "lstm": "forget_bias", "gru": "default"}
GATE_BINS = np.linspace(0.0, 1.0, 41)  # edges of the keep-gate histograms


# The names TrainConfig.archs accepts: an arch (init from TrainConfig.inits), or an arch with its own init.
MODEL_NAMES = ARCHS + tuple(f"{a}_{i}" for a in ARCHS for i in INITS[a])


def model_arch(name: str) -> str:
    """The architecture of a model name: "lstm_chrono" -> "lstm"."""
    return name.split("_", 1)[0]


def model_title(name: str) -> str:
    """For a menu of model names: "LSTM" (init chosen elsewhere), "RNN (identity, relu)", "LSTM (chrono)"."""
    arch, _, init = name.partition("_")
    return model_label(arch, init) if init else arch.upper()


def model_label(arch: str, init: str, nonlinearity: str | None = None) -> str:
    """For people: "RNN", "LSTM (forget bias)", "RNN (identity, relu)"."""
    notes = [init.replace("_", " ")] if init != "default" else []
    if arch == "rnn" and (nonlinearity or ("relu" if init == "identity" else "tanh")) == "relu":
        notes.append("relu")  # identity init makes a relu network (IRNN) unless told otherwise
    return f"{arch.upper()} ({', '.join(notes)})" if notes else arch.upper()


@dataclass(frozen=True)
class TrainConfig:
    """One training run of every arch in `archs` (same seed, same batches)."""

    task: str = "adding"
    lag: int = 50  # adding: sequence length; copy_memory: blanks between symbols and recall
    hidden_size: int = 32
    archs: tuple[str, ...] = ("rnn", "lstm", "gru")  # models: "lstm", or with its own init "lstm_chrono"
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

    def init(self, name: str) -> str:
        """The init of a model name: its own ("lstm_chrono") or inits[arch]; PyTorch's default if neither."""
        arch, _, own = name.partition("_")
        return own or self.inits.get(arch, "default")

    def problem(self) -> str | None:
        """What check() would say, or None if the settings are fine."""
        try:
            self.check()
        except ValueError as err:
            return str(err)
        return None

    def check(self) -> None:
        """ValueError naming the first bad setting and what is allowed."""
        task = get_task(self.task)
        check_lag(task, self.lag)
        if (
            not self.archs
            or any(model_arch(a) not in ARCHS for a in self.archs)
            or len(set(self.archs)) != len(self.archs)
        ):
            raise ValueError(
                f"archs must be distinct model names from {ARCHS}, each optionally with its init "
                f"('lstm_chrono'), got {self.archs!r}"
            )
        seen = {}
        for name in self.archs:
            arch, init = model_arch(name), self.init(name)
            if init not in INITS[arch]:
                raise ValueError(f"init for {arch!r} must be one of {INITS[arch]}, got {init!r}")
            if (arch, init) in seen:
                same = model_label(arch, init)
                raise ValueError(f"{seen[arch, init]!r} and {name!r} are the same model ({same}): drop one")
            seen[arch, init] = name
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

    arch: str  # "rnn" | "lstm" | "gru"
    label: str  # "LSTM (chrono)"
    model: str  # the name in TrainConfig.archs: "lstm", "lstm_chrono"
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

    def __init__(self, name: str, config: TrainConfig, input_size: int, output_size: int):
        arch, init = model_arch(name), config.init(name)
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
        self.name, self.arch = name, arch
        self.label = model_label(arch, init, getattr(self.instrumented, "nonlinearity", "tanh"))
        self.recurrent = self.instrumented.fused()
        readout_draws = torch.Generator().manual_seed(config.seed)  # as nn.Linear after manual_seed
        self.readout = seeded_linear(config.hidden_size, output_size, readout_draws)
        self.params = [*self.recurrent.parameters(), *self.readout.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr)
        self.loss, self.norm, self.norm_clipped = [], [], []
        self.eval_steps, self.test_loss, self.test_accuracy = [], [], []
        self.snapshot_steps, self.grad_h, self.gate_hist = [], [], []
        self.seconds = 0.0


class Trainer:
    """Trains every model of a TrainConfig in lock step; `advance(n)` runs n more steps."""

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
        self._lock = threading.RLock()  # held for each step, pause() and results()
        self.paused = False  # set by pause(): advance() trains no more until resume()
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
        `seconds` have passed (so a page can redraw), or once pause() is called (from any thread);
        returns the steps taken."""

        def step() -> bool:
            with self._lock:
                if self.paused:
                    return False
                self._train_step()
                return True

        with one_thread():  # small recurrent steps run fastest on one thread; this thread's alone
            return run_steps(step, lambda: self.done, n, seconds)

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
        with self._lock:
            for run in self.runs.values():
                if run.eval_steps[-1] != self.step:
                    self._evaluate(run)
                    self._snapshot(run)

    def pause(self) -> int:
        """Stop an advance() running in any thread after its current step, then finish(); returns
        the step every model stands at. advance() does nothing more until resume()."""
        with self._lock:  # waits for the step in flight
            self.paused = True
            self.finish()
            return self.step

    def resume(self) -> None:
        """Let advance() train again after pause()."""
        with self._lock:
            self.paused = False

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
        """model name -> TrainingResult of everything trained so far (copies; training may go on)."""
        with self._lock:
            return {name: self._result(run) for name, run in self.runs.items()}

    def _result(self, run: _Run) -> TrainingResult:
        return TrainingResult(
            arch=run.arch,
            label=run.label,
            model=run.name,
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

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        """The recurrent layer's weights: loads into torch.nn.RNN/LSTM/GRU and into build_model(arch, ...)."""
        with self._lock:
            return {k: v.detach().clone() for k, v in self.runs[name].recurrent.state_dict().items()}

    def checkpoint(self, name: str) -> dict:
        """What `record_trained` needs: {"arch", "label", "step", "nonlinearity" (the RNN's),
        "recurrent" (state dict), "readout" (nn.Linear state dict), "config" (TrainConfig as a dict)}."""
        run = self.runs[name]
        config = asdict(self.config) | {"inits": dict(self.config.inits)}
        return {
            "arch": run.arch,
            "label": run.label,
            "step": self.step,
            "nonlinearity": getattr(run.instrumented, "nonlinearity", "tanh"),
            "recurrent": self.state_dict(name),
            "readout": {k: v.detach().clone() for k, v in run.readout.state_dict().items()},
            "config": config,
        }

    def checkpoints(self) -> dict[str, dict]:
        """arch -> checkpoint of the first model of each architecture (what other pages inspect)."""
        out: dict[str, dict] = {}
        for name, run in self.runs.items():
            if run.arch not in out:
                out[run.arch] = self.checkpoint(name)
        return out

    def model_bytes(self, name: str) -> bytes:
        """torch.save of state_dict(name): the .pt a user downloads."""
        buffer = io.BytesIO()
        torch.save(self.state_dict(name), buffer)
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


def run_steps(step: Callable[[], bool], done: Callable[[], bool], n: int, seconds: float | None) -> int:
    """Call step() up to n times until done(), stopping early once `seconds` have passed (so a page
    can redraw) or when step() returns False. Returns the steps taken. The Training lab's and the
    char-model trainers' loop. It leaves torch's thread count alone: torch.set_num_threads is the
    whole process's, and a server trains for several users at once (passes.one_thread limits the
    calling thread only)."""
    taken, start = 0, time.perf_counter()
    while taken < n and not done():
        if seconds is not None and taken and time.perf_counter() - start > seconds:
            break
        if not step():
            break
        taken += 1
    return taken


def record_trained(checkpoint: Mapping, *, batch_size: int = 8, seed: int = 0) -> Recording:
    """record() a Trainer.checkpoint on fresh sequences of its own task, the task loss of each
    sequence entering at the last step through its readout."""
    config = checkpoint["config"]
    task = get_task(config["task"])
    loaded = model_from_dict(checkpoint)  # the one state-dict-to-model path (lstm_viz.loading)
    x, y = make_batch(task.name, batch_size, config["lag"], seed=seed)
    grad_output = task_grad_output(task.name, loaded.readout, loaded.module, x, y)
    label = f"{checkpoint['label']}, trained {checkpoint['step']} steps"
    return record(loaded.module, x, grad_output=grad_output, label=label, meta={"task": task.name, **config})


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
