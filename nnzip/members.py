"""Streaming `.nz` files: the input is cut into blocks, and each block becomes one member.

Each block is coded by the model or stored, raw or as a zstd frame, whichever is smallest.
Memory therefore stays bounded by the block size, whatever the input length. A file of several
members decodes to the concatenation of their bytes, so `cat a.nz b.nz` is a valid `.nz` file
of both inputs, as with gzip members.
"""

from __future__ import annotations

import errno

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from nnzip.container import (
    FIXED_HEADER_SIZE,
    FLAG_STORED_RAW,
    FLAG_STORED_ZSTD,
    MAGIC,
    Header,
    header_bytes_needed,
    pack_stored,
    read_header,
    unpack_member,
)
from nnzip.errors import ChecksumError, InvalidDataError, NNZipError

# Original bytes per member. Files up to this size are one member, which the model codes as
# before members existed (64 streams of at least 64 KiB each).
BLOCK_SIZE = 4 << 20
ZSTD_LEVEL = 19
# A block whose zstd level-1 frame is no smaller than the block is stored raw without running
# the model. zstd's entropy coder already finds any skew in the byte counts, so such a block
# is random-like. The model would spend seconds on it to reach 8 bits per byte or more.
QUICK_ZSTD_LEVEL = 1
READ_CHUNK = 1 << 20  # bytes per read, so that no read allocates what a header merely claims

Progress = Callable[[int], None]


class Coder:
    """The engine interface that members use: a model id, and compress and decompress of one member."""

    id: bytes

    def compress(self, data: bytes, progress: Progress | None = None) -> bytes: ...

    def decompress(self, blob: bytes, progress: Progress | None = None) -> bytes: ...


def encode_block(block: bytes, coder: Coder, progress: Progress | None = None) -> bytes:
    """Return the smallest member for `block`: model-coded, stored zstd or stored raw."""
    if not block:
        return coder.compress(block)
    raw = pack_stored(block, FLAG_STORED_RAW)
    quick = zstandard.ZstdCompressor(level=QUICK_ZSTD_LEVEL).compress(block)
    if len(quick) >= len(block):
        if progress is not None:
            progress(len(block))
        return raw

    candidates = [
        coder.compress(block, progress),
        pack_stored(block, FLAG_STORED_ZSTD, zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(block)),
        raw,
    ]
    # min() keeps the first of equal sizes, so a tie goes to the model, then to zstd.
    return min(candidates, key=len)


def read_blocks(source: BinaryIO, size: int = BLOCK_SIZE) -> Iterator[bytes]:
    """Yield blocks of `size` bytes from `source` (the last one shorter); one empty block for empty input."""
    first = True
    while True:
        block = read_up_to(source, size)
        if block or first:
            yield block
        first = False
        if len(block) < size:
            return


