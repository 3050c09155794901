"""Load test: many headless Chromium sessions against one `streamlit run app.py` on loopback.

    python benchmarks/load_test.py                      # both scenarios, 20 sessions each
    python benchmarks/load_test.py --scenario light --sessions 5

light: sessions open the Gradient flow page at T = 1000, H = 128, each with its own settings, and
every fourth then moves the Sequence length slider; every chart must draw, the RNN's and LSTM's
lines must equal what the command line records for the same settings, and the render times'
median and p95 are reported (from opening the link, or the key press, to the last chart drawn).
heavy: sessions open the page at T = 10,000, H = 512 (seeds differ, so nothing is shared); a
light page opened meanwhile must render within --light-limit seconds. The server's memory
(RSS) is reported before, at its peak and --settle seconds after the sessions closed (Streamlit
keeps a closed session 120 s; the app drops unused recordings after LSTM_VIZ_CACHE_IDLE_S).

Prints one markdown row per scenario, for docs/serving.md. Chromium: $CHROMIUM_PATH, else
/usr/bin/chromium (never `playwright install`). Every wait is bounded (--timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
LIGHT = {"seq_len": 1000, "hidden_size": 128}
HEAVY = {"seq_len": 10_000, "hidden_size": 512}
# Every chart drawn and the script finished; then the first chart's traces as {name: y}.
DRAWN = """() => {
    const app = document.querySelector('[data-testid=stApp]');
    const charts = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];
    return app && app.dataset.testScriptState === 'notRunning' && charts.length > 0
        && charts.every(c => c.querySelector('.main-svg'));
}"""
# The page's run is in line (the waiting message), running (its progress bar) or done.
STARTED = f"""() => window.sawWaiting === true || !!document.querySelector('[data-testid=stProgress]')
    || ({DRAWN})()"""
TRACES = """() => Object.fromEntries(document.querySelector('.js-plotly-plot')._fullData
    .filter(t => t.y).map(t => [t.name, Array.from(t.y)]))"""
WAITING = "Waiting for the server"
# Sets window.sawWaiting once the page shows the waiting message, however briefly.
SEE_WAITING = f"""document.addEventListener('DOMContentLoaded', () => new MutationObserver(() => {{
    if (!window.sawWaiting && document.body.innerText.includes('{WAITING}')) window.sawWaiting = true;
}}).observe(document.body, {{childList: true, subtree: true, characterData: true}}));"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(env: dict[str, str] | None = None, start_s: float = 90) -> Iterator[tuple[str, int]]:
    """`streamlit run app.py` on a free loopback port: yields (base URL, server pid); stops it after."""
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true",
         f"--server.port={port}", "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
         "--server.fileWatcherType=none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read()[-2000:]!r}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r,
            ):
                if r.read().strip() == b"ok":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not answer within {start_s} s")
            time.sleep(0.3)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def rss_mb(pid: int) -> float:
    """Resident memory of process pid in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _stat(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds used) of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants_cpu(root: int, skip: int) -> dict[int, float]:
    """CPU seconds of each live process under root (the load test), not counting skip (the server)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stats[int(entry.name)] = _stat(int(entry.name))
    out = {}
    for pid, (_, cpu) in stats.items():
        ancestor = pid
        while ancestor in stats and ancestor not in (root, skip, 0, 1):
            ancestor = stats[ancestor][0]
        if ancestor == root and pid != skip:
            out[pid] = cpu
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process pid has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """Samples a process's RSS every `every` seconds on a thread while in the with-block; .peak in
    MB. Also .browser_cpu: CPU seconds of this script's other descendants (the browsers) meanwhile,
    from their last samples (a tab that closes between samples loses its last fraction)."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak, self._stop = pid, every, 0.0, threading.Event()
        self._cpu: dict[int, float] = {}
        self._start = descendants_cpu(os.getpid(), pid)

    @property
    def browser_cpu(self) -> float:
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._cpu.items())

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._cpu.update(descendants_cpu(os.getpid(), self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def query(values: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in values.items())


def cli_lines(values: dict) -> dict[str, np.ndarray]:
    """log10 ||dL/dh_t|| per model (RNN, LSTM) as `python -m lstm_viz` records them for these settings."""
    from lstm_viz.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flow.csv"
        argv = [a for k, v in values.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        if main([*argv, "--out", str(out), "--norms-only", "-q"], stdout=io.StringIO()) != 0:
            raise RuntimeError(f"the command line failed on {values}")
        frame = pd.read_csv(out)
    rows = frame[frame.quantity == "log10_grad_h"].sort_values("t")
    return {model: part.value.to_numpy() for model, part in rows.groupby("model")}


def same_lines(traces: dict[str, list], expected: dict[str, np.ndarray]) -> bool:
    """The chart's ||dL/dh_t|| line of each model equals the command line's (float32 values)."""
    for model, values in expected.items():
        drawn = traces.get(f"{model}: ‖∂L/∂h<sub>t</sub>‖")
        if drawn is None or not np.allclose(np.asarray(drawn, float), values, rtol=1e-6, atol=1e-6):
            return False
    return True


async def session(
    context,
    url: str,
    values: dict,
    *,
    move: bool = False,
    timeout_s: float = 300,
    delay_s: float = 0,
    started: list | None = None,
) -> dict:
    """One user, in its own tab of a shared browser context (its own Streamlit session; the tabs
    share the browser's cache, as one user's tabs would): after delay_s, open the Gradient flow page
    with these settings and wait for every chart; with move, then press the Sequence length
    slider's right arrow twice and wait for the redraw. Once the page is loaded and its run
    is waiting in line, running or done, appends to `started`. Returns {"times": [seconds per render],
    "traces", "errors", "waited" (saw the waiting message)}."""
    await asyncio.sleep(delay_s)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    result = {"times": [], "traces": {}, "errors": errors, "waited": False}
    try:
        start = time.perf_counter()
        await page.goto(f"{url}/?{query(values)}", timeout=timeout_s * 1000)
        if started is not None:
            await page.wait_for_function(STARTED, timeout=timeout_s * 1000, polling=100)
            started.append(values)
        await page.wait_for_function(DRAWN, timeout=timeout_s * 1000, polling=100)
        result["times"].append(time.perf_counter() - start)
        result["waited"] = await page.evaluate("() => window.sawWaiting === true")
        result["traces"] = await page.evaluate(TRACES)
        if move:
            slider = page.get_by_role("slider", name="Sequence length")
            await slider.focus()
            start = time.perf_counter()
            for _ in range(2):
                await page.keyboard.press("ArrowRight")
            want = values["seq_len"] + 20
            await page.wait_for_function(
                f"() => ({DRAWN})() && document.querySelector('.js-plotly-plot')._fullData[0].x.length "
                f"=== {want}", timeout=timeout_s * 1000, polling=100,
            )  # fmt: skip
            result["times"].append(time.perf_counter() - start)
        if await page.locator("[data-testid=stException]").count():
            errors.append("the page shows an exception")
    except Exception as err:  # noqa: BLE001 - a session's failure is reported, not raised
        errors.append(f"{type(err).__name__}: {str(err)[:300]}")
    finally:
        await page.close()
    return result


@contextlib.asynccontextmanager
async def browser_context():
    """A headless Chromium and one context (1400 x 1000) whose tabs watch for the waiting message."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            await context.add_init_script(SEE_WAITING)
            yield context
        finally:
            await browser.close()


