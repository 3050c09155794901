"""Every example in README.md and docs/*.md runs, and prints what the page shows.

How a page's fenced blocks are read:

- ```python blocks run in order, in one namespace per file, in a fresh temporary folder. A
  statement whose last line ends in `# -> WANT` must print WANT, or evaluate to an object whose
  repr is WANT. A ```text block right after a python block is everything the block prints.
- ```bash blocks hold `python -m lstm_viz ...` commands, run as `python -m` runs them (runpy, in
  the same temporary folder); they must exit with 0. A ```text block right after is their stdout.
- ```console blocks hold `$ python -m lstm_viz ...` commands, each followed by what it prints
  (stdout and stderr together, in order), whatever its exit status.
- ```text blocks are output, or text to read; they never run.

A block that must not run says why on the line before it: `<!-- not-run: REASON -->`. The
README's two commands (`<!-- setup-and-run -->`, `<!-- setup-and-test -->`) are run by .ci/run.
Shown output may write `...` for what changes from run to run, such as times (doctest's ELLIPSIS);
everything else must match, so a number in the docs cannot drift from what the code prints.

All files run in one child process (`python tests/test_docs.py PLAN RESULT`): importing torch,
numba and plotly once instead of once per file keeps the whole check under a minute on two cores.
"""

from __future__ import annotations

import difflib
import doctest
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGS = {"python", "bash", "console", "text"}
CI_MARKERS = ("<!-- setup-and-run -->", "<!-- setup-and-test -->")
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
COMMAND = ("python", "-m", "lstm_viz")
CHILD_TIMEOUT_S = 300


@dataclass
class Block:
    file: str  # path relative to the repository
    line: int  # line of the opening fence, 1-based
    lang: str
    code: str
    skip: str | None = None  # why it does not run; None: it runs
    want: str | None = None  # the ```text block right after it: its whole output


