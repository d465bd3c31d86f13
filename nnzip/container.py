"""The `.nz` container: members of a fixed header, a stream table, a header CRC and payloads.

A `.nz` file is one or more members, each coding the next piece of the original bytes. A
member is model-coded (version 1), stored, raw or as a zstd frame (version 2), or model-coded
with a model that reads an external index, which the member names by id (version 3).
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
FORMAT_VERSION = 3  # the newest version this reader decodes
MODEL_VERSION = 1  # version of model-coded members, whose layout version 2 kept
STORED_VERSION = 2  # version that added stored members
INDEX_VERSION = 3  # version of model-coded members that name an index, 16 bytes after the fixed header
PRECISION_BITS = 16
MODEL_ID_SIZE = 16
INDEX_ID_SIZE = 16
NO_MODEL = bytes(MODEL_ID_SIZE)  # the model id field of a stored member

# Flags of a version 2 member: how its single payload holds the original bytes.
FLAG_STORED_RAW = 1
FLAG_STORED_ZSTD = 2
STORED_FLAGS = (FLAG_STORED_RAW, FLAG_STORED_ZSTD)
# A zstd frame can claim far more bytes than it holds, so a stored zstd member is limited to
# this many original bytes; a decoder never allocates more for one member.
MAX_STORED_ZSTD_LENGTH = 1 << 24

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
    flags: int = 0  # 0 for a model-coded member, else FLAG_STORED_RAW or FLAG_STORED_ZSTD
    index_id: bytes = b""  # the index id of a version 3 member, else empty

    @property
    def stored(self) -> bool:
        return self.flags != 0

    @property
    def version(self) -> int:
        if self.stored:
            return STORED_VERSION
        return INDEX_VERSION if self.index_id else MODEL_VERSION

    @property
    def size(self) -> int:
        """Bytes of the whole member: header, stream table, header CRC and payloads."""
        return table_start(self.version) + _STREAM_ENTRY.size * len(self.stream_sizes) + _HEADER_CRC.size + sum(self.stream_sizes)


def table_start(version: int) -> int:
    """Return the offset of the stream table in a member of `version`."""
    return FIXED_HEADER_SIZE + (INDEX_ID_SIZE if version == INDEX_VERSION else 0)


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

    problem = _find_stream_problem(header.flags, header.original_length, header.stream_lengths, header.stream_sizes)
    if problem is not None:
        raise ValueError(problem)

    table = b"".join(_STREAM_ENTRY.pack(length, size) for length, size in zip(header.stream_lengths, sizes))
    fixed = _FIXED_HEADER.pack(
        MAGIC,
        header.version,
        header.flags,
        header.precision_bits,
        0,
        header.model_id,
        header.original_length,
        header.crc32,
        len(sizes),
    )
    header_bytes = fixed + header.index_id + table
    return header_bytes + _HEADER_CRC.pack(zlib.crc32(header_bytes)) + b"".join(payloads)


def pack_stored(data: bytes, flags: int, payload: bytes | None = None) -> bytes:
    """Return a stored member of `data`: raw, or as the zstd frame `payload` (FLAG_STORED_ZSTD)."""
    if flags == FLAG_STORED_RAW:
        payload = data
    elif flags != FLAG_STORED_ZSTD or payload is None:
        raise ValueError(f"flags {flags} with payload {type(payload).__name__}, expected a raw member or a zstd frame")
    lengths, sizes = ((len(data),), (len(payload),)) if data else ((), ())
    header = Header(NO_MODEL, len(data), zlib.crc32(data), lengths, sizes, flags=flags)
    return pack(header, [payload] if data else [])


def _check_header_fields(header: Header) -> None:
    if header.flags not in (0, *STORED_FLAGS):
        raise ValueError(f"flags {header.flags}, expected 0 or one of {STORED_FLAGS}")
    if header.stored and header.model_id != NO_MODEL:
        raise ValueError("a stored member has the all-zero model id")
    if len(header.index_id) not in (0, INDEX_ID_SIZE) or (header.stored and header.index_id):
        raise ValueError(f"index id of {len(header.index_id)} bytes, expected {INDEX_ID_SIZE}, or none for a member without an index")
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
    """Parse and validate a `.nz` member that spans all of `data`, returning its header and payload views.

    Raises UnsupportedVersionError for a newer format version and InvalidDataError for
    anything else that is not a valid member. The payloads are views into `data`.
    """
    header, payloads = unpack_member(data)
    end = header.size
    if end < len(data):
        raise InvalidDataError(f"trailing garbage: {len(data) - end} bytes after the last stream")
    return header, payloads


def unpack_member(data: bytes | bytearray | memoryview) -> tuple[Header, list[memoryview]]:
    """Parse and validate the member at the start of `data`; bytes after it are left alone.

    Raises as unpack() does, except that it does not look past the member's end (`header.size`).
    """
    view = memoryview(data).cast("B")
    header = read_header(view)
    payload_start = header.size - sum(header.stream_sizes)
    return header, _slice_payloads(view, payload_start, header.stream_sizes)


def header_bytes_needed(data: bytes | bytearray | memoryview) -> int:
    """Return how many bytes the header of the member at the start of `data` spans (at least 40).

    Checks the magic and version first, so another kind of file is rejected before more is read.
    """
    view = memoryview(data).cast("B")
    if len(view) < FIXED_HEADER_SIZE:
        prefix = bytes(view[: len(MAGIC)])
        if prefix != MAGIC[: len(prefix)]:
            raise InvalidDataError(f"not an nnzip file: magic {prefix!r}, expected {MAGIC!r}")
        return FIXED_HEADER_SIZE
    fields = _read_fixed_header(view)
    return table_start(fields.version) + fields.stream_count * _STREAM_ENTRY.size + _HEADER_CRC.size


def read_header(data: bytes | bytearray | memoryview) -> Header:
    """Parse and validate the header and stream table at the start of `data`; payloads need not be there."""
    view = memoryview(data).cast("B")
    fields = _read_fixed_header(view)
    stream_count = fields.stream_count

    start = table_start(fields.version)
    table_end = start + stream_count * _STREAM_ENTRY.size
    payload_start = table_end + _HEADER_CRC.size
    if payload_start > len(view):
        raise InvalidDataError(
            f"truncated header: a stream table of {stream_count} streams ends at byte {payload_start}, "
            f"but the data has {len(view)} bytes"
        )

    _check_header_crc(view, table_end)
    _check_header_values(fields)

    entries = list(_STREAM_ENTRY.iter_unpack(view[start:table_end]))
    lengths = tuple(length for length, _ in entries)
    sizes = tuple(size for _, size in entries)
    problem = _find_stream_problem(fields.flags, fields.original_length, lengths, sizes)
    if problem is not None:
        raise InvalidDataError(problem)

    return Header(
        model_id=fields.model_id,
        original_length=fields.original_length,
        crc32=fields.crc32,
        stream_lengths=lengths,
        stream_sizes=sizes,
        precision_bits=fields.precision_bits,
        flags=fields.flags,
        index_id=bytes(view[FIXED_HEADER_SIZE:start]),
    )


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
    if fields.version in (MODEL_VERSION, INDEX_VERSION) and fields.flags != 0:
        raise InvalidDataError(f"unknown flags {fields.flags:#04x}, expected 0 (every flag is reserved)")
    if fields.version == STORED_VERSION:
        if fields.flags not in STORED_FLAGS:
            raise InvalidDataError(f"unknown flags {fields.flags:#04x} in a version 2 member, expected 0x01 (raw) or 0x02 (zstd)")
        if fields.model_id != NO_MODEL:
            raise InvalidDataError(f"stored member names model {fields.model_id.hex()}, expected the all-zero id")
        if fields.stream_count != (1 if fields.original_length else 0):
            raise InvalidDataError(
                f"stored member has {fields.stream_count} streams for {fields.original_length} bytes, expected {int(fields.original_length > 0)}"
            )
    if fields.precision_bits != PRECISION_BITS:
        raise InvalidDataError(f"frequency precision {fields.precision_bits} bits, expected {PRECISION_BITS}")
    if fields.reserved != 0:
        raise InvalidDataError(f"reserved header byte is {fields.reserved}, expected 0")

    # Each stream codes at least one byte, so there cannot be more streams than bytes.
    if fields.stream_count > fields.original_length:
        raise InvalidDataError(
            f"stream count {fields.stream_count} exceeds the original length {fields.original_length}"
        )


def _find_stream_problem(flags: int, original_length: int, lengths: tuple[int, ...], sizes: tuple[int, ...]) -> str | None:
    """Return a one-line description of the first invalid stream table entry, or None."""
    for index, (length, size) in enumerate(zip(lengths, sizes)):
        if length == 0:
            return f"stream {index} has original length 0, expected at least 1"
        if flags == FLAG_STORED_RAW and size != length:
            return f"raw stored member has {size} payload bytes for {length} original bytes, expected equal"
        if flags == FLAG_STORED_ZSTD and length > MAX_STORED_ZSTD_LENGTH:
            return f"zstd stored member claims {length} original bytes, expected at most {MAX_STORED_ZSTD_LENGTH}"
        if flags == 0 and length > MAX_LENGTH_PER_PAYLOAD_BYTE * (size + 1):
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

    payloads = []
    offset = start
    for size in sizes:
        payloads.append(view[offset : offset + size])
        offset += size
    return payloads
