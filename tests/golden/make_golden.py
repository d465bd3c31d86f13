"""Write the golden `.nz` files with the shipped models: NAME.nz with the default model,
NAME.fast.nz with the first fast model and NAME.fast-v2.nz with the current one (level 1).

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
from nnzip.models import DEFAULT_MODEL, FAST_MODEL, load_model  # noqa: E402

# Suffix of each shipped model's golden files, and the inputs it codes (None: all).
MODELS = {
    DEFAULT_MODEL: (".nz", None),
    "nnzip-fast-v1.safetensors": (".fast.nz", ["random-300.bin", "sleepy-hollow-6k.txt"]),
    FAST_MODEL: (".fast-v2.nz", ["random-300.bin", "sleepy-hollow-6k.txt"]),
}


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
    for model_name, (suffix, names) in MODELS.items():
        model = load_model(model_name)
        for name, data in inputs().items():
            if names is not None and name not in names:
                continue
            original = HERE / name
            compressed = HERE / (name + suffix)
            if compressed.exists():
                print(f"keep {compressed.name}: golden files are never rewritten")
                continue
            if not original.exists():
                original.write_bytes(data)
            compressed.write_bytes(codec.compress(data, model))
            print(f"wrote {compressed.name}: {len(data)} -> {compressed.stat().st_size} bytes")


if __name__ == "__main__":
    main()
