"""A 32-bit range coder over integer frequency tables, with LZMA-style carry handling.

Every frequency table has 256 entries that are each >= 1 and sum to exactly TOTAL. The
arithmetic uses integers only, so the output is fixed bit for bit by the frequencies. The
exact algorithm, which a port to another language must follow, is in docs/coder.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnzip.errors import InvalidDataError

PRECISION_BITS = 16
TOTAL = 1 << PRECISION_BITS
ALPHABET_SIZE = 256

# The range is kept at or above 2**24 between symbols, so `range >> 16` is at least 256
# and every symbol with frequency >= 1 gets a non-empty subrange.
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF

# The decoder reads zero bytes past the end of its input. A valid stream needs at most
# 4 of them, because finish() trims at most 4 trailing zero bytes.
MAX_BYTES_PAST_END = 4


class RangeEncoder:
    """Encoder that turns (cum, freq) pairs into bytes.

    `carry_count` and `max_carry_run` are diagnostics: the number of carries that reached
    already shifted-out bytes, and the longest run of pending 0xFF bytes that one carry
    turned into 0x00 bytes.
    """

    def __init__(self) -> None:
        self.low = 0
        self.range = _MASK32
        self._cache: int | None = None
        self._pending_ff = 0
        self._output = bytearray()
        self._finished = False
        self.carry_count = 0
        self.max_carry_run = 0

    def encode(self, cum: int, freq: int) -> None:
        """Narrow the interval to the symbol whose subrange is [cum, cum + freq) out of TOTAL."""
        if self._finished:
            raise RuntimeError("encode() called after finish()")
        if freq < 1 or cum < 0 or cum + freq > TOTAL:
            raise ValueError(_symbol_range_message(cum, freq))

        r = self.range >> PRECISION_BITS
        self.low += r * cum
        self.range = r * freq

        while self.range < _TOP:
            self._shift_low()
            self.range <<= 8

    def finish(self) -> bytes:
        """Flush the state and return the complete stream."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True

        self.low = _pick_flush_value(self.low, self.range)
        for _ in range(5):
            self._shift_low()

        return bytes(_trim_trailing_zeros(self._output, MAX_BYTES_PAST_END))

    def _shift_low(self) -> None:
        """Move bits 24..31 of `low` out, holding back bytes that a later carry can still change."""
        carry = self.low >> 32
        top_byte = (self.low >> 24) & 0xFF

        if top_byte != 0xFF or carry:
            self._release_pending(carry)
            self._cache = top_byte
        else:
            # A byte of 0xFF would become 0x00 after a carry, so it waits with the cache.
            self._pending_ff += 1

        self.low = (self.low & 0x00FFFFFF) << 8

    def _release_pending(self, carry: int) -> None:
        if carry:
            self.carry_count += 1
            self.max_carry_run = max(self.max_carry_run, self._pending_ff)

        if self._cache is None:
            # The coded value is below 2**32 at the initial scale, so no carry can pass the
            # first byte: a carry here means the arithmetic is broken.
            if carry:
                raise AssertionError("range coder carry past the first output byte")
        else:
            self._output.append((self._cache + carry) & 0xFF)

        self._output.extend(bytes([(0xFF + carry) & 0xFF]) * self._pending_ff)
        self._pending_ff = 0


def _symbol_range_message(cum: int, freq: int) -> str:
    return f"invalid symbol range: cum={cum}, freq={freq}, expected 0 <= cum, 1 <= freq, cum + freq <= {TOTAL}"


def _pick_flush_value(low: int, width: int) -> int:
    """Return the smallest multiple of 2**32 in [low, low + width), else that of 2**24.

    Low-order zero bytes of the flushed value are trimmed from the stream. Normalization
    keeps width >= 2**24, so the interval always contains a multiple of 2**24.
    """
    for bits in (32, 24):
        mask = (1 << bits) - 1
        value = (low + mask) & ~mask
        if value < low + width:
            return value
    raise AssertionError(f"range {width} below 2**24 at flush")


def _trim_trailing_zeros(output: bytearray, limit: int) -> bytearray:
    """Drop up to `limit` trailing zero bytes, which the decoder restores by reading zeros past the end."""
    end = len(output)
    while end > 0 and len(output) - end < limit and output[end - 1] == 0:
        end -= 1
    del output[end:]
    return output


