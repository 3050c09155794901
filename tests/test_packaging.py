"""Setup that holds on any machine: requirements.txt picks PyTorch's CPU build on Linux,
pyproject.toml agrees with it, and the project installs as a package with a `lstm-viz` command.

The resolver test asks pip itself (a dry run with a report, no pip configuration of this
machine) what `pip install -r requirements.txt` would install on Linux, and fails on any
nvidia-* or triton package; a control run shows that plain PyPI torch would bring them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI = "https://pypi.org/simple/"
CUDA_PACKAGE = re.compile(r"^(nvidia-.*|triton|pytorch-triton.*)$")
MARKER_ENVS = {  # the variables a requirement's marker reads, per platform
    "linux x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "linux aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    "macOS arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    "Windows": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
}


def requirement_lines(path: Path = REQUIREMENTS) -> tuple[list[str], list[Requirement]]:
    """(option lines such as --extra-index-url, requirements) of a requirements file."""
    options, requirements = [], []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        (options if line.startswith("-") else requirements).append(line)
    return options, [Requirement(r) for r in requirements]


def selected(env: dict[str, str]) -> dict[str, Requirement]:
    """name -> the requirement that applies on a platform (the markers evaluated for it)."""
    found: dict[str, Requirement] = {}
    for req in requirement_lines()[1]:
        if req.marker is None or req.marker.evaluate(env):
            assert req.name not in found, f"two requirements for {req.name} apply on {env}"
            found[req.name] = req
    return found


def pin(req: Requirement) -> Version:
    (spec,) = req.specifier
    assert spec.operator == "==", f"requirements.txt pins exact versions, got {req}"
    return Version(spec.version)


@pytest.mark.parametrize("platform", MARKER_ENVS)
def test_requirements_pick_the_cpu_build_on_linux_only(platform):
    options, _ = requirement_lines()
    assert f"--extra-index-url {CPU_INDEX}" in options, "requirements.txt must name PyTorch's CPU index"
    torch = pin(selected(MARKER_ENVS[platform])["torch"])
    if platform.startswith("linux"):
        assert torch.local == "cpu", f"Linux must get torch's +cpu build, requirements.txt gives {torch}"
    else:
        assert torch.local is None, f"PyTorch's CPU index has no +cpu wheel for {platform}, got {torch}"
    # one torch release everywhere: the platforms differ only in the build label
    assert torch.public == pin(selected(MARKER_ENVS["linux x86_64"])["torch"]).public


def test_pyproject_ranges_admit_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranges = {Requirement(d).name: Requirement(d) for d in project["dependencies"]}
    for platform, env in MARKER_ENVS.items():
        pins = selected(env)
        assert set(pins) == set(ranges), (
            f"requirements.txt and pyproject.toml list different packages ({platform}): "
            f"{sorted(set(pins) ^ set(ranges))}"
        )
        outside = [
            f"{name} {pin(req)} not in {ranges[name].specifier}"
            for name, req in pins.items()
            if not ranges[name].specifier.contains(pin(req), prereleases=True)
        ]
        assert outside == [], outside
    assert project["scripts"]["lstm-viz"] == "lstm_viz.cli:main"


def _clean_pip_env(tmp_path: Path) -> dict[str, str]:
    """This interpreter's environment without any pip setting: no config file, no PIP_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", HOME=str(tmp_path))
    env.pop("XDG_CONFIG_HOME", None)
    env["XDG_CONFIG_DIRS"] = str(tmp_path / "no-xdg")  # /etc/xdg/pip/pip.conf is read otherwise
    return env


def _local_cpu_wheels() -> list[str]:
    """Folders of this machine's pip configuration that hold a torch +cpu wheel: the stand-in for
    PyTorch's CPU index where that index cannot be reached (this machine); empty elsewhere."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60
    ).stdout
    folders = re.findall(r"find-links='([^']+)'", listed) + os.environ.get("PIP_FIND_LINKS", "").split()
    return sorted({f for item in folders for f in item.split() if list(Path(f).glob("torch-*+cpu-*.whl"))})


def _dry_run(requirements: list[str], tmp_path: Path, extra: list[str] = ()) -> dict[str, str]:
    """name -> version pip would install for this interpreter on this (Linux) machine."""
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--retries",
        "1",
        "--only-binary",
        ":all:",
        "--report",
        str(report),
        *extra,
        *requirements,
    ]
    result = subprocess.run(
        command, env=_clean_pip_env(tmp_path), capture_output=True, text=True, timeout=900, cwd=tmp_path
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr[-3000:]}"
    return {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resolves for this machine: Linux")
def test_resolver_installs_no_cuda_packages_on_linux(tmp_path):
    try:
        urllib.request.urlopen(PYPI + "pip/", timeout=20).close()
    except OSError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PyPI cannot be reached ({exc}); the resolver check needs it in CI")
        pytest.skip(f"PyPI cannot be reached: {exc}")
    wheels = [arg for folder in _local_cpu_wheels() for arg in ("--find-links", folder)]

    installs = _dry_run(["-r", str(REQUIREMENTS)], tmp_path, wheels)
    assert Version(installs["torch"]).local == "cpu", installs["torch"]
    assert {"streamlit", "ray", "numba"} <= set(installs)
    assert [name for name in installs if CUDA_PACKAGE.match(name)] == []

    # Control: the same torch release straight from PyPI brings CUDA, so the check above can fail.
    public = Version(installs["torch"]).public
    plain = _dry_run([f"torch=={public}"], tmp_path)
    assert [name for name in plain if CUDA_PACKAGE.match(name)], sorted(plain)


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory) -> Path:
    """A fresh virtual environment with the project installed (not editable) from a copy of its
    source; its dependencies come from this interpreter's environment. Returns its bin folder."""
    tmp = tmp_path_factory.mktemp("pkg")
    source = tmp / "source"
    shutil.copytree(ROOT / "lstm_viz", source / "lstm_viz", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The dependencies (and pip, and setuptools >= 77, which torch requires) come from the environment
    # running this test, whether a virtual environment or not: a .pth file puts its site-packages on the
    # new environment's path, after the venv's own.
    (site,) = (venv / "lib").glob("python*/site-packages")
    outer = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "outer-environment.pth").write_text("\n".join(outer) + "\n")
    install = subprocess.run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return venv / "bin"


@pytest.mark.parametrize("command", [["python", "-m", "lstm_viz"], ["lstm-viz"]])
def test_installed_command_runs_from_any_folder(installed_venv, tmp_path, command):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = [str(installed_venv / command[0]), *command[1:], "--help"]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--spectral-radius" in result.stdout
    # the usage line names the command the user typed
    typed = "lstm-viz" if command == ["lstm-viz"] else "python -m lstm_viz"
    assert result.stdout.startswith(f"usage: {typed}")


def test_installed_package_holds_its_weights(installed_venv, tmp_path):
    """The copy in site-packages is the one imported, and it carries the shipped char-model weights."""
    code = (
        "import lstm_viz, lstm_viz.charlm as c; "
        "print(lstm_viz.__file__); print(sorted(p.name for p in c.WEIGHTS_DIR.glob('*.pth')))"
    )
    result = subprocess.run(
        [str(installed_venv / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    where, weights = result.stdout.splitlines()
    assert Path(where).is_relative_to(installed_venv.parent), where
    assert weights == str(sorted(p.name for p in (ROOT / "lstm_viz" / "weights").glob("*.pth")))
