"""Sweeps: one measured row per (architecture, settings, seed) over a grid, run on Ray.

`grid` expands per-setting value lists into cells; `measure` runs one cell (record, decay fit,
top Lyapunov exponent, keep-gate saturation) and never raises; `sweep` runs cells as Ray tasks
(a local Ray on every core, or a cluster at `address`), checks each cell's memory before it is
scheduled, and writes the rows to Parquet as they finish, so a stopped sweep resumes where it
left off. `main` is `python -m lstm_viz sweep`. Ray is imported only inside the functions that
run it, so `import lstm_viz` stays fast.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import KEEP_GATE, decay_fit, gate_stats
from .models import ARCHS
from .record import DEFAULT_MAX_BYTES, estimate_bytes, record
from .settings import BY_NAME, SETTINGS, Settings, check_memory, complete, for_archs, model_and_input

KEYS = ("arch", *(s.name for s in SETTINGS))  # what makes a cell; seed is one of the settings
RESULTS = {  # column -> what it holds
    "decades_per_step": "slope of log10 ||dL/dh_t|| per step back (> 0: vanishing)",
    "half_life": "steps back for the gradient to halve (inf: it does not shrink)",
    "lyapunov": "top Lyapunov exponent of the backward dynamics, decades per step (< 0: shrinking)",
    "log10_grad_h0": "log10 ||dL/dh_0||, median over the batch",
    "keep_frac_below": "share of keep-gate values < 0.1 (LSTM forget, GRU update; NaN for the RNN)",
    "keep_frac_above": "share of keep-gate values > 0.9 (NaN for the RNN)",
    "error": "None, or why the cell failed",
    "elapsed_s": "seconds the cell took",
}
COLUMNS = (*KEYS, *RESULTS)
WORKER_BYTES = 512 * 2**20  # a worker's own interpreter, torch and numba, declared on top of the run


def grid(
    archs: Sequence[str], axes: Mapping[str, Sequence], base: Mapping[str, object] | None = None
) -> list:
    """Cells [(arch, Settings)] of every combination of the axes' values, per architecture.

    axes maps setting names to the values to sweep; base fixes the others (default: the defaults).
    A setting that does not act on a cell (another architecture's, or one its init ignores, such
    as forget_bias without lstm_init=forget_bias) stays at its base value there, so it does not
    multiply that architecture's cells. ValueError if a swept setting acts on no cell at all.
    """
    unknown = sorted(set(axes) - set(BY_NAME))
    if unknown or not archs or set(archs) - set(ARCHS):
        raise ValueError(
            f"unknown settings {unknown} or architectures {list(archs)}; known: {', '.join(ARCHS)}"
        )
    axes = {name: [BY_NAME[name].check(v) for v in values] for name, values in axes.items()}
    base = dict(base or {})
    fixed = complete(base)
    cells, used = {}, set()
    for arch in dict.fromkeys(archs):
        own = {n: v for n, v in axes.items() if BY_NAME[n].arch in (None, arch)}
        for combo in itertools.product(*own.values()):
            given = base | dict(zip(own, combo, strict=True))
            values = complete(given)
            relevant = for_archs(values, [arch])
            for s in SETTINGS:
                if s.arch not in (None, arch) or not s.applies(relevant):
                    values[s.name] = fixed[s.name]
                elif s.name in own:
                    used.add(s.name)
            cells[(arch, *values.values())] = (arch, Settings(**values))
    idle = [BY_NAME[n] for n in axes if n not in used]
    if idle:
        raise ValueError(
            f"{idle[0].flag} acts on no cell of this sweep: it applies only with {idle[0].requirement()}"
        )
    return list(cells.values())


def enabling(base: Mapping[str, object], names: Iterable[str], arch: str) -> dict[str, object]:
    """The settings to change in base so that each named setting acts on arch: e.g. spectral_radius
    needs rnn_init orthogonal (its first allowed value), t_max on the GRU needs gru_init chrono."""
    changes = {}
    for name in names:
        s = BY_NAME[name]
        values = complete({**base, **changes})
        if s.when and not s.applies(for_archs(values, [arch])):
            key, allowed = next((k, v) for k, v in s.when.items() if BY_NAME[k].arch in (None, arch))
            changes[key] = allowed[0]
    return changes


def axes_for(arch: str) -> list[str]:
    """The numeric settings that can act on arch (under some init): the axes a phase diagram offers."""
    return [
        s.name
        for s in SETTINGS
        if s.type in (int, float)
        and s.name != "seed"
        and s.arch in (None, arch)
        and (not s.when or any(BY_NAME[k].arch in (None, arch) for k in s.when))
    ]


def command_line(
    archs: Sequence[str], axes: Mapping[str, Sequence], base: Mapping[str, object] | None = None
) -> str:
    """The `python -m lstm_viz sweep` command that runs grid(archs, axes, base), writing grid.parquet."""
    fixed = complete(base or {})
    relevant = for_archs(fixed, archs)
    parts = ["python -m lstm_viz sweep --arch", *archs]
    for s in SETTINGS:
        if s.name == "seed" and list(axes.get("seed", ())) == list(range(len(axes.get("seed", ())))):
            parts.append(f"--seeds {len(axes['seed'])}")
        elif s.name in axes:
            parts += [s.flag, *(f"{v:g}" if isinstance(v, float) else str(v) for v in axes[s.name])]
        elif fixed[s.name] != s.default and s.arch in (None, *archs) and s.applies(relevant):
            parts += [s.flag, f"{fixed[s.name]:g}" if s.type is float else str(fixed[s.name])]
    return " ".join([*parts, "--out grid.parquet"])


def parse_values(name: str, text: str) -> list:
    """Values of setting name typed as text, separated by spaces or commas, each checked."""
    values = [BY_NAME[name].parse(raw) for raw in text.replace(",", " ").split()]
    if not values:
        raise ValueError(f"give at least one {name} value, separated by spaces")
    return list(dict.fromkeys(values))


def _depth(settings: Settings) -> dict:
    """Layers and directions (settings without them: one of each)."""
    layers, both = getattr(settings, "num_layers", 1), getattr(settings, "bidirectional", False)
    return {"num_layers": layers, "num_directions": 2 if both else 1}


def task_bytes(arch: str, settings: Settings) -> int:
    """Memory a cell's task declares to the scheduler: the float32 recording, room for record()'s
    float64 re-run, and the worker itself."""
    s = settings
    need = estimate_bytes(arch, s.batch_size, s.seq_len, s.hidden_size, s.input_size, **_depth(s))
    return 2 * need + WORKER_BYTES


def failed(message: str, elapsed_s: float = 0.0) -> dict:
    """The results of a cell that did not run."""
    return {name: math.nan for name in RESULTS} | {"error": message, "elapsed_s": elapsed_s}


def measure(arch: str, settings: Settings, max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """The results of one cell (RESULTS' columns); never raises: a failure is the row's error."""
    from .theory import lyapunov_exponents  # theory is heavier than the rest; only cells need it

    start = time.perf_counter()
    try:
        check_memory(settings, [arch], max_bytes, can_raise=True)
        model, x = model_and_input(settings, arch)
        rec = record(model, x, max_bytes=max_bytes, label=settings.label(arch), meta=asdict(settings))
        fit = decay_fit(rec)
        row = {
            "decades_per_step": fit.decades_per_step,
            "half_life": fit.half_life,
            "log10_grad_h0": float(np.median(rec.log10_grad_h[:, 0])),
            "keep_frac_below": math.nan,
            "keep_frac_above": math.nan,
        }
        if arch in KEEP_GATE:
            stats = gate_stats(rec)
            row.update(
                keep_frac_below=float(stats.frac_below.mean()), keep_frac_above=float(stats.frac_above.mean())
            )
        del rec  # the Lyapunov pass keeps its own float64 forward state
        row["lyapunov"] = math.nan  # defined here for one layer, one direction, two steps or more
        if settings.seq_len >= 2 and _depth(settings) == {"num_layers": 1, "num_directions": 1}:
            row["lyapunov"] = float(lyapunov_exponents(model, x, 1)[0])
    except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the sweep
        return failed(f"{type(exc).__name__}: {' '.join(str(exc).split())}", time.perf_counter() - start)
    return {name: row.get(name) for name in RESULTS} | {
        "error": None,
        "elapsed_s": time.perf_counter() - start,
    }


def cell_key(arch: str, settings: Settings) -> tuple:
    return (arch, *asdict(settings).values())


def read(path: Path) -> pd.DataFrame:
    """A sweep file's rows; settings added since it was written take their defaults.
    ValueError if the file is not a sweep's."""
    frame = pd.read_parquet(path)
    missing = [c for c in ("arch", *RESULTS) if c not in frame]
    if missing:
        raise ValueError(f"{path} is not a sweep's output (no column {missing[0]!r}): choose another --out")
    for s in SETTINGS:
        if s.name not in frame:
            frame[s.name] = s.default
    return frame[list(COLUMNS)]


def frame_of(rows: Sequence[dict]) -> pd.DataFrame:
    """Rows (KEYS and RESULTS) as a frame with a fixed column order and types."""
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for s in SETTINGS:
        frame[s.name] = frame[s.name].astype(
            {int: "int64", float: "float64", str: "object", bool: "bool"}[s.type]
        )
    frame["error"] = frame["error"].astype("object").where(frame["error"].notna(), None)
    return frame


def write(frame: pd.DataFrame, path: Path) -> None:
    """Write atomically: a reader (or a crash) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def start_ray(address: str | None = None) -> bool:
    """Connect to Ray: the cluster at address, else a new local one on every core. Returns whether
    this call started it (and so should shut it down); an initialised Ray is used as it is."""
    import logging

    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing to report to; no network needed
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        import lstm_viz  # shipped to the cluster's workers, which need only the requirements

        try:
            ray.init(address=address, runtime_env={"py_modules": [lstm_viz]}, **quiet)
        except ConnectionError as err:
            raise ConnectionError(
                f"{err}: is `ray start --head` running there? Ray clusters use token authentication: "
                "set RAY_AUTH_MODE=token here and give this machine the cluster's token "
                "(~/.ray/auth_token, or RAY_AUTH_TOKEN); see docs/sweeps.md"
            ) from None
    else:
        # "local": a new Ray of our own, even where `ray start` left a cluster that ray.init() would join
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
    return True


def sweep(
    cells: Sequence[tuple[str, Settings]],
    out: Path | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    address: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
    write_every_s: float = 2.0,
) -> tuple[pd.DataFrame, int]:
    """Run cells as Ray tasks (one CPU each); returns (every row of out after the run, cells skipped).

    Cells whose row in out has no error are skipped; failed ones run again and replace their row.
    A cell over max_bytes, or needing more memory than any Ray node has, is recorded as failed
    without being scheduled. on_start(n) is called with the number of cells to run before Ray
    starts, on_row(row) as each cell finishes; out is rewritten
    (atomically) at most every write_every_s seconds and at the end, also when interrupted.
    """
    old = read(out) if out is not None and out.exists() else frame_of([])
    ok = old[old["error"].isna()]
    done_keys = set(map(tuple, ok[list(KEYS)].itertuples(index=False)))
    todo = [(a, s) for a, s in cells if cell_key(a, s) not in done_keys]
    todo_keys = {cell_key(a, s) for a, s in todo}
    kept = old[[tuple(r) not in todo_keys for r in old[list(KEYS)].itertuples(index=False)]]
    rows: list[dict] = []
    last = [time.monotonic()]

    def finish(arch: str, settings: Settings, results: dict) -> None:
        row = {"arch": arch, **asdict(settings), **results}
        rows.append(row)
        if on_row is not None:
            on_row(row)
        if out is not None and time.monotonic() - last[0] >= write_every_s:
            write(pd.concat([kept, frame_of(rows)], ignore_index=True), out)
            last[0] = time.monotonic()

    finished = False
    if on_start is not None:
        on_start(len(todo))
    try:
        if todo:
            _run_on_ray(todo, max_bytes, address, finish)
        finished = True
    finally:
        frame = pd.concat([kept, frame_of(rows)], ignore_index=True) if len(kept) else frame_of(rows)
        if out is not None and (rows or (finished and not out.exists())):
            write(frame, out)  # also when interrupted: the finished cells are kept
    return frame, len(cells) - len(todo)


def _run_on_ray(todo, max_bytes: int, address: str | None, finish) -> None:
    """Run the cells that pass the memory check as Ray tasks; finish(arch, settings, results) each.
    A Ray started here is shut down at the end, also when interrupted."""
    fitting = []
    for arch, settings in todo:
        try:
            check_memory(settings, [arch], max_bytes, can_raise=True)
            fitting.append((arch, settings))
        except ValueError as err:
            finish(arch, settings, failed(f"ValueError: {' '.join(str(err).split())}"))
    if not fitting:
        return  # nothing to schedule: no Ray needed
    import ray

    started = start_ray(address)
    try:
        _schedule(ray, fitting, max_bytes, finish)
    finally:
        if started:
            ray.shutdown()


def _schedule(ray, fitting, max_bytes: int, finish) -> None:
    """Submit each cell as a task that declares its memory; finish each as it returns."""
    largest = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    task = ray.remote(num_cpus=1, max_retries=0)(measure)
    pending = {}
    for arch, settings in fitting:
        need = task_bytes(arch, settings)
        if need > largest:
            finish(
                arch,
                settings,
                failed(
                    f"ValueError: the task needs about {need / 2**30:.2f} GiB, more than any Ray node offers "
                    f"({largest / 2**30:.2f} GiB): shorten the sequence or shrink the batch or the model"
                ),
            )
            continue
        pending[task.options(memory=need).remote(arch, settings, max_bytes)] = (arch, settings)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            arch, settings = pending.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayError as err:  # the worker died (out of memory, killed)
                results = failed(f"{type(err).__name__}: {' '.join(str(err).split())[:500]}")
            finish(arch, settings, results)


# The command line: python -m lstm_viz sweep


def build_parser():
    """The sweep's flags: the main command's setting flags, each taking one or more values."""
    from .cli import UsageError, _Formatter, _Parser, add_setting_flags

    class Parser(_Parser):
        def error(self, message: str):
            raise UsageError(f"{message} (see python -m lstm_viz sweep --help)")

    parser = Parser(
        prog="python -m lstm_viz sweep",
        description="Measure every combination of the given settings' values, per architecture and\n"
        "seed, on Ray: one row per cell with the decay rate, half-life, top Lyapunov exponent,\n"
        "log10 ||dL/dh_0|| and keep-gate saturation, written to a Parquet file as cells finish.\n"
        "Run it again with the same --out to resume: finished cells are skipped, failed ones retried.",
        epilog="example:\n  python -m lstm_viz sweep --arch rnn --rnn-init orthogonal --seq-len 100 1000 \\\n"
        "      --spectral-radius 0.5 1 1.5 --seeds 3 --out grid.parquet",
        formatter_class=_Formatter,
    )
    parser.add_argument("--arch", nargs="+", choices=ARCHS, default=["rnn", "lstm"], help="models to sweep")
    parser.add_argument("--seeds", type=int, metavar="N", help="seeds 0 .. N-1 (or give --seed values)")
    parser.add_argument(
        "--out", type=Path, metavar="FILE.parquet", required=True, help="rows, also read to resume"
    )
    parser.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="join the Ray cluster there (default: a local Ray on every core)",
    )
    parser.add_argument(
        "--max-memory-gb",
        type=float,
        metavar="GB",
        default=DEFAULT_MAX_BYTES / 1024**3,
        help="a cell whose recording would need more is recorded as failed, not run",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")
    add_setting_flags(parser, many=True)
    return parser


def _describe(row: Mapping, names: Sequence[str]) -> str:
    acting = [n for n in names if BY_NAME[n].arch in (None, row["arch"])]
    what = " ".join([row["arch"].upper(), *(f"{n}={row[n]}" for n in acting)])
    if row["error"] is not None:
        return f"{what}: failed"
    return f"{what}: half-life {row['half_life']:.3g} steps"


def summary(frame: pd.DataFrame, names: Sequence[str], max_rows: int = 60) -> str:
    """Median over seeds of the main results per arch and swept setting, as text."""
    by = ["arch", *(n for n in names if n != "seed")]
    results = ["half_life", "decades_per_step", "lyapunov", "log10_grad_h0", "keep_frac_above"]
    table = frame.groupby(by).agg(
        seeds=("seed", "nunique"),
        failed=("error", lambda e: int(e.notna().sum())),
        **{r: (r, "median") for r in results},
    )
    text = table.head(max_rows).to_string(float_format=lambda v: f"{v:.4g}")
    return text + (f"\n... {len(table) - max_rows} more rows" if len(table) > max_rows else "")


def main(argv: Sequence[str] | None = None, stdout=None, stderr=None) -> int:
    """Run the sweep command; returns the exit status (0 also when some cells failed: they are in
    the file with their error; 2 bad arguments, 1 an output or Ray connection error, 130 interrupted)."""
    import sys

    from .cli import Progress, UsageError, _one_line, max_bytes

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    progress, finished = None, []
    try:
        args = build_parser().parse_args(argv)
        archs = list(dict.fromkeys(args.arch))
        axes = {s.name: list(dict.fromkeys(getattr(args, s.name))) for s in SETTINGS if getattr(args, s.name)}
        if args.seeds is not None:
            if "seed" in axes:
                raise UsageError("give --seeds N or --seed values, not both")
            if args.seeds < 1:
                raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
            axes["seed"] = list(range(args.seeds))
        if args.out.suffix.lower() != ".parquet":
            raise UsageError(f"--out must end in .parquet, got {str(args.out)!r}")
        if not args.out.parent.is_dir():
            raise UsageError(f"--out: folder {str(args.out.parent)!r} does not exist; create it first")
        limit = max_bytes(args)
        cells = grid(archs, axes)
        swept = [n for n, v in axes.items() if len(v) > 1]
        where = (
            f"the Ray cluster at {args.address}" if args.address else f"a local Ray ({os.cpu_count()} CPUs)"
        )
        start = time.perf_counter()

        def on_start(n: int) -> None:
            nonlocal progress
            progress = Progress(max(n, 1), stderr, quiet=args.quiet)
            progress.step(f"starting {where} for {n} cells" if n else "nothing to run")

        frame, skipped = sweep(
            cells,
            args.out,
            max_bytes=limit,
            address=args.address,
            on_start=on_start,
            on_row=lambda row: (progress.step(_describe(row, swept)), finished.append(row)),
        )
        progress.close()
    except (UsageError, ValueError, OSError, KeyboardInterrupt) as exc:
        if progress is not None and progress.tty and not progress.quiet:
            stderr.write("\n")
        if isinstance(exc, KeyboardInterrupt):
            kept = f"the {len(finished)} cells finished are in {args.out}" if finished else "no cell finished"
            print(f"lstm-viz: interrupted; {kept}: the same command resumes", file=stderr)
            return 130
        print(f"lstm-viz: error: {_one_line(exc)}", file=stderr)
        return 1 if isinstance(exc, OSError) else 2

    ours = frame.merge(pd.DataFrame([cell_key(a, s) for a, s in cells], columns=list(KEYS)), on=list(KEYS))
    fails = ours[ours["error"].notna()]
    sizes = ", ".join(f"{n} x{len(v)}" for n, v in axes.items())
    print(f"sweep: {len(cells)} cells (arch {' '.join(archs)}; {sizes})", file=stdout)
    print(
        f"ran {len(cells) - skipped} cells on {where} in {time.perf_counter() - start:.1f} s; "
        f"{skipped} already in {args.out}; {len(fails)} failed",
        file=stdout,
    )
    print("median over seeds:", file=stdout)
    print(summary(ours, swept), file=stdout)
    for row in fails.head(5).itertuples():
        what = _describe(row._asdict(), swept).removesuffix(": failed")
        print(f"failed: {what}: {_one_line(ValueError(row.error))}", file=stdout)
    if len(fails) > 5:
        print(f"... and {len(fails) - 5} more failed cells: see the error column", file=stdout)
    print(f"wrote {args.out} ({len(frame):,} rows)", file=stdout)
    return 0
