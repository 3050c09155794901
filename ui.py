"""Streamlit helpers shared by the pages: the settings sidebar, cached recordings, charts, downloads.

Every control is bound to the URL (bind="query-params", the widget key is the
parameter name), so a link reproduces the view and the settings follow the user
from page to page. The model settings are shared on purpose: the gates page shows
the very LSTM whose gradient the first page plotted. Page-only widgets carry a
page prefix in their key.
"""

from __future__ import annotations

from dataclasses import asdict

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from lstm_viz import INITS, INPUTS, Recording
from lstm_viz.training import record_trained
from lstm_viz.views import HIDDEN_SIZE_RANGE, SEQ_LEN_RANGE, RunSettings, figure_html, run, tidy_csv

DEFAULTS = RunSettings()
INIT_HELP = (
    "default: PyTorch's uniform(±1/√H). forget_bias: the effective forget-gate bias below. "
    "chrono: forget bias ~ log U(1, T-1), input bias = minus that (Tallec & Ollivier 2018). "
    "orthogonal: W_hh = ρ·Q, Q random orthogonal. identity: W_hh = ρ·I, zero biases (IRNN, Le et al. 2015)."
)
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
# Runs above this many (sample, step, unit) values show a progress bar.
PROGRESS_CELLS = 200_000


def _open_cell_path() -> None:
    st.session_state["lstm_init"] = "chrono"


def _rnn_init_changed() -> None:
    if st.session_state.get("rnn_init") == "identity":
        st.session_state["rnn_act"] = "relu"  # IRNN (Le et al. 2015) is a relu network


PAGES = (  # Streamlit would name the first page after its file, "app"
    ("app.py", "Gradient flow", ":material/timeline:"),
    ("pages/1_Gates_and_cell_state.py", "Gates and cell state", ":material/grid_on:"),
    ("pages/2_LSTM_equations.py", "LSTM equations", ":material/function:"),
    ("pages/3_Training_lab.py", "Training lab", ":material/model_training:"),
)


# The sidebar's model settings, shared by every page: key (= URL parameter) -> (default, allowed).
# They sync with the URL by hand rather than with bind="query-params": Streamlit drops bound
# parameters when the user switches pages, and a bound widget then falls back to its default.
SHARED = {
    "seq_len": (DEFAULTS.seq_len, SEQ_LEN_RANGE),
    "hidden_size": (DEFAULTS.hidden_size, HIDDEN_SIZE_RANGE),
    "batch": (DEFAULTS.batch_size, (1, 64)),
    "input": (DEFAULTS.input_kind, tuple(INPUTS)),
    "input_size": (DEFAULTS.input_size, (1, 64)),
    "seed": (DEFAULTS.seed, (0, 2**31 - 1)),
    "lstm_init": (DEFAULTS.lstm_init, INITS["lstm"]),
    "forget_bias": (DEFAULTS.forget_bias, (-3.0, 10.0)),
    "rnn_init": (DEFAULTS.rnn_init, INITS["rnn"]),
    "rho": (DEFAULTS.spectral_radius, (0.1, 2.0)),
    "rnn_act": (DEFAULTS.rnn_nonlinearity, ("tanh", "relu")),
    "gru_init": (DEFAULTS.gru_init, INITS["gru"]),
}


def _from_url(key: str):
    """The URL's value for a shared setting, checked and typed; its default when absent or bad."""
    default, allowed = SHARED[key]
    raw = st.query_params.get(key)
    if raw is None:
        return default
    if isinstance(default, str):
        return raw if raw in allowed else default
    try:
        value = type(default)(float(raw))
    except ValueError:
        return default
    low, high = allowed
    return value if low <= value <= high else default


_KEPT, _PAGE = "_shared_settings", "_settings_page"  # plain session keys: they outlive widgets