def light_settings(k: int) -> dict:
    """Session k's own settings at T = 1000, H = 128: seed, and every other one another RNN init."""
    values = {**LIGHT, "seed": 100 + k}
    if k % 2:
        values |= {"rnn_init": "orthogonal", "spectral_radius": round(0.9 + 0.01 * k, 2)}
    return values


async def light_scenario(url: str, sessions: int, timeout_s: float, arrive_over_s: float = 5) -> dict:
    settings = [light_settings(k) for k in range(sessions)]
    expected = [cli_lines(s) for s in settings]
    async with browser_context() as context:
        results = await asyncio.gather(
            *(
                session(
                    context,
                    url,
                    s,
                    move=k % 4 == 3,
                    timeout_s=timeout_s,
                    delay_s=arrive_over_s * k / sessions,
                )
                for k, s in enumerate(settings)
            )
        )
    times = [t for r in results for t in r["times"]]
    moves = [r["times"][1] for r in results if len(r["times"]) > 1]
    return {
        "sessions": sessions,
        "renders": len(times),
        "slider_median_s": statistics.median(moves) if moves else float("nan"),
        "errors": [e for r in results for e in r["errors"]],
        "equal_cli": sum(same_lines(r["traces"], e) for r, e in zip(results, expected, strict=True)),
        "median_s": statistics.median(times) if times else float("nan"),
        "p95_s": float(np.percentile(times, 95)) if times else float("nan"),
    }


async def heavy_scenario(
    url: str, sessions: int, timeout_s: float, light_after_s: float, heavy: dict = HEAVY
) -> dict:
    async with browser_context() as context:
        started: list[dict] = []
        runs = [
            asyncio.create_task(
                session(context, url, {**heavy, "seed": 200 + k}, timeout_s=timeout_s, started=started)
            )
            for k in range(sessions)
        ]
        deadline = time.monotonic() + timeout_s
        while len(started) < sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # every heavy page loaded and its run in line (or further)
        await asyncio.sleep(light_after_s)
        light = await session(context, url, {**LIGHT, "seed": 999}, timeout_s=timeout_s)
        results = await asyncio.gather(*runs)
    times = [t for r in results for t in r["times"]]
    return {
        "sessions": sessions,
        "rendered": len(times),
        "errors": [e for r in results for e in r["errors"]] + light["errors"],
        "waited": sum(r["waited"] for r in results),
        "light_s": light["times"][0] if light["times"] else float("nan"),
        "heavy_median_s": statistics.median(times) if times else float("nan"),
        "heavy_max_s": max(times) if times else float("nan"),
    }


