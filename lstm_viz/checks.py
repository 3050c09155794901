"""Argument checks shared by the library, so every range error reads the same way."""

from __future__ import annotations


def check_int(name: str, value: object, low: int, high: int) -> int:
    """value, if it is an integer in [low, high] (bools are not); else a ValueError naming the range:
    "hidden_size must be an integer between 1 and 4096, got 0"."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer between {low} and {high}, got {value!r}")
    return value
