"""Gradient flow, RNN vs LSTM: how much of the loss's gradient reaches each earlier step."""

import streamlit as st

import ui
from lstm_viz import figures, prose, tables

st.set_page_config(page_title="Gradient flow · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Gradient flow: RNN vs LSTM")
st.markdown(
    "One input sequence runs through an untrained vanilla RNN and an LSTM. The loss sits on the last "
    "step; the chart shows how large its gradient ‖∂L/∂h<sub>t</sub>‖ still is at every earlier step t. "
    "The RNN's line falls straight on this log scale; the LSTM whose cell path is open (chrono init: "
    "forget gates near 1) keeps its gradient. New here? **Lessons** walks through it in seven steps.",
    unsafe_allow_html=True,
)

settings = ui.settings_sidebar("flow")
row = st.container(horizontal=True, vertical_alignment="center")
open_path = row.toggle(
    "Open the LSTM's cell path: add the LSTM with chrono init",
    value=True,
    key="flow_open",
    bind="query-params",
    disabled=settings.lstm_init == "chrono",
    help="Chrono init (Tallec & Ollivier 2018) sets the forget biases to log U(1, T-1), so the forget "
    "gates start near 1 and the cell keeps its memory, before any training.",
)
add_gru = row.toggle("Compare with a GRU", key="flow_gru", bind="query-params")
archs = ["rnn", "lstm"] + (["gru"] if add_gru else [])
if ui.trained_toggle("flow_trained"):
    recs = ui.trained_recordings(archs)
    st.info(f"Models trained in the Training lab, on fresh sequences of their task ({recs[0].meta['task']}, "
            f"{recs[0].seq_len} steps); the sidebar's model settings do not apply.")  # fmt: skip
else:
    chrono = (
        [(settings.replace(lstm_init="chrono"), "lstm")]
        if open_path and settings.lstm_init != "chrono"
        else []
    )
    recs = ui.recordings(settings, archs, also=chrono)
summary = tables.flow_summary(recs)

st.markdown(f"##### {prose.headline(recs)}", unsafe_allow_html=True)
fig = figures.gradient_flow_figure(recs, tables.decay_fits(recs))
ui.chart(fig, prose.flow_caption(recs), "gradient_flow")
st.markdown("**Gradient half-life**: steps back for ‖∂L/∂h<sub>t</sub>‖ to halve", unsafe_allow_html=True)
for column, row in zip(st.columns(max(len(recs), 3)), summary.itertuples(), strict=False):
    value, note = prose.metric_texts(row.decades_per_step)
    column.metric(
        row.model, value, note, delta_color="off", delta_arrow="off", border=True,
        help="Steps back for ‖∂L/∂h_t‖ to halve, from the straight-line fit through log10 ‖∂L/∂h_t‖ "
        "(its slope: decades lost per step back); half-life = log10(2) / slope.",
    )  # fmt: skip
if deep := [rec for rec in recs if rec.num_layers * rec.num_directions > 1]:
    for column, rec in zip(st.columns(len(deep)), deep, strict=True):
        with column:
            ui.chart(
                figures.layer_time_figure(rec), prose.LAYER_TIME_CAPTION, f"layers_{len(deep)}_{rec.name}"
            )
if rerun := [rec.name for rec in recs if rec.dtype == "float64"]:
    st.info(prose.FLOAT64_NOTE.format(names=", ".join(rerun), verb="was" if len(rerun) == 1 else "were"))

with st.expander("Why the RNN's gradient vanishes"):
    st.markdown(prose.WHY_IT_VANISHES, unsafe_allow_html=True)
st.dataframe(tables.summary_table(summary), hide_index=True)
ui.csv_download(recs, "gradient_flow")
