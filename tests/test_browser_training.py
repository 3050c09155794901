"""The Training lab in a real headless Chromium: a tiny run trains and draws its charts, the step
scrubber redraws the profile, and a long run can be stopped midway.

Fixtures (app_url, page, wait_idle, screenshot_dir) live in conftest.py.
"""

import re

import pytest

pytestmark = pytest.mark.browser

# Name of the first trace in the profile chart (the 3rd Plotly chart): "... at step N".
PROFILE_STEP = """() => {
    const plots = document.querySelectorAll('.js-plotly-plot');
    if (plots.length < 3 || !plots[2].data) return null;
    const named = plots[2].data.find(tr => (tr.name || '').includes(' at step '));
    return named ? named.name : null;
}"""
# Some steps of the 5000 are done: the progress text reads "step N of 5000" with N > 0.
TRAINING_STARTED = """() => [...document.querySelectorAll('p')]
    .some(p => /^step [1-9]\\d* of 5000$/.test(p.textContent))"""


def _start(page, app_url, wait_idle, query: str) -> None:
    page.goto(f"{app_url}/Training_lab?{query}")
    page.get_by_role("heading", name="Training lab").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Start").click()


def test_tiny_run_draws_charts_and_the_scrubber_moves(app_url, page, wait_idle, screenshot_dir):
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    _start(page, app_url, wait_idle, "train_lag=20&train_hidden=16&train_steps=300")
    scrubber = page.get_by_role("slider", name="Training step shown")
    scrubber.wait_for(timeout=120_000)
    wait_idle(page)
    assert page.locator(".js-plotly-plot").count() == 5
    assert page.get_by_text("step 300 of 300").count() == 1
    assert page.wait_for_function(PROFILE_STEP).json_value().endswith("at step 300")
    for label in ("RNN (.pt)", "LSTM (.pt)", "GRU (.pt)"):
        assert page.get_by_role("button", name=label).count() == 1
    assert not page.locator("[data-testid=stException]").count()
    page.set_viewport_size({"width": 1400, "height": 2900})  # the whole page: Streamlit scrolls inside
    page.wait_for_timeout(1000)  # let Plotly redraw at the new size before the picture
    page.screenshot(path=screenshot_dir / "training.png")
    page.set_viewport_size({"width": 1400, "height": 1000})

    scrubber.focus()
    page.keyboard.press("Home")  # back to the untrained network
    page.wait_for_function(f"({PROFILE_STEP})() && ({PROFILE_STEP})().endsWith('at step 0')")
    wait_idle(page)
    assert not errors, errors


def test_a_long_run_can_be_stopped(app_url, page, wait_idle):
    _start(page, app_url, wait_idle, "train_lag=50&train_hidden=32&train_steps=5000")
    progress = page.get_by_text(re.compile(r"^step \d+ of 5000$"))
    page.wait_for_function(TRAINING_STARTED)
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("slider", name="Training step shown").wait_for()
    wait_idle(page)
    done = int(re.match(r"step (\d+)", progress.first.text_content()).group(1))
    assert 0 < done < 5000
    assert page.locator(".js-plotly-plot").count() == 5
    assert page.get_by_role("button", name="Stop").is_disabled()
