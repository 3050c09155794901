"""python -m lstm_viz: the app's gradient-flow runs without a browser.

Records each chosen architecture on one seeded input batch, prints the fitted decay
rate and half-life per model, and writes the tidy recording (CSV or Parquet, by
extension) and the gradient-flow chart (HTML, PNG through kaleido). Settings and
defaults are the app's (lstm_viz.views.RunSettings), so a run here matches the page.
Exit status: 0 done, 2 bad arguments or settings, 1 an output could not be written.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn, TextIO

import pandas as pd
import plotly.graph_objects as go
import torch

from .figures import gradient_flow_figure
from .inputs import INPUTS, make_input
from .models import ARCHS, INITS, RecurrentModel, build_model
from .record import DEFAULT_MAX_BYTES, Recording, estimate_bytes, record
from .views import RunSettings, decay_fits, flow_summary

TABLE_SUFFIXES = (".csv", ".parquet")
PNG_SIZE = {"width": 1100, "height": 520, "scale": 2}
DEFAULTS = RunSettings()
MAX_SEED = 2**31 - 1  # the app's seed range


class UsageError(Exception):
    """A bad argument or setting: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; one line that points to --help is enough.
        raise UsageError(f"{message} (see python -m lstm_viz --help)")


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m lstm_viz",
        description="Record how the gradient of a loss on the last step flows back in time through\n"
        "untrained recurrent networks: print each model's decay rate and half-life, and save\n"
        "the recording and the chart. The same runs as the app's Gradient flow page.",
        epilog="example:\n  python -m lstm_viz --arch rnn lstm --seq-len 1000 --lstm-init chrono \\\n"
        "      --out flow.parquet --html flow.html --png flow.png",
        formatter_class=_Formatter,
    )
    run = parser.add_argument_group("run")
    run.add_argument("--arch", nargs="+", choices=ARCHS, default=["rnn", "lstm"], help="models to compare")
    run.add_argument(
        "--seq-len", type=int, metavar="T", default=DEFAULTS.seq_len, help="steps in the sequence"
    )
    run.add_argument(
        "--hidden-size", type=int, metavar="H", default=DEFAULTS.hidden_size, help="units per model"
    )
    run.add_argument(
        "--input-size", type=int, metavar="I", default=DEFAULTS.input_size, help="features per step"
    )
    run.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        default=DEFAULTS.batch_size,
        help="sequences; B > 1 reports medians",
    )
    run.add_argument(
        "--input", choices=sorted(INPUTS), default=DEFAULTS.input_kind, help="input sequence kind"
    )
    run.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the input and the weights")
    run.add_argument(
        "--max-memory-gb",
        type=float,
        metavar="GB",
        default=DEFAULT_MAX_BYTES / 1024**3,
        help="refuse runs whose recording would need more memory",
    )

    init = parser.add_argument_group("initialisation")
    for arch in ARCHS:
        init.add_argument(
            f"--{arch}-init", choices=INITS[arch], default="default", help=f"{arch.upper()} init"
        )
    init.add_argument(
        "--forget-bias",
        type=float,
        metavar="BIAS",
        help=f"with --lstm-init forget_bias: the effective bias (default: {DEFAULTS.forget_bias:g})",
    )
    init.add_argument(
        "--spectral-radius",
        type=float,
        metavar="RHO",
        help="with --rnn-init orthogonal or identity: the scale "
        f"of W_hh (default: {DEFAULTS.spectral_radius:g})",
    )
    init.add_argument(
        "--t-max", type=int, metavar="STEPS", help="with chrono init: the longest time scale (default: T)"
    )
    init.add_argument(
        "--nonlinearity",
        choices=("tanh", "relu"),
        help="RNN activation (default: relu with identity init, else tanh)",
    )

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
    return parser


