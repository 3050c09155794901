"""Phase diagram: the gradient's half-life over two settings at once, computed here or loaded from a sweep."""

from contextlib import nullcontext
from dataclasses import asdict

import streamlit as st

import ui
from lstm_viz import ARCHS, sweep
from lstm_viz import sweep_figures as sf
from lstm_viz.settings import Settings

st.set_page_config(page_title="Phase diagram · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Phase diagram")
st.markdown(
    "Where across two settings does the gradient survive? Each square is one grid point: the half-life "
    "of ‖∂L/∂h<sub>t</sub>‖ (steps back for it to halve), median over seeds. Small grids run here; "
    "bigger ones run with `python -m lstm_viz sweep` (on Ray) and load from its Parquet file.",
    unsafe_allow_html=True,
)
MAX_LIVE_CELLS = 200
EXAMPLE = (
    "python -m lstm_viz sweep --arch rnn --rnn-init orthogonal --seq-len 100 1000 "
    "--spectral-radius 0.5 1 1.5 --seeds 3 --out grid.parquet"
)
bound = {"bind": "query-params"}


@st.cache_data(max_entries=2000, show_spinner=False)
def cached_cell(arch: str, **settings) -> dict:
    """sweep.measure on plain values, so a grid point computed once is not computed again."""
    return sweep.measure(arch, Settings(**settings))


settings = ui.settings_sidebar("phase")
source = st.segmented_control(
    "Grid", ["Compute here", "Load a sweep file"], default="Compute here", key="phase_source", **bound
)
value = ui.choice(st, "selectbox", "Colour", sf.VALUE_TITLES, key="phase_value")
if source == "Load a sweep file":
    upload = st.file_uploader("Sweep file (.parquet, from python -m lstm_viz sweep)", type="parquet")
    if upload is None:
        st.info(f"Make one with, for example, `{EXAMPLE}`.")
        st.stop()
    try:
        frame = sweep.read(upload)
    except (ValueError, OSError) as err:
        st.error(f"Cannot read this file: {err}")
        st.stop()
    c1, c2, c3 = st.columns(3)
    arch = c1.selectbox("Model", sorted(frame["arch"].unique()), format_func=str.upper, key="phase_file_arch")
    frame = frame[frame["arch"] == arch]
    axes = [name for name in sf.varying(frame) if name != "arch"]
    if len(axes) < 2:
        st.warning(
            f"The {arch.upper()} rows vary in {', '.join(axes) or 'nothing'}: a phase diagram needs two."
        )
        st.stop()
    x = c2.selectbox("Across", axes, key="phase_file_x")
    y = c3.selectbox("Up", [a for a in axes if a != x], key="phase_file_y")
    for name, values in sf.varying(frame).items():
        if name not in ("arch", x, y):
            frame = frame[frame[name] == st.selectbox(f"Keep {name} at", values, key=f"phase_fix_{name}")]
    where = "loaded from the file"
else:
    c1, c2, c3, c4 = st.columns(4)
    arch = ui.choice(c1, "radio", "Model", {a: a.upper() for a in ARCHS}, key="phase_arch", horizontal=True)
    x = c2.selectbox("Across", sweep.axes_for(arch), key="phase_x", **bound)
    ys = [a for a in sweep.axes_for(arch) if a != x]
    y = c3.selectbox(
        "Up",
        ys,
        index=ys.index(sf.FAVOURITE_Y[arch]) if sf.FAVOURITE_Y[arch] in ys else 0,
        key=f"phase_y_{arch}",
        **bound,
    )
    seeds = range(c4.number_input("Seeds", 1, 5, 2, key="phase_seeds", **bound))
    texts = {
        a: c.text_input(f"{a} values", sf.AXIS_DEFAULTS.get(a, "1 2"), key=f"phase_{a}", **bound)
        for a, c in zip((x, y), st.columns(2), strict=True)
    }
    base = asdict(settings)
    base |= (changed := sweep.enabling(base, [x, y], arch))  # e.g. spectral_radius acts only with some inits
    try:
        axes = {a: sweep.parse_values(a, text) for a, text in texts.items()} | {"seed": seeds}
        cells = sweep.grid([arch], axes, base)
    except ValueError as err:
        st.error(f"Cannot build this grid: {err}")
        st.stop()
    if len(cells) > MAX_LIVE_CELLS:
        st.warning(
            f"{len(cells)} cells are more than this page computes ({MAX_LIVE_CELLS}). Run them on "
            f"Ray and load the file:\n\n`{sweep.command_line([arch], axes, base)}`"
        )
        st.stop()
    heavy = sum(s.batch_size * s.seq_len * s.hidden_size for _, s in cells) > ui.HEAVY_CELLS
    with st.status(f"Measuring {len(cells)} cells...") as status:
        bar, rows = st.progress(0.0), []
        with ui.take_turn(bar, 0.0, f"{len(cells)} cells") if heavy else nullcontext():  # a long grid queues
            for k, (a, s) in enumerate(cells):
                rows.append({"arch": a, **asdict(s), **cached_cell(a, **asdict(s))})
                bar.progress((k + 1) / len(cells), text=f"{k + 1} of {len(cells)} cells")
        status.update(label=f"Measured {len(cells)} cells", state="complete", expanded=False)
    frame = sweep.frame_of(rows)
    where = "computed here, in this process (no Ray: it would start slower than these cells run)"
    where += "".join(f"; {k} = {v}, as the axes need" for k, v in changed.items())

if len(failed := frame[frame["error"].notna()]):
    st.warning(
        f"{len(failed)} of {len(frame)} cells failed and are left out, e.g.: {failed['error'].iloc[0]}"
    )
try:
    fig = sf.phase_figure(frame, x, y, value)
except ValueError as err:
    st.error(str(err))
    st.stop()
caption = f"Brighter: {sf.VALUE_READINGS[value]}. Median over seeds, {where}; hover a square for its value."
ui.chart(fig, caption, f"phase_{arch}_{x}_{y}")
