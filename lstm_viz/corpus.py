"""Real text with no download: Python's own standard-library source, its characters, and simple
features of it, plus the unit finder that matches a network's units to those features.

The corpus is a fixed list of files (CORPUS_FILES, about 3.9 MB in CPython 3.11) read at run
time from `sysconfig.get_paths()["stdlib"]`, in the list's order. Each file is split at the
first line break after 90% of its characters: the first part goes to the training text, the
rest to the validation text, so both hold every file's style. The files exist in every
CPython 3.11+ install; their text differs a little between Python versions, so numbers
measured on it carry the version they were measured on.

    corpus = load_corpus()                   # Corpus(train, validation, python_version)
    ids = VOCAB.encode(corpus.validation)     # (T,) int64
    x = VOCAB.one_hot(corpus.validation[:200])  # (1, 200, V) float32
    feats = text_features(text)               # name -> (T,) float32
    best = find_units({"cell": cell_TH}, feats, k=3)  # feature -> top units by |Pearson r|
    best = find_units(recording_activations(record(model, x)), feats)
"""

from __future__ import annotations

import platform
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Sorted by path; present in CPython 3.11 to 3.14 as plain modules (not packages, not wrappers).
CORPUS_FILES: tuple[str, ...] = (
    "_pydecimal.py", "_pyio.py", "argparse.py", "ast.py", "asyncio/base_events.py",
    "asyncio/tasks.py", "base64.py", "bisect.py", "calendar.py", "collections/__init__.py",
    "concurrent/futures/_base.py", "concurrent/futures/process.py", "configparser.py",
    "contextlib.py", "copy.py", "csv.py", "dataclasses.py", "difflib.py", "dis.py", "doctest.py",
    "email/_header_value_parser.py", "email/message.py", "enum.py", "fractions.py", "ftplib.py",
    "functools.py", "gettext.py", "heapq.py", "http/client.py", "http/server.py", "imaplib.py",
    "inspect.py", "ipaddress.py", "json/decoder.py", "json/encoder.py", "locale.py",
    "logging/__init__.py", "logging/handlers.py", "mailbox.py", "multiprocessing/connection.py",
    "optparse.py", "os.py", "pickle.py", "platform.py", "pprint.py", "pydoc.py", "queue.py",
    "random.py", "re/_compiler.py", "re/_parser.py", "selectors.py", "shlex.py", "shutil.py",
    "smtplib.py", "socket.py", "ssl.py", "statistics.py", "subprocess.py", "tarfile.py",
    "tempfile.py", "textwrap.py", "threading.py", "tokenize.py", "traceback.py", "typing.py",
    "unittest/case.py", "unittest/mock.py", "urllib/parse.py", "urllib/request.py", "uuid.py",
    "xml/etree/ElementTree.py",
)  # fmt: skip
VALIDATION_FRACTION = 0.1
UNKNOWN = "\ufffd"  # stands for every character outside the vocabulary
# Tab, newline, printable ASCII, then the fallback: 98 symbols.
DEFAULT_CHARS: tuple[str, ...] = ("\t", "\n", *map(chr, range(32, 127)), UNKNOWN)
FEATURES = ("in_string", "in_comment", "bracket_depth", "line_position", "indentation")


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@dataclass(frozen=True)
class Corpus:
    """Training and validation text from the standard library of the running Python."""

    train: str
    validation: str
    python_version: str  # "3.11.7": the text differs slightly between versions


def split_text(text: str, fraction: float = VALIDATION_FRACTION) -> tuple[str, str]:
    """(head, tail) of one file, cut at the first line break after (1 - fraction) of its characters."""
    cut = int(len(text) * (1 - fraction))
    newline = text.find("\n", cut)
    cut = len(text) if newline < 0 else newline + 1
    return text[:cut], text[cut:]


def load_corpus(files: Sequence[str] = CORPUS_FILES, root: Path | None = None) -> Corpus:
    """Read `files` (paths under the stdlib, in order) and split each into train and validation.
    FileNotFoundError names a missing file (an unusual install that drops parts of the stdlib)."""
    root = stdlib_dir() if root is None else Path(root)
    train, validation = [], []
    for name in files:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(
                f"corpus file {name} is missing under {root}; lstm_viz reads "
                "the Python standard library's source (a full CPython 3.11+ install)"
            )
        head, tail = split_text(path.read_text(encoding="utf-8"))
        train.append(head)
        validation.append(tail)
    return Corpus("".join(train), "".join(validation), platform.python_version())


@dataclass(frozen=True)
class Vocabulary:
    """Characters <-> indices; a character outside `chars` maps to UNKNOWN's index if it is there."""

    chars: tuple[str, ...] = DEFAULT_CHARS

    def __post_init__(self) -> None:
        if not self.chars or any(not isinstance(c, str) or len(c) != 1 for c in self.chars):
            raise ValueError("a vocabulary is a non-empty list of single characters")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("a vocabulary must not list a character twice")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def unknown(self) -> int | None:
        """Index of the fallback for unseen characters (None: this vocabulary has none)."""
        return self._index.get(UNKNOWN)

    def encode(self, text: str) -> np.ndarray:
        """(T,) int64 indices; ValueError for a character it cannot map (no fallback)."""
        index, unknown = self._index, self.unknown
        ids = np.fromiter((index.get(c, -1) for c in text), dtype=np.int64, count=len(text))
        missing = np.flatnonzero(ids < 0)
        if len(missing):
            if unknown is None:
                t = int(missing[0])
                raise ValueError(
                    f"character {text[t]!r} at position {t} is not in the model's vocabulary "
                    f"({len(self)} characters) and the vocabulary has no fallback {UNKNOWN!r}"
                )
            ids[missing] = unknown
        return ids

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def one_hot(self, text: str) -> torch.Tensor:
        """(1, T, V) float32: step t is the one-hot vector of character t."""
        ids = torch.from_numpy(self.encode(text))
        return torch.nn.functional.one_hot(ids, len(self)).to(torch.float32).unsqueeze(0)


