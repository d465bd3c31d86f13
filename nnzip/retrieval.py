"""Retrieval features: predictions of the next byte from the bytes already coded.

A retriever reads the streams of one container in coding order: all streams advance together,
one position per step, and within a step stream 0 comes first. Before each byte it gives a
feature code computed only from bytes earlier in that order, so the decoder computes the same
code before it decodes the byte. A code packs two features:

    code = bucket * 256 + predicted byte, and code 0 means "no match" (bucket 0).

`HistoryRetriever` is the match model over the container's own history: a hash table maps the
last ORDER bytes of a stream to the most recent place where those bytes were followed by a
byte already coded, in any stream. When the current context matches (checked byte by byte,
at least ORDER bytes), the byte that followed the earlier occurrence is the prediction, and
the match follows along while its predictions come true. The bucket grows with the match
length, so the model can learn how far to trust a match of each length.

`IndexRetriever` searches an external corpus (nnzip.index) for the longest match of each
stream's last bytes, and predicts the byte that most often followed it there. Retrieval
"history+index" uses the history match where there is one and the index match elsewhere.

Memory: a table of 2**TABLE_BITS positions and the container's bytes, which the codec keeps
anyway; nothing else grows with the input. docs/retrieval.md gives the exact rules, which
nnzip-core implements too.
"""

from __future__ import annotations

import bisect

import numpy as np

from nnzip.index import MAX_MATCH, Index

ORDER = 6  # context bytes hashed; a match must agree on at least this many
TABLE_BITS = 20  # 2**20 table entries
VERIFY_LIMIT = 32  # bytes compared backwards when a match starts
MAX_LENGTH = 65535  # match lengths saturate here
BUCKETS = 16  # bucket 0 is "no match"; bucket b >= 1 contains the lengths with bit length b
INDEX_BUCKETS = 16  # buckets BUCKETS .. BUCKETS + 15 are index matches: 4 length classes x 4 shares
MIN_INDEX_MATCH = 4  # shorter index matches give no code
HASH_MULTIPLIER = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd
MASK64 = (1 << 64) - 1
CONTEXT_MASK = (1 << (8 * ORDER)) - 1
KINDS = ("none", "history", "history+index")
# Range of the retrieval gate's pre-activation, in nats: the integer engine looks softplus up
# in a table over this range, in steps of 1/64 nat.
GATE_MIN, GATE_MAX = -8, 32


def bucket_of(length: int) -> int:
    """Return the bucket of a match length (0 for no match)."""
    return min(BUCKETS - 1, length.bit_length())


def bucket_count(kind: str) -> int:
    """Return the number of buckets, and so of retrieval biases, of a retrieval kind."""
    return BUCKETS + INDEX_BUCKETS if uses_index(kind) else BUCKETS


def uses_index(kind: str) -> bool:
    return kind == "history+index"


def index_bucket(length: int, total: int, top: int) -> int:
    """Return the bucket of an index match of `length` bytes whose top continuation came
    `top` times out of `total`."""
    if length < 8:
        length_class = 0
    elif length < 16:
        length_class = 1
    elif length < 32:
        length_class = 2
    else:
        length_class = 3
    return BUCKETS + 4 * length_class + (4 * top) // (total + 1)


def context_hash(context: int) -> int:
    """Return the table slot of an ORDER-byte context (the bytes as a big-endian integer)."""
    return ((context * HASH_MULTIPLIER) & MASK64) >> (64 - TABLE_BITS)


class NoRetriever:
    """The stub: every position gets code 0 (no match)."""

    def feature(self, stream: int) -> int:
        return 0

    def push(self, stream: int, byte: int) -> None:
        pass


class HistoryRetriever:
    """The match model over the bytes coded so far in the streams of one container."""

    def __init__(self, lengths: list[int] | tuple[int, ...]) -> None:
        self.starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).tolist()
        self.buffer = bytearray(self.starts[-1])
        self.table = [-1] * (1 << TABLE_BITS)
        n = len(lengths)
        self.coded = [0] * n  # bytes coded per stream
        self.context = [0] * n  # the last ORDER bytes of each stream, big-endian
        self.pointer = [-1] * n  # global offset of the predicted byte, or -1
        self.end = [0] * n  # end offset of the stream that contains the pointer
        self.length = [0] * n  # current match length; 0 when there is no match

    def feature(self, stream: int) -> int:
        """Return the code for the next byte of `stream`; call once per byte, before `push`.

        Without a match, this looks the context up now rather than at the last push, so the
        lookup finds every byte coded before this one, the other streams' bytes of this step too.
        """
        if self.pointer[stream] < 0 and self.coded[stream] >= ORDER:
            self.start_match(stream, self.starts[stream] + self.coded[stream] - 1)
        pointer = self.pointer[stream]
        if pointer < 0:
            return 0
        return bucket_of(self.length[stream]) * 256 + self.buffer[pointer]

    def push(self, stream: int, byte: int) -> None:
        """Record that `byte` was coded as the next byte of `stream`; update the match and the table."""
        t = self.coded[stream]
        offset = self.starts[stream] + t
        self.buffer[offset] = byte

        # Follow the match while it predicts right and its stream goes on.
        pointer = self.pointer[stream]
        if pointer >= 0 and self.buffer[pointer] == byte and pointer + 1 < self.end[stream]:
            self.pointer[stream] = pointer + 1
            self.length[stream] = min(MAX_LENGTH, self.length[stream] + 1)
        else:
            self.pointer[stream] = -1
            self.length[stream] = 0

        # The context before this byte now has a coded continuation: this byte.
        if t >= ORDER:
            self.table[context_hash(self.context[stream])] = offset
        self.context[stream] = ((self.context[stream] << 8) | byte) & CONTEXT_MASK
        self.coded[stream] = t + 1

    def start_match(self, stream: int, last: int) -> None:
        """Look up the context ending at offset `last` and start a match if it checks out."""
        candidate = self.table[context_hash(self.context[stream])]
        if candidate < 0:
            return
        # Compare backwards from the bytes before the candidate and from `last`, within both streams.
        owner = bisect.bisect_right(self.starts, candidate) - 1
        limit = min(VERIFY_LIMIT, candidate - self.starts[owner], last + 1 - self.starts[stream])
        length = 0
        while length < limit and self.buffer[candidate - 1 - length] == self.buffer[last - length]:
            length += 1
        if length >= ORDER:
            self.pointer[stream] = candidate
            self.end[stream] = self.starts[owner + 1]
            self.length[stream] = length


