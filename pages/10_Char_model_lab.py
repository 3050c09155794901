"""Char-model lab: train a char-level language model on Python's own source, with stop and resume."""

import streamlit as st

import ui
from lstm_viz import charlm_lab
from lstm_viz.charlm import CharLMConfig, CharLMTrainer

st.set_page_config(page_title="Char-model lab · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Char-model lab")
st.markdown(
    "Train your own char-level language model on the text of Python's standard library (the **Real text** "
    "page's corpus), predicting the next character at every step. Stop whenever you like, continue "
    "later, then download it and open it on the **Your model** page with a text file."
)
ui.nav()
sb, bound = st.sidebar, {"bind": "query-params"}
sb.header("Model")
arch = ui.choice(
    sb, "radio", "Architecture", {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}, key="charlab_arch"
)
layers = sb.radio("Layers", (1, 2), horizontal=True, key="charlab_layers", **bound)
hidden = sb.select_slider("Hidden size", (64, 128, 192, 256), 128, key="charlab_hidden", **bound)
steps = sb.slider("Training steps", 50, 5000, 1000, step=50, key="charlab_steps", **bound)
seed = sb.number_input("Seed", 0, 2**31 - 1, 0, key="charlab_seed", **bound)
config = CharLMConfig(arch=arch, hidden_size=hidden, num_layers=layers, steps=steps, seed=seed,
                      eval_every=max(steps // 10, 10))  # fmt: skip

state = st.session_state
trainer: CharLMTrainer | None = state.get("charlab_trainer")
running = state.get("charlab_running", False)
row = st.container(horizontal=True, vertical_alignment="center")
if row.button("Start", type="primary", icon=":material/play_arrow:", disabled=running, key="charlab_start"):
    with st.spinner("Reading the corpus..."):
        trainer = state.charlab_trainer = CharLMTrainer(config)
    state.charlab_running = running = True
if row.button("Stop", icon=":material/stop:", disabled=not running, key="charlab_stop"):
    state.charlab_running = running = False
if row.button("Continue", icon=":material/resume:", key="charlab_continue",
              disabled=running or trainer is None or trainer.done):  # fmt: skip
    state.charlab_running = running = True
if trainer is None:
    st.info("Pick a model in the sidebar and press **Start**: 1000 steps of a 128-unit LSTM take a few "
            "minutes on two CPU cores.", icon=":material/school:")  # fmt: skip
    st.stop()
if trainer.config != config:
    row.caption("The settings changed since this run: press Start to train with them.")

progress, chart = st.empty(), st.empty()
baselines = state.setdefault("charlab_baselines", {})
if not baselines:
    baselines.update(trainer.baselines())


def draw() -> None:
    done = f"step {trainer.step} of {trainer.config.steps}"
    note = " (done)" if trainer.done else "" if running else " (paused)"
    progress.progress(trainer.step / trainer.config.steps, text=done + note)
    chart.plotly_chart(charlm_lab.training_figure(trainer, baselines), width="stretch",
                       key=f"charlab_loss_{trainer.step}")  # fmt: skip


draw()
while running and not trainer.done and state.get("charlab_running"):
    with ui.take_turn(progress, trainer.step / trainer.config.steps, f"step {trainer.step}"):
        trainer.advance(trainer.config.steps, seconds=0.7)  # Stop interrupts between chunks
    draw()
if running and trainer.done:
    state.charlab_running = False
    st.rerun()
st.caption(
    f"Bits per character: faint, each training batch; bold, the validation probe. The dashed lines are "
    f"what counting characters gives (unigram {baselines['unigram']:.2f}, bigram {baselines['bigram']:.2f}); "
    "a model below them has learned something about Python beyond letter frequencies."
)
st.download_button(
    "Char model (.pt)",
    charlm_lab.checkpoint_bytes(trainer),
    file_name=f"charlm-{trainer.config.arch}-step{trainer.step}.pt",
    key="charlab_download",
    icon=":material/download:",
    on_click="ignore",
    help="Opens on the Your model page, with a .txt file as the sequence.",
)