def settings_from(args: argparse.Namespace) -> RunSettings:
    """The app's settings for these arguments; a setting that the chosen inits ignore is an error."""
    chosen = {arch: getattr(args, f"{arch}_init") for arch in args.arch}
    if args.forget_bias is not None and chosen.get("lstm") != "forget_bias":
        raise UsageError("--forget-bias applies only with --arch lstm and --lstm-init forget_bias")
    if args.spectral_radius is not None and chosen.get("rnn") not in ("orthogonal", "identity"):
        raise UsageError(
            "--spectral-radius applies only with --arch rnn and --rnn-init orthogonal or identity"
        )
    if args.t_max is not None and "chrono" not in chosen.values():
        raise UsageError("--t-max applies only with --lstm-init chrono or --gru-init chrono")
    if args.nonlinearity is not None and "rnn" not in chosen:
        raise UsageError("--nonlinearity applies only with --arch rnn")
    nonlinearity = args.nonlinearity or ("relu" if args.rnn_init == "identity" else "tanh")
    return RunSettings(
        seq_len=args.seq_len,
        hidden_size=args.hidden_size,
        seed=args.seed,
        input_kind=args.input,
        input_size=args.input_size,
        batch_size=args.batch_size,
        lstm_init=args.lstm_init,
        forget_bias=DEFAULTS.forget_bias if args.forget_bias is None else args.forget_bias,
        rnn_init=args.rnn_init,
        spectral_radius=DEFAULTS.spectral_radius if args.spectral_radius is None else args.spectral_radius,
        rnn_nonlinearity=nonlinearity,
        gru_init=args.gru_init,
    )


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
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be an integer between 0 and {MAX_SEED}, got {args.seed}")
    if not math.isfinite(args.max_memory_gb) or args.max_memory_gb <= 0:
        raise UsageError(f"--max-memory-gb must be a positive number, got {args.max_memory_gb}")


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


def prepare(
    settings: RunSettings, archs: Sequence[str], t_max: int | None, max_bytes: int
) -> tuple[torch.Tensor, list[RecurrentModel]]:
    """The input batch and one model per architecture; every bad setting raises here, before any run."""
    x = make_input(
        settings.input_kind, settings.batch_size, settings.seq_len, settings.input_size, seed=settings.seed
    )
    models = []
    for arch in archs:
        kwargs = settings.model_kwargs(arch)
        if t_max is not None:
            kwargs["t_max"] = t_max
        models.append(build_model(arch, settings.input_size, settings.hidden_size, **kwargs))
        need = estimate_bytes(
            arch, settings.batch_size, settings.seq_len, settings.hidden_size, settings.input_size
        )
        if need > max_bytes:
            raise ValueError(
                f"the {arch.upper()} run needs about {need / 2**30:.2f} GiB, over the limit of "
                f"{max_bytes / 2**30:.2f} GiB: shorten --seq-len, shrink --batch-size or --hidden-size, "
                "or raise --max-memory-gb"
            )
    return x, models


def record_all(
    settings: RunSettings,
    x: torch.Tensor,
    models: Sequence[RecurrentModel],
    t_max: int | None,
    max_bytes: int,
    progress: Progress,
) -> list[Recording]:
    """One recording per model, all on the same input batch."""
    recordings = []
    for model in models:
        label = settings.label(model.arch)
        progress.step(f"recording {label}")
        meta = {**asdict(settings), "t_max": t_max}
        recordings.append(
            record(model, x, max_bytes=max_bytes, label=label, meta=meta, progress=progress.within)
        )
    return recordings