class IndexRetriever:
    """The longest match of each stream's last bytes in an external index (nnzip.index)."""

    def __init__(self, index: Index, streams: int) -> None:
        self.index = index
        self.context = [b""] * streams  # the last MAX_MATCH bytes of each stream
        self.length = [0] * streams  # the longest match found at the stream's last position

    def feature(self, stream: int) -> int:
        """Return the code for the next byte of `stream`; call once per byte, before `push`.

        The longest match before this byte is at most one longer than the one before the
        previous byte, so the search starts there and shortens until the context occurs
        followed by a byte.
        """
        context = self.context[stream]
        length = min(self.length[stream] + 1, len(context))
        while length > 0:
            pattern = context[len(context) - length :]
            lo, hi = self.index.interval(pattern)
            if hi - lo > 1 or (hi - lo == 1 and self.index.suffixes[lo] + length < len(self.index.corpus)):
                break
            length -= 1
        self.length[stream] = length
        if length < MIN_INDEX_MATCH:
            return 0
        total, top, count = self.index.continuations(pattern, lo, hi)
        return index_bucket(length, total, count) * 256 + top

    def push(self, stream: int, byte: int) -> None:
        self.context[stream] = (self.context[stream] + bytes([byte]))[-MAX_MATCH:]


class CombinedRetriever:
    """History first: the index code counts only where the history has no match. Both
    retrievers see every byte, so each keeps its own rules."""

    def __init__(self, history: HistoryRetriever, index: IndexRetriever) -> None:
        self.history, self.index = history, index

    def feature(self, stream: int) -> int:
        code, fallback = self.history.feature(stream), self.index.feature(stream)
        return code or fallback

    def push(self, stream: int, byte: int) -> None:
        self.history.push(stream, byte)
        self.index.push(stream, byte)


def make_retriever(kind: str, lengths, index: Index | None = None):
    if kind == "none":
        return NoRetriever()
    if kind == "history":
        return HistoryRetriever(lengths)
    if kind == "history+index":
        if index is None:
            raise ValueError("retrieval 'history+index' needs an index")
        return CombinedRetriever(HistoryRetriever(lengths), IndexRetriever(index, len(lengths)))
    raise ValueError(f"unknown retrieval {kind!r}; expected one of {', '.join(KINDS)}")


def stream_codes(kind: str, streams: list[np.ndarray], index: Index | None = None) -> list[np.ndarray]:
    """Return the feature code of every byte of `streams`, computed in coding order."""
    lengths = [len(s) for s in streams]
    codes = [np.zeros(n, np.int64) for n in lengths]
    if kind == "none":
        return codes
    retriever = make_retriever(kind, lengths, index)
    values = [s.tolist() for s in streams]
    out = [c.tolist() for c in codes]
    for t in range(max(lengths, default=0)):
        for i, stream in enumerate(values):
            if t < len(stream):
                out[i][t] = retriever.feature(i)
                retriever.push(i, stream[t])
    return [np.array(c, np.int64) for c in out]


def corpus_codes(kind: str, data: np.ndarray, block_size: int, index: Index | None = None) -> np.ndarray:
    """Return the feature code of every byte of `data` as the codec would compute it: each block
    of `block_size` bytes is one container, cut into streams by the encoder's policy."""
    from nnzip.codec import stream_lengths

    codes = np.zeros(len(data), np.int64)
    if kind == "none":
        return codes
    for start in range(0, len(data), block_size):
        block = data[start : start + block_size]
        offsets = np.cumsum([0] + stream_lengths(len(block)))
        streams = [block[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        codes[start : start + len(block)] = np.concatenate(stream_codes(kind, streams, index) or [np.zeros(0, np.int64)])
    return codes