def _settings_from_url(page: str) -> None:
    """Put the shared settings into their widgets' state when a page is entered.

    Priority: the URL (a shared link, or a page link, which carries them), then the values
    kept from the last page, then the defaults. Streamlit drops widget state when the user
    switches pages; on reruns within a page the widgets own their values and are left alone.
    """
    kept = st.session_state.get(_KEPT, {})
    entering = st.session_state.get(_PAGE) != page
    st.session_state[_PAGE] = page
    for key, (default, _) in SHARED.items():
        if entering or key not in st.session_state:
            st.session_state[key] = _from_url(key) if key in st.query_params else kept.get(key, default)


def _settings_to_url() -> None:
    """Keep the shared settings for the next page and write them into the URL (defaults left out)."""
    st.session_state[_KEPT] = {key: st.session_state[key] for key in SHARED}
    for key, (default, _) in SHARED.items():
        value = st.session_state[key]
        if value == default:
            st.query_params.pop(key, None)
        else:
            st.query_params[key] = str(value)


def nav() -> None:
    """The page links at the top of the sidebar (the automatic list is off in .streamlit/config.toml).

    Each link carries the shared settings, so the next page shows the same models.
    """
    kept = st.session_state.get(_KEPT, {})
    current = {k: st.session_state.get(k, kept.get(k, default)) for k, (default, _) in SHARED.items()}
    shared = {k: str(v) for k, v in current.items() if v != SHARED[k][0]}
    for path, label, icon in PAGES:
        try:
            st.sidebar.page_link(path, label=label, icon=icon, query_params=shared)
        except StreamlitPageNotFoundError:
            # AppTest runs one page file on its own, with no other pages to link to; a served
            # app always has them (tests/test_browser.py follows these links).
            return
    st.sidebar.divider()


def settings_sidebar(page: str) -> RunSettings:
    """Draw the page links and the shared model settings in the sidebar; returns the settings.

    page names the calling page (any string unique to it).
    """
    _settings_from_url(page)
    nav()
    sb = st.sidebar
    sb.header("Run")
    seq_len = sb.slider("Sequence length", *SEQ_LEN_RANGE, step=10, key="seq_len",
                        help="Steps T in the input sequence.")  # fmt: skip
    hidden_size = sb.slider("Hidden size", *HIDDEN_SIZE_RANGE, key="hidden_size",
                            help="Units H in each model's state.")  # fmt: skip
    batch_size = sb.slider("Batch of sequences", *SHARED["batch"][1], key="batch",
                           help="More than one: lines are medians with the interquartile band.")  # fmt: skip
    input_kind = sb.selectbox("Input", SHARED["input"][1], key="input")
    c1, c2 = sb.columns(2)
    input_size = c1.number_input("Input features", *SHARED["input_size"][1], key="input_size")
    seed = c2.number_input("Seed", *SHARED["seed"][1], key="seed")

    sb.header("LSTM")
    lstm_init = sb.selectbox("LSTM init", INITS["lstm"], key="lstm_init", help=INIT_HELP)
    forget_bias = sb.slider(
        "Forget-gate bias (effective)",
        *SHARED["forget_bias"][1],
        step=0.5,
        key="forget_bias",
        disabled=lstm_init != "forget_bias",
        help="b_if + b_hf. PyTorch adds both biases, so 1 in each means 2.",
    )
    sb.button(
        "Open the cell path: chrono init",
        on_click=_open_cell_path,
        disabled=lstm_init == "chrono",
        help="Forget bias ~ log U(1, T-1): forget gates start near 1, so the cell keeps its memory.",
    )

    sb.header("RNN")
    rnn_init = sb.selectbox(
        "RNN init", INITS["rnn"], key="rnn_init", help=INIT_HELP, on_change=_rnn_init_changed
    )
    spectral_radius = sb.slider(
        "Spectral radius ρ of W_hh",
        *SHARED["rho"][1],
        step=0.05,
        key="rho",
        disabled=rnn_init == "default",
        help="Used by the orthogonal and identity inits; above 1 gradients explode.",
    )
    nonlinearity = sb.radio("RNN activation", ("tanh", "relu"), horizontal=True, key="rnn_act")

    sb.header("GRU")
    gru_init = sb.selectbox("GRU init", INITS["gru"], key="gru_init", help=INIT_HELP)
    _settings_to_url()
    return RunSettings(
        seq_len=int(seq_len),
        hidden_size=int(hidden_size),
        seed=int(seed),
        input_kind=input_kind,
        input_size=int(input_size),
        batch_size=int(batch_size),
        lstm_init=lstm_init,
        forget_bias=float(forget_bias),
        rnn_init=rnn_init,
        spectral_radius=float(spectral_radius),
        rnn_nonlinearity=nonlinearity,
        gru_init=gru_init,
    )


