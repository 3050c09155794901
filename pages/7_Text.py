"""Real text: a char-level model reads Python's own source; which units track what, and which
earlier characters still reach a prediction."""

import streamlit as st

import ui
from lstm_viz import text_view as tv
from lstm_viz.corpus import find_units, recording_activations, text_features

st.set_page_config(page_title="Real text · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Real text: what a char-level model remembers")
st.markdown(
    "Three small char-level language models (RNN, LSTM, GRU, 128 units, shipped with lstm-viz) were "
    "trained to predict the next character of Python's standard-library source. Here they read a "
    "passage of its validation text, which they never trained on. Passages stop at "
    f"{tv.MAX_PASSAGE} characters, about a screenful: every character stays readable and the "
    "connectivity map, which grows with the square of the length, stays quick."
)
ui.nav()


@ui.shared("Recording the passage...")
def passage_recording(arch: str, start: int, length: int):
    return tv.passage_recording(arch, start, length)


@ui.shared("Recording the gradient...")
def influence_recording(arch: str, start: int, length: int, position: int):
    return tv.influence_recording(arch, start, length, position)


@ui.shared("Computing the connectivity...")
def passage_connectivity(arch: str, start: int, length: int):
    return tv.passage_connectivity(arch, start, length)


def show_unit(quantity: str, unit: int) -> None:
    st.session_state["text_quantity"], st.session_state["text_unit"] = quantity, unit


c1, c2, c3 = st.columns([1, 1, 2])
arch = ui.choice(c1, "radio", "Model", {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}, key="text_arch",
                 horizontal=True)  # fmt: skip
last_start = len(tv.validation_text()) - tv.MAX_PASSAGE - 1
start = int(c2.number_input("Passage start (character)", 0, last_start, tv.DEFAULT_START, step=100,
                            key="text_start", bind="query-params"))  # fmt: skip
length = int(c3.slider("Length (characters)", 50, tv.MAX_PASSAGE, 400, step=10, key="text_len",
                       bind="query-params"))  # fmt: skip
text = tv.passage(start, length)
try:
    rec = passage_recording(arch, start, length)
except ValueError as err:
    st.error(f"This passage cannot be recorded: {err}. Try a shorter passage or another start.")
    st.stop()

matches = find_units(recording_activations(rec), text_features(text), k=3)
if not {"text_unit", "text_quantity"} & (set(st.session_state) | set(st.query_params)):
    show_unit(*next(((f[0].quantity, f[0].unit) for f in matches.values() if f), ("hidden", 0)))

st.subheader("Colour the text by one unit", anchor=False)
q_col, u_col = st.columns(2)
quantity = ui.choice(q_col, "select", "Colour by", tv.quantities(rec), key="text_quantity")
unit = int(u_col.number_input("Unit", 0, rec.hidden_size - 1, key="text_unit", bind="query-params"))
values = tv.unit_values(rec, quantity, unit)
vmin, vmax, scale = tv.unit_scale(quantity, values)
st.html(tv.text_html(text, values, vmin=vmin, vmax=vmax, scale=scale, offset=start,
                     label=f"{arch.upper()} unit {unit}, {tv.quantity_label(quantity)}:"))  # fmt: skip
st.caption(
    "Each character's background is the unit's value right after reading it (blue low, red high; gates "
    "from white, shut, to blue, open). Hover a character for its value. A unit that tracks something "
    "changes colour where the text does: at quotes, brackets, line breaks. It starts on the unit that "
    "tracks string literals best (see the unit finder below)."
)

st.subheader("Unit finder", anchor=False)
table = tv.unit_table(matches)
st.dataframe(table, hide_index=True, height=36 * (len(table) + 1) + 3,
             column_config={"r": st.column_config.NumberColumn(format="%+.2f")})  # fmt: skip
st.caption("Units whose activation correlates most with each feature of the passage (Pearson r; a "
           "negative r tracks it just as well). Click one to colour the text by it.")  # fmt: skip
buttons = st.container(horizontal=True)
for feature, found in matches.items():
    if found:
        m = found[0]
        buttons.button(f"{tv.FEATURE_LABELS[feature]}: {m.quantity} {m.unit} (r = {m.r:+.2f})",
                       key=f"text_find_{feature}", on_click=show_unit, args=(m.quantity, m.unit))  # fmt: skip
if missing := [tv.FEATURE_LABELS[f] for f, found in matches.items() if not found]:
    st.caption(f"Not in this passage (nothing to correlate): {', '.join(missing)}.")

st.subheader("Which earlier characters still count", anchor=False)
position = int(st.slider("Prediction after character t′ (of the passage)", 1, length - 1, length - 1,
                         key="text_pos", bind="query-params"))  # fmt: skip
st.caption(
    f"The loss is the model's error in predicting character {position + 1} (after the outlined one). "
    "Every earlier character x_t is coloured by log₁₀ ‖∂loss/∂x_t‖ relative to its peak: how much it "
    "still influences that prediction. Later characters (grey) cannot."
)
for column, model in zip(st.columns(2), ["rnn", "lstm"], strict=True):
    grad = influence_recording(model, start, length, position).log10_grad_x[0]
    shade = tv.influence_values(grad, position, length)
    label = f"{model.upper()}: decades below the peak"
    column.html(tv.text_html(text, shade, vmin=-10, vmax=0, scale="influence", mark=position, offset=start,
                             label=label, ends=("−10", "0")))  # fmt: skip
    back = tv.fall_distance(grad, position)
    column.caption(
        f"{model.upper()}: the gradient falls below 10⁻³ of its peak {back} characters back."
        if back is not None
        else f"{model.upper()}: the gradient stays within 10⁻³ of its peak over the whole passage."
    )

st.subheader("Connectivity", anchor=False)
for column, model in zip(st.columns(2), ["rnn", "lstm"], strict=True):
    with column:
        values = passage_connectivity(model, start, length)
        fig = tv.connectivity_text_figure(values, text, position, model.upper())
        ui.chart(fig, None, f"text_{model}_connectivity", title=f"{model.upper()} connectivity")
st.caption(
    f"Every earlier character at once, for the {tv.WINDOW} characters up to t′: row = the state after "
    "reading a character, column = an input character, colour = log₁₀ ‖∂(u·h)/∂x‖ (how much that input "
    "still moves that state; u sums the units). Read a row from the diagonal leftwards: the faster it "
    "fades, the less of the past that state still carries."
)
