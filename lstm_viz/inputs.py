"""Seeded input sequences of shape (B, T, I), and a registry name -> generator.

Every generator takes (batch_size, seq_len, input_size, generator) and returns a
float32 tensor; `make_input` seeds it, checks the sizes and picks by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .checks import check_int, check_seed

MAX_SEQ_LEN = 10_000
MAX_BATCH_SIZE = 1024


def gaussian(batch_size: int, seq_len: int, input_size: int, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise."""
    return torch.randn(batch_size, seq_len, input_size, generator=generator)


def uniform(batch_size: int, seq_len: int, input_size: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform noise on [-1, 1)."""
    return 2 * torch.rand(batch_size, seq_len, input_size, generator=generator) - 1


def sine(batch_size: int, seq_len: int, input_size: int, generator: torch.Generator) -> torch.Tensor:
    """A sine per feature with random period (8 to 64 steps) and phase, plus noise of sd 0.1."""
    t = torch.arange(seq_len, dtype=torch.float32).view(1, seq_len, 1)
    period = 8 + 56 * torch.rand(batch_size, 1, input_size, generator=generator)
    phase = 2 * math.pi * torch.rand(batch_size, 1, input_size, generator=generator)
    noise = 0.1 * torch.randn(batch_size, seq_len, input_size, generator=generator)
    return torch.sin(2 * math.pi * t / period + phase) + noise


def adding(batch_size: int, seq_len: int, input_size: int, generator: torch.Generator) -> torch.Tensor:
    """Adding-problem input: feature 0 uniform values on [0, 1), feature 1 two markers.

    One marker falls in the first half of the sequence, one in the second (Hochreiter &
    Schmidhuber 1997); features beyond the second are zero. Needs input_size >= 2.
    """
    if input_size < 2:
        raise ValueError(f"the adding input needs input_size >= 2 (values, markers), got {input_size}")
    if seq_len < 2:
        raise ValueError(f"the adding input needs seq_len >= 2, got {seq_len}")
    x = torch.zeros(batch_size, seq_len, input_size)
    x[:, :, 0] = torch.rand(batch_size, seq_len, generator=generator)
    half = seq_len // 2
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, seq_len, (batch_size,), generator=generator)
    rows = torch.arange(batch_size)
    x[rows, first, 1] = 1.0
    x[rows, second, 1] = 1.0
    return x


INPUTS: dict[str, Callable[..., torch.Tensor]] = {
    "gaussian": gaussian,
    "uniform": uniform,
    "sine": sine,
    "adding": adding,
}


def make_input(kind: str, batch_size: int, seq_len: int, input_size: int, *, seed: int = 0) -> torch.Tensor:
    """A seeded (batch_size, seq_len, input_size) float32 sequence of the named kind."""
    if kind not in INPUTS:
        raise ValueError(f"input kind must be one of {sorted(INPUTS)}, got {kind!r}")
    for name, value, high in (
        ("batch_size", batch_size, MAX_BATCH_SIZE),
        ("seq_len", seq_len, MAX_SEQ_LEN),
        ("input_size", input_size, 4096),
    ):
        check_int(name, value, 1, high)
    generator = torch.Generator().manual_seed(check_seed(seed))
    return INPUTS[kind](batch_size, seq_len, input_size, generator)
