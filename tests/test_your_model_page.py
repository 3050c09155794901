"""The Your model page under AppTest: the Training lab's downloads and a deep bidirectional
torch module load back through the uploader and draw the gradient-flow and gates charts; a CSV
sequence is used; bad files show the loader's message as an error, never a traceback."""

import io
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lstm_viz import TrainConfig, Trainer
from lstm_viz.charlm import shipped_models

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # pages import ui.py, as under `streamlit run app.py`
SMALL = {"yours_seq_len": "20"}


@pytest.fixture(scope="module")
def lab() -> Trainer:
    trainer = Trainer(TrainConfig(task="adding", lag=5, hidden_size=4, steps=2, test_size=8, probe_size=2))
    trainer.advance(2)
    return trainer


def run_page(model: tuple[str, bytes] | None = None, sequence: tuple[str, bytes] | None = None) -> AppTest:
    at = AppTest.from_file(ROOT / "pages/8_Your_model.py", default_timeout=60)
    for key, value in SMALL.items():
        at.query_params[key] = value
    at.run()
    if model is not None:
        at.file_uploader(key="yours_model").set_value((model[0], model[1], "application/octet-stream"))
    if sequence is not None:
        at.file_uploader(key="yours_sequence").set_value((sequence[0], sequence[1], "text/plain"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[str]:
    return [el.proto.id for el in at.get("plotly_chart")]


def test_no_model_asks_for_one_and_states_the_limits():
    at = run_page()
    assert "Upload a model" in at.info[0].value
    assert "64 MiB" in at.caption[0].value and "10,000 steps" in at.caption[0].value


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_training_lab_download_loads_back(lab, arch):
    at = run_page((f"{arch}.pt", lab.model_bytes(arch)))
    assert not at.error, [e.value for e in at.error]
    assert f"{arch.upper()}" in at.success[0].value and "2 inputs, 4 units" in at.success[0].value
    assert "a generated gaussian input, 1 × 20 steps" in at.success[0].value  # the sidebar's length
    gates = {"rnn": 0, "lstm": 4, "gru": 3}[arch]
    assert len(charts(at)) == 2 + gates + (arch == "lstm") + 1  # flow, connectivity, gates, cell, hidden


def test_deep_bidirectional_module_with_a_csv_sequence():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    buffer = io.BytesIO()
    torch.save(lstm.state_dict(), buffer)
    csv = "\n".join(f"{t},{-t},0.5" for t in range(12)).encode()
    at = run_page(("deep.pt", buffer.getvalue()), ("steps.csv", csv))
    assert not at.error, [e.value for e in at.error]
    assert "2 layers, bidirectional, 3 inputs, 5 units" in at.success[0].value
    assert "steps.csv" in at.success[0].value
    # flow, layer x time, 4 gates + cell + hidden of one layer, and the connectivity map or why not
    connectivity = any(c.endswith("yours_connectivity_chart") for c in charts(at))
    assert len(charts(at)) == 2 + 6 + connectivity
    assert connectivity or "No connectivity for this run" in at.info[0].value
    layer = at.selectbox(key="yours_layer")
    assert layer.options == ["layer 2 (top) →", "layer 2 (top) ←", "layer 1 →", "layer 1 ←"]
    layer.set_value("1b").run()
    assert not at.exception and not at.error


def test_char_model_reads_a_text_sequence():
    at = run_page(("charlm-gru.pth", shipped_models()["charlm-gru"].read_bytes()), ("x.txt", b"def f(x):\n"))
    assert not at.error, [e.value for e in at.error]
    assert "a char model over 98 characters" in at.success[0].value


class _Payload:
    def __reduce__(self):
        return print, ("this must never print",)


def _calls_print() -> bytes:
    """A torch file whose pickle calls print when loaded without weights_only."""
    buffer = io.BytesIO()
    torch.save({"weight_ih_l0": _Payload()}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("model", "sequence", "message"),
    [
        (b"not a torch file", None, "refused: not a weights-only torch file"),
        ("code", None, "refused: the file asks to import or call code (print)"),
        ("lab", ("bad.csv", b"1,2\n3,x\n"), "line 2, column 2: 'x' is not a number"),
        ("lab", ("bad.csv", b"1,2,3\n"), "line 1 has 3 columns, expected 2"),
    ],
)
def test_bad_files_show_the_loaders_message(lab, model, sequence, message):
    data = {"lab": lab.model_bytes("lstm"), "code": _calls_print()}.get(model, model)
    at = run_page(("model.pt", data), sequence)
    assert len(at.error) == 1 and message in at.error[0].value
    assert not at.exception and not charts(at)
