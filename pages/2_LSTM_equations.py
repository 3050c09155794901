"""The LSTM, equation by equation, next to the code that computes it, checked against PyTorch."""

from dataclasses import asdict

import streamlit as st

import ui
from lstm_viz import figures, prose, tables
from lstm_viz.settings import Settings, lstm_parity

st.set_page_config(page_title="LSTM equations · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("The LSTM, equation by equation")

settings = ui.settings_sidebar("equations")


@st.cache_data(max_entries=16, show_spinner="Stepping the cell by hand and running torch.nn.LSTM...")
def parity(**plain) -> dict[str, float]:
    return lstm_parity(Settings(**plain))


lines = prose.lstm_cell_lines()
rows = [
    (
        r"\begin{bmatrix} a^i_t \\ a^f_t \\ a^g_t \\ a^o_t \end{bmatrix}"
        r" = W_{ih}\, x_t + b_{ih} + W_{hh}\, h_{t-1} + b_{hh}",
        f"{lines['preactivation']}\n{lines['split']}",
        "All four gates from one matrix product, split in PyTorch's order i, f, g, o (W_ih is 4H × I).",
    ),
    (r"f_t = \sigma(a^f_t)", "f.sigmoid()", "Forget gate: how much of the old cell state to keep."),
    (r"i_t = \sigma(a^i_t)", "i.sigmoid()", "Input gate: how much of the candidate to write."),
    (r"g_t = \tanh(a^g_t)", "g.tanh()", "Candidate: the new content."),
    (r"o_t = \sigma(a^o_t)", "o.sigmoid()", "Output gate: how much of the cell to show."),
    (r"c_t = f_t \odot c_{t-1} + i_t \odot g_t", lines["cell"], "Cell state: keep some, write some."),
    (r"h_t = o_t \odot \tanh(c_t)", lines["hidden"], "Hidden state: the gated view of the cell."),
]
st.markdown(
    "One step of our cell, `lstm_viz.models.LSTM.cell`; the code on the right is read from its "
    "source. The gate activations are applied where they are used, inside the last two lines."
)
for latex, code, note in rows:
    left, right = st.columns([1, 1], vertical_alignment="center")
    left.latex(latex)
    right.code(code, language="python", wrap_lines=True)
    right.caption(note)

st.subheader("Live check against torch.nn.LSTM", anchor=False)
try:
    diff = parity(**asdict(settings))
except ValueError as err:
    st.error(f"Cannot run these settings: {err}")
    st.stop()
ok = max(diff["hidden"], diff["cell"]) < 1e-4
m1, m2, m3 = st.columns(3)
m1.metric("max |h ours − h torch|", f"{diff['hidden']:.2e}", help="Over every step, unit and sequence.")
m2.metric("max |c ours − c torch| (last step)", f"{diff['cell']:.2e}")
m3.metric("steps compared", f"{diff['steps']:,}")
(st.success if ok else st.error)(
    f"Our hand-stepped cell {'matches' if ok else 'does NOT match'} torch.nn.LSTM with the same weights "
    f"on the current input ({settings.batch_size} × {settings.seq_len} steps × {settings.hidden_size} units)."
)

st.subheader("The equations with numbers", anchor=False)
rnn_rec, rec = ui.recordings(settings, ["rnn", "lstm"])
last = settings.seq_len - 1
shorter = st.session_state.get("eq_t", 0) > last  # the sequence got shorter than the chosen step
if shorter:
    st.session_state["eq_t"] = last
t = st.slider("Step t", 0, last, None if shorter else min(10, last), key="eq_t", bind="query-params")
st.dataframe(tables.step_values(rec, t), hide_index=True, width="stretch")
st.caption(
    "Gates, cell and hidden state at step t for the first units of sequence 0: check that "
    "cell = forget × cell (previous) + input × candidate, and hidden = output × tanh(cell)."
)

st.subheader("Why the RNN's gradient vanishes and the cell path need not", anchor=False)
for kind, text in prose.vanishing_explanation(rnn_rec, rec):
    if kind == "latex":
        st.latex(text)
    else:
        st.markdown(text)
ui.chart(
    figures.step_factor_figure([rnn_rec, rec]),
    prose.STEP_FACTOR_CAPTION,
    "step_factors",
)
