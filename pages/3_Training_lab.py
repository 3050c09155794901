"""Training lab: train RNN, LSTM and GRU on a long-range task and watch their gradients as they learn."""

import streamlit as st

import ui
from lstm_viz import ARCHS, INITS
from lstm_viz import presets as pr
from lstm_viz import training_figures as tf
from lstm_viz.tasks import TASKS
from lstm_viz.training import DEFAULT_INITS, MODEL_NAMES, TrainConfig, Trainer, model_title


def apply_preset() -> None:
    if state.train_preset:
        state.update({f"train_{k}": v for k, v in pr.PRESETS[state.train_preset].widget_values().items()})


st.set_page_config(page_title="Training lab · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Training lab")
st.markdown(
    "Train the networks on the same batches, from the same seed, on a task whose answer lies **T steps "
    "back**. Every few steps the trained weights go into the instrumented model, which measures how much "
    "of the task loss's gradient ‖∂L/∂h<sub>t</sub>‖ still reaches each earlier step of a fixed probe batch.",
    unsafe_allow_html=True,
)
state = st.session_state
# Leaving the page stops its script; a run that was training is paused there and says so on return.
entering = state.get(ui._PAGE) != "training_lab" or "train_task" not in state
state[ui._PAGE] = "training_lab"
if entering:  # task and models are read from the URL by hand: links carry ids, old ones labels
    params = st.query_params
    archs = params.get_all("train_archs") if "train_archs" in params else None
    state.train_task, state.train_archs, dropped = pr.read_link(params.get("train_task"), archs)
    if dropped:
        st.warning(f"Part of the link was not used: {'; '.join(dropped)}.", icon=":material/link_off:")
    if state.get("train_running"):
        step = state.train_trainer.pause()
        state.train_running, state.train_paused_at = False, None if state.train_trainer.done else step

bound = {"bind": "query-params"}
ui.nav()
sb = st.sidebar
sb.selectbox("Paper preset", ["", *pr.PRESETS], format_func=lambda n: pr.PRESETS[n].title if n else "none",
             key="train_preset", on_change=apply_preset)  # fmt: skip
sb.header("Task")
task = sb.selectbox("Task", list(TASKS), format_func=lambda n: TASKS[n].title, key="train_task")
sb.caption(TASKS[task].source)
lag = sb.slider("Lag T", 5, 200, 50, step=5, key="train_lag", help="Steps between cue and answer.", **bound)
hidden = sb.slider("Hidden size", 4, 128, 32, step=4, key="train_hidden", **bound)
archs = sb.multiselect("Models", MODEL_NAMES, format_func=model_title, key="train_archs", help=pr.MODELS_HELP)
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
pr.write_link(st.query_params, task, archs)
config = TrainConfig(task, lag, hidden, tuple(archs), steps, lr=lr, clip=clip if clip_on else None,
                     inits=inits, seed=seed, record_every=max(steps // 40, 5))  # fmt: skip
problem = config.problem()
if problem:
    sb.error(problem, icon=":material/block:")
if state.get("train_preset") and (note := pr.note(state.train_preset, config)):
    st.caption(note)


def start() -> None:  # callbacks run before the page, so the buttons are drawn in their new state at once
    state.train_new, state.train_running, state.train_paused_at = True, True, None


def stop() -> None:  # pause() also stops the chunk that the old script run is still training (fast reruns)
    state.train_running = False
    state.train_trainer.pause()


def resume() -> None:
    state.train_running, state.train_paused_at = True, None
    state.train_trainer.resume()


if state.pop("train_new", False):  # before the buttons: Stop is never drawn enabled with nothing to stop
    state.train_trainer = Trainer(config)
running, trainer = state.get("train_running", False), state.get("train_trainer")
row = st.container(horizontal=True, vertical_alignment="center")
row.button("Start", type="primary", icon=":material/play_arrow:", key="train_start", on_click=start,
           disabled=running or bool(problem), help="A new run from step 0")  # fmt: skip
row.button("Stop", icon=":material/stop:", key="train_stop", disabled=not running, on_click=stop)
if trainer is not None and not trainer.done:
    row.button("Continue", icon=":material/play_circle:", key="train_resume", on_click=resume,
               disabled=running, help="Train this run on from where it stopped.")  # fmt: skip
if trainer is None:
    st.info("Pick a task and models in the sidebar, or a paper preset, then press **Start**. 1000 steps at "
            "T = 50 take about a minute on two CPU cores.", icon=":material/school:")  # fmt: skip
    st.stop()
if state.get("train_paused_at") is not None:
    st.info(f"Training paused at step {state.train_paused_at} when you left the page: **Continue** trains "
            "on, **Start** begins a new run.", icon=":material/pause_circle:")  # fmt: skip
if trainer.config != config:
    row.caption("The settings changed since this run: press Start to train with them.")

progress, live, total = st.empty(), st.empty(), trainer.config.steps
progress.progress(trainer.step / total, text=f"step {trainer.step} of {total}")
if running:
    while not trainer.done and not trainer.paused:  # Stop pauses the trainer, even mid-chunk
        with ui.take_turn(progress, trainer.step / total, f"step {trainer.step} of {total}"):
            trainer.advance(total, seconds=0.7)  # users training at once take turns, chunk by chunk
        progress.progress(trainer.step / total, text=f"step {trainer.step} of {total}")
        live.plotly_chart(tf.loss_figure(trainer.results()), width="stretch", key=f"loss{trainer.step}")
    state.train_running = False
    trainer.pause()
    st.rerun()
st.caption(tf.CAPTIONS["loss"])

results = trainer.results()
state.trained_models = trainer.checkpoints()  # for the gradient-flow and gates pages
snapshots = [int(s) for s in next(iter(results.values())).snapshot_steps]
state.train_step = pr.follow_step(state.get("train_step"), state.get("train_step_last"), snapshots)
state.train_step_last = snapshots[-1]
shown = snapshots[-1]
if len(snapshots) > 1:
    shown = st.select_slider(
        "Training step shown", snapshots, key="train_step", help="The charts below follow."
    )
live.plotly_chart(tf.loss_figure(results, shown), width="stretch", key="train_loss")
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
for col, name in zip(st.columns(len(results)), results, strict=True):
    file = f"{trainer.config.task}_T{trainer.config.lag}_{name}_step{trainer.step}.pt"
    col.download_button(f"{results[name].label} (.pt)", trainer.model_bytes(name), file_name=file,
                        key=f"train_dl_{name}", icon=":material/download:", on_click="ignore")  # fmt: skip
