"""Members: stored blocks, block framing, concatenated files and hostile member headers."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest

from nnzip.container import (
    FLAG_STORED_RAW,
    FLAG_STORED_ZSTD,
    MAX_STORED_ZSTD_LENGTH,
    NO_MODEL,
    STORED_VERSION,
    pack_stored,
    unpack,
)
from nnzip.engine import load_engine
from nnzip.errors import ChecksumError, InvalidDataError, ModelMismatchError
from nnzip.models import model_for_level
from nnzip.members import compress_stream, decompress_stream, encode_block, read_members


@pytest.fixture(scope="module")
def coder(tiny_model_path):
    return load_engine(tiny_model_path, "auto")


def compress_bytes(data: bytes, coder, block_size: int = 1 << 20) -> bytes:
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, coder, block_size=block_size)
    return out.getvalue()


def decompress_bytes(blob: bytes, coder) -> bytes:
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda model_id: coder)
    return out.getvalue()


def stored_header(flags: int, length: int, size: int, model_id: bytes = NO_MODEL, crc: int = 0) -> bytes:
    """A version 2 member header with a correct header CRC, so each later check is reached."""
    count = 1 if length else 0
    fixed = struct.pack("<4sBBBB16sQII", b"NNZ\x1a", STORED_VERSION, flags, 16, 0, model_id, length, crc, count)
    table = struct.pack("<QQ", length, size) if count else b""
    return fixed + table + struct.pack("<I", zlib.crc32(fixed + table))


@pytest.mark.parametrize("flags", [FLAG_STORED_RAW, FLAG_STORED_ZSTD])
def test_stored_member_round_trips(flags, coder):
    data = b"stored bytes " * 50
    payload = None if flags == FLAG_STORED_RAW else __import__("zstandard").ZstdCompressor().compress(data)
    member = pack_stored(data, flags, payload)

    header, _ = unpack(member)
    assert member[4] == STORED_VERSION
    assert header.flags == flags and header.model_id == NO_MODEL
    assert decompress_bytes(member, coder) == data


def test_random_block_is_stored_raw_within_a_tenth_of_a_percent(coder):
    data = np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8).tobytes()
    member = encode_block(data, coder)
    assert unpack(member)[0].flags == FLAG_STORED_RAW
    assert len(member) <= len(data) * 1.001 + 64


def test_repetitive_block_uses_zstd_when_it_beats_the_model(coder):
    data = os.urandom(5000) * 20
    member = encode_block(data, coder)
    assert unpack(member)[0].flags == FLAG_STORED_ZSTD
    assert len(member) < 6000


class ShortCoder:
    """A coder whose members are always 10 bytes, to check that the smallest candidate wins."""

    id = b"\x07" * 32

    def compress(self, data, progress=None):
        return b"M" * 10


def test_smallest_candidate_wins(corpus):
    assert encode_block(corpus.valid[:20000], ShortCoder()) == b"M" * 10


def test_model_member_when_the_model_is_smaller(corpus):
    # The tiny test model loses to zstd on text; the shipped fast model beats it.
    fast = load_engine(model_for_level(1), "auto")
    member = encode_block(corpus.valid[:20000], fast)
    header, _ = unpack(member)
    assert header.flags == 0 and header.model_id == fast.id[:16]


def test_blocks_round_trip_and_mix_kinds(coder, corpus):
    data = corpus.valid[:8192] + os.urandom(8192) + b"\x00" * 9000
    blob = compress_bytes(data, coder, block_size=8192)
    kinds = [member.header.flags for member in read_members(io.BytesIO(blob))]
    assert len(kinds) == 4 and FLAG_STORED_RAW in kinds
    assert decompress_bytes(blob, coder) == data


def test_empty_input_is_one_model_member(coder):
    blob = compress_bytes(b"", coder)
    assert len(blob) == 44
    assert decompress_bytes(blob, coder) == b""


def test_concatenated_files_decode_to_the_concatenation(coder, corpus):
    first, second = corpus.valid[:3000], os.urandom(3000)
    blob = compress_bytes(first, coder) + compress_bytes(second, coder)
    assert decompress_bytes(blob, coder) == first + second


def test_members_of_another_model_rejected(coder, other_model_path, corpus):
    other = load_engine(other_model_path, "python")
    blob = coder.compress(corpus.valid[:2000]) + other.compress(corpus.valid[:2000])
    with pytest.raises(ModelMismatchError, match="member at byte"):
        decompress_bytes(blob, coder)


def test_trailing_garbage_rejected_with_offset(coder):
    blob = compress_bytes(b"abc", coder)
    with pytest.raises(InvalidDataError, match=f"trailing garbage at byte {len(blob)}"):
        decompress_bytes(blob + b"junk", coder)


def test_empty_file_rejected(coder):
    with pytest.raises(InvalidDataError, match="empty file"):
        decompress_bytes(b"", coder)


def test_every_truncation_of_a_multi_member_file_rejected(coder, corpus):
    data = corpus.valid[:600] + os.urandom(300)
    blob = coder.compress(data[:600]) + compress_bytes(data[600:], coder)
    assert len(list(read_members(io.BytesIO(blob)))) == 2
    boundaries = {member.offset for member in read_members(io.BytesIO(blob))}
    for cut in range(len(blob)):
        if cut in boundaries and cut > 0:
            # A cut between members leaves a valid file of the first members.
            assert data.startswith(decompress_bytes(blob[:cut], coder))
            continue
        with pytest.raises(InvalidDataError):
            decompress_bytes(blob[:cut], coder)


def test_stored_payload_corruption_rejected(coder):
    member = bytearray(pack_stored(b"x" * 100, FLAG_STORED_RAW))
    member[-1] ^= 1
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        decompress_bytes(bytes(member), coder)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (stored_header(3, 10, 10), "unknown flags 0x03"),
        (stored_header(FLAG_STORED_RAW, 10, 10, model_id=b"\x01" * 16), "stored member names model"),
        (stored_header(FLAG_STORED_RAW, 10, 9), "expected equal"),
        (stored_header(FLAG_STORED_ZSTD, MAX_STORED_ZSTD_LENGTH + 1, 10), f"at most {MAX_STORED_ZSTD_LENGTH}"),
    ],
    ids=["unknown-flags", "model-id", "raw-size", "zstd-claim"],
)
def test_invalid_stored_headers_rejected(header, message, coder):
    with pytest.raises(InvalidDataError, match=message):
        decompress_bytes(header + b"\x00" * 10, coder)


def test_zstd_frame_longer_than_its_header_rejected(coder):
    import zstandard

    payload = zstandard.ZstdCompressor().compress(b"a" * 1000)
    member = stored_header(FLAG_STORED_ZSTD, 10, len(payload)) + payload
    with pytest.raises(InvalidDataError, match="zstd stored member"):
        decompress_bytes(member, coder)


def test_huge_stream_count_reads_nothing_more(coder):
    fixed = struct.pack("<4sBBBB16sQII", b"NNZ\x1a", 1, 0, 16, 0, b"\x00" * 16, 2**63, 0, 2**32 - 1)
    with pytest.raises(InvalidDataError, match="truncated header"):
        decompress_bytes(fixed + b"\x00" * 100, coder)


class ShortWriter:
    """A file object that takes at most `limit` bytes per write, as a pipe can."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def write(self, data) -> int:
        taken = bytes(data[: self.limit])
        self.data += taken
        return len(taken)


def test_write_all_finishes_short_writes():
    from nnzip.members import write_all

    target = ShortWriter(3)
    write_all(target, b"0123456789")

    assert bytes(target.data) == b"0123456789"


def test_write_all_raises_when_nothing_is_taken():
    from nnzip.members import write_all

    with pytest.raises(OSError, match="accepted no bytes"):
        write_all(ShortWriter(0), b"abc")
