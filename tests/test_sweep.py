"""python -m lstm_viz sweep on a real local Ray: the grid, one row per cell, resume, failing cells."""

from __future__ import annotations

import io
import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_viz import analysis, sweep
from lstm_viz.cli import main
from lstm_viz.settings import SETTINGS, Settings, run

ROOT = Path(__file__).resolve().parents[1]
# a 2 x 2 x 2 grid: arch x seq_len x seed, tiny models
TINY = ["--arch", "rnn", "lstm", "--seq-len", "12", "20", "--hidden-size", "4", "--input-size", "2", "-q"]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (its start-up takes seconds), shut down at the end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


def run_sweep(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["sweep", *args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_grid_keeps_settings_that_do_not_act_at_their_default():
    cells = sweep.grid(
        ["rnn", "lstm"],
        {"seq_len": [10, 20], "lstm_init": ["default", "forget_bias"], "forget_bias": [1.0, 3.0]},
    )
    by_arch = {a: [s for arch, s in cells if arch == a] for a in ("rnn", "lstm")}
    # the RNN is not multiplied by the LSTM's settings; the LSTM's default init not by forget_bias
    assert len(by_arch["rnn"]) == 2 and len(by_arch["lstm"]) == 2 * (1 + 2)
    assert all(s.forget_bias == 1.0 and s.lstm_init == "default" for s in by_arch["rnn"])
    assert {(s.lstm_init, s.forget_bias) for s in by_arch["lstm"]} == {
        ("default", 1.0),
        ("forget_bias", 1.0),
        ("forget_bias", 3.0),
    }


def test_grid_refuses_an_axis_that_acts_on_no_cell():
    with pytest.raises(
        ValueError, match="--spectral-radius acts on no cell.*--rnn-init orthogonal or identity"
    ):
        sweep.grid(["rnn", "lstm"], {"spectral_radius": [0.5, 1.5]})
    assert sweep.enabling({}, ["spectral_radius", "seq_len"], "rnn") == {"rnn_init": "orthogonal"}
    assert sweep.enabling({"lstm_init": "chrono"}, ["t_max"], "gru") == {"gru_init": "chrono"}
    cells = sweep.grid(["gru"], {"t_max": [10, 100]}, {"gru_init": "chrono"})
    assert [s.t_max for _, s in cells] == [10, 100]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "2", "--seed", "1"], "--seeds N or --seed values, not both"),
        (["--out", "grid.csv"], "--out must end in .parquet"),
        (["--spectral-radius", "0.5", "1"], "--rnn-init orthogonal or identity"),
        (["--seq-len", "0"], "--seq-len must be an integer between 1 and 10000, got 0"),
        (
            ["--arch", "foo"],
            "invalid choice: 'foo' (choose from 'rnn', 'lstm', 'gru') (see python -m lstm_viz sweep --help)",
        ),
    ],
)
def test_bad_arguments_fail_in_one_line(tmp_path, args, message):
    out = ["--out", str(tmp_path / "grid.parquet")] if "--out" not in args else []
    code, stdout, stderr = run_sweep(*TINY, *out, *args)
    assert code == 2 and stdout == ""
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "grid.parquet").exists()


