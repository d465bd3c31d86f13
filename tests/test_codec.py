import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnzip.codec import MAX_STREAMS, MIN_STREAM_LENGTH, compress, decompress, stream_lengths
from nnzip.container import pack, unpack
from nnzip.errors import ChecksumError, InvalidDataError, ModelMismatchError

REAL_TEXT_BYTES = 20_000  # five streams of at most MIN_STREAM_LENGTH bytes


def roundtrip(data: bytes, model) -> bytes:
    return decompress(compress(data, model), model)


def payload_start(blob: bytes) -> int:
    header, _ = unpack(blob)
    return len(blob) - sum(header.stream_sizes)


def test_roundtrip_empty(tiny_model):
    assert roundtrip(b"", tiny_model) == b""


def test_roundtrip_one_byte(tiny_model):
    assert roundtrip(b"a", tiny_model) == b"a"


def test_roundtrip_each_byte_value(tiny_model):
    failures = [value for value in range(256) if roundtrip(bytes([value]), tiny_model) != bytes([value])]
    assert failures == []


def test_roundtrip_all_byte_values(tiny_model):
    data = bytes(range(256)) + bytes(reversed(range(256)))
    assert roundtrip(data, tiny_model) == data


def test_roundtrip_random_binary(tiny_model):
    data = np.random.default_rng(0).bytes(4096)
    assert roundtrip(data, tiny_model) == data


def test_roundtrip_repeated_byte(tiny_model):
    data = b"\x00" * 5000
    assert roundtrip(data, tiny_model) == data


def test_roundtrip_real_text(tiny_model, corpus):
    data = corpus.valid[:REAL_TEXT_BYTES]
    blob = compress(data, tiny_model)
    header, _ = unpack(blob)

    assert header.stream_lengths == tuple(stream_lengths(len(data)))
    assert len(header.stream_lengths) == 5
    assert decompress(blob, tiny_model) == data
    assert len(blob) < len(data)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=300))
def test_roundtrip_property(tiny_model, data):
    assert roundtrip(data, tiny_model) == data


@pytest.mark.parametrize(
    "total, expected",
    [
        (0, []),
        (1, [1]),
        (MIN_STREAM_LENGTH, [MIN_STREAM_LENGTH]),
        (MIN_STREAM_LENGTH + 1, [MIN_STREAM_LENGTH, 1]),
        (3 * MIN_STREAM_LENGTH, [MIN_STREAM_LENGTH] * 3),
        (MAX_STREAMS * MIN_STREAM_LENGTH, [MIN_STREAM_LENGTH] * MAX_STREAMS),
        (MAX_STREAMS * MIN_STREAM_LENGTH + 1, [MIN_STREAM_LENGTH + 1] * (MAX_STREAMS - 1) + [MIN_STREAM_LENGTH - 62]),
    ],
)
def test_stream_lengths_cases(total, expected):
    assert stream_lengths(total) == expected


@given(total=st.integers(min_value=1, max_value=10**12))
def test_stream_lengths_rules(total):
    lengths = stream_lengths(total)
    assert sum(lengths) == total
    assert 1 <= len(lengths) <= MAX_STREAMS
    assert min(lengths) >= 1
    assert len(set(lengths[:-1])) <= 1, "all streams but the last have one length"
    assert lengths[-1] <= lengths[0]
    assert lengths[0] >= min(total, MIN_STREAM_LENGTH)


def test_other_model_rejected(tiny_model, other_model):
    blob = compress(b"hello, world", other_model)
    with pytest.raises(ModelMismatchError) as caught:
        decompress(blob, tiny_model)
    message = str(caught.value)
    assert other_model.id[:16].hex() in message
    assert tiny_model.id[:16].hex() in message


def test_corrupted_payload(tiny_model, corpus):
    data = corpus.valid[:300]
    blob = compress(data, tiny_model)
    start = payload_start(blob)
    rng = np.random.default_rng(1)
    positions = sorted({start, len(blob) - 1, *rng.integers(start, len(blob), size=20).tolist()})

    for position in positions:
        corrupted = bytearray(blob)
        corrupted[position] ^= 0x5A
        with pytest.raises(InvalidDataError):  # ChecksumError is a subclass
            decompress(bytes(corrupted), tiny_model)


def test_corrupted_header(tiny_model):
    blob = compress(b"header corruption", tiny_model)
    for position in range(payload_start(blob)):
        corrupted = bytearray(blob)
        corrupted[position] ^= 0x01
        with pytest.raises(InvalidDataError):
            decompress(bytes(corrupted), tiny_model)


def test_wrong_crc(tiny_model):
    blob = compress(b"checksum test", tiny_model)
    header, payloads = unpack(blob)
    changed = pack(dataclasses.replace(header, crc32=header.crc32 ^ 1), [bytes(p) for p in payloads])
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        decompress(changed, tiny_model)


def test_truncated_container(tiny_model, corpus):
    blob = compress(corpus.valid[:200], tiny_model)
    for length in range(len(blob)):
        with pytest.raises(InvalidDataError):
            decompress(blob[:length], tiny_model)


def test_trailing_garbage(tiny_model):
    blob = compress(b"trailing bytes", tiny_model)
    with pytest.raises(InvalidDataError, match="trailing garbage"):
        decompress(blob + b"\x00", tiny_model)



def test_many_streams_decode_in_groups(tiny_model, monkeypatch):
    from nnzip import codec

    data = np.random.default_rng(11).integers(0, 256, 300, dtype=np.uint8).tobytes()
    monkeypatch.setattr(codec, "MIN_STREAM_LENGTH", 1)
    monkeypatch.setattr(codec, "MAX_STREAMS", 150)
    blob = compress(data, tiny_model)
    assert len(unpack(blob)[0].stream_lengths) == 150
    monkeypatch.setattr(codec, "MAX_STREAMS", 64)
    assert decompress(blob, tiny_model) == data
