"""python -m lstm_viz: tiny runs write readable files, agree with the library, and fail in one line."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lstm_viz import analysis, build_model, make_input, record
from lstm_viz.cli import chart, main
from lstm_viz.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--seq-len", "8", "--hidden-size", "4", "--input-size", "3", "--batch-size", "2", "--seed", "1"]
COLUMNS = ["model", "arch", "sample", "t", "unit", "quantity", "value"]


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def run_module(*args: str) -> subprocess.CompletedProcess:
    """The real entry point, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "lstm_viz", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_setting():
    result = run_module("--help")
    assert result.returncode == 0, result.stderr
    for flag in (
        "--arch",
        "--seq-len",
        "--hidden-size",
        "--input-size",
        "--batch-size",
        "--seed",
        "--input",
        "--rnn-init",
        "--lstm-init",
        "--gru-init",
        "--forget-bias",
        "--t-max",
        "--spectral-radius",
        "--nonlinearity",
        "--out",
        "--html",
        "--png",
    ):
        assert flag in result.stdout, flag
    assert "chrono" in result.stdout and "orthogonal" in result.stdout


def test_tiny_run_writes_csv_and_parquet_with_the_tidy_columns(tmp_path):
    csv, parquet = tmp_path / "flow.csv", tmp_path / "flow.parquet"
    code, out, err = run_cli(*TINY, "--arch", "rnn", "lstm", "gru", "--out", str(csv))
    assert code == 0, err
    code, _, err = run_cli(*TINY, "--arch", "rnn", "lstm", "gru", "--out", str(parquet), "--quiet")
    assert code == 0 and err == "", err

    from_csv, from_parquet = pd.read_csv(csv), pd.read_parquet(parquet)
    assert list(from_csv.columns) == COLUMNS and list(from_parquet.columns) == COLUMNS
    B, T, H = 2, 8, 4
    # per-step norms (B*T rows each) and per-unit values (B*T*H rows each), per architecture
    expected = {
        "rnn": 2 * B * T + 1 * B * T * H,  # grad h, grad x | hidden
        "lstm": 3 * B * T + 6 * B * T * H,  # grad h, c, x | hidden, cell, 4 gates
        "gru": 2 * B * T + 4 * B * T * H,  # grad h, x | hidden, 3 gates
    }
    for frame in (from_csv, from_parquet):
        assert frame.groupby("arch").size().to_dict() == expected
        assert frame["value"].notna().all()
        assert set(frame["t"]) == set(range(T)) and set(frame["sample"]) == {0, 1}
    # Two runs: PyTorch's fused float32 forward may round differently when torch's global thread
    # count differs between them (another test's trainer thread may hold it): float32 precision.
    pd.testing.assert_series_equal(from_csv["value"], from_parquet["value"], check_exact=False, rtol=1e-5)
    assert f"wrote {csv} ({len(from_csv):,} rows)" in out


def test_printed_decay_rates_are_the_librarys(tmp_path):
    code, out, err = run_cli(*TINY, "--arch", "rnn", "lstm", "--lstm-init", "chrono")
    assert code == 0, err
    settings = Settings(seq_len=8, hidden_size=4, input_size=3, batch_size=2, seed=1, lstm_init="chrono")
    x = make_input(settings.input_kind, 2, 8, 3, seed=1)
    lines = out.splitlines()
    for arch in ("rnn", "lstm"):
        model = build_model(arch, 3, 4, **settings.model_kwargs(arch))
        fit = analysis.decay_fit(record(model, x))
        row = next(line for line in lines if line.startswith(settings.label(arch) + " "))
        assert f"{fit.decades_per_step:.4g}" in row.split(), (row, fit)


def test_norms_only_and_html(tmp_path):
    csv, html = tmp_path / "norms.csv", tmp_path / "flow.html"
    code, out, err = run_cli(*TINY, "--arch", "lstm", "--norms-only", "--out", str(csv), "--html", str(html))
    assert code == 0, err
    frame = pd.read_csv(csv)
    assert set(frame["quantity"]) == {"log10_grad_h", "log10_grad_c", "log10_grad_x"}
    assert frame["unit"].isna().all()
    page = html.read_text()
    assert "<html>" in page and "Plotly.newPlot" in page
    assert "Gradient flow over T = 8 steps" in page  # the title names the run
    assert html.stat().st_size > 1_000_000  # plotly.js inlined: the page opens offline


def test_chart_fit_lines_lie_on_the_fitted_decay():
    """Each model's dotted fit line is the library's fit, drawn over the steps it was fitted on."""
    settings = Settings(seq_len=40, hidden_size=4, input_size=3, seed=2)
    x = make_input(settings.input_kind, 1, 40, 3, seed=2)
    recs = [
        record(build_model(arch, 3, 4, **settings.model_kwargs(arch)), x, label=settings.label(arch))
        for arch in ("rnn", "lstm")
    ]
    fig = chart(recs, settings)
    for rec in recs:
        fit = analysis.decay_fit(rec)
        (trace,) = [t for t in fig.data if t.name and t.name.startswith(f"{rec.name}: fit")]
        assert list(trace.x) == [fit.t_first, fit.t_last] and fit.t_last == 39
        assert list(trace.y) == pytest.approx(list(fit.line(trace.x)))
        assert abs(trace.y[-1] - rec.log10_grad_h[0, -1]) < 3  # on the curve, not shifted away from it
    assert "T = 40 steps" in fig.layout.title.text


