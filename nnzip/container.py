"""The `.nz` container: a fixed header, a stream table, a header CRC and the stream payloads.

docs/FORMAT.md specifies the layout and every rule that unpack() checks. All integers are
little-endian.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import NamedTuple

from nnzip.errors import InvalidDataError, UnsupportedVersionError

MAGIC = b"NNZ\x1a"
FORMAT_VERSION = 1
PRECISION_BITS = 16
MODEL_ID_SIZE = 16

_FIXED_HEADER = struct.Struct("<4sBBBB16sQII")
FIXED_HEADER_SIZE = _FIXED_HEADER.size

# original length (u64) and compressed size (u64) of one stream
_STREAM_ENTRY = struct.Struct("<QQ")
_HEADER_CRC = struct.Struct("<I")

# Upper bound on the original bytes that one stream of C payload bytes can code, checked
# as length <= MAX_LENGTH_PER_PAYLOAD_BYTE * (C + 1). A symbol has frequency at most
# 65536 - 255 out of 65536, because the other 255 symbols have at least 1 each. Each symbol
# therefore costs at least log2(65536 / 65281) bits, and a stream that shifted out s bytes
# codes at most (8 * s + 8) / log2(65536 / 65281) < 1423 * (s + 1) symbols, where s <= C.
# docs/FORMAT.md derives this bound in full.
MAX_LENGTH_PER_PAYLOAD_BYTE = 1423


class _FixedFields(NamedTuple):
    """The fields of the 40-byte fixed header, in file order."""

    magic: bytes
    version: int
    flags: int
    precision_bits: int
    reserved: int
    model_id: bytes
    original_length: int
    crc32: int
    stream_count: int


@dataclass(frozen=True)
class Header:
    """Header fields of a `.nz` container, excluding the constant magic and version."""

    model_id: bytes
    original_length: int
    crc32: int
    stream_lengths: tuple[int, ...]
    stream_sizes: tuple[int, ...]
    precision_bits: int = PRECISION_BITS


def model_id_hex(model_id: bytes) -> str:
    """Return the 16-byte model id as 32 lower-case hex digits."""
    if len(model_id) != MODEL_ID_SIZE:
        raise ValueError(f"model id has {len(model_id)} bytes, expected {MODEL_ID_SIZE}")
    return model_id.hex()


def pack(header: Header, payloads: list[bytes]) -> bytes:
    """Serialize a header and its stream payloads into a `.nz` container.

    Raises ValueError for a header that unpack() would reject or that does not match the
    payloads.
    """
    _check_header_fields(header)
    sizes = tuple(len(payload) for payload in payloads)
    if sizes != tuple(header.stream_sizes):
        raise ValueError(f"stream sizes {header.stream_sizes} do not match the payload sizes {sizes}")

    problem = _find_stream_problem(header.original_length, header.stream_lengths, header.stream_sizes)
    if problem is not None:
        raise ValueError(problem)

    table = b"".join(_STREAM_ENTRY.pack(length, size) for length, size in zip(header.stream_lengths, sizes))
    fixed = _FIXED_HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        0,
        header.precision_bits,
        0,
        header.model_id,
        header.original_length,
        header.crc32,
        len(sizes),
    )
    header_bytes = fixed + table
    return header_bytes + _HEADER_CRC.pack(zlib.crc32(header_bytes)) + b"".join(payloads)


def _check_header_fields(header: Header) -> None:
    if len(header.model_id) != MODEL_ID_SIZE:
        raise ValueError(f"model id has {len(header.model_id)} bytes, expected {MODEL_ID_SIZE}")
    if header.precision_bits != PRECISION_BITS:
        raise ValueError(f"precision bits {header.precision_bits}, expected {PRECISION_BITS}")
    if not 0 <= header.crc32 < 1 << 32:
        raise ValueError(f"CRC32 {header.crc32} is out of range, expected 0 <= crc32 < 2**32")
    if not 0 <= header.original_length < 1 << 64:
        raise ValueError(f"original length {header.original_length} does not fit in a u64")
    if len(header.stream_lengths) != len(header.stream_sizes):
        raise ValueError(
            f"{len(header.stream_lengths)} stream lengths but {len(header.stream_sizes)} stream sizes, expected equal counts"
        )


def unpack(data: bytes | bytearray | memoryview) -> tuple[Header, list[memoryview]]:
    """Parse and validate a `.nz` container, returning its header and payload views.

    Raises UnsupportedVersionError for a newer format version and InvalidDataError for
    anything else that is not a valid container. The payloads are views into `data`.
    """
    view = memoryview(data).cast("B")
    fields = _read_fixed_header(view)
    stream_count = fields.stream_count

    table_end = FIXED_HEADER_SIZE + stream_count * _STREAM_ENTRY.size
    payload_start = table_end + _HEADER_CRC.size
    if payload_start > len(view):
        raise InvalidDataError(
            f"truncated header: a stream table of {stream_count} streams ends at byte {payload_start}, "
            f"but the data has {len(view)} bytes"
        )

    _check_header_crc(view, table_end)
    _check_header_values(fields)

    entries = list(_STREAM_ENTRY.iter_unpack(view[FIXED_HEADER_SIZE:table_end]))
    lengths = tuple(length for length, _ in entries)
    sizes = tuple(size for _, size in entries)
    problem = _find_stream_problem(fields.original_length, lengths, sizes)
    if problem is not None:
        raise InvalidDataError(problem)

    payloads = _slice_payloads(view, payload_start, sizes)
    header = Header(
        model_id=fields.model_id,
        original_length=fields.original_length,
        crc32=fields.crc32,
        stream_lengths=lengths,
        stream_sizes=sizes,
        precision_bits=fields.precision_bits,
    )
    return header, payloads


def _read_fixed_header(view: memoryview) -> _FixedFields:
    """Check the fields needed to read the rest (size, magic, version) and return all fixed fields."""
    # A short file that does not start like the magic is another kind of file, not a cut one.
    prefix = bytes(view[: len(MAGIC)])
    if prefix != MAGIC[: len(prefix)]:
        raise InvalidDataError(f"not an nnzip file: magic {prefix!r}, expected {MAGIC!r}")
    if len(view) < FIXED_HEADER_SIZE:
        raise InvalidDataError(f"truncated header: {len(view)} bytes, expected at least {FIXED_HEADER_SIZE}")

    fields = _FixedFields._make(_FIXED_HEADER.unpack_from(view, 0))
    if fields.magic != MAGIC:
        raise InvalidDataError(f"not an nnzip file: magic {fields.magic!r}, expected {MAGIC!r}")

    # The version comes before the header CRC check, because a newer version may lay out
    # the rest of the header differently.
    version = fields.version
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"format version {version} is newer than the newest version this nnzip reads ({FORMAT_VERSION}); "
            f"upgrade nnzip to decode this file"
        )
    if version < 1:
        raise InvalidDataError(f"invalid format version {version}, expected 1 to {FORMAT_VERSION}")

    return fields


def _check_header_crc(view: memoryview, table_end: int) -> None:
    (stored,) = _HEADER_CRC.unpack_from(view, table_end)
    computed = zlib.crc32(view[:table_end])
    if stored != computed:
        raise InvalidDataError(f"header CRC32 mismatch: stored {stored:#010x}, computed {computed:#010x}")


def _check_header_values(fields: _FixedFields) -> None:
    """Check the fields that the header CRC has already confirmed as written."""
    if fields.flags != 0:
        raise InvalidDataError(f"unknown flags {fields.flags:#04x}, expected 0 (every flag is reserved)")
    if fields.precision_bits != PRECISION_BITS:
        raise InvalidDataError(f"frequency precision {fields.precision_bits} bits, expected {PRECISION_BITS}")
    if fields.reserved != 0:
        raise InvalidDataError(f"reserved header byte is {fields.reserved}, expected 0")

    # Each stream codes at least one byte, so there cannot be more streams than bytes.
    if fields.stream_count > fields.original_length:
        raise InvalidDataError(
            f"stream count {fields.stream_count} exceeds the original length {fields.original_length}"
        )


def _find_stream_problem(original_length: int, lengths: tuple[int, ...], sizes: tuple[int, ...]) -> str | None:
    """Return a one-line description of the first invalid stream table entry, or None."""
    for index, (length, size) in enumerate(zip(lengths, sizes)):
        if length == 0:
            return f"stream {index} has original length 0, expected at least 1"
        if length > MAX_LENGTH_PER_PAYLOAD_BYTE * (size + 1):
            return (
                f"stream {index} claims {length} original bytes from {size} compressed bytes, "
                f"expected at most {MAX_LENGTH_PER_PAYLOAD_BYTE * (size + 1)}"
            )

    total = sum(lengths)
    if total != original_length:
        return f"stream original lengths sum to {total}, expected the original length {original_length}"
    return None


def _slice_payloads(view: memoryview, start: int, sizes: tuple[int, ...]) -> list[memoryview]:
    available = len(view) - start
    needed = sum(sizes)
    if needed > available:
        raise InvalidDataError(f"truncated payload: the streams need {needed} bytes, got {available}")
    if needed < available:
        raise InvalidDataError(f"trailing garbage: {available - needed} bytes after the last stream")

    payloads = []
    offset = start
    for size in sizes:
        payloads.append(view[offset : offset + size])
        offset += size
    return payloads