def warm_up(url: str, timeout_s: float) -> None:
    """One light page, so that imports and compiled kernels are in the baseline."""

    async def go() -> dict:
        async with browser_context() as context:
            return await session(context, url, {**LIGHT, "seed": 1}, timeout_s=timeout_s)

    if errors := asyncio.run(go())["errors"]:
        raise RuntimeError(f"the warm-up page failed: {errors}")


def training_share(sessions: int, seconds: float) -> dict:
    """Training-lab trainers (the page's defaults) on `sessions` threads at once, each training in
    0.7 s chunks that take turns in one Line, as the page does; steps per second of each."""
    from lstm_viz.training import TrainConfig, Trainer
    from lstm_viz.workers import Line, default_workers

    line, rates = Line(default_workers()), []

    def train(trainer: Trainer) -> None:
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            with line.turn():
                steps += trainer.advance(10**6, seconds=0.7)
        rates.append(steps / (time.perf_counter() - start))

    trainers = [Trainer(TrainConfig(steps=10**6)) for _ in range(sessions)]
    threads = [threading.Thread(target=train, args=(t,)) for t in trainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"sessions": sessions, "min": min(rates), "max": max(rates), "total": sum(rates)}


def table(*rows: dict) -> None:
    """Print a markdown table of rows (dicts with the same keys)."""
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", nargs="+", choices=("light", "heavy", "training"), default=["light", "heavy"]
    )
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600, help="seconds any one wait may take")
    parser.add_argument("--settle", type=float, default=150, help="seconds after the heavy sessions end")
    parser.add_argument("--arrive-over", type=float, default=5, help="light sessions open over S seconds")
    parser.add_argument(
        "--light-after", type=float, default=2, help="seconds after every heavy page has loaded and queued"
    )
    args = parser.parse_args(argv)
    print(f"# {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.2f}", flush=True)
    failed = False
    if "training" in args.scenario:  # no server: the trainers and the line the pages use
        rows = []
        for n in (1, 2, 4):
            r = training_share(n, 20)
            rows.append({"scenario": "Training lab defaults", "sessions": n,
                         "steps/s, slowest": f"{r['min']:.1f}", "steps/s, fastest": f"{r['max']:.1f}",
                         "steps/s, all": f"{r['total']:.1f}",
                         "load": f"{os.getloadavg()[0]:.1f}"})  # fmt: skip
        table(*rows)
        if args.scenario == ["training"]:
            return 0
    with serve() as (url, pid):
        warm_up(url, args.timeout)
        baseline = rss_mb(pid)
        print(f"# server RSS after one page: {baseline:.0f} MB", flush=True)
        if "light" in args.scenario:
            cpu, wall = cpu_s(pid), time.perf_counter()
            with PeakRss(pid) as peak:
                r = asyncio.run(light_scenario(url, args.sessions, args.timeout, args.arrive_over))
            cpu, browsers, wall = cpu_s(pid) - cpu, peak.browser_cpu, time.perf_counter() - wall
            table({
                "scenario": "light T=1000 H=128", "sessions": r["sessions"], "renders": r["renders"],
                "equal to CLI": f"{r['equal_cli']}/{r['sessions']}", "median s": f"{r['median_s']:.2f}",
                "p95 s": f"{r['p95_s']:.2f}", "slider median s": f"{r['slider_median_s']:.2f}",
                "CPU s server / browsers / wall": f"{cpu:.0f} / {browsers:.0f} / {wall:.0f}",
                "peak RSS MB": f"{peak.peak:.0f}",
                "errors": len(r["errors"]),
                "load": f"{os.getloadavg()[0]:.1f}",
            })  # fmt: skip
            failed |= bool(r["errors"]) or r["equal_cli"] != r["sessions"]
            for error in r["errors"][:5]:
                print("  error:", error)
        if "heavy" in args.scenario:
            before = rss_mb(pid)
            with PeakRss(pid) as peak:
                r = asyncio.run(heavy_scenario(url, args.sessions, args.timeout, args.light_after))
            load, ended = os.getloadavg()[0], rss_mb(pid)
            time.sleep(args.settle)
            table({
                "scenario": "heavy T=10000 H=512", "sessions": r["sessions"], "rendered": r["rendered"],
                "saw the line": r["waited"], "light page s": f"{r['light_s']:.2f}",
                "heavy median s": f"{r['heavy_median_s']:.1f}", "heavy max s": f"{r['heavy_max_s']:.1f}",
                "RSS before MB": f"{before:.0f}", "peak MB": f"{peak.peak:.0f}", "at end MB": f"{ended:.0f}",
                f"after {args.settle:.0f} s MB": f"{rss_mb(pid):.0f}", "errors": len(r["errors"]),
                "load": f"{load:.1f}",
            })  # fmt: skip
            failed |= bool(r["errors"]) or r["rendered"] != r["sessions"]
            for error in r["errors"][:5]:
                print("  error:", error)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