def test_progress_on_stderr_per_model(tmp_path):
    code, _, err = run_cli(*TINY, "--arch", "rnn", "lstm", "gru")
    assert code == 0
    lines = err.splitlines()
    assert [line.split("] ")[1].split(" (")[0] for line in lines] == [
        "0/3 recording RNN",
        "1/3 recording LSTM",
        "2/3 recording GRU",
        "3/3 done",
    ]


def test_init_options_reach_the_model(tmp_path):
    """--t-max changes chrono's forget biases, so the recorded forget gates must change with it."""
    gates = []
    for t_max in ("2", "1000"):
        path = tmp_path / f"chrono{t_max}.parquet"
        code, _, err = run_cli(
            *TINY, "--arch", "lstm", "--lstm-init", "chrono", "--t-max", t_max, "--out", str(path)
        )
        assert code == 0, err
        frame = pd.read_parquet(path)
        gates.append(frame.loc[frame["quantity"] == "forget", "value"].mean())
    assert gates[1] > gates[0] + 0.1  # t_max = 2 gives bias log(1) = 0; larger t_max opens the gate


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--seq-len", "0"], "--seq-len must be"),
        (["--seq-len", "abc"], "invalid int value"),
        (["--seed", "-1"], "--seed must be"),
        (["--arch", "transformer"], "invalid choice"),
        (["--hidden-size", "100000"], "--hidden-size must be"),
        (["--out", "flow.txt"], "--out must end in .csv or .parquet"),
        (["--html", "missing-folder/flow.html"], "does not exist"),
        (["--forget-bias", "3"], "--lstm-init forget_bias"),
        (["--input", "adding", "--input-size", "1"], "--input-size >= 2"),
        (["--max-memory-gb", "1e-9"], "raise --max-memory-gb"),
        (
            ["--lstm-init", "forget_bias", "--forget-bias", "1e300"],
            "--forget-bias must be a number between -50 and 50",
        ),
        (
            ["--rnn-init", "orthogonal", "--spectral-radius", "nan"],
            "--spectral-radius must be a number between 0 and 10",
        ),
        (["--max-memory-gb", "1e300"], "--max-memory-gb must be a number above 0 and at most 100,000"),
        (["--max-memory-gb", "inf"], "--max-memory-gb must be a number above 0"),
        (["--max-memory-gb", "nan"], "--max-memory-gb must be a number above 0"),
        (["--seq-len", "1e400"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, says, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*TINY, *args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("lstm-viz: error: ") and says in err, err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_bad_argument_from_the_shell_has_no_traceback():
    result = run_module("--seq-len", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lstm-viz: error: --seq-len must be an integer between 1 and 10000, got 0"
    ]
    assert "Traceback" not in result.stderr and result.stdout == ""


def _browser_for_kaleido() -> str | None:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
    return os.environ.get("BROWSER_PATH") or next(filter(None, map(shutil.which, names)), None)


def test_png_through_kaleido(tmp_path):
    if _browser_for_kaleido() is None:
        reason = "no Chrome/Chromium for kaleido (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI must have it: .ci/run installs it")
        pytest.skip(reason)
    png = tmp_path / "flow.png"
    code, out, err = run_cli(*TINY, "--png", str(png))
    assert code == 0, err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (2200, 1040)  # 1100 x 520 at scale 2


def test_outputs_replace_whole_files_and_say_so(tmp_path):
    paths = [str(tmp_path / "flow.csv"), str(tmp_path / "flow.html")]
    code, out, err = run_cli(*TINY, "--out", paths[0], "--html", paths[1], "-q")
    assert code == 0, err
    assert "replaced" not in out
    first = pd.read_csv(paths[0])
    code, out, err = run_cli(*TINY, "--seed", "2", "--out", paths[0], "--html", paths[1], "-q")
    assert code == 0, err
    assert f"wrote {paths[0]} ({len(first):,} rows; replaced the previous file)" in out
    assert f"wrote {paths[1]} (replaced the previous file)" in out
    assert not pd.read_csv(paths[0])["value"].equals(first["value"])  # the new run's numbers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow.csv", "flow.html"]  # no temporary left


def test_ctrl_c_while_writing_out_keeps_the_previous_file(tmp_path):
    """SIGINT in the middle of a 15-million-row CSV: the old file stays as it was, nothing
    half-written is left, and the command says it was interrupted in one line (exit 130)."""
    import signal
    import time

    out = tmp_path / "flow.csv"
    out.write_text("the previous run\n")
    args = ["--arch", "lstm", "--seq-len", "10000", "--hidden-size", "256", "-q", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstm_viz", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    part = []
    while time.monotonic() < deadline and proc.poll() is None:
        part = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        if part and part[0].stat().st_size > 2_000_000:  # well into the rows
            break
        time.sleep(0.05)
    assert part and proc.poll() is None, "the export never started or finished too soon"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["lstm-viz: interrupted; no output was left half-written"]
    assert out.read_text() == "the previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["flow.csv"]


def test_a_machine_without_the_memory_gives_one_line_not_a_traceback():
    """--max-memory-gb raised past what the machine has: torch cannot allocate the input (168 GB);
    an address-space limit of 6 GB makes that certain on any machine."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    args = ["--arch", "rnn", "--batch-size", "1024", "--seq-len", "10000", "--input-size", "4096"]
    result = subprocess.run(
        [sys.executable, "-m", "lstm_viz", *args, "--max-memory-gb", "100000", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("lstm-viz: error: this machine ran out of memory: lower --max-memory-gb")