def parse(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with its not-run reason and shown output."""
    lines = path.read_text().splitlines()
    rel = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
    blocks: list[Block] = []
    last_code_end = -2  # index of the closing fence of the last block that runs
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        start = i
        i += 1
        body = []
        while i < len(lines) and not re.match(rf"^{indent}```\s*$", lines[i]):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        code = "\n".join(body) + "\n"
        before = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        prev_nonblank = next((k for k in range(start - 1, -1, -1) if lines[k].strip()), -1)
        skip = None
        if (n := NOT_RUN.search(before)) is not None:
            skip = n.group(1)
        elif before in CI_MARKERS:
            skip = f"run by .ci/run ({before})"
        if lang == "text" and prev_nonblank == last_code_end and blocks and blocks[-1].skip is None:
            blocks[-1].want = code
        else:
            blocks.append(Block(rel, start + 1, lang, code, skip))
            if lang in ("python", "bash") and skip is None:
                last_code_end = i
        i += 1
    return blocks


def commands(block: Block) -> list[tuple[str, str | None]]:
    """(command, shown output) pairs of a bash or console block; continuation lines joined."""
    out: list[tuple[str, list[str] | None]] = []
    pending = ""
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if block.lang == "bash":
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            line = re.sub(r"\s+#.*$", "", line) if not pending else line
        elif not pending and not line.startswith("$ "):
            if not out:
                raise ValueError(f"{block.file}:{block.line}: console output before any `$ ` command")
            out[-1][1].append(raw)
            continue
        elif not pending:
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        out.append((pending + line.strip(), [] if block.lang == "console" else None))
        pending = ""
    return [(cmd, None if shown is None else "\n".join(shown) + "\n") for cmd, shown in out]


def all_blocks() -> list[Block]:
    return [b for path in FILES for b in parse(path)]


def matches(want: str, got: str) -> bool:
    """doctest's comparison with ELLIPSIS, trailing spaces and blank edges ignored."""

    def norm(s: str) -> str:
        return "\n".join(line.rstrip() for line in s.strip("\n").splitlines()) + "\n"

    return doctest.OutputChecker().check_output(norm(want), norm(got), doctest.ELLIPSIS)


def diff(want: str, got: str) -> str:
    """What the docs show against what the code printed, as a unified diff."""
    lines = difflib.unified_diff(want.splitlines(), got.splitlines(), "shown", "printed", lineterm="")
    return "output differs:\n" + "\n".join(lines)


# --------------------------------------------------------------------------- the child process


def _run_python(code: str, namespace: dict, where: str) -> tuple[str, list[dict]]:
    """Run a python block statement by statement; returns its stdout and the `# ->` checks."""
    import ast
    import contextlib
    import io

    tree = ast.parse(code, where)
    lines = code.splitlines()
    whole = io.StringIO()
    checks = []
    for stmt in tree.body:
        last = lines[stmt.end_lineno - 1]
        want = re.search(r"#\s*->\s*(.*?)\s*(?:#.*)?$", last)
        own = io.StringIO()
        with contextlib.redirect_stdout(own):
            if isinstance(stmt, ast.Expr):
                value = eval(compile(ast.Expression(stmt.value), where, "eval"), namespace)
            else:
                exec(compile(ast.Module([stmt], []), where, "exec"), namespace)
                value = None
        whole.write(own.getvalue())
        if want:
            got = own.getvalue().rstrip("\n") or repr(value)
            checks.append({"line": stmt.end_lineno, "want": want.group(1), "got": got})
    return whole.getvalue(), checks


def _run_command(cmd: str, *, merged: bool) -> tuple[int, str, str]:
    """`python -m lstm_viz ARGS` as python runs it (runpy), with its output captured."""
    import contextlib
    import io
    import runpy
    import shlex

    args = shlex.split(cmd)
    if tuple(args[:3]) != COMMAND:
        raise ValueError(f"only `python -m lstm_viz ...` runs here, got {cmd!r}")
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["-m", *args[3:]]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out if merged else err):
            runpy.run_module("lstm_viz", run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()


def child(plan_path: str, result_path: str) -> None:
    """Run every file's blocks (the plan) and write what each printed (the result)."""
    import os
    import traceback

    plan = json.loads(Path(plan_path).read_text())
    results = []
    sys.path.insert(0, str(ROOT))
    for entry in plan:
        os.chdir(entry["dir"])
        namespace: dict = {"__name__": "__docs__"}
        failed = None
        for raw in entry["blocks"]:
            b = Block(**raw)
            res = {"file": b.file, "line": b.line, "lang": b.lang, "problems": []}
            start = time.perf_counter()
            if failed:
                res["problems"].append(f"not run: an earlier block failed ({failed})")
            else:
                try:
                    if b.lang == "python":
                        printed, checks = _run_python(b.code, namespace, f"{b.file}:{b.line}")
                        for c in checks:
                            if not matches(c["want"], c["got"]):
                                res["problems"].append(
                                    f"line {b.line + c['line']}: shows {c['want']!r}, prints {c['got']!r}"
                                )
                        if b.want is not None and not matches(b.want, printed):
                            res["problems"].append(diff(b.want, printed))
                    else:
                        stdout = ""
                        for cmd, shown in commands(b):
                            code, out, err = _run_command(cmd, merged=b.lang == "console")
                            if b.lang == "bash" and code != 0:
                                res["problems"].append(f"`{cmd}` exited with {code}:\n{err}")
                            if shown is not None and not matches(shown, out):
                                res["problems"].append(f"`{cmd}`: " + diff(shown, out))
                            stdout += out
                        if b.want is not None and not matches(b.want, stdout):
                            res["problems"].append(diff(b.want, stdout))
                except BaseException:  # noqa: BLE001 - report it, and skip the file's later blocks
                    res["problems"].append(traceback.format_exc(limit=6))
                    failed = f"line {b.line}"
            res["seconds"] = round(time.perf_counter() - start, 2)
            results.append(res)
    Path(result_path).write_text(json.dumps(results))


# --------------------------------------------------------------------------- the tests


def run_plan(files: dict[str, list[Block]], tmp: Path) -> list[dict]:
    plan = []
    for n, (name, blocks) in enumerate(files.items()):
        folder = tmp / f"{n}_{Path(name).stem}"
        folder.mkdir()
        plan.append({"dir": str(folder), "blocks": [asdict(b) for b in blocks if b.skip is None]})
    (tmp / "plan.json").write_text(json.dumps(plan))
    done = subprocess.run(
        [sys.executable, __file__, str(tmp / "plan.json"), str(tmp / "result.json")],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((tmp / "result.json").read_text())


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[tuple[str, int], dict]:
    files: dict[str, list[Block]] = {}
    for b in all_blocks():
        if b.lang != "text":
            files.setdefault(b.file, []).append(b)
    start = time.perf_counter()
    out = run_plan(files, tmp_path_factory.mktemp("docs"))
    print(f"ran {len(out)} blocks in {time.perf_counter() - start:.1f} s")
    return {(r["file"], r["line"]): r for r in out}


RUNNABLE = [b for b in all_blocks() if b.lang != "text" and b.skip is None]


def test_every_block_has_a_language_and_says_why_it_does_not_run():
    problems = []
    for b in all_blocks():
        where = f"{b.file}:{b.line}"
        if b.lang not in LANGS:
            problems.append(f"{where}: fence ```{b.lang}; use one of {sorted(LANGS)}")
        if b.skip is not None and len(b.skip) < 10:
            problems.append(f"{where}: not-run needs a reason, got {b.skip!r}")
        if b.skip is None and b.lang in ("bash", "console"):
            for cmd, _ in commands(b):
                if not cmd.startswith(" ".join(COMMAND)):
                    problems.append(f"{where}: `{cmd}` is not `python -m lstm_viz`; mark it not-run")
    assert problems == []
    # the docs do hold examples, and most of them run
    assert len(RUNNABLE) >= 15
    assert sum(b.lang == "python" for b in RUNNABLE) >= 10


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: f"{b.file}:{b.line}")
def test_example_runs_and_prints_what_the_docs_show(block, results):
    res = results[(block.file, block.line)]
    assert res["problems"] == [], "\n".join(res["problems"])


def test_a_drifted_number_or_a_failing_command_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 6 * 7\nx  # -> 42\nprint(x + 1)  # -> 44\n```\n\n"
        "```python\nprint('took 1.3 s')\n```\n\n```text\ntook ... s\n```\n\n"
        "```bash\npython -m lstm_viz --seq-len 0\n```\n\n"
        "```console\n$ python -m lstm_viz --seq-len 0\nlstm-viz: error: --seq-len must be 7\n```\n"
    )
    blocks = [b for b in parse(page) if b.lang != "text"]
    for b in blocks:
        b.file = "page.md"
    assert [b.lang for b in blocks] == ["python", "python", "bash", "console"]
    assert blocks[1].want == "took ... s\n"
    out = run_plan({"page.md": blocks}, tmp_path)
    problems = [r["problems"] for r in out]
    assert len(problems[0]) == 1 and "shows '44', prints '43'" in problems[0][0]
    assert problems[1] == []  # `...` stands for the time
    assert len(problems[2]) == 1 and "exited with 2" in problems[2][0]
    assert len(problems[3]) == 1 and "must be an integer between 1 and 10000" in problems[3][0]


