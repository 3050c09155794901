"""Lessons: seven short steps through the app, each one link, one thing to look at, one question."""

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

import ui
from lstm_viz.lessons import LESSONS

st.set_page_config(page_title="Lessons · lstm-viz", page_icon=ui.ICON, layout="wide")
st.title("Lessons: why recurrent networks forget")
st.markdown(
    "Seven steps, a few minutes each. Every step opens a page with its controls already set; look at "
    "the chart, answer the question, then come back here for the next step."
)
ui.nav()
steps = {str(k): f"{k}. {lesson.title}" for k, lesson in enumerate(LESSONS, start=1)}
step = ui.choice(st, "radio", "Step", steps, key="lesson", horizontal=True)
lesson = LESSONS[int(step) - 1]

st.subheader(steps[step], anchor=False)
st.markdown(lesson.look)
st.markdown(f"**Question.** {lesson.question}")
try:
    st.page_link(
        lesson.page, label="Open this view", icon=":material/open_in_new:", query_params=lesson.params
    )
except StreamlitPageNotFoundError:  # AppTest runs this file alone, without the other pages
    st.caption(f"Open {lesson.page} with {lesson.params}")
with st.expander("Check your answer"):
    st.markdown(lesson.answer)
if int(step) < len(LESSONS):
    st.button(
        "Next step",
        icon=":material/arrow_forward:",
        on_click=lambda: st.session_state.update(lesson=str(int(step) + 1)),
    )
