"""Serving many users: the line for heavy work, the byte-bounded store, memory handed back, training
that leaves torch's thread count alone, the Cancel path of a page, and a small load test in Chromium."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CHROMIUM, _missing
from pagetest import ROOT

from lstm_viz.settings import Settings, complete, run
from lstm_viz.training import TrainConfig, Trainer
from lstm_viz.workers import Line, Store, nbytes, release_memory


def _hold_turns(line: Line, n: int, hold_s: float, log: list, peak: list) -> list[threading.Thread]:
    """n threads that each take a turn, hold it hold_s seconds and log (start, end) in order."""
    busy = [0]
    lock = threading.Lock()

    def work(k: int) -> None:
        with line.turn():
            with lock:
                busy[0] += 1
                peak.append(busy[0])
                log.append(("start", k))
            time.sleep(hold_s)
            with lock:
                busy[0] -= 1

    threads = []
    for k in range(n):
        threads.append(threading.Thread(target=work, args=(k,)))
        threads[-1].start()
        time.sleep(0.05)  # join the line in order 0, 1, 2, ...
    return threads


def test_the_line_runs_at_most_workers_at_once_in_arrival_order():
    line, log, peak = Line(workers=2), [], []
    threads = _hold_turns(line, 6, 0.2, log, peak)
    for thread in threads:
        thread.join(10)
    assert max(peak) == 2
    assert [k for _, k in log] == list(range(6))
    assert line.running == 0 and line.waiting == 0


def test_a_waiter_hears_how_many_runs_are_ahead_and_can_leave_the_line():
    line = Line(workers=1)
    release, heard, left = threading.Event(), [], []

    def first() -> None:
        with line.turn():
            release.wait(10)

    def second() -> None:
        def on_wait(ahead: int) -> None:
            heard.append(ahead)
            if len(heard) == 2:
                raise KeyboardInterrupt  # like Streamlit stopping a script whose user left

        try:
            with line.turn(on_wait, poll=0.05):
                pass
        except KeyboardInterrupt:
            left.append(True)

    holder = threading.Thread(target=first)
    holder.start()
    time.sleep(0.05)
    third_heard: list[int] = []
    third_in, third_done = threading.Event(), threading.Event()

    def third() -> None:
        with line.turn(third_heard.append, poll=0.05):
            third_in.set()
            third_done.wait(10)

    quitter = threading.Thread(target=second)
    quitter.start()
    time.sleep(0.02)
    waiter = threading.Thread(target=third)
    waiter.start()
    quitter.join(5)
    assert left and heard == [1, 1]  # the running one was ahead of it
    time.sleep(0.2)
    assert third_heard[0] == 2 and third_heard[-1] == 1  # the one that left no longer counts
    release.set()
    assert third_in.wait(5)
    assert line.waiting == 0 and line.running == 1
    third_done.set()
    waiter.join(5)
    assert line.running == 0


def test_a_line_needs_a_worker():
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        Line(0)


@dataclass(frozen=True)
class _Result:
    a: np.ndarray
    parts: dict


def test_nbytes_counts_every_array_once_including_views():
    base = np.zeros((4, 100), np.float32)  # 1600 bytes
    result = _Result(base[:2], {"x": base[2:], "y": np.ones(10), "none": None, "list": [np.ones(3, np.int8)]})
    assert nbytes(result) == 1600 + 80 + 3
    rec = run(Settings(**complete({"seq_len": 12, "hidden_size": 5})), "lstm")
    arrays = [rec.hidden, rec.cell, rec.weight_hh, rec.log10_grad_h, rec.log10_grad_c, rec.log10_grad_x]
    arrays += list(rec.gates.values())
    roots = {}
    for array in arrays:
        while isinstance(array.base, np.ndarray):
            array = array.base
        roots[id(array)] = array.nbytes
    assert nbytes(rec) == sum(roots.values()) > rec.hidden.nbytes * 6


def test_the_store_is_bounded_by_bytes_and_drops_the_least_recently_used():
    store = Store(max_bytes=3000)
    for key in "abc":
        store.put(key, np.zeros(1000, np.uint8))
    assert store.bytes == 3000 and len(store) == 3
    store.get("a")  # now the most recently used
    store.put("d", np.zeros(1500, np.uint8))
    assert store.get("b") is None and store.get("c") is None  # 1000 + 1000 + 1500 > 3000: two had to go
    assert store.get("a") is not None and store.get("d") is not None and store.bytes == 2500
    store.put("huge", np.zeros(3001, np.uint8))  # larger than the whole store: not kept, nothing dropped
    assert store.get("huge") is None and store.bytes == 2500


def test_the_store_lets_results_go_that_nobody_asked_for():
    now = [0.0]
    store = Store(max_bytes=10_000, max_idle_s=60, clock=lambda: now[0])
    store.put("old", np.zeros(100))
    store.put("used", np.zeros(100))
    now[0] = 50
    store.get("used")
    now[0] = 100
    assert store.expire() == 1
    assert store.get("old") is None and store.get("used") is not None and store.bytes == 800


def _rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6


def test_release_memory_hands_freed_heap_back_to_the_system():
    # 32 KB arrays (below mmap's threshold: on the heap), each followed by a small one that stays:
    # the freed blocks cannot merge into the heap's top, so free() alone returns none of them.
    arrays, kept = [], []
    for _ in range(20_000):
        arrays.append(np.ones(4096))
        kept.append(np.ones(200))  # 1.6 KB: above numpy's own cache of small blocks
    del arrays
    before = _rss_mb()
    assert release_memory()
    assert _rss_mb() < before - 150  # a good part of the 650 MB freed went back (250-300 MB here)
    del kept


def test_training_leaves_torch_thread_count_alone_for_other_sessions():
    """A session's training must not change the thread count that other sessions' threads get."""
    process_threads = torch.get_num_threads()
    seen = []

    def look_from_another_thread() -> None:
        probe = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        probe.start()
        probe.join()

    trainer = Trainer(
        TrainConfig(task="adding", lag=5, hidden_size=4, archs=("lstm",), steps=3, test_size=8, probe_size=2)
    )
    real_step = trainer._train_step

    def step() -> None:
        look_from_another_thread()
        real_step()

    trainer._train_step = step
    training = threading.Thread(target=trainer.advance, args=(3,))  # as a page's script thread would
    training.start()
    training.join(30)
    assert trainer.step == 3 and seen == [process_threads] * 3
    assert torch.get_num_threads() == process_threads


def test_a_cancelled_heavy_run_waits_for_run_again(monkeypatch):
    """Cancel leaves the page with a Run again button and no run; Run again runs it."""
    import ui

    monkeypatch.setattr(ui, "HEAVY_CELLS", 0)  # every run waits its turn
    calls = []
    real_run = ui.run
    monkeypatch.setattr(ui, "run", lambda *a, **k: calls.append(a[1]) or real_run(*a, **k))
    settings = Settings(**complete({"seq_len": 20, "hidden_size": 8, "seed": 4242}))
    runs = [(settings, "rnn"), (settings, "lstm"), (settings.replace(lstm_init="chrono"), "lstm")]
    keys = [(a, astuple(s)) for s, a in runs]
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(ROOT / "app.py", default_timeout=60)
    at.query_params.update({"seq_len": "20", "hidden_size": "8", "seed": "4242"})
    at.session_state[ui._CANCELLED] = keys
    at.run()
    assert not at.exception and calls == []
    assert [i.value for i in at.info] == ["Run cancelled."] and not at.get("plotly_chart")
    at.button(key="ui_run_again").click().run()
    assert not at.exception and calls == ["rnn", "lstm", "lstm"]
    assert len(at.get("plotly_chart")) >= 1 and ui._CANCELLED not in at.session_state


def _load_test():
    spec = importlib.util.spec_from_file_location("load_test", ROOT / "benchmarks" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.browser
def _run(coroutine):
    """asyncio.run on a thread of its own: in a full test run, playwright's sync API (the other
    browser tests) leaves an event loop running on the main thread, where asyncio.run refuses."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_small_load_every_chart_matches_the_command_line_and_heavy_runs_queue():
    """5 light sessions (one moving a slider) draw what the command line records; with one worker,
    3 heavy sessions take turns (one at least sees the line) and a light page still renders."""
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM}")
    if importlib.util.find_spec("playwright") is None:
        _missing("the playwright Python package is not installed (pip install playwright)")
    lt = _load_test()
    with lt.serve({"LSTM_VIZ_WORKERS": "1"}) as (url, _):
        light = _run(lt.light_scenario(url, 5, 60, arrive_over_s=1))
        assert light["errors"] == [] and light["renders"] == 6 and light["equal_cli"] == 5
        # T * H just above ui.HEAVY_CELLS: quick runs, yet they wait their turn
        heavy = _run(lt.heavy_scenario(url, 3, 60, 0.5, heavy={"seq_len": 4000, "hidden_size": 256}))
    assert heavy["errors"] == [] and heavy["rendered"] == 3
    assert heavy["waited"] >= 1
    assert heavy["light_s"] < 20  # generous for busy CI machines; the load test reports the real figure


