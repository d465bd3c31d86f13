"""Write the bad-input corpus: damaged `.nz` files and the one-line error each must give.

Run from the repository root: python tests/bad-inputs/make_bad_inputs.py

Each case is NAME.nz beside cases.json, which maps the name to the exit code and the start of
the error message that `nnzip -t NAME.nz` must print. The base file is a model-coded member
of 400 bytes of text, coded with the shipped fast model, so the cases need no test model.
Truncations at every length and every single-bit flip are generated in the tests themselves.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import zstandard

from nnzip import codec
from nnzip.container import FLAG_STORED_RAW, FLAG_STORED_ZSTD, pack_stored
from nnzip.models import FAST_MODEL, load_model

HERE = Path(__file__).resolve().parent
TEXT = (HERE.parent / "golden" / "sleepy-hollow-6k.txt").read_bytes()[:400]


def with_header_crc(data: bytes, stream_count: int) -> bytes:
    """Recompute the header CRC of a member whose header was edited."""
    table_end = 40 + 16 * stream_count
    return data[:table_end] + struct.pack("<I", zlib.crc32(data[:table_end])) + data[table_end + 4 :]


def cases(base: bytes) -> dict[str, tuple[bytes, int, str]]:
    streams = struct.unpack_from("<I", base, 36)[0]

    future = bytearray(base)
    future[4] = 9
    absurd = bytearray(base)
    struct.pack_into("<Q", absurd, 24, 2**63)
    absurd_stream = bytearray(base)
    struct.pack_into("<Q", absurd_stream, 40, 2**62)
    other_model = bytearray(base)
    other_model[8:24] = bytes(range(16))
    bad_crc = bytearray(base)
    struct.pack_into("<I", bad_crc, 32, zlib.crc32(TEXT) ^ 1)
    stored = bytearray(pack_stored(TEXT, FLAG_STORED_RAW))
    stored[-1] ^= 0x20
    bomb_payload = zstandard.ZstdCompressor().compress(b"\0" * 100_000)
    bomb = bytearray(pack_stored(b"\0" * 1000, FLAG_STORED_ZSTD, bomb_payload))

    return {
        "wrong-magic": (b"GZIP" + base[4:], 1, "not an nnzip file: magic"),
        "future-version": (bytes(future), 1, "format version 9 is newer"),
        "absurd-length": (with_header_crc(bytes(absurd), streams), 1, "stream original lengths sum to"),
        "absurd-stream-length": (with_header_crc(bytes(absurd_stream), streams), 1, "stream 0 claims"),
        "unknown-model": (with_header_crc(bytes(other_model), streams), 1, "file was compressed with model 000102"),
        "checksum": (with_header_crc(bytes(bad_crc), streams), 1, "checksum mismatch"),
        "header-bit-flip": (base[:30] + bytes([base[30] ^ 4]) + base[31:], 1, "header CRC32 mismatch"),
        "stored-corrupt": (bytes(stored), 1, "checksum mismatch"),
        "zstd-longer-than-header": (bytes(bomb), 1, "zstd stored member"),
        "trailing-garbage": (base + b"PK\x03\x04", 1, f"trailing garbage at byte {len(base)}"),
        "second-member-truncated": (base + base[:50], 1, f"member at byte {len(base)}: truncated"),
        "empty": (b"", 1, "empty file"),
        "short": (b"NNZ", 1, "truncated header: 3 bytes"),
    }


def main() -> None:
    model = load_model(FAST_MODEL)
    base = codec.compress(TEXT, model)
    assert codec.decompress(base, model) == TEXT
    (HERE / "base.nz").write_bytes(base)
    expected = {}
    for name, (data, code, message) in cases(base).items():
        (HERE / f"{name}.nz").write_bytes(data)
        expected[name] = {"exit": code, "error": message}
    (HERE / "cases.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote base.nz ({len(base)} bytes) and {len(expected)} cases to {HERE}")


if __name__ == "__main__":
    main()
