"""The external index: a reference corpus and its suffix array, searched for the longest match.

An index file (`.nzi`) contains a corpus of n bytes and the corpus's suffix array. The array
is sorted by the first MAX_MATCH + 1 bytes of each suffix (a suffix that is a prefix of
another sorts first), with ties in position order, so one corpus gives one file. The index id is the first 16 bytes
of the file's sha256; a model trained with an index names it by id, and so does every `.nz`
member coded with that model. docs/retrieval.md specifies the layout and the search rules,
which nnzip-core implements too.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from array import array
from pathlib import Path

from nnzip.errors import ModelLoadError

MAGIC = b"NZI\x1a"
VERSION = 1
MAX_MATCH = 32  # maximum context length searched, in bytes
MAX_CORPUS = (1 << 31) - 1  # suffix array entries are u32; this keeps every offset + MAX_MATCH + 1 in range
ID_SIZE = 16
_HEADER = struct.Struct("<4sBBHQ")  # magic, version, max match, reserved, corpus length
SCAN_LIMIT = 16  # intervals up to this size are counted entry by entry, larger ones run by run


def build(corpus: bytes) -> bytes:
    """Return the index file of `corpus`."""
    if not 1 <= len(corpus) <= MAX_CORPUS:
        raise ValueError(f"index corpus of {len(corpus)} bytes; expected 1 to {MAX_CORPUS} bytes")
    width = MAX_MATCH + 1
    # sorted() is stable, so suffixes with equal first `width` bytes stay in position order.
    order = sorted(range(len(corpus)), key=lambda p: corpus[p : p + width])
    entries = array("I", order)
    if not _little_endian():
        entries.byteswap()
    return _HEADER.pack(MAGIC, VERSION, MAX_MATCH, 0, len(corpus)) + corpus + entries.tobytes()


def _little_endian() -> bool:
    return array("I", [1]).tobytes() == b"\x01\x00\x00\x00"


def index_id(data: bytes) -> bytes:
    """Return the 16-byte id of an index file's bytes."""
    return hashlib.sha256(data).digest()[:ID_SIZE]


class Index:
    """A loaded index: the corpus, its suffix array and the id of the file."""

    def __init__(self, data: bytes, name: str = "the index") -> None:
        self.id = index_id(data)
        self.corpus, self.suffixes = parse(data, name)

    @classmethod
    def load(cls, path: str | Path) -> Index:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise ModelLoadError(f"cannot read index {path}: {err.strerror or err}") from err
        return cls(data, str(path))

    def interval(self, pattern: bytes) -> tuple[int, int]:
        """Return the suffix array range [lo, hi) of the suffixes that start with `pattern`."""
        corpus, size = self.corpus, len(pattern)

        def key(p: int) -> bytes:
            return corpus[p : p + size]

        lo = bisect.bisect_left(self.suffixes, pattern, key=key)
        hi = bisect.bisect_right(self.suffixes, pattern, lo=lo, key=key)
        return lo, hi

    def continuations(self, pattern: bytes, lo: int, hi: int) -> tuple[int, int, int]:
        """Return (total, top byte, top count) over the bytes that follow `pattern` at the
        suffixes [lo, hi).

        The top byte is the most frequent one. On ties it is the smallest byte value.
        """
        corpus, size, suffixes = self.corpus, len(pattern), self.suffixes
        counts: dict[int, int] = {}
        if hi - lo <= SCAN_LIMIT:
            for i in range(lo, hi):
                p = suffixes[i] + size
                if p < len(corpus):
                    counts[corpus[p]] = counts.get(corpus[p], 0) + 1
        else:
            # The next bytes are sorted within the range, so each byte value is one run.
            def key(p: int) -> bytes:
                return corpus[p : p + size + 1]

            i = lo
            if suffixes[i] + size == len(corpus):  # the one suffix that ends with the pattern sorts first
                i += 1
            while i < hi:
                byte = corpus[suffixes[i] + size]
                end = bisect.bisect_right(suffixes, pattern + bytes([byte]), lo=i, hi=hi, key=key)
                counts[byte] = end - i
                i = end
        if not counts:
            return 0, 0, 0
        top = min(counts, key=lambda b: (-counts[b], b))
        return sum(counts.values()), top, counts[top]


def parse(data: bytes, name: str) -> tuple[bytes, array]:
    """Check an index file and return its corpus and suffix array; raise ModelLoadError if invalid."""
    if len(data) < _HEADER.size:
        raise ModelLoadError(f"{name} is not an nnzip index: {len(data)} bytes, expected at least {_HEADER.size}")
    magic, version, max_match, reserved, n = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ModelLoadError(f"{name} is not an nnzip index: magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise ModelLoadError(f"{name} has index version {version}; this nnzip reads version {VERSION}")
    if max_match != MAX_MATCH or reserved != 0:
        raise ModelLoadError(f"{name} has max match {max_match} and reserved field {reserved}; expected {MAX_MATCH} and 0")
    if not 1 <= n <= MAX_CORPUS or len(data) != _HEADER.size + 5 * n:
        raise ModelLoadError(
            f"{name} declares a corpus of {n} bytes, so it should have {_HEADER.size + 5 * n} bytes, but it has {len(data)}"
        )

    corpus = data[_HEADER.size : _HEADER.size + n]
    suffixes = array("I")
    suffixes.frombytes(data[_HEADER.size + n :])
    if not _little_endian():
        suffixes.byteswap()
    check_suffixes(corpus, suffixes, name)
    return corpus, suffixes


def check_suffixes(corpus: bytes, suffixes: array, name: str) -> None:
    """Raise ModelLoadError unless `suffixes` is the sorted suffix array that build() writes."""
    n, width = len(corpus), MAX_MATCH + 1
    seen = bytearray(n)
    previous_key, previous = None, -1
    for i, p in enumerate(suffixes):
        if p >= n or seen[p]:
            raise ModelLoadError(f"{name}: suffix array entry {i} is {p}, not a new offset below {n}; rebuild the index")
        seen[p] = 1
        key = corpus[p : p + width]
        if previous_key is not None and (key < previous_key or (key == previous_key and p < previous)):
            raise ModelLoadError(f"{name}: suffix array entry {i} is out of order; rebuild the index")
        previous_key, previous = key, p