@st.cache_data(max_entries=24, show_spinner=False)
def cached_recording(arch: str, **settings) -> Recording:
    """run() on plain values, so repeated settings come from the cache."""
    return run(RunSettings(**settings), arch)


def recordings(settings: RunSettings, archs: list[str]) -> list[Recording]:
    """Cached recordings of each arch, with a progress bar for long runs; a ValueError from the
    library (memory estimate over the limit, bad input) shows as an error and stops the page."""
    cells = settings.batch_size * settings.seq_len * settings.hidden_size
    slot = st.empty()
    bar = slot.progress(0.0, text="Recording...") if cells > PROGRESS_CELLS else None
    out = []
    try:
        for k, arch in enumerate(archs):
            if bar is not None:
                bar.progress(
                    k / len(archs),
                    text=f"Recording {arch.upper()} "
                    f"({settings.seq_len} steps × {settings.hidden_size} units)...",
                )
            out.append(cached_recording(arch, **asdict(settings)))
    except ValueError as err:
        slot.empty()
        st.error(f"Cannot run these settings: {err}")
        st.stop()
    slot.empty()
    return out


def chart(fig: go.Figure, caption: str, key: str) -> None:
    """The figure, its one-line caption, and a button that downloads it as standalone HTML."""
    st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=f"{key}_chart")
    st.caption(caption)
    st.download_button(
        "Chart as HTML",
        lambda: figure_html(fig),
        file_name=f"{key}.html",
        mime="text/html",
        key=f"{key}_html",
        icon=":material/download:",
        type="tertiary",
        on_click="ignore",
    )


def csv_download(recs: list[Recording], key: str) -> None:
    """Download button for the recordings' tidy frame (built only when clicked)."""
    st.download_button(
        "Recording as CSV (tidy)",
        lambda: tidy_csv(recs),
        file_name=f"{key}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        icon=":material/table:",
        on_click="ignore",
        help="Columns model, arch, sample, t, unit, quantity, value.",
    )


def trained_toggle(key: str) -> bool:
    """A toggle to inspect the models trained in the Training lab this session; False when none."""
    if not st.session_state.get("trained_models"):
        return False
    return st.toggle(
        "Inspect the models trained in the Training lab",
        key=key,
        help="They run on fresh sequences of their own task, the task's loss entering at the last step; "
        "the sidebar's model settings do not apply. Trained models live in this browser session only, "
        "so a shared link shows fresh models.",
    )


def trained_recordings(archs: list[str]) -> list[Recording]:
    """Recordings of the Training lab's models among archs, each computed once per checkpoint."""
    models = st.session_state.get("trained_models") or {}
    done = st.session_state.setdefault("ui_trained_recordings", {})
    out = []
    for arch in archs:
        checkpoint = models.get(arch)
        if checkpoint is None:
            continue
        key = (arch, checkpoint["step"], repr(sorted(checkpoint["config"].items())))
        if key not in done:
            with st.spinner(f"Recording the trained {arch.upper()}..."):
                done[key] = record_trained(checkpoint)
        out.append(done[key])
    return out
