"""connectivity() at T = 1000, H = 128, B = 1 (issue 8's floor: <= 3 s) for the RNN and the LSTM.

Prints, per model, the median time of a bare fused fwd+bwd (nn.RNN / nn.LSTM, one loss on the last
output), of one record() and of one connectivity(), measured one after the other in this process,
the ratios of connectivity() to both, and the load average at the start and end (the machine is
shared: read the times next to it).
Run: python benchmarks/bench_connectivity.py [--repeats N] [--seq-len T] [--deep]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_record import median_seconds  # noqa: E402  (this folder is on sys.path)

import lstm_viz  # noqa: E402

HIDDEN_SIZE, BATCH_SIZE, INPUT_SIZE = 128, 1, 8
FLOOR_SECONDS = 3.0


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def measure(arch: str, seq_len: int, repeats: int, num_layers: int = 1, bidirectional: bool = False):
    """Median seconds of (bare fused fwd+bwd, record(), connectivity()) for one model."""
    model = lstm_viz.build_model(
        arch, INPUT_SIZE, HIDDEN_SIZE, seed=0, num_layers=num_layers, bidirectional=bidirectional
    )
    x = lstm_viz.make_input("gaussian", BATCH_SIZE, seq_len, INPUT_SIZE, seed=0)
    fused = model.fused()

    def bare():
        out, _ = fused(x.clone().requires_grad_(True))
        out[:, -1].sum().backward()

    return (
        median_seconds(bare, repeats),
        median_seconds(lambda: lstm_viz.record(model, x), repeats),
        median_seconds(lambda: lstm_viz.connectivity(model, x), repeats, warm_up=num_layers == 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seq-len", type=int, default=1000)
    parser.add_argument(
        "--deep", action="store_true", help="also a 2-layer bidirectional LSTM (slow: ~1 min)"
    )
    args = parser.parse_args()
    T = args.seq_len
    print(f"torch {torch.__version__}; float32, input_size {INPUT_SIZE}; load average {load()}")
    print(
        f"{'model':10} {'T':>5} {'H':>4} {'B':>2} {'bare fwd+bwd':>13} {'record()':>9} "
        f"{'connectivity()':>15} {'/ bare':>7} {'/ record':>9}"
    )
    runs = [("rnn", 1, False), ("lstm", 1, False)] + ([("lstm", 2, True)] if args.deep else [])
    for arch, layers, bidirectional in runs:
        repeats = args.repeats if layers == 1 else 1
        t_bare, t_record, t_conn = measure(arch, T, repeats, layers, bidirectional)
        verdict = "ok" if t_conn <= FLOOR_SECONDS else f"over the {FLOOR_SECONDS:g} s floor"
        if layers > 1:
            verdict = f"{layers} layers x 2 directions (the floor is for one layer)"
        name = arch if layers == 1 else f"{arch} {layers}x2"
        print(
            f"{name:10} {T:>5} {HIDDEN_SIZE:>4} {BATCH_SIZE:>2} {t_bare * 1e3:>10.1f} ms "
            f"{t_record * 1e3:>6.1f} ms {t_conn:>13.2f} s {t_conn / t_bare:>6.0f}x "
            f"{t_conn / t_record:>8.0f}x  {verdict}"
        )
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