def tidy_frame(recordings: Sequence[Recording], per_unit: bool) -> pd.DataFrame:
    """The recordings' tidy frames stacked, with a first column 'model' (the legend name)."""
    frames = []
    for rec in recordings:
        frame = rec.to_frame(per_unit=per_unit)
        frame.insert(0, "model", rec.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def describe(settings: RunSettings) -> str:
    """One line naming the run, e.g. for the chart's title."""
    return (
        f"Gradient flow over T = {settings.seq_len} steps: hidden size {settings.hidden_size}, "
        f"{settings.input_size} {settings.input_kind} input features, batch {settings.batch_size}, "
        f"seed {settings.seed}"
    )


def chart(recordings: Sequence[Recording], settings: RunSettings) -> go.Figure:
    """The app's gradient-flow figure with each model's fitted decay line, titled with the run's settings."""
    fig = gradient_flow_figure(recordings, decay_fits(list(recordings)))
    fig.update_layout(
        title=dict(text=describe(settings), x=0, xanchor="left", xref="paper"), margin=dict(t=70)
    )
    return fig


def summary_table(recordings: Sequence[Recording]) -> str:
    """Decay rate and half-life per model as aligned text."""
    rows = [("model", "decades/step", "half-life", "log10 ||dL/dh_0||")]
    for row in flow_summary(list(recordings)).itertuples():
        rate = row.decades_per_step
        if not math.isfinite(rate) or abs(rate) < 1e-9:
            half = "no decay"
        elif rate > 0:
            half = f"{row.half_life_steps:.3g} steps"
        else:
            half = f"doubles every {math.log10(2) / -rate:.3g} steps"
        rows.append((row.model, f"{rate:.4g}", half, f"{row.log10_grad_h_at_t0:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)])
        for r in rows
    ]
    return "\n".join(lines)


def write_outputs(
    args: argparse.Namespace, recordings: list[Recording], settings: RunSettings, progress: Progress
) -> list[str]:
    written = []
    if args.out is not None:
        progress.step(f"writing {args.out}")
        frame = tidy_frame(recordings, per_unit=not args.norms_only)
        if args.out.suffix.lower() == ".parquet":
            frame.to_parquet(args.out, index=False)
        else:
            frame.to_csv(args.out, index=False)
        written.append(f"{args.out} ({len(frame):,} rows)")
    if args.html is not None or args.png is not None:
        fig = chart(recordings, settings)
        if args.html is not None:
            progress.step(f"writing {args.html}")
            fig.write_html(args.html, include_plotlyjs=True, full_html=True)
            written.append(str(args.html))
        if args.png is not None:
            progress.step(f"writing {args.png}")
            try:
                fig.write_image(args.png, **PNG_SIZE)
            except Exception as exc:  # kaleido raises several types when no browser can start
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise OSError(
                    f"PNG export failed ({reason}); kaleido needs Chrome or Chromium: "
                    "apt-get install chromium, or point BROWSER_PATH to the browser"
                ) from exc
            written.append(str(args.png))
    return written


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line; returns the exit status."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    progress = None
    try:
        args = build_parser().parse_args(argv)
        settings = settings_from(args)
        check_outputs(args)
        archs = list(dict.fromkeys(args.arch))  # keep order, drop repeats
        steps = len(archs) + (args.out is not None) + (args.html is not None) + (args.png is not None)
        max_bytes = int(args.max_memory_gb * 1024**3)
        x, models = prepare(settings, archs, args.t_max, max_bytes)
        progress = Progress(steps, stderr, quiet=args.quiet)
        recordings = record_all(settings, x, models, args.t_max, max_bytes, progress)
        written = write_outputs(args, recordings, settings, progress)
        progress.close()
    except (UsageError, ValueError, OSError, KeyboardInterrupt) as exc:
        if progress is not None and progress.tty and not progress.quiet:
            stderr.write("\n")  # end the progress line
        if isinstance(exc, KeyboardInterrupt):
            print("lstm-viz: interrupted", file=stderr)
            return 130
        print(f"lstm-viz: error: {_one_line(exc)}", file=stderr)
        return 1 if isinstance(exc, OSError) else 2

    print(describe(settings), file=stdout)
    print(summary_table(recordings), file=stdout)
    for item in written:
        print(f"wrote {item}", file=stdout)
    return 0


# The library names its arguments; here the user typed flags.
FLAG_NAMES = {
    "seq_len": "--seq-len",
    "hidden_size": "--hidden-size",
    "input_size": "--input-size",
    "batch_size": "--batch-size",
    "forget_bias": "--forget-bias",
    "spectral_radius": "--spectral-radius",
    "t_max": "--t-max",
    "max_bytes": "--max-memory-gb",
}
_FLAG_PATTERN = re.compile(r"(?<![\w'\"-])(" + "|".join(FLAG_NAMES) + r")\b(?!['\"])")


def _one_line(exc: BaseException) -> str:
    """The error's message on one line; the library's argument names become the flags."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, UsageError):
        return text
    return _FLAG_PATTERN.sub(lambda m: FLAG_NAMES[m.group(1)], text)
