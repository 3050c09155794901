"""Long-range tasks for training: seeded batches (inputs, targets) and the score to beat.

Each task turns a lag T into sequences whose answer depends on something T steps back,
and knows the loss of the best predictor that remembers nothing (its baseline): a
model has learned to remember only once its loss is clearly below that line.

    adding       The form of Le, Jaitly & Hinton 2015: T values uniform on [0, 1) and two
                 markers, one in each half; the target is the sum X1 + X2 of the two marked
                 values. Always answering the mean (1) scores MSE = Var(U1 + U2) = 2/12 = 1/6.
                 (Hochreiter & Schmidhuber 1997, who introduced the task, drew values from
                 [-1, 1] and asked for 0.5 + (X1 + X2)/4.)
    copy_memory  Arjovsky et al. 2016: 10 symbols from 8 categories, T - 1 blanks, a
                 delimiter, 10 more blanks; the output is T + 10 blanks and then the 10
                 symbols. Predicting blank, then uniform guesses, scores
                 cross-entropy 10 ln 8 / (T + 20) per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from . import inputs
from .checks import check_int, check_seed

MAX_LAG = 10_000
MAX_BATCH_SIZE = 4096
COPY_SYMBOLS = 8  # categories 0..7 are data
COPY_LENGTH = 10  # how many symbols to remember
COPY_BLANK = 8
COPY_DELIMITER = 9


def adding(batch_size: int, lag: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem: x (B, T, 2) float32 (values, markers), y (B,) the sum of the marked values."""
    x = inputs.adding(batch_size, lag, 2, generator)
    y = (x[:, :, 0] * x[:, :, 1]).sum(dim=1)
    return x, y


def copy_memory(batch_size: int, lag: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy-memory task: x (B, T + 20, 10) one-hot float32, y (B, T + 20) int64 categories.

    Categories 0..7 are symbols, 8 is blank, 9 the delimiter (at step T + 9, after the
    10 symbols and T - 1 blanks). The target is blank everywhere except the last 10
    steps, which repeat the 10 symbols in order.
    """
    length = lag + 2 * COPY_LENGTH
    symbols = torch.randint(0, COPY_SYMBOLS, (batch_size, COPY_LENGTH), generator=generator)
    seq = torch.full((batch_size, length), COPY_BLANK, dtype=torch.int64)
    seq[:, :COPY_LENGTH] = symbols
    seq[:, lag + COPY_LENGTH - 1] = COPY_DELIMITER
    target = torch.full((batch_size, length), COPY_BLANK, dtype=torch.int64)
    target[:, -COPY_LENGTH:] = symbols
    return F.one_hot(seq, COPY_DELIMITER + 1).float(), target


@dataclass(frozen=True)
class Task:
    """A task's shape, loss and baseline; `generate(batch_size, lag, generator)` -> (x, y)."""

    name: str
    title: str  # for people: "Adding problem"
    input_size: int  # features per step
    output_size: int  # 1 (regression) or number of classes
    loss: str  # "mse" on the last step | "cross_entropy" on every step
    generate: Callable[[int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    memoryless_loss: Callable[[int], float]  # lag -> loss of the best predictor that remembers nothing
    extra_steps: int  # sequence length = lag + extra_steps
    min_lag: int
    source: str = ""  # whose form of the task this is, for people

    def seq_len(self, lag: int) -> int:
        """Steps the network reads for this lag."""
        return lag + self.extra_steps

    def baseline(self, lag: int) -> float:
        """Loss of the best predictor that remembers nothing (the line to get below)."""
        return self.memoryless_loss(lag)

    def batch(
        self, batch_size: int, lag: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch drawn from `generator`: x (B, seq_len, input_size), y as in the task's function."""
        check_lag(self, lag)
        check_int("batch_size", batch_size, 1, MAX_BATCH_SIZE)
        return self.generate(batch_size, lag, generator)

    def accuracy(self, prediction: torch.Tensor, y: torch.Tensor) -> float:
        """Adding: fraction of sequences within 0.04 of the target (Hochreiter & Schmidhuber's
        threshold, here on X1 + X2, which spans twice their target's range); copy: fraction of
        the 10 recalled symbols right. prediction is the readout's output: (B,) for adding,
        (B, T + 20, classes) logits for copy."""
        if self.loss == "mse":
            return float(((prediction - y).abs() < 0.04).float().mean())
        recalled = prediction[:, -COPY_LENGTH:].argmax(dim=-1)
        return float((recalled == y[:, -COPY_LENGTH:]).float().mean())


TASKS: dict[str, Task] = {
    "adding": Task(
        name="adding", title="Adding problem", input_size=2, output_size=1, loss="mse", generate=adding,
        # always answering E[U1 + U2] = 1 scores Var(U1 + U2) = 2 Var(U) = 2/12
        memoryless_loss=lambda lag: 2 / 12, extra_steps=0, min_lag=2,
        source="Le, Jaitly & Hinton (2015)'s form: values uniform on [0, 1], target X1 + X2. Hochreiter & "
        "Schmidhuber (1997), who introduced it, used values in [-1, 1] and target 0.5 + (X1 + X2)/4.",
    ),
    "copy_memory": Task(
        name="copy_memory", title="Copy memory", input_size=COPY_DELIMITER + 1, output_size=COPY_BLANK + 1,
        loss="cross_entropy", generate=copy_memory,
        # blank for sure on T + 10 steps, a uniform guess among 8 symbols (ln 8 nats) on the last 10
        memoryless_loss=lambda lag: COPY_LENGTH * math.log(COPY_SYMBOLS) / (lag + 2 * COPY_LENGTH),
        extra_steps=2 * COPY_LENGTH, min_lag=1,
        source="Arjovsky, Shah & Bengio (2016)'s form: 10 symbols from 8 categories, recalled after "
        "T - 1 blanks and a delimiter.",
    ),
}  # fmt: skip


def get_task(name: str) -> Task:
    """The task registered under `name`; ValueError listing the names otherwise."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name]


def check_lag(task: Task, lag: int) -> None:
    """ValueError unless lag is an integer in [task.min_lag, MAX_LAG]."""
    check_int(f"lag for {task.name!r}", lag, task.min_lag, MAX_LAG)


def make_batch(task: str, batch_size: int, lag: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch of the named task: (x, y) as documented on `adding` / `copy_memory`."""
    return get_task(task).batch(batch_size, lag, torch.Generator().manual_seed(check_seed(seed)))
