"""Argument checks shared by the library, so every range error reads the same way."""

from __future__ import annotations

import math
import numbers


def shown(raw: object, limit: int = 24) -> str:
    """raw as a message quotes it: a 20,000-digit number or a long text cut to `limit` characters
    and the count of the rest, so that a bad value never floods a message."""
    text = str(raw)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def check_int(name: str, value: object, low: int, high: int, typed: str | None = None) -> int:
    """value, if it is an integer in [low, high] (bools are not); else a ValueError naming the range:
    "hidden_size must be an integer between 1 and 4096, got 0". typed: the text the value was read
    from, which the message quotes instead ("1e400", not the inf that float() made of it)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        got = shown(repr(value) if typed is None else typed)
        raise ValueError(f"{name} must be an integer between {low} and {high}, got {got}")
    return value


MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes up to 2**64 - 1; derived seeds add to it


def check_seed(seed: object) -> int:
    """seed as an int, if it is an integer (Python's or numpy's) from 0 to MAX_SEED; else a ValueError
    naming the range: "seed must be an integer between 0 and 9223372036854775807, got 1.5"."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        seed = int(seed)
    return check_int("seed", seed, 0, MAX_SEED)


def check_float(name: str, value: object, low: float, high: float, typed: str | None = None) -> float:
    """value as a float, if it is a finite number in [low, high]; else a ValueError naming the range:
    "forget_bias must be a number between -50 and 50, got 1e+300" (typed: as in check_int)."""
    try:
        number = float(value)  # an int too large for a float raises OverflowError
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        got = shown(repr(value) if typed is None else typed)
        raise ValueError(f"{name} must be a number between {low:g} and {high:g}, got {got}")
    return number


def finite_number(raw: str) -> bool | None:
    """Whether the text raw reads as a finite number (None: it is no number at all). "inf", "nan",
    "1e400" and a 400-digit integer read as numbers that are not finite."""
    try:
        return math.isfinite(float(raw))
    except (TypeError, ValueError):
        return None
