"""Training lab: train RNN, LSTM and GRU on a long-range task and watch their gradients as they learn."""

import streamlit as st

import ui
from lstm_viz import ARCHS, INITS
from lstm_viz import training_figures as tf
from lstm_viz.tasks import TASKS
from lstm_viz.training import DEFAULT_INITS, TrainConfig, Trainer

st.set_page_config(page_title="Training lab · lstm-viz", page_icon=":material/model_training:", layout="wide")
st.title("Training lab")
st.markdown(
    "Train the networks on the same batches, from the same seed, on a task whose answer lies **T steps "
    "back**. Every few steps the trained weights go into the instrumented model, which measures how much "
    "of the task loss's gradient ‖∂L/∂h<sub>t</sub>‖ still reaches each earlier step of a fixed probe batch.",
    unsafe_allow_html=True,
)

bound = {"bind": "query-params"}
ui.nav()
sb = st.sidebar
sb.header("Task")
task = sb.selectbox("Task", list(TASKS), format_func=lambda n: TASKS[n].title, key="train_task", **bound)
lag = sb.slider("Lag T", 5, 200, 50, step=5, key="train_lag", help="Steps between cue and answer.", **bound)
hidden = sb.slider("Hidden size", 4, 128, 32, step=4, key="train_hidden", **bound)
archs = sb.multiselect("Models", ARCHS, default=ARCHS, format_func=str.upper, key="train_archs", **bound)
sb.header("Optimiser")
steps = sb.slider("Training steps", 50, 5000, 1000, step=50, key="train_steps", **bound)
lr = sb.select_slider("Learning rate (Adam)", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], 3e-3, key="train_lr", **bound)
clip_on = sb.toggle("Clip the gradient norm", True, key="train_clip_on", **bound)
clip = sb.slider("Clipping threshold", 0.1, 10.0, 1.0, 0.1, key="train_clip", disabled=not clip_on, **bound)
sb.header("Initialisation")
inits = {}
for a in ARCHS:
    default = INITS[a].index(DEFAULT_INITS[a])
    inits[a] = sb.selectbox(
        f"{a.upper()} init", INITS[a], default, key=f"train_init_{a}", help=tf.CAPTIONS["inits"], **bound
    )
seed = sb.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed", **bound)
config = TrainConfig(task, lag, hidden, tuple(archs), steps, lr=lr, clip=clip if clip_on else None,
                     inits=inits, seed=seed, record_every=max(steps // 40, 5))  # fmt: skip

state = st.session_state
row = st.container(horizontal=True, vertical_alignment="center")
if row.button("Start", type="primary", icon=":material/play_arrow:", key="train_start", disabled=not archs):
    state.train_trainer, state.train_running = Trainer(config), True


def stop() -> None:  # a callback runs before the page, so the Stop button is drawn disabled at once
    state.train_running = False
    state.train_trainer.finish()


row.button(
    "Stop", icon=":material/stop:", key="train_stop", disabled=not state.get("train_running"), on_click=stop
)
trainer: Trainer | None = state.get("train_trainer")
if trainer is None:
    st.info("Pick a task and models in the sidebar, then press **Start**. 1000 steps at T = 50 take about a "
            "minute on two CPU cores.", icon=":material/school:")  # fmt: skip
    st.stop()
if trainer.config != config:
    row.caption("The settings changed since this run: press Start to train with them.")

progress, live = st.progress(0.0), st.empty()


def draw_progress() -> None:
    progress.progress(
        trainer.step / trainer.config.steps, text=f"step {trainer.step} of {trainer.config.steps}"
    )
    live.plotly_chart(tf.loss_figure(trainer.results()), width="stretch", key=f"train_loss_{trainer.step}")


draw_progress()
if state.get("train_running"):
    while not trainer.done:  # Stop (or any widget) interrupts this loop; the trainer keeps its steps
        trainer.advance(trainer.config.steps, seconds=0.7)
        draw_progress()
    state.train_running = False
    st.rerun()
st.caption(tf.CAPTIONS["loss"])

results = trainer.results()
state.trained_models = {a: trainer.checkpoint(a) for a in results}  # for the gradient-flow and gates pages
shown = st.slider("Training step shown", 0, trainer.step, trainer.step, trainer.config.record_every,
                  key="train_step", help="Scrub through training: the charts below follow.")  # fmt: skip
ui.chart(tf.gradient_heatmap_figure(results, shown), tf.CAPTIONS["heatmap"], "train_heatmap")
left, right = st.columns(2)
with left:
    ui.chart(tf.gradient_profile_figure(results, shown), tf.CAPTIONS["profile"], "train_profile")
with right:
    ui.chart(tf.keep_gate_figure(results, shown), tf.CAPTIONS["gates"], "train_gates")
ui.chart(tf.grad_norm_figure(results, trainer.config.clip), tf.CAPTIONS["grad_norm"], "train_grad_norm")

st.subheader("Trained models", anchor=False)
st.caption(
    "Plain state dicts of the recurrent layer, for `torch.nn.LSTM(2, H, batch_first=True)` (10 inputs for "
    "copy memory) or `lstm_viz.build_model`: `model.load_state_dict(torch.load(path))`."
)
for col, arch in zip(st.columns(len(results)), results, strict=True):
    name = f"{trainer.config.task}_T{trainer.config.lag}_{arch}_step{trainer.step}.pt"
    col.download_button(f"{arch.upper()} (.pt)", trainer.model_bytes(arch), file_name=name,
                        key=f"train_dl_{arch}", icon=":material/download:", on_click="ignore")  # fmt: skip
