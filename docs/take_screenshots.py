"""Take the README's screenshots: python docs/take_screenshots.py [--out docs/screenshots]

Starts `streamlit run app.py` on a free port, opens each page in Debian's headless
Chromium (playwright, never `playwright install`), waits until every chart is drawn,
grows the window to the page (Streamlit scrolls inside its own container) and saves
a PNG per page. The Training lab first trains for 800 steps.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

SHOTS = [  # (file name, path and query, heading)
    ("gradient_flow", "", "Gradient flow: RNN vs LSTM"),
    ("gradient_flow_deep", "?num_layers=3&bidirectional=true&batch_size=8", "Gradient flow: RNN vs LSTM"),
    ("lessons", "Lessons?lesson=4", "Lessons: why recurrent networks forget"),
    (
        "gates_and_cell_state",
        "Gates_and_cell_state?lstm_init=chrono&gates_sort=forget&gates_units=0&gates_units=60",
        "Gates and cell state",
    ),
    ("lstm_equations", "LSTM_equations", "The LSTM, equation by equation"),
    ("theory", "Theory", "Why it vanishes: theory vs measurement"),
    ("phase_diagram", "Phase_diagram", "Phase diagram"),
    ("training", "Training_lab?train_lag=30&train_hidden=32&train_steps=800", "Training lab"),
    ("text", "Text?text_len=400", "Real text: what a char-level model remembers"),
    ("connectivity", "Connectivity", "Connectivity: how far back each output still listens"),
]
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
ALL_CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-testid=stPlotlyChart]')]
    .every(chart => chart.querySelector('.main-svg'))"""
NO_PLACEHOLDERS = "() => !document.querySelector('[data-testid=stSkeleton]')"


def settle(page) -> None:
    """Wait until the script run is over and every element has replaced its placeholder."""
    page.wait_for_timeout(500)
    page.wait_for_selector(IDLE, timeout=120_000)
    page.wait_for_function(NO_PLACEHOLDERS, timeout=120_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1400, help="390 for a phone")
    parser.add_argument("--only", nargs="+", help="file names to take (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", f"--server.port={port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, path, heading in SHOTS:
                if args.only and name not in args.only:
                    continue
                page = browser.new_page(viewport={"width": args.width, "height": 1000})
                page.goto(f"{base}/{path}")
                page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
                settle(page)
                if name == "training":
                    page.get_by_role("button", name="Start").click()
                    page.get_by_role("slider", name="Training step shown").wait_for(timeout=300_000)
                    settle(page)
                height = page.evaluate(
                    "() => document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight"
                )
                page.set_viewport_size({"width": args.width, "height": min(height + 150, 8000)})
                settle(page)
                page.wait_for_function(ALL_CHARTS_DRAWN, timeout=60_000)
                page.wait_for_timeout(1000)  # Plotly's resize
                page.screenshot(path=args.out / f"{name}.png", full_page=True)
                print(f"wrote {args.out / f'{name}.png'}")
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
