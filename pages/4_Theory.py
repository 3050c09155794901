"""Why it vanishes: each model's measured gradient beside what theory predicts for its slope."""

import streamlit as st

import ui
from lstm_viz import theory, theory_text
from lstm_viz.settings import Settings, model_and_input
from lstm_viz.theory_figures import spectrum_figure, theory_figure

st.set_page_config(page_title="Theory · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Why it vanishes: theory vs measurement")
st.markdown(theory_text.INTRO, unsafe_allow_html=True)

settings = ui.settings_sidebar("theory")
if note := theory_text.layer_note(settings):
    st.info(note, icon=":material/layers:")
    st.stop()
recs = ui.recordings(settings, ["rnn", "lstm"])
shown = Settings(**recs[0].meta)  # the recordings' own settings (the last that fit, if these did not)
plan = theory_text.spectrum_plan(shown.seq_len, shown.batch_size, shown.hidden_size, ["rnn", "lstm"])


@ui.shared()
def spectra(arch: str, steps: int, singular: bool, **plain) -> dict:
    """Top Lyapunov estimate and the MAX_K largest exponents (first `steps` steps) and singular values."""
    model, x = model_and_input(Settings(**plain), arch)
    k = min(theory_text.MAX_K, model.hidden_size)
    out = {"top": None, "lyapunov": None, "singular": None}
    if steps:
        out["top"] = theory.lyapunov_estimate(model, x[:, :steps])
        out["lyapunov"] = theory.lyapunov_exponents(model, x[:, :steps], k)
    if singular:
        out["singular"] = theory.jacobian_singular_values(model, x, k)
    return out


try:
    with st.spinner("Running the Lyapunov and singular-value iterations on the exact Jacobians..."):
        numbers = [spectra(rec.arch, plan.lyapunov_steps, plan.singular, **rec.meta) for rec in recs]
except ValueError as err:  # over max_bytes: the library says what would fit
    numbers = [{"top": None, "lyapunov": None, "singular": None} for _ in recs]
    st.info(f"The Lyapunov and singular-value iterations were not run: {err}")
for note in plan.notes:
    st.info(note, icon=":material/speed:")

for rec, num in zip(recs, numbers, strict=True):
    extra = [num["top"]] if num["top"] else []
    st.subheader(f"{rec.name}: {theory_text.rate_headline(rec)}", anchor=False)
    fig = theory_figure(rec, extra + theory.estimates(rec))  # top exponent first: one style on both
    ui.chart(fig, theory_text.figure_caption(rec), f"theory_{rec.arch}")
    if rec.arch == "rnn":
        st.markdown(theory_text.pascanu_text(rec), unsafe_allow_html=True)

st.subheader("Decades per step: predicted vs measured", anchor=False)
extra = {rec.name: [num["top"]] for rec, num in zip(recs, numbers, strict=True) if num["top"]}
table = theory.theory_table(*recs, extra=extra)
st.dataframe(theory_text.table_view(table), hide_index=True, width="stretch")
st.caption(theory_text.TABLE_CAPTION)
st.markdown("\n".join(f"- {line}" for line in theory_text.verdicts(table)), unsafe_allow_html=True)
st.markdown(theory_text.ONLY_LYAPUNOV, unsafe_allow_html=True)

st.subheader("Spectra of the backward dynamics", anchor=False)
k = st.slider(
    "k: how many of the largest", 1, theory_text.MAX_K, 4, key="theory_k", bind="query-params", width=360
)
left, right = st.columns(2)
done = [(rec, num) for rec, num in zip(recs, numbers, strict=True) if num["lyapunov"] is not None]
if done:
    with left:
        ui.chart(
            spectrum_figure([r for r, _ in done], [num["lyapunov"][:k] for _, num in done], kind="lyapunov"),
            theory_text.lyapunov_caption(
                [r for r, _ in done], [float(num["lyapunov"][0]) for _, num in done]
            ),
            "theory_lyapunov",
        )
done = [(rec, num) for rec, num in zip(recs, numbers, strict=True) if num["singular"] is not None]
if done:
    with right:
        ui.chart(
            spectrum_figure([r for r, _ in done], [num["singular"][:k] for _, num in done], kind="singular"),
            theory_text.SINGULAR_CAPTION,
            "theory_singular",
        )
