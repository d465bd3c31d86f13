"""Training data: byte corpora, the fixed enwik8-head split, and random training windows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from nnzip.config import BOS
from nnzip.datasets import load_split
from nnzip.errors import NNZipError


def find_shared_data() -> Path | None:
    """Return the `shared/data` folder beside or inside the checkout, if there is one."""
    root = Path(__file__).resolve().parent.parent
    for candidate in (root.parent / "shared" / "data", root / "shared" / "data"):
        if (candidate / "enwik8-head").is_file():
            return candidate
    return None


def read_bytes(path: Path) -> np.ndarray:
    try:
        return np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    except OSError as err:
        raise NNZipError(f"cannot read training data {path}: {err.strerror}") from err


def enwik8_split(path: Path, split: str) -> np.ndarray:
    """Return the `train` or `validation` bytes of an enwik8 prefix (see nnzip.datasets.SPLITS)."""
    return np.frombuffer(load_split(path, split), dtype=np.uint8)


TRAIN_SLICE = re.compile(r"enwik8-train\[(\d*):(\d*)\]")


def load_corpus(spec: str) -> np.ndarray:
    """Load training bytes from `enwik8-train`, `gutenberg`, a file or a folder of files.

    `enwik8-train` and `gutenberg` read the shared data folder; validation bytes are never
    returned for training. `enwik8-train[START:END]` is a slice of the training part, as in
    Python (either bound may be left out), for example to keep a part of it for an index.
    """
    sliced = TRAIN_SLICE.fullmatch(spec)
    if sliced is None and spec.startswith("enwik8-train["):
        raise NNZipError(f"invalid slice {spec!r}; expected enwik8-train[START:END] with byte offsets, e.g. enwik8-train[1048576:]")
    if sliced:
        start, end = (int(bound) if bound else None for bound in sliced.groups())
        return load_corpus("enwik8-train")[start:end]
    shared = find_shared_data()
    if spec in ("enwik8-train", "gutenberg"):
        if shared is None:
            raise NNZipError(f"corpus {spec!r} needs the shared data folder; pass files instead")
        if spec == "enwik8-train":
            return enwik8_split(shared / "enwik8-head", "train")
        spec = str(shared / "gutenberg")
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".txt")
        return np.concatenate([read_bytes(p) for p in files]) if files else np.zeros(0, np.uint8)
    if not path.exists():
        raise NNZipError(f"training data {spec} not found; expected a file, a folder or enwik8-train")
    return read_bytes(path)


def sample_windows(data: np.ndarray, batch: int, length: int, rng: np.random.Generator,
                   codes: np.ndarray | None = None):
    """Draw `batch` random windows of `length` bytes.

    Returns inputs (batch, length) as int64 ids starting with BOS, and targets (batch, length):
    the model reads BOS and then each byte, exactly as a coding stream that starts from a fresh
    state at an arbitrary offset of a file. With `codes` (the retriever's code of each byte of
    `data`), also returns the codes of the targets as a third array.
    """
    if len(data) < length:
        raise NNZipError(f"training data has {len(data)} bytes; need at least one window of {length}")
    starts = rng.integers(0, len(data) - length + 1, size=batch)
    targets = np.stack([data[s : s + length] for s in starts]).astype(np.int64)
    inputs = np.concatenate([np.full((batch, 1), BOS, np.int64), targets[:, :-1]], axis=1)
    if codes is None:
        return inputs, targets
    return inputs, targets, np.stack([codes[s : s + length] for s in starts])


def validation_windows(data: np.ndarray, count: int, length: int, codes: np.ndarray | None = None):
    """Evenly spaced windows of validation bytes, the same on every call (with their codes, as
    in `sample_windows`)."""
    count = max(1, min(count, len(data) // length))
    starts = np.linspace(0, len(data) - length, count).astype(np.int64)
    targets = np.stack([data[s : s + length] for s in starts]).astype(np.int64)
    inputs = np.concatenate([np.full((count, 1), BOS, np.int64), targets[:, :-1]], axis=1)
    if codes is None:
        return inputs, targets
    return inputs, targets, np.stack([codes[s : s + length] for s in starts])