def test_links_between_the_docs_resolve():
    def anchors(path: Path) -> set[str]:
        out = set()
        for line in path.read_text().splitlines():
            if m := re.match(r"^#{1,6} (.*)", line):
                slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
                out.add(slug)
        return out

    broken = []
    for path in FILES:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if file == "docs/docker.md" or (file == "docker.md" and path.parent.name == "docs"):
                continue  # written by the Docker work; the lead links it
            if not dest.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{path.name}: {target} (no such heading)")
    assert broken == []


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2])


def test_the_settings_table_names_every_setting_with_its_url_key_flag_and_default():
    """docs/command-line.md's "One name per setting" table against lstm_viz.settings.SETTINGS."""
    from lstm_viz.settings import SETTINGS

    text = (ROOT / "docs" / "command-line.md").read_text()
    section = text[text.index("## One name per setting") :]
    rows = {}
    for line in section.splitlines():
        if m := re.match(r"^\| `(\w+)` \|", line):
            rows[m.group(1)] = [c.strip() for c in line.strip().strip("|").split("|")]
    assert list(rows) == [s.name for s in SETTINGS], "one row per setting, in SETTINGS' order"
    for s in SETTINGS:
        _, url, flag, default, _what = rows[s.name]
        assert url == "(not in the app)" if s.widget is None else url.startswith(f"`{s.name}`"), s.name
        assert flag.startswith(f"`{s.flag}`"), s.name
        assert default == (str(s.default).lower() if s.type is bool else str(s.default)), s.name
        for old in s.aliases:  # an old URL key, an old flag, or both
            assert f"`{old}`" in url or f"`--{old.replace('_', '-')}`" in flag, (s.name, old)
