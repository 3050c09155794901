"""The Training lab in a real headless Chromium: a tiny run trains and draws its charts, the step
scrubber redraws the profile; a long run disables Start, stops with every model and every chart at
the step it reached, and pauses when the user leaves the page; links carry ids.

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
    for label in ("RNN (.pt)", "LSTM (forget bias) (.pt)", "GRU (.pt)"):
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


# Per Plotly chart: the step named in its traces (" at step N" / ", step N") and the loss chart's marker.
CHART_STEPS = """() => {
    const plots = [...document.querySelectorAll('.js-plotly-plot')];
    const named = (p, re) => (p.data || [])
        .map(tr => (tr.name || '').match(re)).filter(m => m).map(m => +m[1]);
    return {
        marker: (plots[0].layout.shapes || []).filter(s => s.x0 === s.x1).map(s => s.x0),
        profile: named(plots[2], / at step (\\d+)$/),
        gates: named(plots[3], /, step (\\d+)$/),
    };
}"""


def _progress_step(page) -> int:
    text = page.get_by_text(re.compile(r"^step \d+ of 5000$")).first.text_content()
    return int(re.match(r"step (\d+)", text).group(1))


def test_a_long_run_stops_with_every_model_at_one_step(app_url, page, wait_idle):
    _start(page, app_url, wait_idle, "train_lag=50&train_hidden=32&train_steps=5000")
    page.wait_for_function(TRAINING_STARTED)
    assert page.get_by_role("button", name="Start").is_disabled()  # no restart by accident
    assert page.get_by_role("button", name="Stop").is_enabled()
    page.get_by_role("button", name="Stop").click()
    scrubber = page.get_by_role("slider", name="Training step shown")
    scrubber.wait_for()
    wait_idle(page)
    done = _progress_step(page)
    assert 0 < done < 5000
    assert page.locator(".js-plotly-plot").count() == 5
    assert page.get_by_role("button", name="Stop").is_disabled()
    assert page.get_by_role("button", name="Start").is_enabled()
    assert scrubber.get_attribute("aria-valuetext") == str(done)  # the scrubber reaches the last step
    page.wait_for_timeout(2000)  # nothing trains on in the background
    assert _progress_step(page) == done
    steps = page.evaluate(CHART_STEPS)
    assert steps == {"marker": [done], "profile": [done] * 3, "gates": [done] * 2}, steps
    page.get_by_role("button", name="Continue").click()  # trains on from there
    page.wait_for_function(f"""() => [...document.querySelectorAll('p')]
        .some(p => /^step \\d+ of 5000$/.test(p.textContent) && +p.textContent.split(' ')[1] > {done})""")
    page.get_by_role("button", name="Stop").click()
    wait_idle(page)


def test_leaving_the_page_pauses_training(app_url, page, wait_idle):
    _start(page, app_url, wait_idle, "train_lag=50&train_hidden=32&train_steps=5000&train_archs=rnn")
    page.wait_for_function(TRAINING_STARTED)
    page.get_by_role("link", name="Gradient flow").click()
    wait_idle(page)
    page.wait_for_timeout(1500)
    page.get_by_role("link", name="Training lab").click()
    message = page.get_by_text(re.compile(r"^Training paused at step \d+ when you left the page"))
    message.wait_for()
    wait_idle(page)
    paused = int(re.search(r"step (\d+)", message.text_content()).group(1))
    assert paused > 0 and page.get_by_role("button", name="Continue").is_enabled()
    page.wait_for_timeout(1500)
    assert page.get_by_text(f"step {paused} of 5000").count() == 1  # paused, not training on


def test_links_carry_ids(app_url, page, wait_idle):
    page.goto(f"{app_url}/Training_lab?train_task=Copy+memory&train_archs=LSTM&train_archs=GRU")  # old style
    page.get_by_role("heading", name="Training lab").wait_for()
    wait_idle(page)
    page.wait_for_function("() => location.search.includes('train_task=copy_memory')")
    assert "train_archs=lstm&train_archs=gru" in page.url
    assert "Copy+memory" not in page.url and "LSTM" not in page.url


def test_stop_right_after_start(app_url, page, wait_idle):
    """Stop clicked while the run is still being set up: it is enabled only once there is a trainer
    (it used to fail with 'st.session_state has no attribute train_trainer' and show nothing)."""
    _start(page, app_url, wait_idle, "train_lag=50&train_hidden=32&train_steps=5000")
    page.get_by_role("button", name="Stop").click()  # playwright waits until it is enabled
    page.get_by_role("slider", name="Training step shown").wait_for()
    wait_idle(page)
    assert not page.locator("[data-testid=stException]").count()
    assert page.get_by_role("button", name="Start").is_enabled()