@pytest.mark.parametrize("batch", [1, 2, 9])
def test_batch_percentile_equals_numpys_nanpercentile(batch):
    """The fast paths (no NaN; one sample) give numpy's numbers, -inf (a zero gradient) ignored."""
    import warnings

    from lstm_viz.analysis import batch_percentile

    values = np.random.default_rng(batch).normal(size=(batch, 50)).astype(np.float32)
    for case in ("finite", "zeros"):
        if case == "zeros":
            values[0, 3] = values[-1, 7] = -np.inf
        finite = np.where(np.isfinite(values), values, np.nan)
        for q in (25, 50, 75):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                expected = np.nanpercentile(finite, q, axis=0)
            got = batch_percentile(values, q)
            assert got.dtype == expected.dtype and np.array_equal(got, expected, equal_nan=True)


def test_a_download_does_not_keep_its_recordings_alive():
    """The CSV button's function holds store keys, not arrays: once the page lets a recording go,
    it is freed; a click records it again from its settings, with the same numbers."""
    import gc
    import weakref

    import ui

    settings = Settings(**complete({"seq_len": 15, "hidden_size": 6, "seed": 31337}))
    rec = run(settings, "gru")
    expected = rec.log10_grad_h.copy()
    ui._MADE[rec] = ("gru", astuple(settings))  # as ui.recordings registers what it made
    recall = ui._recall([rec])
    alive = weakref.ref(rec)
    del rec
    gc.collect()
    assert alive() is None
    (again,) = recall()
    assert again.arch == "gru" and np.array_equal(again.log10_grad_h, expected)


