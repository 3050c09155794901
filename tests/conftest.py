"""Shared fixtures for the UI tests: a live Streamlit server and a headless Chromium page.

Use in a test module:

    pytestmark = pytest.mark.browser

    def test_my_page(app_url, page, wait_idle, screenshot_dir):
        page.goto(f"{app_url}/My_page?seq_len=20")
        wait_idle(page)
        page.screenshot(path=screenshot_dir / "my_page.png", full_page=True)

- `app_url` (session): `streamlit run app.py` on a free port, started once; the base URL.
- `browser` (session) / `page` (per test): Debian's Chromium through playwright
  (never `playwright install`). Chromium path: $CHROMIUM_PATH, else /usr/bin/chromium.
  Missing Chromium or playwright skips the test locally and FAILS it when CI=true; so does a
  missing podman for the `container` tests (tests/test_docker.py), through `_missing`.
- `wait_idle(page)`: waits until the app has finished its script run.
- `screenshot_dir`: $SCREENSHOT_DIR, else tests/artifacts/ (created).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_S = 90


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: have the server get SIGKILL when pytest dies (killed by a timeout, say), so that no
    orphaned server keeps its port; elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG; a server keeps no state


def _missing(reason: str, fix: str = "browser tests must run, install chromium in .ci/run") -> None:
    """Skip locally; in CI a missing tool (browser, podman) is a broken setup, so fail."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: {fix})")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `streamlit run app.py` served from the repository root on a free port."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless=true",
                f"--server.port={port}",
                "--server.address=127.0.0.1",
                "--browser.gatherUsageStats=false",
                "--server.fileWatcherType=none",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"streamlit did not answer within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def browser():
    """A headless Debian Chromium driven by playwright (session-wide)."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed (pip install playwright)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab (1400 x 1000, light colour scheme) per test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme="light")
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


@pytest.fixture
def wait_idle() -> Callable:
    """wait_idle(page, timeout_ms=60_000): block until the Streamlit script run has finished."""

    def wait(page, timeout_ms: int = 60_000) -> None:
        page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", timeout=timeout_ms)

    return wait


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where browser tests save screenshots: $SCREENSHOT_DIR or tests/artifacts/."""
    path = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "tests" / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
