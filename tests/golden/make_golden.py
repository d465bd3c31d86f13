"""Write the golden `.nz` files with the shipped models: NAME.nz with the first default model,
NAME.TAG.nz with each later shipped model (the MODELS table), and mixed.bin.members.nz, a
file of three members (model-coded, stored raw, stored zstd) in format version 2.

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

import zstandard  # noqa: E402

from nnzip import codec  # noqa: E402
from nnzip.container import FLAG_STORED_RAW, FLAG_STORED_ZSTD, pack_stored  # noqa: E402
from nnzip.models import DEFAULT_MODEL, FAST_MODEL, INDEX_MODEL, load_model  # noqa: E402

# Suffix of each shipped model's golden files, and the inputs it codes (None: all). A model
# joins the table when it ships, because the files of a model are written once.
MODELS = {
    "nnzip-small-v1.safetensors": (".nz", ["empty.bin", "one-byte.bin", "random-300.bin", "sleepy-hollow-6k.txt"]),
    "nnzip-fast-v1.safetensors": (".fast.nz", ["random-300.bin", "sleepy-hollow-6k.txt"]),
    FAST_MODEL: (".fast-v2.nz", ["random-300.bin", "sleepy-hollow-6k.txt"]),
    "nnzip-small-v2.safetensors": (".small-v2.nz", ["empty.bin", "one-byte.bin", "random-300.bin", "sleepy-hollow-6k.txt"]),
    DEFAULT_MODEL: (".small-v3.nz", ["empty.bin", "one-byte.bin", "random-300.bin", "sleepy-hollow-6k.txt", "repeat-8k.bin"]),
    INDEX_MODEL: (".small-index-v1.nz", ["one-byte.bin", "sleepy-hollow-6k.txt", "repeat-8k.bin", "enwik8-6k.xml"]),
}
MEMBERS_FILE = "mixed.bin.members.nz"


def inputs() -> dict[str, bytes]:
    book = (HERE.parent.parent.parent / "shared" / "data" / "gutenberg" / "pg41.txt").read_bytes()
    return {
        "empty.bin": b"",
        "one-byte.bin": b"A",
        "random-300.bin": np.random.default_rng(20261204).integers(0, 256, 300, dtype=np.uint8).tobytes(),
        # Part of "The Legend of Sleepy Hollow" (Project Gutenberg, public domain).
        "sleepy-hollow-6k.txt": book[20_000:26_000],
        # 4096 random bytes twice and 100 more: with own-history retrieval the second stream is
        # predicted from the first, which is coded at the same positions just before it.
        "repeat-8k.bin": repeat_8k(),
        # Wikipedia XML from the validation part of enwik8-head, which the index model codes
        # with matches in its index.
        "enwik8-6k.xml": (HERE.parent.parent.parent / "shared" / "data" / "enwik8-head").read_bytes()[3_300_000:3_306_000],
    }


def repeat_8k() -> bytes:
    block = np.random.default_rng(20261205).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return block + block + block[:100]


def write_members_file(data: dict[str, bytes]) -> None:
    """Write mixed.bin and its members file: text coded by the fast model, then random bytes
    stored raw, then a repeated string stored as a zstd frame."""
    if (HERE / MEMBERS_FILE).exists():
        print(f"keep {MEMBERS_FILE}: golden files are never rewritten")
        return
    text, random, repeated = data["sleepy-hollow-6k.txt"][:3000], data["random-300.bin"], b"abc" * 1000
    blob = codec.compress(text, load_model(FAST_MODEL))
    blob += pack_stored(random, FLAG_STORED_RAW)
    blob += pack_stored(repeated, FLAG_STORED_ZSTD, zstandard.ZstdCompressor(level=19).compress(repeated))
    (HERE / "mixed.bin").write_bytes(text + random + repeated)
    (HERE / MEMBERS_FILE).write_bytes(blob)
    print(f"wrote {MEMBERS_FILE}: {len(text + random + repeated)} -> {len(blob)} bytes")


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
    write_members_file(inputs())


if __name__ == "__main__":
    main()