def test_a_long_connectivity_map_waits_its_turn_and_a_short_one_does_not(monkeypatch):
    from pagetest import run_page

    import ui

    line, taken = Line(1), []
    real_turn = line.turn
    monkeypatch.setattr(line, "turn", lambda *a, **k: taken.append(1) or real_turn(*a, **k))
    monkeypatch.setattr(ui, "_heavy_line", lambda: line)
    at = run_page("pages/9_Connectivity.py", {"seq_len": "12", "hidden_size": "4", "seed": "7071"})
    assert taken == [] and len(at.get("plotly_chart")) == 2  # light: no turn taken
    monkeypatch.setattr(ui, "HEAVY_WORK", 0)  # every map is long now
    at = run_page("pages/9_Connectivity.py", {"seq_len": "12", "hidden_size": "4", "seed": "7072"})
    assert taken == [1, 1] and len(at.get("plotly_chart")) == 2 and line.running == 0


def test_a_long_phase_grid_waits_its_turn(monkeypatch):
    from pagetest import run_page

    import ui

    line, taken = Line(1), []
    real_turn = line.turn
    monkeypatch.setattr(line, "turn", lambda *a, **k: taken.append(1) or real_turn(*a, **k))
    monkeypatch.setattr(ui, "_heavy_line", lambda: line)
    small = {
        "hidden_size": "4",
        "input_size": "2",
        "phase_seq_len": "12 20",
        "phase_seeds": "1",
        "seed": "9091",
    }
    at = run_page("pages/5_Phase_diagram.py", small, errors_allowed=True)
    assert taken == [] and not at.exception  # a small grid starts at once
    monkeypatch.setattr(ui, "HEAVY_CELLS", 0)
    at = run_page("pages/5_Phase_diagram.py", small | {"seed": "9092"}, errors_allowed=True)
    assert taken == [1] and not at.exception and line.running == 0
    assert at.get("plotly_chart")


def test_a_pages_shared_cache_keeps_one_copy_in_the_byte_bounded_store(monkeypatch):
    """ui.shared (the Text, Your model, Theory and Connectivity pages' cache): a result is computed
    once for equal arguments (uploaded bytes by their digest), handed to every caller as the same
    object, kept in the store whose bytes are bounded, and heavy work waits its turn in the line."""
    import ui

    store, line, calls, turns = Store(10_000), Line(1), [], []
    monkeypatch.setattr(ui, "_store", lambda: store)
    monkeypatch.setattr(ui, "_heavy_line", lambda: line)
    real_turn = line.turn
    monkeypatch.setattr(line, "turn", lambda on_wait: turns.append(1) or real_turn(on_wait))

    @ui.shared(heavy=lambda data, n: n > 100)
    def work(data: bytes, n: int) -> np.ndarray:
        calls.append((data, n))
        return np.zeros(n, dtype=np.uint8)

    first = work(b"model", 10)
    assert work(b"model", 10) is first and len(calls) == 1 and turns == []
    assert work(b"other", 10) is not first and len(calls) == 2
    big = work(b"model", 1000)
    assert turns == [1] and big.nbytes == 1000 and store.bytes == 1020
    work(b"model", 9_000)  # over the bound together with the rest: the least recently used go
    assert store.bytes <= 10_000 and work(b"model", 10) is not first and len(calls) == 5
