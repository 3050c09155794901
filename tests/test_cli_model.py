"""python -m lstm_viz --model FILE.pt --sequence FILE.csv|FILE.txt: the loaded model recorded on
the loaded sequence, the same outputs as a settings run, and one-line errors for what cannot work."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstm_viz import TrainConfig, Trainer, record
from lstm_viz.charlm import shipped_models
from lstm_viz.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in args], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, torch.nn.LSTM]:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(2, 3, batch_first=True)
    model, sequence = tmp_path / "mine.pt", tmp_path / "steps.csv"
    torch.save(lstm.state_dict(), model)
    sequence.write_text("a,b\n" + "\n".join(f"{t / 10},{1 - t / 10}" for t in range(9)) + "\n")
    return model, sequence, lstm


def test_model_on_a_csv_writes_the_recording_and_the_chart(files, tmp_path):
    model, sequence, lstm = files
    out, page = tmp_path / "rec.parquet", tmp_path / "flow.html"
    args = ["--model", model, "--sequence", sequence, "--out", out, "--html", page, "-q"]
    code, stdout, stderr = run_cli(*args)
    assert code == 0, stderr
    assert "mine.pt (LSTM, 1 layer, 2 inputs, 3 units) on steps.csv, T = 9 steps" in stdout
    assert "wrote " + str(out) in stdout and "wrote " + str(page) in stdout
    frame = pd.read_parquet(out)
    assert set(frame["model"]) == {"mine"}
    x = torch.tensor([[[t / 10, 1 - t / 10] for t in range(9)]])
    grad_h = frame[frame["quantity"] == "log10_grad_h"].sort_values("t")["value"].to_numpy()
    np.testing.assert_allclose(grad_h, record(lstm, x).log10_grad_h[0])
    assert "mine.pt (LSTM" in page.read_text() and "plotly" in page.read_text()


def test_char_model_on_a_text_file(tmp_path):
    text = tmp_path / "snippet.txt"
    text.write_text("def f(x):\n    return x\n")
    code, stdout, stderr = run_cli("--model", shipped_models()["charlm-rnn"], "--sequence", text, "-q")
    assert code == 0, stderr
    assert "T = 23 steps" in stdout and "charlm-rnn" in stdout


def test_training_lab_download_runs(tmp_path):
    trainer = Trainer(TrainConfig(task="adding", lag=5, hidden_size=4, steps=1, test_size=8, probe_size=2))
    trainer.advance(1)
    model = tmp_path / "lab_gru.pt"
    model.write_bytes(trainer.model_bytes("gru"))
    sequence = tmp_path / "adding.csv"
    sequence.write_text("0.5,1\n0.1,0\n0.9,1\n")
    code, stdout, stderr = run_cli("--model", model, "--sequence", sequence, "-q")
    assert code == 0, stderr
    assert "GRU, 1 layer, 2 inputs, 4 units" in stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seq-len", "20"], "--seq-len cannot apply to --model"),
        (["--arch", "rnn"], "--arch cannot apply to --model"),
        (["--hidden-size", "8", "--lstm-init", "chrono"], "--hidden-size, --lstm-init cannot apply"),
    ],
)
def test_settings_flags_are_an_error_with_a_model(files, extra, message):
    model, sequence, _ = files
    code, stdout, stderr = run_cli("--model", model, "--sequence", sequence, *extra)
    assert code == 2 and stdout == ""
    assert message in stderr and stderr.count("\n") == 1


def test_model_and_sequence_go_together(files):
    model, sequence, _ = files
    for args in (["--model", model], ["--sequence", sequence]):
        code, _, stderr = run_cli(*args)
        assert code == 2 and "--model and --sequence go together" in stderr


def test_loader_errors_are_one_line(files, tmp_path):
    model, sequence, _ = files
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    code, _, stderr = run_cli("--model", garbage, "--sequence", sequence)
    assert code == 2 and "refused: not a weights-only torch file" in stderr
    wide = tmp_path / "wide.csv"
    wide.write_text("1,2,3\n")
    code, _, stderr = run_cli("--model", model, "--sequence", wide)
    assert code == 2 and "line 1 has 3 columns, expected 2" in stderr and stderr.count("\n") == 1
    code, _, stderr = run_cli("--model", tmp_path / "missing.pt", "--sequence", sequence)
    assert code == 2 and "no model file at" in stderr


def test_help_shows_the_model_flags():
    result = subprocess.run([sys.executable, "-m", "lstm_viz", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--model FILE.pt" in result.stdout and "--sequence FILE" in result.stdout
