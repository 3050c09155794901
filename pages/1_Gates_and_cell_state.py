"""Gates and cell state: every gate of the LSTM (or GRU) over time and units."""

import streamlit as st

import ui
from lstm_viz import analysis, figures, prose, tables

st.set_page_config(page_title="Gates and cell state · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Gates and cell state")
st.markdown(
    "What the gates of one model do on the same input as the first page, unit by unit. "
    "Rows are units, columns are timesteps; long sequences and wide layers are averaged in blocks "
    "so the page stays fast (the chart says when)."
)

settings = ui.settings_sidebar("gates")
c1, c2, c3, c4 = st.columns([1, 2, 1, 3])
arch = ui.choice(c1, "radio", "Model", {"lstm": "LSTM", "gru": "GRU"}, key="gates_arch", horizontal=True)
if ui.trained_toggle("gates_trained"):
    if not (trained := ui.trained_recordings([arch])):
        st.warning(
            f"The Training lab trained no {arch.upper()} this session: train one, or switch the toggle off."
        )
        st.stop()
    (rec,) = trained
else:
    (rec,) = ui.recordings(settings, [arch])
if rec.num_layers * rec.num_directions > 1:
    rec = tables.layer_part(rec, ui.choice(st, "select", "Layer", tables.layer_parts(rec), key="gates_layer"))
sort_by = ui.choice(
    c2, "select", f"Sort the {rec.arch.upper()}'s units by", tables.unit_orders(rec), key="gates_sort"
)
sample = c3.number_input(
    "Sequence",
    0,
    rec.batch_size - 1,
    0,
    key="gates_sample",
    bind="query-params",
    help="Which sequence of the batch the heatmaps show.",
)
units = c4.multiselect(
    "Trace units",
    range(rec.hidden_size),
    max_selections=8,
    key="gates_units",
    bind="query-params",
    placeholder="pick units to draw in the mean chart",
)

order = tables.unit_order(rec, sort_by)
order_label = "" if sort_by == "unit" else tables.UNIT_ORDERS[sort_by]
st.caption(
    f"Heatmaps: sequence {sample} of the batch of {rec.batch_size}; rows "
    + ("in unit order" if not order_label else f"sorted by {order_label}, highest on top")
    + "; hover a cell for its unit and value."
)
quantities = [*rec.gates, *(["cell"] if rec.cell is not None else []), "hidden"]
for k, quantity in enumerate(quantities):
    if k % 2 == 0:
        columns = st.columns(2)  # a new row per pair, so the charts line up whatever the captions
    with columns[k % 2]:
        fig = figures.gate_heatmap_figure(
            rec,
            quantity,
            sample=int(sample),
            unit_order=order,
            order_label=order_label,
            max_cells=(1000, 128),
        )
        ui.chart(fig, prose.gate_caption(rec, quantity), f"{arch}_{quantity}_heatmap")

st.subheader("Mean over units", anchor=False)
fig = figures.gate_mean_figure(rec, quantities, units=[int(u) for u in units])
ui.chart(
    fig,
    prose.MEAN_CAPTION,
    f"{arch}_gate_means",
)

st.subheader("Saturation", anchor=False)
stats = [analysis.gate_stats(rec, gate) for gate in figures.SIGMOID_GATES[arch]]
for column, stat in zip(st.columns(len(stats)), stats, strict=True):  # columns stack on a phone
    with column:
        fig = figures.saturation_figure(rec, {stat.gate: (stat.frac_below, stat.frac_above)})
        ui.chart(fig, None, f"{arch}_{stat.gate}_saturation")
st.caption(prose.saturation_caption(rec, stats))
ui.csv_download([rec], f"{arch}_gates")
