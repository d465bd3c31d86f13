"""`nnzip.open`: a binary file object over a `.nz` file, shaped like `gzip.open` and `lzma.open`.

Reading decodes one member at a time and writing codes one block at a time, so memory stays
bounded by the block size however long the file is.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from nnzip.api import ModelSpec, coder_lookup, compression_model
from nnzip.engine import load_engine
from nnzip.errors import CommandLineError
from nnzip.members import BLOCK_SIZE, decode_member, encode_block, read_members


class NNZipFile(io.BufferedIOBase):
    """A `.nz` file opened for reading ("rb") or writing ("wb", "xb", "ab")."""

    def __init__(
        self,
        filename: str | bytes | os.PathLike | BinaryIO,
        mode: str = "rb",
        *,
        level: int | None = None,
        model: ModelSpec = None,
        engine: str = "auto",
    ) -> None:
        if mode not in ("r", "rb", "w", "wb", "x", "xb", "a", "ab"):
            raise CommandLineError(f"invalid mode {mode!r}; expected 'rb', 'wb', 'xb' or 'ab' (or 'rt', 'wt', ... with nnzip.open)")
        self._mode = "r" if mode.startswith("r") else "w"
        if isinstance(filename, (str, bytes, os.PathLike)):
            self._file = io.open(filename, mode[0] + "b")
            self._owns_file = True
        elif hasattr(filename, "read" if self._mode == "r" else "write"):
            self._file = filename
            self._owns_file = False
        else:
            raise CommandLineError(f"filename must be a path or a binary file object, got {type(filename).__name__}")
        self.name = getattr(self._file, "name", None)
        self._offset = 0  # uncompressed bytes read or written so far, for tell()

        if self._mode == "r":
            self._members = read_members(self._file)
            self._coder_for = coder_lookup(model, engine)
            self._buffer, self._position = b"", 0
        else:
            self._coder = load_engine(compression_model(level, model), engine)
            self._pending = bytearray()
            self._wrote_member = False

    # Reading

    def readable(self) -> bool:
        self._check_open()
        return self._mode == "r"

    def read(self, size: int | None = -1) -> bytes:
        self._check_mode("r")
        if size is None or size < 0:
            parts = [self._buffer[self._position :]]
            self._buffer, self._position = b"", 0
            parts.extend(self._next_blocks())
            data = b"".join(parts)
            self._offset += len(data)
            return data
        # A buffered read returns `size` bytes unless the data ends first, across members.
        parts, remaining = [], size
        while remaining > 0:
            chunk = self.read1(remaining)
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def read1(self, size: int = -1) -> bytes:
        """Return up to `size` bytes (a block without a size) from at most one decoded member."""
        self._check_mode("r")
        size = size if size >= 0 else BLOCK_SIZE
        while self._position >= len(self._buffer):
            block = next(self._next_blocks(), None)
            if block is None:
                return b""
            self._buffer, self._position = block, 0
        chunk = self._buffer[self._position : self._position + size]
        self._position += len(chunk)
        self._offset += len(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def _next_blocks(self):
        for member in self._members:
            block = decode_member(member, self._coder_for)
            if block:
                yield block

    # Writing

    def writable(self) -> bool:
        self._check_open()
        return self._mode == "w"

    def write(self, data) -> int:
        self._check_mode("w")
        view = memoryview(data).cast("B")
        self._pending += view
        while len(self._pending) >= BLOCK_SIZE:
            self._write_block(bytes(self._pending[:BLOCK_SIZE]))
            del self._pending[:BLOCK_SIZE]
        self._offset += len(view)
        return len(view)

    def _write_block(self, block: bytes) -> None:
        self._file.write(encode_block(block, self._coder))
        self._wrote_member = True

    # Both

    def tell(self) -> int:
        """Return the number of uncompressed bytes read or written so far, as gzip files do."""
        self._check_open()
        return self._offset

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed nnzip file")

    def _check_mode(self, mode: str) -> None:
        self._check_open()
        if self._mode != mode:
            raise io.UnsupportedOperation("not readable" if mode == "r" else "not writable")

    def close(self) -> None:
        if self.closed:
            return
        try:
            # A file with nothing written still gets one member, so it decodes to b"".
            if self._mode == "w" and (self._pending or not self._wrote_member):
                self._write_block(bytes(self._pending))
                self._pending.clear()
        finally:
            try:
                if self._owns_file:
                    self._file.close()
            finally:
                super().close()


def open(
    filename: str | bytes | os.PathLike | BinaryIO,
    mode: str = "rb",
    *,
    level: int | None = None,
    model: ModelSpec = None,
    engine: str = "auto",
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
):
    """Open a `.nz` file in binary ("rb", "wb", "xb", "ab") or text ("rt", "wt", "xt", "at") mode.

    `filename` is a path or a binary file object. Binary modes return an NNZipFile; text modes
    wrap it in io.TextIOWrapper with `encoding`, `errors` and `newline`. Appending adds members,
    and a file of several members reads as the concatenation of their bytes.

    >>> import nnzip, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt.nz")
    >>> with nnzip.open(path, "wt", encoding="utf-8") as f:
    ...     _ = f.write("first line\\n")
    >>> with nnzip.open(path, "rt", encoding="utf-8") as f:
    ...     f.read()
    'first line\\n'
    """
    if "t" in mode:
        if "b" in mode:
            raise CommandLineError(f"invalid mode {mode!r}: text and binary at once")
        binary = NNZipFile(filename, mode.replace("t", "b"), level=level, model=model, engine=engine)
        return io.TextIOWrapper(binary, encoding, errors, newline)
    if encoding is not None or errors is not None or newline is not None:
        raise CommandLineError("encoding, errors and newline apply to text modes only")
    return NNZipFile(filename, mode, level=level, model=model, engine=engine)