def read_up_to(source: BinaryIO, size: int) -> bytes:
    """Read `size` bytes, or fewer at the end of the input; pipes may return short reads."""
    parts, remaining = [], size
    while remaining > 0:
        chunk = source.read(min(remaining, READ_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def write_all(target: BinaryIO, data: bytes) -> None:
    """Write all of `data` to `target`, or raise.

    A buffered write can return less than its length without an error: on Linux a pipe whose
    reader exits during a large write takes part of it, and the write reports that part.
    Writing the rest raises BrokenPipeError, so a cut pipe is reported instead of ignored.
    """
    view = memoryview(data)
    while view:
        written = target.write(view)
        if written is None or written <= 0:
            raise OSError(errno.EIO, f"write accepted no bytes of the remaining {len(view)}")
        view = view[written:]


def compress_stream(
    source: BinaryIO, target: BinaryIO, coder: Coder, progress: Progress | None = None, block_size: int = BLOCK_SIZE
) -> tuple[int, int]:
    """Compress all of `source` into members written to `target`; return (original, compressed) bytes."""
    original = compressed = 0
    for block in read_blocks(source, block_size):
        member = encode_block(block, coder, progress)
        write_all(target, member)
        original += len(block)
        compressed += len(member)
    return original, compressed


@dataclass(frozen=True)
class Member:
    """One member read from a `.nz` file: its header, its bytes, and its byte offset in the file."""

    header: Header
    data: bytes
    offset: int


def read_members(source: BinaryIO) -> Iterator[Member]:
    """Yield the members of a `.nz` file one at a time; raise InvalidDataError for a bad one.

    Errors in a member after the first name its offset, because a file of many members is
    usually a concatenation, and the offset locates the damaged part.
    """
    offset = 0
    while True:
        head = read_up_to(source, FIXED_HEADER_SIZE)
        if not head:
            if offset == 0:
                raise InvalidDataError("empty file: a .nz file has at least one member of 44 bytes")
            return
        if offset > 0 and not head.startswith(MAGIC[: len(head)]):
            raise InvalidDataError(
                f"trailing garbage at byte {offset}: expected another member (magic {MAGIC!r}), got {head[:4]!r}"
            )
        with member_context(offset):
            data = read_member_rest(source, head)
            header, _ = unpack_member(data)
        yield Member(header, data, offset)
        offset += len(data)


def read_member_rest(source: BinaryIO, head: bytes) -> bytes:
    """Read the rest of the member that starts with `head`.

    The header is validated before any payload is read, and reads grow only as bytes arrive,
    so a header that claims huge sizes costs no memory beyond the bytes really present.
    """
    data = head
    needed = header_bytes_needed(data)
    data += read_up_to(source, needed - len(data))
    header = read_header(data)
    data += read_up_to(source, header.size - len(data))
    unpack_member(data)  # raises for a truncated payload
    return data


class member_context:
    """Prefix errors of a member after the first with its byte offset."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, trace) -> bool:
        if err is not None and self.offset > 0 and isinstance(err, NNZipError):
            raise type(err)(f"member at byte {self.offset}: {err}") from err
        return False


def decode_member(member: Member, coder_for: Callable[[bytes], Coder], progress: Progress | None = None) -> bytes:
    """Return the original bytes of one member; `coder_for(model_id)` gives the engine of a model-coded one."""
    header = member.header
    with member_context(member.offset):
        if not header.stored:
            return coder_for(header.model_id).decompress(member.data, progress)
        _, payloads = unpack_member(member.data)
        data = b"".join(stored_payload(header, bytes(payload)) for payload in payloads)
        if zlib.crc32(data) != header.crc32:
            raise ChecksumError(
                f"checksum mismatch: stored CRC32 {header.crc32:08x}, decoded {zlib.crc32(data):08x}; the file is corrupted"
            )
        if progress is not None:
            progress(len(data))
        return data


def stored_payload(header: Header, payload: bytes) -> bytes:
    """Return the original bytes of a stored member's payload, reading at most one byte past its length."""
    if header.flags == FLAG_STORED_RAW:
        return payload
    # A frame can claim any content size, so the output is read in bounded steps rather than
    # decoded in one call, which would allocate the claimed size.
    length = header.original_length
    try:
        with zstandard.ZstdDecompressor().stream_reader(payload) as reader:
            data = read_up_to(reader, length + 1)
    except zstandard.ZstdError as err:
        raise InvalidDataError(f"zstd stored member is corrupted: {err}") from err
    if len(data) > length:
        raise InvalidDataError(f"zstd stored member decodes to more than the {length} bytes its header declares")
    if len(data) < length:
        raise InvalidDataError(f"zstd stored member decoded to {len(data)} bytes, but the header declares {length}")
    return data


def decompress_stream(
    source: BinaryIO, target: BinaryIO | None, coder_for: Callable[[bytes], Coder], progress: Progress | None = None
) -> tuple[int, int]:
    """Decode every member of `source` into `target` (None only tests); return (original, compressed) bytes."""
    original = compressed = 0
    for member in read_members(source):
        data = decode_member(member, coder_for, progress)
        if target is not None:
            write_all(target, data)
        original += len(data)
        compressed += len(member.data)
    return original, compressed