class RangeDecoder:
    """Decoder for a stream written by RangeEncoder.

    Call decode_target(), map the target to a symbol with the same frequency table as the
    encoder, then call consume() with that symbol's (cum, freq).
    """

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = memoryview(data).cast("B")
        self._position = 0
        self.bytes_past_end = 0
        self.range = _MASK32
        self.code = 0
        for _ in range(4):
            self.code = (self.code << 8) | self._next_byte()

    @property
    def position(self) -> int:
        """Number of bytes read so far, counting the zero bytes read past the end."""
        return self._position

    def decode_target(self) -> int:
        """Return the value in [0, TOTAL) that lies in the subrange of the next symbol."""
        target = self.code // (self.range >> PRECISION_BITS)
        if target >= TOTAL:
            raise InvalidDataError(
                f"corrupt range coder stream at byte {self._position}: target {target}, expected < {TOTAL}"
            )
        return target

    def consume(self, cum: int, freq: int) -> None:
        """Remove the decoded symbol's subrange [cum, cum + freq) from the state."""
        if freq < 1 or cum < 0 or cum + freq > TOTAL:
            raise ValueError(_symbol_range_message(cum, freq))

        r = self.range >> PRECISION_BITS
        code = self.code - r * cum
        if code < 0 or code >= r * freq:
            # Equivalent to cum <= decode_target() < cum + freq, so only a caller that
            # passes another symbol's range gets here.
            raise ValueError(f"symbol range [{cum}, {cum + freq}) does not contain the decoded target")

        self.code = code
        self.range = r * freq

        # code < range is true before each step, so the shifted code stays below the new range.
        while self.range < _TOP:
            self.code = (self.code << 8) | self._next_byte()
            self.range <<= 8

    def verify_end(self) -> None:
        """Raise InvalidDataError if the stream has bytes that decoding the symbols did not read."""
        unread = len(self._data) - self._position
        if unread > 0:
            raise InvalidDataError(
                f"range coder stream has {unread} unread trailing bytes after the last symbol, expected 0"
            )

    def _next_byte(self) -> int:
        position = self._position
        self._position += 1
        if position < len(self._data):
            return self._data[position]

        self.bytes_past_end += 1
        if self.bytes_past_end > MAX_BYTES_PAST_END:
            raise InvalidDataError(
                f"corrupt or truncated range coder stream: {len(self._data)} bytes, "
                f"decoding needs more than {len(self._data) + MAX_BYTES_PAST_END}"
            )
        return 0


def cumulative_frequencies(freqs: Sequence[int] | np.ndarray) -> np.ndarray:
    """Validate a frequency table and return its length-257 cumulative array (int64, starting at 0)."""
    table = np.asarray(freqs)
    if table.shape != (ALPHABET_SIZE,):
        raise ValueError(f"frequency table shape {table.shape}, expected ({ALPHABET_SIZE},)")
    if not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"frequency table dtype {table.dtype}, expected an integer type")

    table = table.astype(np.int64)
    smallest = int(table.min())
    if smallest < 1:
        raise ValueError(f"frequency table has a frequency of {smallest}, expected every frequency >= 1")

    cumfreq = np.zeros(ALPHABET_SIZE + 1, dtype=np.int64)
    np.cumsum(table, out=cumfreq[1:])
    if cumfreq[-1] != TOTAL:
        raise ValueError(f"frequency table sums to {int(cumfreq[-1])}, expected {TOTAL}")
    return cumfreq


def symbol_from_target(cumfreq: np.ndarray, target: int) -> int:
    """Return the symbol s with cumfreq[s] <= target < cumfreq[s + 1]."""
    return int(np.searchsorted(cumfreq, target, side="right")) - 1


def encode_symbols(freq_rows: Sequence[Sequence[int] | np.ndarray], symbols: Sequence[int]) -> bytes:
    """Encode symbols[i] with frequency table freq_rows[i] and return the stream."""
    if len(freq_rows) != len(symbols):
        raise ValueError(f"got {len(symbols)} symbols but {len(freq_rows)} frequency tables, expected equal counts")

    encoder = RangeEncoder()
    for freqs, symbol in zip(freq_rows, symbols):
        if not 0 <= symbol < ALPHABET_SIZE:
            raise ValueError(f"symbol {symbol}, expected 0 <= symbol < {ALPHABET_SIZE}")

        cumfreq = cumulative_frequencies(freqs)
        cum = int(cumfreq[symbol])
        encoder.encode(cum, int(cumfreq[symbol + 1]) - cum)
    return encoder.finish()


def decode_symbols(
    data: bytes | bytearray | memoryview, freq_rows: Sequence[Sequence[int] | np.ndarray]
) -> list[int]:
    """Decode one symbol per frequency table and check that the stream ends there."""
    decoder = RangeDecoder(data)
    symbols = []
    for freqs in freq_rows:
        cumfreq = cumulative_frequencies(freqs)
        symbol = symbol_from_target(cumfreq, decoder.decode_target())
        cum = int(cumfreq[symbol])
        decoder.consume(cum, int(cumfreq[symbol + 1]) - cum)
        symbols.append(symbol)

    decoder.verify_end()
    return symbols
