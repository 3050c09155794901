"""The Lessons page: every step's link opens a page that exists, with settings that page accepts."""

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lstm_viz.lessons import LESSONS
from lstm_viz.settings import BY_NAME, from_query

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def test_six_to_eight_steps_each_with_a_question_and_an_answer():
    assert 6 <= len(LESSONS) <= 8
    for lesson in LESSONS:
        assert (ROOT / lesson.page).is_file(), lesson.page
        assert lesson.question.endswith("?") and lesson.look and lesson.answer


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.title for lesson in LESSONS])
def test_each_links_settings_are_accepted_as_given(lesson):
    """A link whose value the page would drop would teach the wrong chart."""
    shared = {k: v for k, v in lesson.params.items() if k in BY_NAME}
    values, problems = from_query(shared)
    assert not problems and set(values) == set(shared)


def test_each_lesson_opens_its_view_without_errors():
    for lesson in LESSONS:
        if lesson.page.endswith("Training_lab.py"):
            continue  # trains only when Start is pressed: tests/test_training_page.py
        at = AppTest.from_file(ROOT / lesson.page, default_timeout=60)
        at.query_params.update({**lesson.params, "seq_len": lesson.params.get("seq_len", "100")})
        at.run()
        assert not at.exception and not at.error, lesson.title


def test_the_page_walks_through_the_steps_and_links_carry_the_step():
    at = AppTest.from_file(ROOT / "pages/6_Lessons.py", default_timeout=60)
    at.run()
    assert not at.exception
    assert at.subheader[0].value == f"1. {LESSONS[0].title}"
    assert any(LESSONS[0].question in m.value for m in at.markdown)
    at.button[0].click().run()  # Next step
    assert at.subheader[0].value == f"2. {LESSONS[1].title}"
    assert at.query_params["lesson"] == "2"
    at = AppTest.from_file(ROOT / "pages/6_Lessons.py", default_timeout=60)
    at.query_params["lesson"] = str(len(LESSONS))
    at.run()
    assert at.subheader[0].value == f"{len(LESSONS)}. {LESSONS[-1].title}"
    assert not at.button  # no next step after the last
