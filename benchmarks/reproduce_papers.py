"""Reproduce the Training lab's paper presets (lstm_viz.presets) at a size two busy cores allow.

    le2015         Le, Jaitly & Hinton 2015: tanh RNN vs IRNN vs LSTM, adding problem, T = 150
    arjovsky_T100  Arjovsky, Shah & Bengio 2016: copy memory at T = 100 (and arjovsky_T200)
    tallec2018     Tallec & Ollivier 2018: LSTM chrono init vs forget bias 1, copy memory, T = 200

Prints one row per (preset, model, seed): steps trained, training wall time, the final test
loss against the memoryless baseline (MSE 1/6 for adding, 10 ln 8 / (T + 20) for copy memory)
and the task's accuracy. Far fewer steps, units and seeds than the papers: it shows where each
model stands after a few minutes, not the papers' final numbers.

    python benchmarks/reproduce_papers.py                         # every preset, seed 0 (minutes)
    python benchmarks/reproduce_papers.py --presets le2015 --steps 2000 --seeds 0 1 2

Every preset trains all of its models in one Trainer (same batches, same seed); progress goes
to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lstm_viz.presets import PRESETS  # noqa: E402
from lstm_viz.training import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=1000, help="steps per preset (the page's: 1500-2000)")
    parser.add_argument("--time-limit", type=float, default=75.0, help="wall seconds per preset and seed")
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 busy cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# paper presets, torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"# {args.steps} steps or {args.time_limit:.0f} s per preset and seed, whichever first; seeds "
          f"{' '.join(map(str, args.seeds))}; test set {args.test_size} sequences")  # fmt: skip
    header = (
        f"{'preset':<14} {'T':>4} {'model':<22} {'seed':>4} {'steps':>5} {'train s':>7} "
        f"{'test loss':>9} {'baseline':>8} {'loss/base':>9} {'accuracy':>8}"
    )
    for name in args.presets:
        preset = PRESETS[name]
        c = preset.config
        print(f"\n# {preset.paper}")
        accuracy = "within 0.04 of the target" if c.task == "adding" else "symbols recalled"
        print(f"# {c.task}, T = {c.lag}, hidden {c.hidden_size}, batch {c.batch_size}, Adam lr {c.lr:g}, "
              f"clip {c.clip}; accuracy: {accuracy}")  # fmt: skip
        print(header)
        print("-" * len(header))
        for seed in args.seeds:
            config = preset.scaled(steps=args.steps, seed=seed, test_size=args.test_size, probe_size=8,
                                   record_every=max(args.steps // 4, 1))  # fmt: skip
            trainer, start = Trainer(config), time.perf_counter()
            while not trainer.done and time.perf_counter() - start < args.time_limit:
                trainer.advance(50)
                print(f"  {name} seed {seed} step {trainer.step} ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr, flush=True)  # fmt: skip
            trainer.pause()
            for res in trainer.results().values():
                loss, base = float(res.test_loss[-1]), res.baseline
                print(
                    f"{name:<14} {c.lag:>4} {res.label:<22} {seed:>4} {res.steps_done:>5} "
                    f"{res.train_seconds:>7.1f} {loss:>9.4f} {base:>8.4f} {loss / base:>9.3f} "
                    f"{float(res.test_accuracy[-1]):>8.1%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
