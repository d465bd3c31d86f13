import copy
import dataclasses
import math
import struct
import zlib

import pytest

from nnzip.coder import ALPHABET_SIZE, TOTAL, RangeEncoder
from nnzip.container import (
    FIXED_HEADER_SIZE,
    FORMAT_VERSION,
    INDEX_VERSION,
    MODEL_VERSION,
    MAGIC,
    MAX_LENGTH_PER_PAYLOAD_BYTE,
    Header,
    model_id_hex,
    pack,
    unpack,
)
from nnzip.errors import InvalidDataError, UnsupportedVersionError

MODEL_ID = bytes(range(16))


def sample_container() -> tuple[Header, list[bytes], bytes]:
    original = b"hello, container"
    payloads = [b"\x01\x02\x03", b"", b"\xff" * 5]
    header = Header(
        model_id=MODEL_ID,
        original_length=len(original),
        crc32=zlib.crc32(original),
        stream_lengths=(6, 1, 9),
        stream_sizes=tuple(len(payload) for payload in payloads),
    )
    return header, payloads, pack(header, payloads)


def raw_container(
    *,
    magic: bytes = MAGIC,
    version: int = MODEL_VERSION,
    flags: int = 0,
    precision_bits: int = 16,
    reserved: int = 0,
    original_length: int = 4,
    stream_count: int | None = None,
    entries: tuple[tuple[int, int], ...] = ((4, 2),),
    payload: bytes = b"ab",
) -> bytes:
    """Build a container byte by byte with a correct header CRC, so each check is reached."""
    count = len(entries) if stream_count is None else stream_count
    fixed = struct.pack(
        "<4sBBBB16sQII", magic, version, flags, precision_bits, reserved, MODEL_ID, original_length, 0, count
    )
    table = b"".join(struct.pack("<QQ", length, size) for length, size in entries)
    header = fixed + table
    return header + struct.pack("<I", zlib.crc32(header)) + payload


def test_round_trip():
    header, payloads, data = sample_container()

    unpacked_header, views = unpack(data)

    assert unpacked_header == header
    assert [bytes(view) for view in views] == payloads


def test_round_trip_zero_streams():
    header = Header(model_id=MODEL_ID, original_length=0, crc32=zlib.crc32(b""), stream_lengths=(), stream_sizes=())

    data = pack(header, [])

    assert len(data) == FIXED_HEADER_SIZE + 4
    assert unpack(data) == (header, [])


def test_layout_offsets():
    header, payloads, data = sample_container()

    assert data[0:4] == MAGIC
    assert data[4] == MODEL_VERSION
    assert data[5] == 0
    assert data[6] == 16
    assert data[7] == 0
    assert data[8:24] == MODEL_ID
    assert struct.unpack_from("<QII", data, 24) == (header.original_length, header.crc32, 3)
    assert struct.unpack_from("<QQ", data, 40) == (6, 3)
    table_end = 40 + 16 * 3
    assert struct.unpack_from("<I", data, table_end)[0] == zlib.crc32(data[:table_end])
    assert data[table_end + 4 :] == b"".join(payloads)


def index_container() -> tuple[Header, list[bytes], bytes]:
    header, payloads, _ = sample_container()
    header = dataclasses.replace(header, index_id=bytes(range(100, 116)))
    return header, payloads, pack(header, payloads)


def test_index_member_round_trip_and_layout():
    header, payloads, data = index_container()

    assert unpack(data)[0] == header
    assert data[4] == INDEX_VERSION
    assert header.version == INDEX_VERSION
    assert data[40:56] == bytes(range(100, 116))
    assert struct.unpack_from("<QQ", data, 56) == (6, 3)
    table_end = 56 + 16 * 3
    assert struct.unpack_from("<I", data, table_end)[0] == zlib.crc32(data[:table_end])
    assert data[table_end + 4 :] == b"".join(payloads)


def test_every_index_header_bit_flip_rejected():
    _, _, data = index_container()
    assert_every_bit_flip_rejected(data, 56 + 16 * 3 + 4)


def test_pack_rejects_short_index_id():
    header, payloads, _ = sample_container()
    with pytest.raises(ValueError, match="index id of 3 bytes"):
        pack(dataclasses.replace(header, index_id=b"abc"), payloads)


def test_unpack_accepts_memoryview_and_returns_views():
    _, payloads, data = sample_container()
    _, views = unpack(memoryview(bytearray(data)))
    assert all(isinstance(view, memoryview) for view in views)
    assert [bytes(view) for view in views] == payloads


def test_every_truncation_rejected():
    _, _, data = sample_container()
    for length in range(len(data)):
        with pytest.raises(InvalidDataError):
            unpack(data[:length])


def test_short_data_message():
    _, _, data = sample_container()
    with pytest.raises(InvalidDataError, match="truncated header: 39 bytes, expected at least 40"):
        unpack(data[:39])


def test_short_other_file_message():
    with pytest.raises(InvalidDataError, match="not an nnzip file"):
        unpack(b"hello world, not nz\n")


