"""record() against what a user would otherwise run: a bare nn.LSTM / nn.RNN forward + backward.

Prints, per configuration, the median time of each and their ratio, measured in the
same process one after the other; then the peak memory of one record() of the largest
case, in a fresh process, next to record()'s own estimate.
Run: python benchmarks/bench_record.py [--repeats N] [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lstm_viz  # noqa: E402
from lstm_viz.record import SPLIT_BATCH  # noqa: E402

CONFIGS = [  # (arch, seq_len, hidden_size, batch_size, num_layers, bidirectional)
    ("lstm", 1000, 128, 1, 1, False),
    ("rnn", 1000, 128, 1, 1, False),
    ("lstm", 1000, 128, 32, 1, False),
    ("rnn", 1000, 128, 32, 1, False),
    ("lstm", 1000, 128, 1, 2, True),
    ("lstm", 10_000, 512, 1, 1, False),
    ("rnn", 10_000, 512, 1, 1, False),
]
INPUT_SIZE = 8


def median_seconds(fn, repeats: int, warm_up: bool = True) -> float:
    """Median wall seconds of repeats calls of fn (after one warm-up call: first-call allocations,
    numba's cache, kernel selection)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only the T = 1000 configurations")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for the bare run (default: torch's own)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}; bare run on {torch.get_num_threads()} threads, record() on 1 "
        f"(two halves on two threads for B >= {SPLIT_BATCH}); "
        f"float32, input_size {INPUT_SIZE}"
    )
    header = f"{'arch':5} {'T':>6} {'H':>4} {'B':>3} {'L x D':>5}"
    print(f"{header} {'bare fwd+bwd':>13} {'record()':>10} {'ratio':>6}")
    for arch, seq_len, hidden, batch, layers, bidirectional in CONFIGS:
        if args.quick and seq_len > 1000:
            continue
        model = lstm_viz.build_model(
            arch, INPUT_SIZE, hidden, seed=0, num_layers=layers, bidirectional=bidirectional
        )
        x = lstm_viz.make_input("gaussian", batch, seq_len, INPUT_SIZE, seed=0)
        bare = model.fused()
        xg = x.clone().requires_grad_(True)

        def run_bare(bare=bare, xg=xg, hidden=hidden):
            bare.zero_grad(set_to_none=True)
            out, _ = bare(xg)  # a loss on the last step of every direction, as record()'s default
            (out[:, -1, :hidden].sum() + out[:, 0, hidden:].sum()).backward()

        repeats = args.repeats if seq_len <= 1000 else max(1, args.repeats // 2)
        t_bare = median_seconds(run_bare, repeats)
        t_rec = median_seconds(lambda model=model, x=x: lstm_viz.record(model, x), repeats)
        shape = f"{arch:5} {seq_len:>6} {hidden:>4} {batch:>3} {f'{layers}x{1 + bidirectional}':>5}"
        print(f"{shape} {t_bare * 1e3:>10.1f} ms {t_rec * 1e3:>7.1f} ms {t_rec / t_bare:>5.2f}x")
    print(own_peak_memory())


def own_peak_memory(arch: str = "lstm", seq_len: int = 10_000, hidden: int = 512) -> str:
    """record()'s own peak memory for the largest case, measured in a fresh process."""
    # VmHWM, the peak resident size of this process image (Linux): ru_maxrss would carry
    # over the benchmark's own peak into the child.
    code = (
        "import lstm_viz\n"
        "def peak(): return int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
        f"m = lstm_viz.build_model('{arch}', {INPUT_SIZE}, {hidden})\n"
        f"x = lstm_viz.make_input('gaussian', 1, {seq_len}, {INPUT_SIZE})\n"
        "lstm_viz.record(m, x[:, :20])\n"  # compiled kernels loaded first
        "before = peak()\n"
        "lstm_viz.record(m, x)\n"
        "print((peak() - before) / 1024)\n"
    )
    root = Path(__file__).resolve().parents[1]
    used = float(subprocess.check_output([sys.executable, "-c", code], cwd=root, text=True))
    estimate = lstm_viz.estimate_bytes(arch, 1, seq_len, hidden, INPUT_SIZE) / 2**20
    return (
        f"peak memory of one record() ({arch}, T = {seq_len}, H = {hidden}, B = 1): {used:.0f} MiB "
        f"above the process before it; estimate_bytes: {estimate:.0f} MiB"
    )


if __name__ == "__main__":
    main()
