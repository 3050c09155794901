"""Train the shipped char-level language models and save their weights in lstm_viz/weights/.

RNN, LSTM and GRU, one layer of 128 units each, seed 0, the same 5,000 steps of 32 streams
x 100 characters of the standard-library corpus (lstm_viz.corpus; about 4.6 passes over its
3.5 million training characters), one torch thread. Prints one row per model: parameters,
validation bits per character, the unigram and bigram baselines on the same text, steps and
training wall time. The table goes to stdout (docs/charlm.md holds the one the shipped weights
came from), progress to stderr.

    python benchmarks/train_charlm.py                          # 15 to 30 minutes on 2 cores
    python benchmarks/train_charlm.py --steps 200 --out /tmp/w  # a quick look, elsewhere
    python benchmarks/train_charlm.py --models charlm-lstm-2layer   # a two-layer LSTM (not shipped)

Each model depends only on its own seed and the corpus, not on which others are trained.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lstm_viz.charlm import CharLMConfig, CharLMTrainer  # noqa: E402
from lstm_viz.corpus import load_corpus  # noqa: E402

MODELS = {  # file name (without .pth) -> (arch, layers); the first three are shipped
    "charlm-rnn": ("rnn", 1),
    "charlm-lstm": ("lstm", 1),
    "charlm-gru": ("gru", 1),
    "charlm-lstm-2layer": ("lstm", 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS)[:3], choices=list(MODELS))
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 busy cores)")
    parser.add_argument("--out", type=Path, default=ROOT / "lstm_viz" / "weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus()
    base = CharLMConfig(hidden_size=args.hidden_size, steps=args.steps, seed=args.seed)

    print(
        f"# char-level LMs on the stdlib corpus of Python {corpus.python_version}: "
        f"{len(corpus.train):,} training and {len(corpus.validation):,} validation characters"
    )
    print(
        f"# torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; seed {args.seed}, {args.steps} steps of "
        f"{base.batch_size} x {base.chunk_len} characters, Adam lr {base.lr:g}, clip {base.clip}"
    )
    print("| model | params | validation bits/char | unigram | bigram | steps | train time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        arch, layers = MODELS[name]
        config = CharLMConfig(**{**base.__dict__, "arch": arch, "num_layers": layers})
        trainer = CharLMTrainer(config, corpus.train, corpus.validation)
        while not trainer.done:
            trainer.advance(250)
            print(
                f"{name}: step {trainer.step}/{config.steps}, train {trainer.history.loss[-1]:.3f} "
                f"bits/char, {trainer.history.seconds:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        bits = trainer.validation_bits()
        baselines = trainer.baselines()
        params = sum(p.numel() for p in trainer.model.parameters())
        label = f"{arch.upper()} {layers}x{config.hidden_size}"
        checkpoint = trainer.checkpoint(
            name=label, params=params, validation_bits=bits, unigram_bits=baselines["unigram"],
            bigram_bits=baselines["bigram"],
        )  # fmt: skip
        torch.save(checkpoint, args.out / f"{name}.pth")
        print(
            f"| {label} | {params:,} | {bits:.3f} | {baselines['unigram']:.3f} | "
            f"{baselines['bigram']:.3f} | {trainer.step:,} | {trainer.history.seconds / 60:.1f} min |",
            flush=True,
        )


if __name__ == "__main__":
    main()