VOCAB = Vocabulary()


def text_features(text: str) -> dict[str, np.ndarray]:
    """Per-character features of Python source: name -> (T,) float32, names as in FEATURES.

    A tokenizer-free heuristic, one pass over the characters: quotes open and close strings
    (triple quotes, backslash escapes; a one-quote string also ends at a line break), '#'
    outside a string starts a comment up to the line break, brackets outside strings and
    comments change the depth (an opening bracket and its closing one get the depth inside
    them). Prefixes such as f"" and the braces inside an f-string are not parsed.

      in_string      1 inside a string literal, its quotes included, else 0
      in_comment     1 from '#' to the end of the line, else 0
      bracket_depth  open (, [, { around the character
      line_position  column, counted from 0 after each line break
      indentation    leading spaces of the character's line
    """
    T = len(text)
    in_string = np.zeros(T, np.float32)
    in_comment = np.zeros(T, np.float32)
    depth = np.zeros(T, np.float32)
    column = np.zeros(T, np.float32)
    indent = np.zeros(T, np.float32)
    quote, comment, escaped, level = "", False, False, 0
    t = 0
    while t < T:
        c, start = text[t], t
        if quote:
            in_string[t] = 1
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif text.startswith(quote, t):
                in_string[t : t + len(quote)] = 1
                t += len(quote) - 1
                quote = ""
            elif c == "\n" and len(quote) == 1:
                quote = ""  # an unterminated one-quote string: resynchronise at the line break
        elif comment:
            if c == "\n":
                comment = False
            else:
                in_comment[t] = 1
        elif c == "#":
            comment = True
            in_comment[t] = 1
        elif c in "'\"":
            quote = c * 3 if text.startswith(c * 3, t) else c
            in_string[t : t + len(quote)] = 1
            t += len(quote) - 1
        elif c in "([{":
            level += 1
        elif c in ")]}":
            level = max(level - 1, 0)
            depth[t] = level + 1
        depth[start : t + 1] = np.maximum(depth[start : t + 1], level)
        t += 1
    # Columns and indentation per line, with numpy.
    starts = np.zeros(T, bool)
    if T:
        chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        newline = chars == ord("\n")
        starts[0] = True
        starts[1:] = newline[:-1]
        line = np.cumsum(starts) - 1  # (T,) line number of each character
        first = np.flatnonzero(starts)  # index of each line's first character
        column[:] = np.arange(T) - first[line]
        # leading spaces: the first column at which a non-space appears (or the line's end)
        not_space = (chars != ord(" ")) | newline
        first_other = np.full(len(first), np.iinfo(np.int64).max)
        np.minimum.at(first_other, line[not_space], column[not_space].astype(np.int64))
        ends = np.append(first[1:], T) - first
        indent[:] = np.minimum(first_other, ends)[line]
    return {
        "in_string": in_string,
        "in_comment": in_comment,
        "bracket_depth": depth,
        "line_position": column,
        "indentation": indent,
    }


@dataclass(frozen=True)
class UnitMatch:
    """One unit's agreement with one feature over a passage."""

    feature: str  # a FEATURES name (or the caller's)
    quantity: str  # whose activation: "cell", "hidden", "forget", ...
    unit: int
    r: float  # Pearson correlation over the passage's characters, in [-1, 1]


def pearson(activations: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """(H,) Pearson r between each column of activations (T, H) and feature (T,); 0 where either
    is constant (no correlation can be measured)."""
    a = np.asarray(activations, np.float64)
    f = np.asarray(feature, np.float64)
    if a.ndim != 2 or f.shape != a.shape[:1]:
        raise ValueError(f"activations must be (T, H) and the feature (T,), got {a.shape} and {f.shape}")
    a = a - a.mean(axis=0)
    f = f - f.mean()
    norms = np.sqrt((a * a).sum(axis=0) * (f @ f))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (f @ a) / norms
    return np.where(norms > 1e-12, np.clip(r, -1.0, 1.0), 0.0)


def recording_activations(recording, sample: int = 0) -> dict[str, np.ndarray]:
    """quantity -> (T, H) of one sequence of a one-layer record() result, for find_units:
    "hidden", "cell" (LSTM) and each gate by name ("input", "forget", ... or "reset", "update", ...)."""
    out = {"hidden": recording.hidden[sample]}
    if recording.cell is not None:
        out["cell"] = recording.cell[sample]
    return out | {name: values[sample] for name, values in recording.gates.items()}


def find_units(
    activations: Mapping[str, np.ndarray] | np.ndarray,
    features: Mapping[str, np.ndarray],
    k: int = 3,
) -> dict[str, list[UnitMatch]]:
    """feature -> the k units (over every quantity given) whose activation correlates most with it,
    largest |r| first; r keeps its sign (a unit that is low inside strings tracks them too). Units
    with r = 0 (constant over the passage) are left out, so a feature that does not vary over the
    passage (no string in it) gets an empty list.

    activations: quantity -> (T, H), e.g. {"cell": ..., "hidden": ..., "forget": ...}, or one
    (T, H) array (quantity "hidden"); features: name -> (T,), e.g. text_features(text).
    """
    if isinstance(activations, np.ndarray):
        activations = {"hidden": activations}
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    result = {}
    for name, feature in features.items():
        matches = [
            UnitMatch(name, quantity, unit, float(r))
            for quantity, values in activations.items()
            for unit, r in enumerate(pearson(values, feature))
            if r != 0
        ]
        matches.sort(key=lambda m: -abs(m.r))
        result[name] = matches[:k]
    return result
