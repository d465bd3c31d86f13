"""Write the golden `.nz` files with the shipped default model.

Run only to add a golden file on purpose: every later nnzip must decode the existing ones to the
same bytes, so never regenerate a file that is already committed.

    python tests/golden/make_golden.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from nnzip import codec  # noqa: E402
from nnzip.models import load_model  # noqa: E402


def inputs() -> dict[str, bytes]:
    book = (HERE.parent.parent.parent / "shared" / "data" / "gutenberg" / "pg41.txt").read_bytes()
    return {
        "empty.bin": b"",
        "one-byte.bin": b"A",
        "random-300.bin": np.random.default_rng(20261204).integers(0, 256, 300, dtype=np.uint8).tobytes(),
        # Part of "The Legend of Sleepy Hollow" (Project Gutenberg, public domain).
        "sleepy-hollow-6k.txt": book[20_000:26_000],
    }


def main() -> None:
    model = load_model(None)
    for name, data in inputs().items():
        original = HERE / name
        compressed = HERE / (name + ".nz")
        if compressed.exists():
            print(f"keep {compressed.name}: golden files are never rewritten")
            continue
        original.write_bytes(data)
        compressed.write_bytes(codec.compress(data, model))
        print(f"wrote {compressed.name}: {len(data)} -> {compressed.stat().st_size} bytes")


if __name__ == "__main__":
    main()