def assert_every_bit_flip_rejected(data: bytes, header_size: int) -> None:
    """Flip each bit of the first `header_size` bytes of `data` in turn; unpack must reject each."""
    for bit in range(header_size * 8):
        corrupted = bytearray(data)
        corrupted[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(InvalidDataError):
            unpack(bytes(corrupted))


def test_every_header_bit_flip_rejected():
    _, _, data = sample_container()
    assert_every_bit_flip_rejected(data, FIXED_HEADER_SIZE + 16 * 3 + 4)


def test_wrong_magic():
    _, _, data = sample_container()
    with pytest.raises(InvalidDataError, match="not an nnzip file: magic"):
        unpack(b"PK\x03\x04" + data[4:])


def test_future_version_unsupported():
    data = raw_container(version=FORMAT_VERSION + 1)
    with pytest.raises(UnsupportedVersionError) as info:
        unpack(data)

    message = str(info.value)
    assert f"format version {FORMAT_VERSION + 1}" in message
    assert f"({FORMAT_VERSION})" in message
    assert "upgrade nnzip" in message


def test_future_version_checked_before_header_crc():
    data = bytearray(raw_container(version=FORMAT_VERSION + 1))
    data[-3] ^= 0xFF
    with pytest.raises(UnsupportedVersionError):
        unpack(bytes(data))


def test_version_zero_invalid():
    with pytest.raises(InvalidDataError, match="invalid format version 0") as info:
        unpack(raw_container(version=0))
    assert not isinstance(info.value, UnsupportedVersionError)


def test_raw_container_baseline_valid():
    header, views = unpack(raw_container())
    assert header.stream_lengths == (4,)
    assert [bytes(view) for view in views] == [b"ab"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"flags": 1}, "unknown flags 0x01"),
        ({"precision_bits": 12}, "frequency precision 12 bits, expected 16"),
        ({"reserved": 7}, "reserved header byte is 7"),
        ({"original_length": 1, "entries": ((1, 1), (1, 1))}, "stream count 2 exceeds the original length 1"),
        ({"entries": ((4, 1), (0, 1))}, "stream 1 has original length 0"),
        ({"entries": ((3, 2),)}, "sum to 3, expected the original length 4"),
        ({"payload": b"a"}, "truncated payload: the streams need 2 bytes, got 1"),
        ({"payload": b"abc"}, "trailing garbage: 1 bytes after the last stream"),
    ],
)
def test_invalid_fields_rejected(fields, message):
    with pytest.raises(InvalidDataError, match=message):
        unpack(raw_container(**fields))


def test_header_crc_mismatch_message():
    data = bytearray(raw_container())
    data[FIXED_HEADER_SIZE + 16] ^= 0x01
    with pytest.raises(InvalidDataError, match="header CRC32 mismatch"):
        unpack(bytes(data))


def test_absurd_original_length_without_streams():
    with pytest.raises(InvalidDataError, match="sum to 0"):
        unpack(raw_container(original_length=2**63, entries=(), payload=b""))


def test_absurd_stream_length_rejected():
    data = raw_container(original_length=2**63, entries=((2**63, 10),), payload=bytes(10))
    with pytest.raises(InvalidDataError, match="claims 9223372036854775808 original bytes from 10"):
        unpack(data)


def test_absurd_stream_count_rejected():
    data = raw_container(original_length=2**64 - 1, stream_count=2**32 - 1)
    with pytest.raises(InvalidDataError, match="truncated header: a stream table of 4294967295 streams"):
        unpack(data)


def test_absurd_compressed_size_rejected():
    data = raw_container(entries=((4, 2**64 - 1),))
    with pytest.raises(InvalidDataError, match="truncated payload"):
        unpack(data)


def test_length_bound_derivation():
    # Each symbol costs at least log2(TOTAL / (TOTAL - 255)) bits, so a stream that shifted
    # out s bytes codes at most (8 * s + 8) / that many symbols.
    max_symbols_per_byte = 8 / math.log2(TOTAL / (TOTAL - (ALPHABET_SIZE - 1)))
    assert max_symbols_per_byte < MAX_LENGTH_PER_PAYLOAD_BYTE


def test_length_bound_holds_for_cheapest_symbols():
    encoder = RangeEncoder()
    for count in range(1, 6001):
        encoder.encode(0, TOTAL - (ALPHABET_SIZE - 1))
        if count % 50 == 0 or count < 50:
            size = len(copy.deepcopy(encoder).finish())
            assert count <= MAX_LENGTH_PER_PAYLOAD_BYTE * (size + 1)


def test_pack_rejects_size_mismatch():
    header, payloads, _ = sample_container()
    with pytest.raises(ValueError, match="do not match the payload sizes"):
        pack(header, payloads[:2] + [b"x"])


def test_pack_rejects_length_sum_mismatch():
    header = Header(model_id=MODEL_ID, original_length=5, crc32=0, stream_lengths=(2, 2), stream_sizes=(1, 1))
    with pytest.raises(ValueError, match="sum to 4, expected the original length 5"):
        pack(header, [b"a", b"b"])


def test_pack_rejects_bad_model_id():
    header = Header(model_id=b"short", original_length=0, crc32=0, stream_lengths=(), stream_sizes=())
    with pytest.raises(ValueError, match="model id has 5 bytes, expected 16"):
        pack(header, [])


def test_pack_rejects_zero_length_stream():
    header = Header(model_id=MODEL_ID, original_length=1, crc32=0, stream_lengths=(1, 0), stream_sizes=(1, 1))
    with pytest.raises(ValueError, match="stream 1 has original length 0"):
        pack(header, [b"a", b"b"])


def test_model_id_hex():
    assert model_id_hex(MODEL_ID) == "000102030405060708090a0b0c0d0e0f"
    with pytest.raises(ValueError, match="expected 16"):
        model_id_hex(b"\x00" * 15)
