"""Serving many users from one process: a first-come-first-served line for heavy work, a store of
results bounded by bytes, and handing freed memory back to the system.

    line = Line(workers=1)
    with line.turn(on_wait=lambda ahead: print(f"waiting, {ahead} runs ahead")):
        rec = record(model, x)          # at most `workers` of these run at once

The work runs in the caller's own thread once its turn comes, so a progress callback there can
draw; a caller that stops waiting (an exception from on_wait, e.g. a page whose user left or
pressed Cancel) leaves the line. No streamlit here: ui.py draws the waiting message.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass

import numpy as np


def default_workers() -> int:
    """Heavy runs at once: $LSTM_VIZ_WORKERS, else one per two cores (a run uses two threads)."""
    return max(1, int(os.environ.get("LSTM_VIZ_WORKERS", 0)) or (os.cpu_count() or 2) // 2)


def default_cache_bytes() -> int:
    """Bytes of results the app keeps: $LSTM_VIZ_CACHE_MB megabytes, else 256 MB."""
    return int(float(os.environ.get("LSTM_VIZ_CACHE_MB", 256)) * 1e6)


def default_cache_idle_s() -> float:
    """Seconds a stored result nobody asks for is kept: $LSTM_VIZ_CACHE_IDLE_S, else 120."""
    return float(os.environ.get("LSTM_VIZ_CACHE_IDLE_S", 120))


class Line:
    """A fair queue of turns: at most `workers` turns are taken at once, handed out in the order
    they were asked for."""

    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._changed = threading.Condition()
        self._waiting: list[object] = []  # tickets, oldest first
        self._running = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextmanager
    def turn(self, on_wait: Callable[[int], None] | None = None, poll: float = 0.5) -> Iterator[None]:
        """Wait for a turn, then hold it for the with-block. While waiting, on_wait(ahead) is called
        every `poll` seconds with the runs ahead of this one (running or earlier in line); an
        exception from it leaves the line and propagates."""
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
        try:
            while True:
                with self._changed:
                    place = self._waiting.index(ticket)
                    if place < self.workers - self._running:
                        self._waiting.remove(ticket)
                        self._running += 1
                        break
                    self._changed.wait(poll)
                    place = self._waiting.index(ticket)
                    if place < self.workers - self._running:
                        continue  # our turn came while we slept: take it without a message
                    ahead = self._running + place
                if on_wait is not None:
                    on_wait(ahead)  # outside the lock: it may draw, or raise to leave the line
        except BaseException:
            with self._changed:
                self._waiting.remove(ticket)
                self._changed.notify_all()
            raise
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()


def nbytes(value: object) -> int:
    """Bytes held by the numpy arrays in value (a dataclass, dict, list or tuple of them, nested);
    arrays that are views of one buffer count it once, at its full size."""
    seen: set[int] = set()

    def walk(item: object) -> int:
        if isinstance(item, np.ndarray):
            while isinstance(item.base, np.ndarray):
                item = item.base
            if id(item) in seen:
                return 0
            seen.add(id(item))
            return item.nbytes
        if is_dataclass(item) and not isinstance(item, type):
            return sum(walk(getattr(item, f.name)) for f in fields(item))
        if isinstance(item, dict):
            return sum(walk(v) for v in item.values())
        if isinstance(item, list | tuple):
            return sum(walk(v) for v in item)
        return 0

    return walk(value)


class Store:
    """Results shared by every session, least recently used dropped first once they hold more than
    max_bytes (measured by `nbytes`); a result larger than max_bytes on its own is not kept, and
    one not asked for in max_idle_s seconds goes at the next `expire()`. Results must never be
    changed after they are stored: every session sees the same object."""

    def __init__(
        self, max_bytes: int, max_idle_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.max_bytes, self.max_idle_s, self.bytes, self._clock = max_bytes, max_idle_s, 0, clock
        self._items: OrderedDict[Hashable, list] = OrderedDict()  # key -> [value, size, last used]
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            item = self._items[key]
            item[2] = self._clock()
            return item[0]

    def put(self, key: Hashable, value: object) -> None:
        size = nbytes(value)
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return
            self._items[key] = [value, size, self._clock()]
            self.bytes += size
            while self.bytes > self.max_bytes:
                self.bytes -= self._items.popitem(last=False)[1][1]

    def expire(self) -> int:
        """Drop the results not asked for in max_idle_s seconds; returns how many went."""
        if self.max_idle_s is None:
            return 0
        with self._lock:
            old = [k for k, (_, _, used) in self._items.items() if self._clock() - used > self.max_idle_s]
            for key in old:
                self.bytes -= self._items.pop(key)[1]
        return len(old)

    def sweep_every(self, seconds: float, then: Callable[[], object] | None = None) -> threading.Thread:
        """Call expire() every `seconds` on a daemon thread, and then() after any that dropped results."""

        def sweep() -> None:
            while True:
                time.sleep(seconds)
                if self.expire() and then is not None:
                    then()

        thread = threading.Thread(target=sweep, name="lstm-viz-store-sweep", daemon=True)
        thread.start()
        return thread

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.bytes = 0


def release_memory() -> bool:
    """Collect garbage, then ask glibc to return its free heap pages to the system
    (malloc_trim(0)): numpy's freed buffers otherwise stay in the process. True when glibc
    returned some memory; False when it did not or the C library is not glibc."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return False
    return bool(trim(0))
