"""Reproduce the adding problem: RNN, LSTM and GRU at T = 50 and T = 100, three seeds each.

Prints one row per run (final test MSE against the 1/6 baseline, the fraction of test
sequences within 0.04 of the target, steps and training wall time) and a summary that
checks the floor: at T = 100 the LSTM gets below MSE 0.01 in every seed within 5 minutes
per run, and the tanh RNN stays above 0.1.

    python benchmarks/reproduce_adding.py                 # the full table (tens of minutes)
    python benchmarks/reproduce_adding.py --lags 50 --seeds 0 --steps 500   # a quick look

Every model is trained from lstm_viz.training.Trainer with the same batches per seed;
progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lstm_viz.training import TrainConfig, Trainer  # noqa: E402

FLOOR_LAG, LSTM_FLOOR, RNN_FLOOR, TIME_LIMIT_S = 100, 0.01, 0.1, 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lags", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--archs", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=1.0, help="max global gradient norm; 0 = no clipping")
    parser.add_argument(
        "--lstm-init", default="forget_bias", help="effective forget bias 1 (Gers et al. 2000)"
    )
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_S, help="seconds of training per run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 busy cores)")
    parser.add_argument("--test-size", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(
        f"# adding problem, torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(
        f"# hidden {args.hidden_size}, batch {args.batch_size}, Adam lr {args.lr:g}, "
        f"clip {args.clip or 'off'}, {args.steps} steps or {args.time_limit:.0f} s per run, "
        f"LSTM init {args.lstm_init}, RNN (tanh) and GRU init default, test set {args.test_size} sequences"
    )
    print("# baseline: always answering 1 (the mean) scores MSE 1/6 = 0.1667\n")
    header = (
        f"{'T':>4} {'model':<18} {'seed':>4} {'steps':>6} {'test MSE':>9} {'MSE/base':>8} "
        f"{'within 0.04':>11} {'train s':>8}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for lag in args.lags:
        for arch in args.archs:
            for seed in args.seeds:
                config = TrainConfig(
                    task="adding",
                    lag=lag,
                    hidden_size=args.hidden_size,
                    archs=(arch,),
                    steps=args.steps,
                    batch_size=args.batch_size,
                    lr=args.lr,
                    clip=args.clip or None,
                    inits={"lstm": args.lstm_init},
                    seed=seed,
                    record_every=500,
                    probe_size=8,
                    test_size=args.test_size,
                )
                trainer = Trainer(config)
                start = time.perf_counter()
                while not trainer.done and trainer.results()[arch].train_seconds < args.time_limit:
                    trainer.advance(100)
                    if trainer.step % 500 == 0:
                        res = trainer.results()[arch]
                        print(
                            f"  T={lag} {arch} seed {seed} step {trainer.step}: "
                            f"test MSE {res.test_loss[-1]:.4f} "
                            f"({time.perf_counter() - start:.0f} s)",
                            file=sys.stderr,
                            flush=True,
                        )
                trainer.finish()
                res = trainer.results()[arch]
                mse, within = float(res.test_loss[-1]), float(res.test_accuracy[-1])
                rows.append((lag, arch, res.label, seed, mse, within, res.train_seconds))
                print(
                    f"{lag:>4} {res.label:<18} {seed:>4} {res.steps_done:>6} {mse:>9.4f} "
                    f"{mse / res.baseline:>8.3f} {within:>11.1%} {res.train_seconds:>8.1f}",
                    flush=True,
                )

    print("\nsummary (over seeds)")
    print(
        f"{'T':>4} {'model':<18} {'median MSE':>10} {'worst MSE':>9} {'mean within 0.04':>16} {'mean s':>7}"
    )
    for lag in args.lags:
        for arch in args.archs:
            sel = [r for r in rows if r[0] == lag and r[1] == arch]
            mses = np.array([r[4] for r in sel])
            print(
                f"{lag:>4} {sel[0][2]:<18} {np.median(mses):>10.4f} {mses.max():>9.4f} "
                f"{np.mean([r[5] for r in sel]):>16.1%} {np.mean([r[6] for r in sel]):>7.1f}"
            )

    lstm = [r for r in rows if r[0] == FLOOR_LAG and r[1] == "lstm"]
    rnn = [r for r in rows if r[0] == FLOOR_LAG and r[1] == "rnn"]
    if lstm and rnn:
        lstm_ok = all(r[4] < LSTM_FLOOR and r[6] <= args.time_limit for r in lstm)
        rnn_ok = all(r[4] > RNN_FLOOR for r in rnn)
        print(
            f"\nfloor at T = {FLOOR_LAG}: LSTM below MSE {LSTM_FLOOR} in every seed within "
            f"{args.time_limit:.0f} s: {'yes' if lstm_ok else 'NO'}; "
            f"tanh RNN above {RNN_FLOOR} in every seed: "
            f"{'yes' if rnn_ok else 'NO'}"
        )


if __name__ == "__main__":
    main()
