"""python -m lstm_viz: the app's gradient-flow runs without a browser.

Records each chosen architecture on one seeded input batch, prints the fitted decay
rate and half-life per model, and writes the tidy recording (CSV or Parquet, by
extension) and the gradient-flow chart (HTML, PNG through kaleido). This module keeps
argparse and progress only: the flags come from the declared settings
(lstm_viz.settings.SETTINGS), the run, tables and texts from the library, so a run
here matches the app's page.
Every output is written to a temporary file beside it and renamed when complete, so an
interrupted run (Ctrl-C) leaves the previous file as it was; a file that is replaced is said so.
Exit status: 0 done, 2 bad arguments or settings, 1 an output could not be written or memory ran
out, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn, TextIO

import plotly.graph_objects as go
import torch

from .figures import gradient_flow_figure
from .loading import describe, load_model, load_sequence
from .models import ARCHS
from .prose import run_title
from .record import DEFAULT_MAX_BYTES, Recording, record
from .settings import (
    BY_NAME,
    SETTINGS,
    Settings,
    check_memory,
    complete,
    for_archs,
    model_and_input,
    parse_bool,
)
from .tables import decay_fits, summary_text, write_tidy

TABLE_SUFFIXES = (".csv", ".parquet")
MAX_MEMORY_GB = 100_000  # the largest --max-memory-gb (100 TB)
PNG_SIZE = {"width": 1100, "height": 520, "scale": 2}


class UsageError(Exception):
    """A bad argument or setting: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line that points to --help is enough.
        raise UsageError(f"{message} (see {PROG} --help)")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default only where there is one worth showing; keeps the example's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not any(action.default is v for v in (None, False, argparse.SUPPRESS))
            and "%(default)" not in text
        ):
            default = " ".join(action.default) if isinstance(action.default, list) else action.default
            text += f" (default: {default})"
        return text


def _bool(raw: str) -> bool:
    return parse_bool(raw)


_bool.__name__ = "true/false"  # argparse names the type in its error: "invalid true/false value"


def add_setting_flags(parser: argparse.ArgumentParser, *, many: bool = False) -> None:
    """One flag per declared setting (lstm_viz.settings.SETTINGS), in two groups; older spellings
    (--input, --nonlinearity) still work. Every default is None, so a given flag can be told apart.
    many: each flag takes one or more values (a sweep's axes)."""
    groups = {
        "Run": parser.add_argument_group("run"),
        "init": parser.add_argument_group("initialisation"),
    }
    for s in SETTINGS:
        flags = [s.flag, *("--" + alias.replace("_", "-") for alias in s.aliases)]
        help_text = s.help.rstrip(".") + f" (default: {s.default})"
        if s.type is bool:  # --bidirectional alone means true; a sweep lists values: false true
            kind = {"type": _bool, "metavar": "{false,true}"}
            kind["nargs"] = "+" if many else "?"
            if not many:
                kind["const"] = True
        else:
            kind = {
                "type": s.type,
                "choices": s.choices,
                "metavar": s.metavar,
                "nargs": "+" if many else None,
            }
        groups["Run" if s.group == "Run" else "init"].add_argument(
            *flags, dest=s.name, default=None, help=help_text.replace("%", "%%"), **kind
        )


