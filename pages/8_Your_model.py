"""Your own model: upload a trained RNN, LSTM or GRU and a sequence; the gradient-flow and gates
views for it. Uploads stay in memory (the bytes go to lstm_viz.loading.load_model), never on disk."""

import streamlit as st

import ui
from lstm_viz import figures, prose, tables
from lstm_viz.connectivity_figures import connectivity_figure
from lstm_viz.inputs import INPUTS, MAX_SEQ_LEN
from lstm_viz.loading import MAX_MODEL_BYTES, MAX_SEQUENCE_BYTES, connectivity_files, record_files

st.set_page_config(page_title="Your model · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Your own model")
st.markdown(
    "Upload a recurrent network you trained: a `torch.nn.RNN`, `LSTM` or `GRU` saved with "
    "`torch.save(module.state_dict(), 'model.pt')` (any number of layers, either direction, one "
    "`Linear` beside it allowed), a Training lab download, or a char model from `lstm_viz/weights/`. "
    "Architecture and sizes are read from the weights. The file is read with "
    "`torch.load(weights_only=True)`: a file that asks to run code is refused before any of it runs."
)
ui.nav()
st.sidebar.header("Generated input")
st.sidebar.caption("Used when no sequence is uploaded; the model file fixes everything else.")
input_kind = ui.choice(st.sidebar, "select", "Input", {k: k for k in INPUTS}, key="yours_input")
seq_len = st.sidebar.number_input(
    "Sequence length", 1, MAX_SEQ_LEN, 300, key="yours_seq_len", bind="query-params"
)
batch_size = st.sidebar.number_input("Batch of sequences", 1, 64, 1, key="yours_batch", bind="query-params")
seed = st.sidebar.number_input("Seed", 0, 2**31 - 1, 0, key="yours_seed", bind="query-params")


def _heavy(model: bytes, sequence: bytes | None, kind: str | None, generate: tuple, *_) -> bool:
    """Whether a run is long enough to wait its turn in the server's line, from the files' sizes
    alone: an LSTM's weights take about 32 H^2 bytes, and a sequence at least a byte per step."""
    hidden = (len(model) / 32) ** 0.5
    steps = generate[1] * generate[2] if sequence is None else len(sequence)
    return steps * hidden > ui.HEAVY_CELLS


@ui.shared("Recording your model...", heavy=_heavy)
def recording(model: bytes, sequence: bytes | None, kind: str | None, generate: tuple, label: str):
    return record_files(model, sequence, kind=kind, generate=generate, label=label)


@ui.shared("Computing the connectivity...", heavy=_heavy)
def connectivity_of(model: bytes, sequence: bytes | None, kind: str | None, generate: tuple):
    return connectivity_files(model, sequence, kind=kind, generate=generate)


c1, c2 = st.columns(2)
model_file = c1.file_uploader("Model (.pt or .pth)", type=["pt", "pth"], key="yours_model")
sequence_file = c2.file_uploader(
    "Sequence (.csv, or .txt for a char model); optional", type=["csv", "txt"], key="yours_sequence",
    help="CSV: one row per step, one column per input feature. Text: one step per character. Without "
    "one, the input is generated from the sidebar's settings.",
)  # fmt: skip
st.caption(
    f"Limits: model files up to {MAX_MODEL_BYTES // 1024**2} MiB, sequences up to "
    f"{MAX_SEQUENCE_BYTES // 1024**2} MiB and {MAX_SEQ_LEN:,} steps, 1 to 4 layers. Files are held in "
    "memory for this session only; nothing is written to disk."
)
if model_file is None:
    st.info("Upload a model to start, for example the Training lab's **LSTM (.pt)** download.")
    st.stop()
kind = None if sequence_file is None else "csv" if sequence_file.name.lower().endswith(".csv") else "text"
generate = (input_kind, int(batch_size), int(seq_len), int(seed))
label = model_file.name.rsplit(".", 1)[0]
try:
    sequence = None if sequence_file is None else sequence_file.getvalue()
    rec, about = recording(model_file.getvalue(), sequence, kind, generate, label)
except ValueError as err:
    st.error(str(err), icon=":material/block:")
    st.stop()
source = (
    f"**{sequence_file.name}**"
    if sequence_file
    else f"a generated {input_kind} input, {batch_size} × {seq_len} steps"
)
st.success(f"**{model_file.name}**: {about}. Input: {source}.", icon=":material/check:")

st.subheader("Gradient flow", anchor=False)
ui.chart(
    figures.gradient_flow_figure([rec], tables.decay_fits([rec])),
    "The loss enters at the last step with norm 1; read from right to left how much of its gradient "
    "reaches each earlier step (a straight fall on this log scale is exponential forgetting).",
    "yours_flow",
)
if rec.num_layers * rec.num_directions > 1:
    ui.chart(figures.layer_time_figure(rec), prose.LAYER_TIME_CAPTION, "yours_layers")

st.subheader("Connectivity", anchor=False)
try:
    values = connectivity_of(model_file.getvalue(), sequence, kind, generate)
    ui.chart(connectivity_figure(values, label), "How much every input step still moves every later state: "
             "row = the state's step, column = the input's step; a row fades leftwards as it forgets.",
             "yours_connectivity")  # fmt: skip
except ValueError as err:
    st.info(f"No connectivity for this run: {err}", icon=":material/info:")

st.subheader("Gates and states", anchor=False)
part = rec
if rec.num_layers * rec.num_directions > 1:
    layer = ui.choice(st, "select", "Layer", tables.layer_parts(rec), key="yours_layer")
    part = tables.layer_part(rec, layer)
quantities = [*part.gates, *(["cell"] if part.cell is not None else []), "hidden"]
for k, quantity in enumerate(quantities):
    if k % 2 == 0:
        columns = st.columns(2)
    with columns[k % 2]:
        fig = figures.gate_heatmap_figure(part, quantity, max_cells=(1000, 128))
        ui.chart(fig, prose.gate_caption(part, quantity), f"yours_{quantity}_heatmap")
ui.csv_download([rec], "your_model")
