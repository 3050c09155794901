"""The same recording twice gives the same bits: in one process, in two processes, on one
thread or two, whatever memory the run is given (issue #14, item 2)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lstm_viz
from lstm_viz import passes
from lstm_viz.record import SPLIT_BATCH

ROOT = Path(__file__).resolve().parents[1]


def fingerprint(rec: lstm_viz.Recording) -> str:
    """sha256 of every array of every layer and direction (the bits, not the values)."""
    digest = hashlib.sha256()
    for layer in range(rec.num_layers):
        for direction in range(rec.num_directions):
            one = rec.layer(layer, direction)
            arrays = [one.log10_grad_h, one.log10_grad_c, one.log10_grad_x, one.hidden, one.cell]
            for array in [*arrays, *one.gates.values()]:
                if array is not None:
                    digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(np.ascontiguousarray(rec.log10_grad_x).tobytes())
    return digest.hexdigest()


def run(arch: str, seq_len: int, batch_size: int, num_layers: int = 1, bidirectional: bool = False):
    model = lstm_viz.build_model(arch, 3, 16, seed=5, num_layers=num_layers, bidirectional=bidirectional)
    x = lstm_viz.make_input("gaussian", batch_size, seq_len, 3, seed=5)
    return lstm_viz.record(model, x)


CASES = [("rnn", 400, 3, 1, False), ("lstm", 400, 3, 1, False), ("gru", 400, 3, 1, False),
         ("lstm", 400, 1, 1, False), ("lstm", 120, 2, 2, True)]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_repeats_in_one_process_are_bit_identical(case):
    first = fingerprint(run(*case))
    assert all(fingerprint(run(*case)) == first for _ in range(3))


class _LeftoverMemory:
    """numpy, except that np.empty hands out memory full of `fill`, as reused memory may hold
    anything: a pass that read an entry before writing it would see it."""

    def __init__(self, fill: float):
        self.fill = fill

    def __getattr__(self, name):
        return getattr(np, name)

    def empty(self, shape, dtype=float, **kwargs):
        return np.full(shape, self.fill, dtype)


@pytest.mark.parametrize("fill", [np.nan, 1e30, 0.0])
@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_no_entry_is_read_before_it_is_written(monkeypatch, arch, fill):
    clean = fingerprint(run(arch, 400, 3))
    monkeypatch.setattr(passes, "np", _LeftoverMemory(fill))
    assert fingerprint(run(arch, 400, 3)) == clean


@pytest.mark.parametrize("case", [("lstm", 60, SPLIT_BATCH + 1, 1, False), ("gru", 60, 2, 2, True)])
def test_thread_count_does_not_change_a_bit(monkeypatch, case):
    """A batch of SPLIT_BATCH or more runs as two halves, and a bidirectional layer's directions
    side by side, on two threads where there are two, one after the other where not: same bits."""
    fingerprints = set()
    for threads in (1, 2):
        monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        fingerprints.add(fingerprint(run(*case)))
    assert len(fingerprints) == 1


def test_torch_thread_setting_does_not_change_a_bit():
    """torch.set_num_threads sets MKL's process-wide count; torch's fused GRU forward rounds
    differently on two MKL threads (H = 128, B = 5 here), so record() sets its thread's own."""
    model = lstm_viz.build_model("gru", 8, 128, seed=1)
    x = lstm_viz.make_input("gaussian", 5, 200, 8, seed=1)
    before = torch.get_num_threads()
    try:
        fingerprints = set()
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            fingerprints.add(fingerprint(lstm_viz.record(model, x)))
    finally:
        torch.set_num_threads(before)
    assert len(fingerprints) == 1


def test_a_second_process_gives_the_same_bits():
    cases = [("lstm", 400, 3, 1, False), ("gru", 120, 2, 2, True)]
    script = (
        "import json, sys; sys.path.insert(0, 'tests'); import test_repeat as t; "
        f"print(json.dumps([t.fingerprint(t.run(*c)) for c in {cases!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    assert theirs == [fingerprint(run(*case)) for case in cases]


def test_halves_run_one_after_the_other_report_progress_from_start_to_end(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    model = lstm_viz.build_model("lstm", 3, 16, seed=5)
    reported = []
    rec = lstm_viz.record(
        model, lstm_viz.make_input("gaussian", SPLIT_BATCH, 60, 3, seed=5), progress=reported.append
    )
    assert rec.batch_size == SPLIT_BATCH
    assert reported == sorted(reported) and reported[-1] == 1.0
    assert any(0.4 < f < 0.6 for f in reported)  # the first half ends half way, not at the end


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_a_sample_alone_and_inside_a_batch_agree_to_the_documented_bound(arch):
    """Not bit-identical by design (a batch's matrix products round in another order), but within
    the bound docs/engine.md states: a few 1e-6 decades at T = 1500, H = 64, batch of 9 (2.8e-6,
    8.7e-7 and 6.2e-7 measured for the RNN, LSTM and GRU here); held under 1e-5."""
    model = lstm_viz.build_model(arch, 3, 64, seed=5)
    x = lstm_viz.make_input("gaussian", 9, 1500, 3, seed=5)
    batch = lstm_viz.record(model, x)
    for sample in (0, 4, 8):
        alone = lstm_viz.record(model, x[sample : sample + 1])
        gap = np.abs(alone.log10_grad_h[0] - batch.log10_grad_h[sample]).max()
        assert 0 <= gap <= 1e-5, (arch, sample, gap)