def test_help_and_import_stay_light():
    # one fresh interpreter: the library imports without Ray, and the command's help lists the flags
    probe = (
        "import sys, lstm_viz, lstm_viz.sweep, lstm_viz.sweep_figures; print('ray' in sys.modules); "
        "from lstm_viz.cli import main; main(['sweep', '--help'])"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("False\nusage: python -m lstm_viz sweep")
    for flag in ("--seeds", "--address", "--max-memory-gb", "--spectral-radius", "--forget-bias", "--out"):
        assert flag in result.stdout


def test_sweep_rows_resume_and_failures(local_ray, tmp_path):
    path = tmp_path / "grid.parquet"
    code, stdout, _ = run_sweep(*TINY, "--seeds", "2", "--out", str(path))
    assert code == 0, stdout
    assert "ran 8 cells" in stdout and "0 failed" in stdout
    first = pd.read_parquet(path)

    # one tidy row per (arch, settings, seed), with every setting as a column
    assert list(first.columns) == list(sweep.COLUMNS)
    assert len(first) == 8 and not first.duplicated(list(sweep.KEYS)).any()
    assert set(map(tuple, first[["arch", "seq_len", "seed"]].to_numpy().tolist())) == {
        (a, t, s) for a in ("rnn", "lstm") for t in (12, 20) for s in (0, 1)
    }
    assert first["error"].isna().all() and (first["hidden_size"] == 4).all()
    assert (first["decades_per_step"] > 0).all() and (first["lyapunov"] < 0).all()
    rnn, lstm = first[first["arch"] == "rnn"], first[first["arch"] == "lstm"]
    assert rnn[["keep_frac_below", "keep_frac_above"]].isna().all().all()
    assert lstm[["keep_frac_below", "keep_frac_above"]].apply(lambda c: c.between(0, 1)).all().all()

    # a row computed in a Ray worker equals the same run in this process
    (row,) = lstm[(lstm["seq_len"] == 20) & (lstm["seed"] == 1)].to_dict("records")
    settings = Settings(**{s.name: row[s.name] for s in SETTINGS})
    rec = run(settings, "lstm")
    fit = analysis.decay_fit(rec)
    # float32 forward passes round differently with another thread count (Ray workers run one
    # thread; this process may run two): agree to float32's precision, not bit for bit
    assert row["decades_per_step"] == pytest.approx(fit.decades_per_step, rel=1e-5)
    assert row["half_life"] == pytest.approx(fit.half_life, rel=1e-5)
    assert row["log10_grad_h0"] == pytest.approx(float(np.median(rec.log10_grad_h[:, 0])), rel=1e-5)
    assert row["keep_frac_above"] == pytest.approx(float(analysis.gate_stats(rec).frac_above.mean()))

    # resume: a third seed, and a longer sequence over the memory limit; nothing runs twice
    code, stdout, _ = run_sweep(
        *TINY,
        "--seq-len",
        "12",
        "20",
        "2000",
        "--seeds",
        "3",
        "--max-memory-gb",
        "0.0001",
        "--out",
        str(path),
    )
    assert code == 0, stdout
    assert "ran 10 cells" in stdout and "8 already in" in stdout and "6 failed" in stdout
    second = pd.read_parquet(path)
    assert len(second) == 18 and not second.duplicated(list(sweep.KEYS)).any()
    merged = first.merge(second, on=list(sweep.KEYS), suffixes=("", "_again"))
    assert len(merged) == 8 and (merged["elapsed_s"] == merged["elapsed_s_again"]).all()
    over = second[second["seq_len"] == 2000]
    assert len(over) == 6 and over["error"].str.contains("over the limit").all()
    assert over["half_life"].isna().all()
    assert "raise --max-memory-gb" in stdout  # the printed reason names the flag that fixes it
    assert [p.name for p in tmp_path.iterdir()] == ["grid.parquet"]  # no temporary file left

    # failed cells run again when asked with more memory, and replace their rows
    code, stdout, _ = run_sweep(*TINY, "--seq-len", "12", "20", "2000", "--seeds", "3", "--out", str(path))
    assert "ran 6 cells" in stdout and "0 failed" in stdout, stdout
    third = pd.read_parquet(path)
    assert len(third) == 18 and third["error"].isna().all()


def test_a_cell_that_fails_in_its_task_is_recorded(local_ray, tmp_path):
    # an IRNN with spectral radius 10 leaves float64's range: record() raises inside the Ray task
    path = tmp_path / "explodes.parquet"
    args = ["--arch", "rnn", "--rnn-init", "identity", "--spectral-radius", "0.5", "10", "--seq-len", "400"]
    code, stdout, _ = run_sweep(*args, "--hidden-size", "4", "--input-size", "2", "-q", "--out", str(path))
    assert code == 0, stdout
    frame = pd.read_parquet(path).set_index("spectral_radius")
    assert frame.loc[0.5, "error"] is None or pd.isna(frame.loc[0.5, "error"])
    assert math.isfinite(frame.loc[0.5, "half_life"])
    assert "leaves float64's range" in frame.loc[10.0, "error"]
    assert "1 failed" in stdout and "failed: RNN spectral_radius=10.0" in stdout


def test_a_cell_no_ray_machine_can_hold_is_not_scheduled(local_ray):
    # 2 TiB: within --max-memory-gb here, but more than any machine's memory
    big = Settings(seq_len=10_000, hidden_size=4096, batch_size=1024)
    frame, skipped = sweep.sweep([("rnn", big)], max_bytes=2**50)
    (error,) = frame["error"]
    assert skipped == 0 and "more than any Ray node offers" in error
    assert local_ray.is_initialized()  # a Ray the caller started stays up
