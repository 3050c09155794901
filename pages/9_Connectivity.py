"""Connectivity: how far back each output still listens (the T x T input-output gradient map)."""

from contextlib import nullcontext
from dataclasses import asdict

import streamlit as st

import ui
from lstm_viz import connectivity
from lstm_viz.connectivity import MAX_SEQ_LEN, connectivity_work
from lstm_viz.connectivity_figures import connectivity_figure
from lstm_viz.settings import Settings, model_and_input

st.set_page_config(page_title="Connectivity · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Connectivity: how far back each output still listens")
st.markdown(
    "For every output step and every earlier input step: how much does that input still move that "
    "output? Each cell is log<sub>10</sub> ‖∂(u·y<sub>t_out</sub>)/∂x<sub>t_in</sub>‖, exact however "
    "small, for the RNN and the LSTM on the same input (y: the top layer's output, both directions).",
    unsafe_allow_html=True,
)
ARCHS = {"rnn": "RNN", "lstm": "LSTM"}
MAX_PAGE_WORK = 3e12  # multiply-adds, both maps: about two minutes on one core


@ui.shared()
def cached_connectivity(arch: str, settings: dict, queued: bool):
    """lstm_viz.connectivity on the seeded model and input these plain settings describe; queued: a
    long map waits its turn in the server's line. Kept in the store every session shares."""
    model, x = model_and_input(Settings(**settings), arch)
    text = f"Computing the {ARCHS[arch]}'s connectivity..."
    bar = st.progress(0.0, text=text)
    with ui.take_turn(bar, 0.0, text) if queued else nullcontext():
        values = connectivity(model, x, progress=lambda f: bar.progress(f, text=text))
    bar.empty()
    return values


settings = ui.settings_sidebar("connectivity")
if settings.seq_len > MAX_SEQ_LEN:
    st.info(
        f"Connectivity covers at most {MAX_SEQ_LEN:,} steps (its map is T x T), got "
        f"T = {settings.seq_len:,}: set a shorter sequence length in the sidebar."
    )
    st.stop()
work = sum(
    connectivity_work(a, settings.batch_size, settings.seq_len, settings.hidden_size, settings.input_size,
                      settings.num_layers, 2 if settings.bidirectional else 1)
    for a in ARCHS
)  # fmt: skip
if work > MAX_PAGE_WORK:
    st.info(
        f"These settings would take about {work / 2.5e10 / 60:.0f} minutes on one core (the map costs "
        "T² steps back per layer and direction): shorten the sequence, or use fewer units, layers or "
        "sequences in the batch."
    )
    st.stop()
try:
    values = {arch: cached_connectivity(arch, asdict(settings), work > ui.HEAVY_WORK) for arch in ARCHS}
except ValueError as err:
    st.error(str(err))
    st.stop()

for column, arch in zip(st.columns(2), ARCHS, strict=True):
    with column:
        fig = connectivity_figure(values[arch], settings.label(arch))
        st.plotly_chart(fig, width="stretch", config=ui.PLOTLY_CONFIG, key=f"connectivity_{arch}_chart")
st.caption(
    "Rows: the output step; columns: the input step; colour: log10 of how much that input still moves "
    "that output (blank: the future, for one direction). The diagonal is “now”: the RNN's colour fades "
    "within a few dozen steps left of it, the chrono LSTM's (sidebar: Open the cell path) does not."
)