# How the user started us: the console script installed by pip, or the module.
PROG = "lstm-viz" if Path(sys.argv[0]).name == "lstm-viz" else "python -m lstm_viz"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Record how the gradient of a loss on the last step flows back in time through\n"
        "untrained recurrent networks: print each model's decay rate and half-life, and save\n"
        "the recording and the chart. The same runs as the app's Gradient flow page.",
        epilog="example:\n  python -m lstm_viz --arch rnn lstm --seq-len 1000 --lstm-init chrono \\\n"
        "      --out flow.parquet --html flow.html --png flow.png",
        formatter_class=_Formatter,
    )
    parser.add_argument("--arch", nargs="+", choices=ARCHS, default=["rnn", "lstm"], help="models to compare")
    parser.add_argument(
        "--max-memory-gb",
        type=float,
        metavar="GB",
        default=DEFAULT_MAX_BYTES / 1024**3,
        help="refuse runs whose recording would need more memory",
    )
    add_setting_flags(parser)
    out = parser.add_argument_group("outputs")
    out.add_argument("--out", type=Path, metavar="PATH", help="tidy recording, .csv or .parquet")
    out.add_argument(
        "--norms-only", action="store_true", help="only the gradient norms in --out, no unit values"
    )
    out.add_argument("--html", type=Path, metavar="PATH", help="gradient-flow chart, self-contained .html")
    out.add_argument(
        "--png", type=Path, metavar="PATH", help="gradient-flow chart, .png (needs Chrome/Chromium)"
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")
    yours = parser.add_argument_group("your own model (instead of the settings above; docs/loading.md)")
    yours.add_argument("--model", type=Path, metavar="FILE.pt", help="a torch.nn.RNN/LSTM/GRU state dict")
    yours.add_argument("--sequence", type=Path, metavar="FILE", help=".csv (steps x features) or text")
    return parser


def run_loaded(args: argparse.Namespace, argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """--model and --sequence: record the loaded model on the loaded sequence, print its decay rate
    and write the same outputs; a settings flag (or --arch) given with them is an error."""
    progress = None
    try:
        given = [s.flag for s in SETTINGS if getattr(args, s.name) is not None]
        given += ["--arch"] if any(a == "--arch" or a.startswith("--arch=") for a in argv) else []
        if given:
            raise UsageError(f"{', '.join(given)} cannot apply to --model: its file fixes the network and "
                             "--sequence the input")  # fmt: skip
        if args.model is None or args.sequence is None:
            raise UsageError(
                "--model and --sequence go together: --model FILE.pt --sequence FILE.csv|FILE.txt"
            )
        check_outputs(args)
        loaded = load_model(args.model)
        x = load_sequence(args.sequence, loaded)
        progress = Progress(
            1 + sum(p is not None for p in (args.out, args.html, args.png)), stderr, args.quiet
        )
        progress.step(f"recording {args.model.name}")
        rec = record(loaded.module, x, max_bytes=max_bytes(args), label=args.model.stem,
                     progress=progress.within, meta={"model": describe(loaded)})  # fmt: skip
        # write_outputs titles charts with the settings; a loaded model's title names its files instead
        written = write_outputs(
            argparse.Namespace(**vars(args) | {"html": None, "png": None}), [rec], None, progress
        )
        title = f"{args.model.name} ({describe(loaded)}) on {args.sequence.name}, T = {rec.seq_len} steps"
        fig = gradient_flow_figure([rec], decay_fits([rec])).update_layout(title=title, margin=dict(t=70))
        written += write_charts(args, fig, progress)
        progress.close()
    except (UsageError, ValueError, OSError, MemoryError, RuntimeError, KeyboardInterrupt) as exc:
        return _failed(exc, progress, stderr)
    print(title, file=stdout)
    print(summary_text([rec]), file=stdout)
    for item in written:
        print(f"wrote {item}", file=stdout)
    return 0


def settings_from(args: argparse.Namespace, archs: Sequence[str]) -> Settings:
    """The settings these arguments give (defaults for the rest); a setting given for a model
    that is not run, or that the chosen inits ignore, is an error."""
    given = {s.name: getattr(args, s.name) for s in SETTINGS if getattr(args, s.name) is not None}
    values = complete(given)
    for name, value in given.items():
        setting = BY_NAME[name]
        setting.check(value)
        if (setting.arch and setting.arch not in archs) or not setting.applies(for_archs(values, archs)):
            raise UsageError(f"{setting.flag} applies only with {setting.requirement()}")
    return Settings(**values)


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse unusable output paths before a long run, not after it."""
    wanted = {
        "--out": (args.out, TABLE_SUFFIXES),
        "--html": (args.html, (".html",)),
        "--png": (args.png, (".png",)),
    }
    for flag, (path, suffixes) in wanted.items():
        if path is None:
            continue
        if path.suffix.lower() not in suffixes:
            raise UsageError(f"{flag} must end in {' or '.join(suffixes)}, got {str(path)!r}")
        if not path.parent.is_dir():
            raise UsageError(f"{flag}: folder {str(path.parent)!r} does not exist; create it first")
    max_bytes(args)


def max_bytes(args: argparse.Namespace) -> int:
    """--max-memory-gb in bytes; UsageError naming the range if it is not a number in it."""
    gb = args.max_memory_gb
    if not 0 < gb <= MAX_MEMORY_GB:  # also refuses nan; inf and 1e300 would overflow int()
        raise UsageError(
            f"--max-memory-gb must be a number above 0 and at most {MAX_MEMORY_GB:,}, got {gb:g}"
        )
    return int(gb * 1024**3)


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside path to write to; renamed to path when the block ends without an
    error, removed otherwise (Ctrl-C included), so path is either the old file or the whole new one."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        yield part
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


class Progress:
    """A one-line progress bar on a terminal, one line per step elsewhere; silent when quiet."""

    def __init__(self, total: int, stream: TextIO, quiet: bool = False, width: int = 24):
        self.total, self.stream, self.quiet, self.width = total, stream, quiet, width
        self.done, self.start = 0, time.perf_counter()
        self.tty = stream.isatty()

    def step(self, what: str) -> None:
        """Announce the step about to run."""
        self.what = what
        if not self.quiet:
            self._draw(0.0, newline=not self.tty)
        self.done += 1

    def within(self, fraction: float) -> None:
        """Redraw the bar part-way through the current step (on a terminal only)."""
        if self.tty and not self.quiet:
            self._draw(fraction, newline=False)

    def _draw(self, fraction: float, newline: bool) -> None:
        count = self.done - 1 if fraction else self.done  # steps finished
        filled = int(self.width * (count + fraction) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        line = f"[{bar}] {count}/{self.total} {self.what} ({time.perf_counter() - self.start:.1f} s)"
        self.stream.write(line + "\n" if newline else f"\r{line:<79}")
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet:
            self.done = self.total
            self.step("done")
            if self.tty:
                self.stream.write("\n")


def prepare(settings: Settings, archs: Sequence[str], max_bytes: int) -> tuple[torch.Tensor, list]:
    """The input batch and one model per architecture; every bad setting raises here, before any run."""
    check_memory(settings, archs, max_bytes, can_raise=True)
    models = [model_and_input(settings, arch)[0] for arch in archs]
    return model_and_input(settings, archs[0])[1], models


def record_all(
    settings: Settings, x: torch.Tensor, models: Sequence, max_bytes: int, progress: Progress
) -> list[Recording]:
    """One recording per model, all on the same input batch."""
    recordings = []
    for model in models:
        label = settings.label(model.arch)
        progress.step(f"recording {label}")
        meta = asdict(settings)
        recordings.append(
            record(model, x, max_bytes=max_bytes, label=label, meta=meta, progress=progress.within)
        )
    return recordings


def chart(recordings: Sequence[Recording], settings: Settings) -> go.Figure:
    """The app's gradient-flow figure with each model's fitted decay line, titled with the run's settings."""
    fig = gradient_flow_figure(recordings, decay_fits(recordings))
    fig.update_layout(
        title=dict(text=run_title(settings), x=0, xanchor="left", xref="paper"), margin=dict(t=70)
    )
    return fig


def write_outputs(
    args: argparse.Namespace, recordings: list[Recording], settings: Settings, progress: Progress
) -> list[str]:
    """Write --out (streamed a chunk at a time: any size fits in memory), then the charts."""
    written = []
    if args.out is not None:
        progress.step(f"writing {args.out}")
        replaced = args.out.exists()
        with replacing(args.out) as part:
            fmt = "parquet" if args.out.suffix.lower() == ".parquet" else "csv"
            rows = write_tidy(recordings, part, per_unit=not args.norms_only, fmt=fmt)
        what = f"{rows:,} rows" + ("; replaced the previous file" if replaced else "")
        written.append(f"{args.out} ({what})")
    if args.html is not None or args.png is not None:
        written += write_charts(args, chart(recordings, settings), progress)
    return written


def write_charts(args: argparse.Namespace, fig: go.Figure, progress: Progress) -> list[str]:
    """Write fig to --html and --png (each if given); the 'wrote' lines."""
    written = []
    for path in (args.html, args.png):
        if path is None:
            continue
        progress.step(f"writing {path}")
        replaced = path.exists()
        with replacing(path) as part:
            if path is args.html:
                fig.write_html(part, include_plotlyjs=True, full_html=True)
            else:
                try:
                    fig.write_image(part, format="png", **PNG_SIZE)
                except Exception as exc:  # kaleido raises several types when no browser can start
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise OSError(
                        f"PNG export failed ({reason}); kaleido needs Chrome or Chromium: "
                        "apt-get install chromium, or point BROWSER_PATH to the browser"
                    ) from exc
        written.append(str(path) + (" (replaced the previous file)" if replaced else ""))
    return written


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line; returns the exit status. `sweep` as the first argument runs
    lstm_viz.sweep's command instead."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        from .sweep import main as sweep_main

        return sweep_main(argv[1:], stdout, stderr)
    progress = None
    try:
        args = build_parser().parse_args(argv)
        if args.model is not None or args.sequence is not None:
            return run_loaded(args, argv, stdout, stderr)
        archs = list(dict.fromkeys(args.arch))  # keep order, drop repeats
        settings = settings_from(args, archs)
        check_outputs(args)
        steps = len(archs) + (args.out is not None) + (args.html is not None) + (args.png is not None)
        limit = max_bytes(args)
        x, models = prepare(settings, archs, limit)
        progress = Progress(steps, stderr, quiet=args.quiet)
        recordings = record_all(settings, x, models, limit, progress)
        written = write_outputs(args, recordings, settings, progress)
        progress.close()
    except (UsageError, ValueError, OSError, MemoryError, RuntimeError, KeyboardInterrupt) as exc:
        return _failed(exc, progress, stderr)

    print(run_title(settings), file=stdout)
    print(summary_text(recordings), file=stdout)
    for item in written:
        print(f"wrote {item}", file=stdout)
    return 0


def _failed(exc: BaseException, progress: Progress | None, stderr: TextIO) -> int:
    """Report exc in one line on stderr; the exit status. A RuntimeError that is not torch running
    out of memory is a bug: raised again, with its traceback."""
    out_of_memory = isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and "allocate" in str(exc).lower()
    )
    if isinstance(exc, RuntimeError) and not out_of_memory:
        raise exc
    if progress is not None and progress.tty and not progress.quiet:
        stderr.write("\n")  # end the progress line
    if isinstance(exc, KeyboardInterrupt):
        print("lstm-viz: interrupted; no output was left half-written", file=stderr)
        return 130
    if out_of_memory:
        print("lstm-viz: error: this machine ran out of memory: lower --max-memory-gb to the memory it "
              "has free, so that runs too big for it are refused before they start", file=stderr)  # fmt: skip
        return 1
    print(f"lstm-viz: error: {_one_line(exc)}", file=stderr)
    return 1 if isinstance(exc, OSError) else 2


# The library names its arguments; here the user typed flags.
FLAG_NAMES = {s.name: s.flag for s in SETTINGS} | {"max_bytes": "--max-memory-gb"}
_FLAG_PATTERN = re.compile(r"(?<![\w'\"-])(" + "|".join(FLAG_NAMES) + r")\b(?!['\"])")


def _one_line(exc: BaseException) -> str:
    """The error's message on one line; the library's argument names become the flags."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, UsageError):
        return text
    return _FLAG_PATTERN.sub(lambda m: FLAG_NAMES[m.group(1)], text)
