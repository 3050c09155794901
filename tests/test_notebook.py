"""docs/quickstart.ipynb runs top to bottom in a real Jupyter kernel, and is stored without outputs.

The kernel is ipykernel on this interpreter (jupyter_client starts the "python3" kernel with
sys.executable; the last, added cell checks it), in a fresh folder, with the checkout on PYTHONPATH.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "quickstart.ipynb"


def test_the_stored_notebook_is_valid_and_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 5
    kept = [n for n, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert kept == [], f"cells {kept} of {NOTEBOOK.name} hold outputs: clear them before committing"
    assert nb.metadata.kernelspec.name == "python3"
    # what a reader sees first: each step is explained before its code
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 4


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(ROOT))
        nb = nbformat.read(NOTEBOOK, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
        folder = tmp_path_factory.mktemp("notebook")
        # raises CellExecutionError, naming the cell, if any cell fails
        NotebookClient(
            nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(folder)}}
        ).execute()
    return nb


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_the_notebook_runs_in_a_kernel_of_this_interpreter_without_errors(executed):
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert [o for c in code for o in c.outputs if o.output_type == "error"] == []
    assert all(c.execution_count is not None for c in code)
    assert Path(_text(code[-1]).strip()).resolve() == Path(sys.executable).resolve()
    assert _text(code[0]).strip() == f"lstm_viz from {ROOT / 'lstm_viz'}"


def test_the_notebook_shows_the_recordings_and_the_figures(executed):
    code = [c for c in executed.cells if c.cell_type == "code"]
    text = "\n".join(_text(c) for c in code)
    found = dict(re.findall(r"^(RNN|LSTM|LSTM \(chrono\))\s+log10 \|\|dL/dh_0\|\| =\s+(\S+)", text, re.M))
    assert set(found) == {"RNN", "LSTM", "LSTM (chrono)"}
    # the untrained models lose tens of decades over 300 steps; chrono init keeps the gradient
    assert float(found["RNN"]) < -40 and float(found["LSTM"]) < -40
    assert float(found["LSTM (chrono)"]) > -10
    # the trained char model, and the same state dict in our own cell, record the same gradients
    assert "lstm 98 inputs, 128 units; 300 characters" in text
    diff = re.search(r"largest difference between the two recordings: (\S+) decades", text)
    assert diff is not None and float(diff.group(1)) < 1e-3
    figures = [
        json.loads(o.data["application/vnd.plotly.v1+json"])
        if isinstance(o.data["application/vnd.plotly.v1+json"], str)
        else o.data["application/vnd.plotly.v1+json"]
        for c in code
        for o in c.outputs
        if o.output_type in ("display_data", "execute_result") and "application/vnd.plotly.v1+json" in o.data
    ]
    assert len(figures) == 3  # gradient flow, forget-gate heatmap, the trained model's gradient flow
    assert [len(f["data"]) > 0 for f in figures] == [True] * 3
    assert any(t.get("type") == "heatmap" for t in figures[1]["data"])
