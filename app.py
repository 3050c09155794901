"""Gradient flow, RNN vs LSTM: how much of the loss's gradient reaches each earlier step."""

import streamlit as st

import ui
from lstm_viz import figures, prose, tables

st.set_page_config(page_title="Gradient flow · lstm-viz", page_icon=":material/timeline:", layout="wide")
st.title("Gradient flow: RNN vs LSTM")
st.markdown(
    "One input sequence runs through an untrained vanilla RNN and an LSTM. The loss sits on the last "
    "step; the chart shows how large its gradient ‖∂L/∂h<sub>t</sub>‖ still is at every earlier step t. "
    "Lengthen the sequence in the sidebar and the RNN's line keeps falling, straight on this log scale; "
    "then open the LSTM's cell path with one click (chrono init) and watch the dashed line.",
    unsafe_allow_html=True,
)

settings = ui.settings_sidebar("flow")
add_gru = st.toggle("Compare with a GRU", key="flow_gru", bind="query-params")
archs = ["rnn", "lstm"] + (["gru"] if add_gru else [])
if ui.trained_toggle("flow_trained"):
    recs = ui.trained_recordings(archs)
    st.info(f"Models trained in the Training lab, on fresh sequences of their task ({recs[0].meta['task']}, "
            f"{recs[0].seq_len} steps); the sidebar's model settings do not apply.")  # fmt: skip
else:
    recs = ui.recordings(settings, archs)
summary = tables.flow_summary(recs)

st.markdown(
    "**Gradient half-life**: steps back for ‖∂L/∂h<sub>t</sub>‖ to halve, from the dotted fit",
    unsafe_allow_html=True,
)
for column, row in zip(st.columns(len(recs) + 1), summary.itertuples(), strict=False):
    half_life, rate = prose.half_life_text(row.decades_per_step), prose.rate_text(row.decades_per_step)
    column.metric(
        row.model,
        half_life,
        rate,
        delta_color="off",
        delta_arrow="off",
        border=True,
        help="Slope of the dotted straight-line fit through log10 ‖∂L/∂h_t‖ (decades lost per "
        "step back); half-life = log10(2) / slope.",
    )
fig = figures.gradient_flow_figure(recs, tables.decay_fits(recs))
ui.chart(fig, prose.flow_caption(recs), "gradient_flow")

with st.expander("Why the RNN's gradient vanishes"):
    st.markdown(
        "Going back one step multiplies the gradient by the Jacobian ∂h<sub>t</sub>/∂h<sub>t-1</sub> = "
        "diag(tanh′) W<sub>hh</sub>. Its size is at most the largest singular value of W<sub>hh</sub> times "
        "tanh′ ≤ 1, so over k steps the gradient shrinks like a power of that factor: a straight line on "
        "this log scale. The LSTM's cell state adds a second path, c<sub>t</sub> = f<sub>t</sub> ⊙ "
        "c<sub>t-1</sub> + ..., whose Jacobian is just the forget gate: with forget gates near 1 it "
        "carries the gradient back almost intact. See **LSTM equations** for the details.",
        unsafe_allow_html=True,
    )
st.dataframe(tables.summary_table(summary), hide_index=True)
ui.csv_download(recs, "gradient_flow")
