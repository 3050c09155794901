"""Streamlit widgets shared by the pages: the settings sidebar, cached recordings, charts, downloads.

The sidebar is drawn from the declared settings (lstm_viz.settings.SETTINGS): each widget's
key is the setting's name, which is also its URL parameter, so a link reproduces the view and
the settings follow the user from page to page. The model settings are shared on purpose: the
gates page shows the very LSTM whose gradient the first page plotted. Page-only widgets carry
a page prefix in their key.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import astuple
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lstm_viz import Recording
from lstm_viz.prose import settings_line
from lstm_viz.settings import (
    SETTINGS,
    Settings,
    check_memory,
    complete,
    from_query,
    non_finite_params,
    run,
    to_query,
)
from lstm_viz.tables import CSV_BYTES_PER_ROW, MAX_EXPORT_ROWS, export_plan, figure_html, tidy_csv
from lstm_viz.training import record_trained
from lstm_viz.workers import (
    Line,
    Store,
    default_cache_bytes,
    default_cache_idle_s,
    default_workers,
    release_memory,
)

# The pages' icon, served by the app itself: a material-icon page_icon would load the favicon
# from Google's font servers, and no request may leave the machine.
ICON = str(Path(__file__).resolve().parent / "assets" / "icon.png")
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
# Runs above this many (sample, step, unit) values show a progress bar.
PROGRESS_CELLS = 200_000
# Runs above this many values (about a second of work) wait their turn in the server's line
# (lstm_viz.workers.Line); smaller ones start at once, so light pages stay quick while heavy runs queue.
HEAVY_CELLS = 1_000_000
HEAVY_WORK = 2.5e10  # multiply-adds of a connectivity map: about a second on one core
SIDEBAR = [s for s in SETTINGS if s.widget is not None]
_ALL_KEYS = {s.name for s in SIDEBAR} | {a for s in SIDEBAR for a in s.aliases}


def _open_cell_path() -> None:
    st.session_state["lstm_init"] = "chrono"


def _rnn_init_changed() -> None:
    if st.session_state.get("rnn_init") == "identity":
        st.session_state["rnn_nonlinearity"] = "relu"  # IRNN (Le et al. 2015) is a relu network


PAGES = (  # Streamlit would name the first page after its file, "app"
    ("app.py", "Gradient flow", ":material/timeline:"),
    ("pages/6_Lessons.py", "Lessons", ":material/school:"),
    ("pages/1_Gates_and_cell_state.py", "Gates and cell state", ":material/grid_on:"),
    ("pages/2_LSTM_equations.py", "LSTM equations", ":material/function:"),
    ("pages/3_Training_lab.py", "Training lab", ":material/model_training:"),
    ("pages/4_Theory.py", "Theory", ":material/functions:"),
    ("pages/5_Phase_diagram.py", "Phase diagram", ":material/blur_on:"),
    ("pages/7_Text.py", "Real text", ":material/text_fields:"),
    ("pages/10_Char_model_lab.py", "Char-model lab", ":material/keyboard:"),
    ("pages/8_Your_model.py", "Your model", ":material/upload_file:"),
    ("pages/9_Connectivity.py", "Connectivity", ":material/grid_view:"),
)
# The settings sync with the URL by hand rather than with bind="query-params": Streamlit drops
# bound parameters when the user switches pages, and a bound widget then falls back to its default.
_KEPT, _PAGE = "_shared_settings", "_settings_page"  # plain session keys: they outlive widgets


def _settings_from_url(page: str) -> None:
    """Put the shared settings into their widgets' state when a page is entered.

    A URL that names any setting (a shared link, or a page link, which carries them all) decides
    every setting, the unnamed ones taking their defaults; without one, the values kept from the
    last page stay. A URL value that is not allowed is dropped with a warning that says so.
    Streamlit drops widget state when the user switches pages; on reruns within a page the
    widgets own their values and are left alone.
    """
    entering = st.session_state.get(_PAGE) != page
    st.session_state[_PAGE] = page
    given, problems = from_query({k: v for k, v in st.query_params.to_dict().items() if k in _ALL_KEYS})
    if entering and given:
        values = complete(given)
    else:
        values = complete(st.session_state.get(_KEPT, {}))
    for setting in SIDEBAR:
        if entering or setting.name not in st.session_state:
            st.session_state[setting.name] = values[setting.name]
    if entering and problems:
        used = "; ".join(f"{why}; using {values[name]}" for name, why in problems.items())
        st.warning(f"Part of the link was not used: {used}.", icon=":material/link_off:")


def _settings_to_url(values: dict) -> None:
    """Keep the shared settings for the next page and write the non-default ones into the URL."""
    st.session_state[_KEPT] = values
    wanted = to_query(values)
    for key in _ALL_KEYS - set(wanted):
        st.query_params.pop(key, None)
    for key, value in wanted.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


# Wide display equations scroll sideways instead of being cut off on a phone.
_STYLE = "<style>.katex-display { overflow-x: auto; overflow-y: hidden; padding-bottom: 4px; }</style>"


def _forget_params(keys: list[str]) -> None:
    """Remove keys from the URL and from the copy of it that bound widgets are seeded from (Streamlit
    1.67 keeps that copy apart, in a private field: deleting from st.query_params does not reach it)."""
    for key in keys:
        del st.query_params[key]
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    with ctx.session_state.query_params() as qp:
        initial = getattr(qp, "_initial_query_params", {})
        for key in keys:
            initial.pop(key, None)


def nav() -> None:
    """The page links at the top of the sidebar (the automatic list is off in .streamlit/config.toml),
    and the app's few style rules.

    Each link carries the shared settings, so the next page shows the same models.
    """
    st.html(_STYLE)
    # A number widget bound to the URL raises on ?seed=inf (Streamlit calls int() on it): drop such
    # values before any page draws its widgets (the shared settings warn about theirs themselves).
    params = {k: st.query_params.get_all(k) for k in st.query_params if k not in _ALL_KEYS}
    if dropped := non_finite_params(params):
        _forget_params(list(dropped))
        used = "; ".join(dropped.values())
        st.warning(f"Part of the link was not used: {used}.", icon=":material/link_off:")
    st.session_state[_STALE] = False  # until this page's own recordings say otherwise
    st.session_state[_LINE] = ""  # until this page's settings say otherwise
    kept = complete(st.session_state.get(_KEPT, {}))
    current = {s.name: st.session_state.get(s.name, kept[s.name]) for s in SIDEBAR}
    shared = to_query(current)
    for path, label, icon in PAGES:
        try:
            st.sidebar.page_link(path, label=label, icon=icon, query_params=shared)
        except StreamlitPageNotFoundError:
            # AppTest runs one page file on its own, with no other pages to link to; a served
            # app always has them (tests/test_browser.py follows these links).
            return
    st.sidebar.divider()


def choice(container, widget: str, label: str, options: dict[str, str], key: str, **kwargs) -> str:
    """A radio or selectbox over option ids (shown by their labels) whose URL parameter is the id,
    e.g. ?gates_arch=gru. Older links that carry a label (?gates_arch=GRU) still work. The first
    option is the default, left out of the URL. On a new visit the URL decides, else the value
    this session last had (Streamlit forgets a widget's state when the user leaves its page)."""
    kept = st.session_state.setdefault("_choices", {})
    if key not in st.session_state:  # a new page visit
        raw = str(st.query_params.get(key, kept.get(key, ""))).lower()
        by_text = {k.lower(): k for k in options} | {v.lower(): k for k, v in options.items()}
        st.session_state[key] = by_text.get(raw, next(iter(options)))
    elif st.session_state[key] not in options:  # the options changed (e.g. another model)
        st.session_state[key] = next(iter(options))
    draw = container.radio if widget == "radio" else container.selectbox
    value = draw(label, list(options), format_func=options.get, key=key, **kwargs)
    kept[key] = value
    if value == next(iter(options)):
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = value
    return value


def _widget(container, setting, values: dict):
    """Draw one setting's widget (key = its name); returns its value."""
    kwargs = {"key": setting.name, "help": setting.help or None, "disabled": not setting.applies(values)}
    if setting.widget == "select":
        on_change = _rnn_init_changed if setting.name == "rnn_init" else None
        return container.selectbox(setting.label, setting.choices, on_change=on_change, **kwargs)
    if setting.widget == "radio":
        return container.radio(setting.label, setting.choices, horizontal=True, **kwargs)
    if setting.widget == "toggle":
        return container.toggle(setting.label, **kwargs)
    low, high = (setting.type(v) for v in setting.slider_range)
    if setting.widget == "number":
        return container.number_input(setting.label, low, high, **kwargs)
    step = None if setting.step is None else setting.type(setting.step)
    return container.slider(setting.label, low, high, step=step, **kwargs)


def settings_sidebar(page: str) -> Settings:
    """Draw the page links and every declared setting in the sidebar, under its group's header;
    returns the settings. page names the calling page (any string unique to it)."""
    _settings_from_url(page)
    nav()
    sb = st.sidebar
    values = {s.name: st.session_state[s.name] for s in SIDEBAR}
    groups = list(dict.fromkeys(s.group for s in SIDEBAR))
    for group in groups:
        sb.header(group)
        members = [s for s in SIDEBAR if s.group == group]
        columns = iter(())
        for k, setting in enumerate(members):
            container = sb
            if setting.widget == "number":  # a run of number boxes shares one row
                if k == 0 or members[k - 1].widget != "number":
                    run_length = next((j for j, s in enumerate(members[k:]) if s.widget != "number"), None)
                    columns = iter(sb.columns(run_length or len(members) - k))
                container = next(columns)
            values[setting.name] = setting.type(_widget(container, setting, values))
        if group == "LSTM":
            sb.button(
                "Open the cell path: chrono init",
                on_click=_open_cell_path,
                disabled=values["lstm_init"] == "chrono",
                help="Forget bias ~ log U(1, T-1): forget gates start near 1, so the cell keeps its memory.",
            )
    _settings_to_url(values)
    settings = Settings(**complete(values))
    st.session_state[_LINE] = settings_line(settings)
    return settings


@st.cache_resource
def _store() -> Store:
    """Recordings shared by every session, bounded by bytes ($LSTM_VIZ_CACHE_MB); a recording
    nobody asked for in $LSTM_VIZ_CACHE_IDLE_S seconds is dropped, so memory goes back down
    when the users leave."""
    store = Store(default_cache_bytes(), max_idle_s=default_cache_idle_s())
    store.sweep_every(15.0, then=release_memory)
    return store


@st.cache_resource
def _heavy_line() -> Line:
    """The server's one line for heavy runs and training chunks ($LSTM_VIZ_WORKERS at a time)."""
    return Line(default_workers())


_LAST, _STALE, _LINE = "_last_recordings", "_showing_stale", "_settings_line"
_CANCELLED = "_cancelled_runs"  # the runs whose Cancel was pressed; they wait for Run again


def _cells(s: Settings) -> int:
    return s.batch_size * s.seq_len * s.hidden_size * s.num_layers * (2 if s.bidirectional else 1)


def _cancel(keys: list) -> None:
    st.session_state[_CANCELLED] = keys


def _run_again() -> None:
    st.session_state.pop(_CANCELLED, None)


# A waiting page redraws its message when its place in line changes, else every WAIT_REDRAW_S
# seconds: a redraw is where Streamlit can stop the script (Cancel, a changed widget), and each
# one costs every waiting browser a render (20 tabs redrawing twice a second slowed the others).
WAIT_REDRAW_S = 2.0


def _stop_if_gone() -> None:
    """Stop this script if its browser tab has gone. Streamlit asks such a script to stop, which
    happens at its next redraw; a waiting page redraws less often than it polls the line."""
    ctx = get_script_run_ctx()
    if ctx is not None and Runtime.exists() and not Runtime.instance().is_active_session(ctx.session_id):
        st.stop()


class _Throttled:
    """Line.turn's on_wait: calls draw(ahead) when `ahead` changes or WAIT_REDRAW_S have passed,
    and stops the script if the browser tab has gone."""

    def __init__(self, draw: Callable[[int], None]):
        self.draw, self.ahead, self.drawn = draw, None, 0.0

    def __call__(self, ahead: int) -> None:
        _stop_if_gone()
        if ahead != self.ahead or time.monotonic() - self.drawn >= WAIT_REDRAW_S:
            self.draw(ahead)
            self.ahead, self.drawn = ahead, time.monotonic()


class _Waiting:
    """Draws how many runs are ahead, over a Cancel button (wrapped in _Throttled for Line.turn)."""

    def __init__(self, slot, keys: list):
        self.slot, self.keys, self.text = slot, keys, None

    def __call__(self, ahead: int) -> None:
        if self.text is None:
            box = self.slot.container()
            self.text = box.empty()
            box.button("Cancel", icon=":material/cancel:", key="ui_cancel_wait", on_click=_cancel,
                       args=(self.keys,), help="Leave the line; Run again joins it at the end.")  # fmt: skip
        runs = "run" if ahead == 1 else "runs"
        self.text.info(f"Waiting for the server: {ahead} {runs} ahead of this one. Long runs take turns "
                       "so that every page stays quick.", icon=":material/hourglass_top:")  # fmt: skip


# The store key that made each recording, so that a download can find it again without holding it.
_MADE: weakref.WeakKeyDictionary[Recording, tuple] = weakref.WeakKeyDictionary()


def _recall(recs: list[Recording]) -> Callable[[], list[Recording]]:
    """A function that gives recs back without keeping them alive, for a download built only when
    clicked: a session would otherwise hold its recordings (a few hundred MB at T = 10,000) for as
    long as it lives. Each comes back from memory if something still holds it, else from the
    store, else recorded again (same settings, same seed: the same numbers). Recordings not made
    by `recordings` (the trained models') are held."""
    handles = [
        (weakref.ref(rec), key) if (key := _MADE.get(rec)) else (lambda rec=rec: rec, None) for rec in recs
    ]

    def back() -> list[Recording]:
        out = []
        for ref, key in handles:
            rec = ref()
            if rec is None:
                arch, values = key
                rec = _store().get(key)
                rec = run(Settings(*values), arch) if rec is None else rec
            out.append(rec)
        return out

    return back


def _record(runs: list, todo: list, slot, cancel_keys: list | None) -> list[Recording]:
    """Each run's recording, from the store or made now (then stored), with a progress bar for
    long runs and a Cancel button under it for queued ones (cancel_keys)."""
    cells = sum(_cells(s) for s, _ in todo)
    bar = None
    if cells > PROGRESS_CELLS:
        box = slot.container()
        bar = box.progress(0.0, text="Recording...")
        if cancel_keys is not None:
            box.button("Cancel", icon=":material/cancel:", key="ui_cancel_run", on_click=_cancel,
                       args=(cancel_keys,))  # fmt: skip
    out, made = [], 0  # made: runs made (not found in the store) so far
    for run_settings, arch in runs:
        key = (arch, astuple(run_settings))
        rec = _store().get(key)
        if rec is None:
            name = run_settings.label(arch)

            def progress(fraction: float, made=made, name=name) -> None:
                if bar is not None:  # drawing also lets Streamlit stop the run (Cancel, a new rerun)
                    overall = min((made + fraction) / len(todo), 1.0)
                    bar.progress(overall, text=f"Recording {name}: {fraction:.0%}")

            rec = run(run_settings, arch, progress=progress)
            _store().put(key, rec)
            made += 1
        _MADE[rec] = key
        out.append(rec)
    return out


def _last_or_stop(runs: list) -> list[Recording]:
    """The last recordings that ran for the same models, greyed out by `chart`; stops the page if
    there are none (or the store has let them go)."""
    keys = st.session_state.get(_LAST, {}).get(tuple(a for _, a in runs), [])
    last = [_store().get(key) for key in keys]
    if not last or any(rec is None for rec in last):
        st.stop()
    st.caption("Below, greyed out: the last charts that ran for these models. They come back in colour "
               "as soon as the settings fit.")  # fmt: skip
    st.session_state[_STALE] = True
    return last


def recordings(
    settings: Settings, archs: list[str], *, also: Sequence[tuple[Settings, str]] = ()
) -> list[Recording]:
    """Recordings of each arch under settings, then of each (settings, arch) in `also`; repeated
    runs come from a store shared by sessions. Memory is checked for every run before any of them
    starts. Long runs show a progress bar that follows the engine (record's progress callback).
    Runs above HEAVY_CELLS wait their turn in the server's line (saying how many runs are ahead,
    with a Cancel button); smaller ones start at once.

    A ValueError from the library (memory over the limit, bad input) shows as an error; the last
    recordings that ran for the same models are returned instead, and charts drawn by `chart`
    are greyed out until the settings work again. With none to show, the page stops. A cancelled
    run does the same, with a Run again button.
    """
    st.session_state[_STALE] = False
    runs = [(settings, arch) for arch in archs] + list(also)
    keys = [(a, astuple(s)) for s, a in runs]
    slot = st.empty()
    try:
        for run_settings, arch in runs:
            check_memory(run_settings, [arch])
        todo = [(s, a) for s, a in runs if _store().get((a, astuple(s))) is None]
        heavy = sum(_cells(s) for s, _ in todo) > HEAVY_CELLS
        if heavy and st.session_state.get(_CANCELLED) == keys:
            box = slot.container()
            box.info("Run cancelled.", icon=":material/cancel:")
            box.button("Run again", icon=":material/play_arrow:", key="ui_run_again", on_click=_run_again)
            return _last_or_stop(runs)
        if heavy:
            try:
                with _heavy_line().turn(_Throttled(_Waiting(slot, keys))):
                    out = _record(runs, todo, slot, keys)
            finally:
                release_memory()  # a heavy run's freed buffers go back to the system
        else:
            out = _record(runs, todo, slot, None)
    except ValueError as err:
        slot.empty()
        st.error(f"Cannot run these settings: {err}", icon=":material/block:")
        return _last_or_stop(runs)
    slot.empty()
    st.session_state.setdefault(_LAST, {})[tuple(a for _, a in runs)] = keys  # keys: the store holds them
    return out


def take_turn(bar, fraction: float, text: str) -> AbstractContextManager[None]:
    """A turn in the server's line for a page's own long work (a chunk of training, a connectivity
    map), as a with-block. While it waits, the progress bar `bar` (an st.progress or st.empty)
    shows fraction and text, and how many runs are ahead."""

    def on_wait(ahead: int) -> None:
        bar.progress(
            fraction, text=f"{text}: waiting for the server, {ahead} {'run' if ahead == 1 else 'runs'} ahead"
        )

    return _heavy_line().turn(_Throttled(on_wait))


def _key_part(value):
    """A store key's part for an argument: uploaded bytes by their digest, dicts and lists as tuples."""
    if isinstance(value, bytes | bytearray):
        return ("sha256", hashlib.sha256(value).hexdigest())
    if isinstance(value, dict):
        return tuple(sorted((k, _key_part(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_key_part(v) for v in value)
    return value


def shared(spinner: str = "", heavy: Callable[..., bool] | None = None):
    """A page's cache, in place of st.cache_data: results go into the store every session shares,
    which is bounded by bytes (st.cache_data bounds entries, however large, and hands each session
    its own copy). Arguments must be hashable or bytes, dicts and lists of them. heavy(*args,
    **kwargs) true: the work first waits its turn in the server's line, as long recordings do."""

    def decorate(fn: Callable) -> Callable:
        def cached(*args, **kwargs):
            key = ("shared", fn.__module__, fn.__qualname__, _key_part(args), _key_part(kwargs))
            if (value := _store().get(key)) is not None:
                return value
            slot = st.empty()
            text = spinner or "Computing..."
            long = heavy is not None and heavy(*args, **kwargs)
            with take_turn(slot, 0.0, text) if long else nullcontext():
                slot.empty()
                with st.spinner(text) if spinner else nullcontext():
                    value = fn(*args, **kwargs)
            slot.empty()
            _store().put(key, value)
            return value

        return cached

    return decorate


def chart(fig: go.Figure, caption: str | None, key: str, title: str = "") -> None:
    """The figure, its one-line caption, and a button that downloads it as a standalone HTML page
    (title, default from the key; caption; the page's settings). While the page shows stale
    recordings (see `recordings`) the figure is greyed out."""
    if st.session_state.get(_STALE):
        fig = (
            go.Figure(fig)
            .update_traces(opacity=0.25)
            .update_layout(title=dict(text="last run (settings above did not fit)", font=dict(color="grey")))
        )
    st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=f"{key}_chart")
    if caption:
        st.caption(caption)
    st.download_button(
        "Chart as HTML",
        lambda: figure_html(
            fig,
            title=title or key.replace("_", " ").capitalize(),
            caption=caption or "",
            settings=st.session_state.get(_LINE, ""),
        ),
        file_name=f"{key}.html",
        mime="text/html",
        key=f"{key}_html",
        icon=":material/download:",
        type="tertiary",
        on_click="ignore",
    )


def csv_download(recs: list[Recording], key: str) -> None:
    """Download button for the recordings' tidy frame (built only when clicked, at most
    MAX_EXPORT_ROWS rows); says what the export leaves out to stay that small."""
    plan = export_plan(recs)
    if dropped := [rec.name for rec, (units, _) in zip(recs, plan, strict=True) if not units]:
        kept, batch = min(n for _, n in plan), max(rec.batch_size for rec in recs)
        first = f" and of the first {kept:,} of {batch:,} sequences" if kept < batch else ""
        size = MAX_EXPORT_ROWS * CSV_BYTES_PER_ROW // 10**6
        st.caption(
            f"The CSV holds the per-step gradient norms only for {', '.join(dropped)}{first}: a download "
            f"holds at most {MAX_EXPORT_ROWS:,} rows (about {size} MB), so the per-unit hidden, cell and "
            "gate values are left out. `python -m lstm_viz --out FILE.parquet` writes them all."
        )
    recall = _recall(recs)  # the button's function must not hold the recordings themselves
    st.download_button(
        "Recording as CSV (tidy)",
        lambda: tidy_csv(recall()),
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
    """Recordings of the Training lab's models among archs, each computed once per checkpoint; the
    session keeps one per arch, of its latest checkpoint."""
    models = st.session_state.get("trained_models") or {}
    done = st.session_state.setdefault("ui_trained_recordings", {})  # arch -> (checkpoint key, Recording)
    out = []
    for arch in archs:
        checkpoint = models.get(arch)
        if checkpoint is None:
            continue
        key = (checkpoint["step"], repr(sorted(checkpoint["config"].items())))
        if done.get(arch, (None,))[0] != key:
            with st.spinner(f"Recording the trained {arch.upper()}..."):
                done[arch] = (key, record_trained(checkpoint))
        out.append(done[arch][1])
    return out
