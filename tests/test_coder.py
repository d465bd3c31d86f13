import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnzip.coder import (
    ALPHABET_SIZE,
    MAX_BYTES_PAST_END,
    TOTAL,
    RangeDecoder,
    RangeEncoder,
    cumulative_frequencies,
    decode_symbols,
    encode_symbols,
    symbol_from_target,
)
from nnzip.errors import InvalidDataError


def random_table(rng: np.random.Generator, skew: float) -> np.ndarray:
    """Return a valid table whose mass is spread more unevenly as skew grows."""
    weights = rng.random(ALPHABET_SIZE) ** skew
    table = np.floor(weights / weights.sum() * (TOTAL - ALPHABET_SIZE)).astype(np.int64) + 1
    table[rng.integers(ALPHABET_SIZE)] += TOTAL - table.sum()
    return table


def peaked_table(symbol: int, freq: int) -> np.ndarray:
    """Return a valid table that gives `symbol` exactly `freq` and spreads the rest."""
    table = np.ones(ALPHABET_SIZE, dtype=np.int64)
    table[symbol] = freq
    other = (symbol + 1) % ALPHABET_SIZE
    table[other] += TOTAL - table.sum()
    return table


def random_case(seed: int, length: int, skew: float) -> tuple[list[np.ndarray], list[int]]:
    """Return tables and symbols drawn from them, so likely symbols dominate as in real use."""
    rng = np.random.default_rng(seed)
    rows = [random_table(rng, skew) for _ in range(length)]
    symbols = [int(rng.choice(ALPHABET_SIZE, p=row / TOTAL)) for row in rows]
    return rows, symbols


def decode_pairs(data: bytes, pairs: list[tuple[int, int]]) -> RangeDecoder:
    """Decode (cum, freq) pairs with the low-level API, checking each target."""
    decoder = RangeDecoder(data)
    for cum, freq in pairs:
        target = decoder.decode_target()
        assert cum <= target < cum + freq
        decoder.consume(cum, freq)
    decoder.verify_end()
    return decoder


def test_empty_input_encodes_to_nothing():
    assert encode_symbols([], []) == b""
    assert decode_symbols(b"", []) == []


@pytest.mark.parametrize("length", [1, 2, 3, 4])
@pytest.mark.parametrize("skew", [0.0, 1.0, 8.0])
def test_short_inputs_round_trip(length, skew):
    for seed in range(10):
        rows, symbols = random_case(seed, length, skew)
        data = encode_symbols(rows, symbols)
        assert decode_symbols(data, rows) == symbols


def test_single_symbol_each_position():
    table = random_table(np.random.default_rng(1), 2.0)
    for symbol in range(ALPHABET_SIZE):
        data = encode_symbols([table], [symbol])
        assert decode_symbols(data, [table]) == [symbol]


@pytest.mark.parametrize("symbol", [0, 7, 255])
def test_frequency_one_run(symbol):
    table = peaked_table((symbol + 128) % ALPHABET_SIZE, TOTAL - ALPHABET_SIZE + 1)
    assert table[symbol] == 1
    count = 2000
    rows = [table] * count
    symbols = [symbol] * count

    data = encode_symbols(rows, symbols)

    # A frequency of 1 out of 2**16 costs exactly 16 bits, and the flush adds at most 4 bytes.
    assert 2 * count <= len(data) <= 2 * count + 4
    assert decode_symbols(data, rows) == symbols


def test_most_probable_run_is_short():
    table = peaked_table(42, TOTAL - ALPHABET_SIZE + 1)
    rows = [table] * 5000
    data = encode_symbols(rows, [42] * 5000)
    assert len(data) < 10
    assert decode_symbols(data, rows) == [42] * 5000


def encode_carry_case(run_steps: int) -> tuple[RangeEncoder, bytes, list[tuple[int, int]]]:
    """Encode symbols chosen to keep 2**32 inside the interval, then one symbol above it.

    While the interval contains the boundary, every byte shifted out is 0xFF and stays
    pending. The last symbol lies wholly above the boundary, so its carry turns the whole
    run into 0x00 bytes.
    """
    encoder = RangeEncoder()
    pairs = [(0x8000, 0x100)]
    encoder.encode(*pairs[0])

    for _ in range(run_steps):
        r = encoder.range >> 16
        cum = ((1 << 32) - encoder.low) // r
        pairs.append((cum, 1))
        encoder.encode(cum, 1)

    r = encoder.range >> 16
    cum = -(-((1 << 32) - encoder.low) // r)
    pairs.append((cum, TOTAL - cum))
    encoder.encode(cum, TOTAL - cum)

    return encoder, encoder.finish(), pairs


def test_carry_through_ff_run():
    encoder, data, pairs = encode_carry_case(10)

    assert encoder.carry_count == 1
    assert encoder.max_carry_run == 20
    assert data == bytes([0x80]) + bytes(20) + bytes([0x01])
    decode_pairs(data, pairs)


@pytest.mark.parametrize("run_steps", [1, 2, 5, 50])
def test_carry_runs_round_trip(run_steps):
    encoder, data, pairs = encode_carry_case(run_steps)
    assert encoder.max_carry_run >= run_steps
    decode_pairs(data, pairs)


def test_random_tables_have_carries():
    """Carries with a pending 0xFF byte also happen without crafted input."""
    rows, symbols = random_case(seed=7, length=3000, skew=3.0)
    encoder = RangeEncoder()
    for row, symbol in zip(rows, symbols):
        cumfreq = cumulative_frequencies(row)
        encoder.encode(int(cumfreq[symbol]), int(row[symbol]))
    data = encoder.finish()

    assert encoder.carry_count > 0
    assert decode_symbols(data, rows) == symbols


def test_first_byte_pending_ff():
    # The top symbol first makes the very first shifted-out byte 0xFF, held with no cache.
    pairs = [(TOTAL - 1, 1), (TOTAL - 1, 1), (0, 1), (12345, 3)]
    encoder = RangeEncoder()
    for cum, freq in pairs:
        encoder.encode(cum, freq)
    data = encoder.finish()

    assert data[0] == 0xFF
    decode_pairs(data, pairs)


def test_decoder_reads_exactly_the_stream():
    for seed in range(20):
        rows, symbols = random_case(seed, 300, skew=4.0)
        data = encode_symbols(rows, symbols)

        decoder = decode_pairs(data, [symbol_pair(row, s) for row, s in zip(rows, symbols)])

        assert decoder.bytes_past_end <= MAX_BYTES_PAST_END
        assert decoder.position == len(data) + decoder.bytes_past_end


def symbol_pair(row: np.ndarray, symbol: int) -> tuple[int, int]:
    cumfreq = cumulative_frequencies(row)
    return int(cumfreq[symbol]), int(row[symbol])


def test_flush_trims_trailing_zeros():
    for seed in range(20):
        rows, symbols = random_case(seed, 50, skew=2.0)
        data = encode_symbols(rows, symbols)
        assert not data.endswith(bytes(MAX_BYTES_PAST_END + 1))


def test_extra_trailing_byte_rejected():
    rows, symbols = random_case(3, 100, skew=2.0)
    data = encode_symbols(rows, symbols)
    # Up to MAX_BYTES_PAST_END appended bytes can take the place of trimmed zero bytes, so
    # only longer additions are certain to be left unread.
    for extra in (bytes(5), b"\x01" * 5, b"\xff" * 9):
        with pytest.raises(InvalidDataError, match="unread trailing bytes"):
            decode_symbols(data + extra, rows)


def test_missing_last_byte_detected():
    for seed in range(30):
        rows, symbols = random_case(seed, 100, skew=2.0)
        data = encode_symbols(rows, symbols)
        assert data[-1] != 0

        try:
            decoded = decode_symbols(data[:-1], rows)
        except InvalidDataError:
            continue
        assert decoded != symbols


def test_truncated_stream_never_decodes_right():
    rows, symbols = random_case(11, 200, skew=3.0)
    data = encode_symbols(rows, symbols)

    for cut in range(len(data)):
        try:
            decoded = decode_symbols(data[:cut], rows)
        except InvalidDataError:
            continue
        assert decoded != symbols, f"stream cut to {cut} bytes decoded correctly"


def test_stream_cut_to_nothing_raises():
    rows, symbols = random_case(12, 200, skew=1.0)
    data = encode_symbols(rows, symbols)
    assert len(data) > MAX_BYTES_PAST_END

    with pytest.raises(InvalidDataError, match="truncated"):
        decode_symbols(b"", rows)


def test_target_out_of_range_raises():
    decoder = RangeDecoder(b"\xff\xff\xff\xff")
    with pytest.raises(InvalidDataError, match="target"):
        decoder.decode_target()


def test_random_bytes_never_hang():
    rng = np.random.default_rng(5)
    rows = [random_table(rng, 2.0) for _ in range(100)]
    for _ in range(50):
        garbage = rng.integers(0, 256, size=int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
        try:
            decoded = decode_symbols(garbage, rows)
        except InvalidDataError:
            continue
        assert len(decoded) == len(rows)


@pytest.mark.parametrize("seed", range(12))
def test_random_round_trips(seed):
    rng = np.random.default_rng(1000 + seed)
    length = int(rng.integers(0, 600))
    skew = float(rng.choice([0.0, 0.5, 2.0, 6.0, 20.0]))
    rows, symbols = random_case(seed, length, skew)

    data = encode_symbols(rows, symbols)

    assert decode_symbols(data, rows) == symbols


def test_uniform_table_costs_one_byte_per_symbol():
    uniform = np.full(ALPHABET_SIZE, TOTAL // ALPHABET_SIZE)
    symbols = list(range(ALPHABET_SIZE)) * 4
    data = encode_symbols([uniform] * len(symbols), symbols)
    assert len(symbols) <= len(data) <= len(symbols) + MAX_BYTES_PAST_END


# Each coded step is (symbol, frequency given to that symbol). The table puts the rest of
# TOTAL on the next symbol, so hypothesis reaches both nearly certain and frequency-1 symbols.
coding_steps = st.lists(
    st.tuples(st.integers(0, ALPHABET_SIZE - 1), st.integers(1, TOTAL - ALPHABET_SIZE + 1)),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(coding_steps)
def test_round_trip_property(steps):
    rows = [peaked_table(symbol, freq) for symbol, freq in steps]
    symbols = [symbol for symbol, _ in steps]

    data = encode_symbols(rows, symbols)

    assert decode_symbols(data, rows) == symbols


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, TOTAL - 1), st.integers(1, TOTAL)), max_size=100))
def test_raw_pairs_round_trip_property(raw_pairs):
    pairs = [(cum, min(freq, TOTAL - cum)) for cum, freq in raw_pairs]
    encoder = RangeEncoder()
    for cum, freq in pairs:
        encoder.encode(cum, freq)
    data = encoder.finish()

    decoder = decode_pairs(data, pairs)

    assert decoder.bytes_past_end <= MAX_BYTES_PAST_END


def golden_case(length: int) -> tuple[list[np.ndarray], list[int]]:
    """Return tables and symbols from a fixed 64-bit LCG, independent of numpy's generators.

    Every tenth position uses a table with a frequency-1 symbol and codes that symbol.
    """
    state = 20240601

    def next_u32() -> int:
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return state >> 32

    rows, symbols = [], []
    for position in range(length):
        if position % 10 == 9:
            symbol = next_u32() % ALPHABET_SIZE
            rows.append(peaked_table((symbol + 1) % ALPHABET_SIZE, TOTAL - ALPHABET_SIZE + 1))
            symbols.append(symbol)
            continue

        weights = np.array([(next_u32() % 64) ** 3 for _ in range(ALPHABET_SIZE)], dtype=np.int64)
        table = 1 + weights * (TOTAL - ALPHABET_SIZE) // weights.sum()
        table[int(np.argmax(table))] += TOTAL - table.sum()
        rows.append(table)
        symbols.append(symbol_from_target(cumulative_frequencies(table), next_u32() % TOTAL))

    return rows, symbols


def test_golden_small_stream():
    rows, symbols = golden_case(4)
    assert symbols == GOLDEN_SMALL_SYMBOLS
    assert encode_symbols(rows, symbols).hex() == GOLDEN_SMALL_HEX


def test_golden_long_stream():
    """Changing these bytes changes the format: only update them on purpose."""
    rows, symbols = golden_case(1500)
    encoder = RangeEncoder()
    for row, symbol in zip(rows, symbols):
        encoder.encode(*symbol_pair(row, symbol))
    data = encoder.finish()

    assert encoder.carry_count == 119
    assert encoder.max_carry_run == 2
    assert data == encode_symbols(rows, symbols)
    assert len(data) == GOLDEN_LONG_LENGTH
    assert hashlib.sha256(data).hexdigest() == GOLDEN_LONG_SHA256
    assert decode_symbols(data, rows) == symbols


GOLDEN_SMALL_SYMBOLS = [67, 146, 204, 200]
GOLDEN_SMALL_HEX = "4b5bc116"
# This stream has 119 carries, the longest through 2 pending 0xFF bytes.
GOLDEN_LONG_LENGTH = 1494
GOLDEN_LONG_SHA256 = "1057556248fd6d320953154454d3c2d4b264f46372c18245e863760158adef1c"


def test_symbol_from_target_boundaries():
    table = random_table(np.random.default_rng(9), 1.0)
    cumfreq = cumulative_frequencies(table)
    for symbol in range(ALPHABET_SIZE):
        first = int(cumfreq[symbol])
        last = int(cumfreq[symbol + 1]) - 1
        assert symbol_from_target(cumfreq, first) == symbol
        assert symbol_from_target(cumfreq, last) == symbol


@pytest.mark.parametrize(
    "table, message",
    [
        (np.full(255, 257), "shape"),
        (np.full(ALPHABET_SIZE, 256.0), "dtype"),
        (np.full(ALPHABET_SIZE, 255), "sums to"),
        (np.concatenate([[0, 512], np.full(254, 256)]), "frequency of 0"),
    ],
)
def test_invalid_table_rejected(table, message):
    with pytest.raises(ValueError, match=message):
        cumulative_frequencies(table)


@pytest.mark.parametrize("cum, freq", [(-1, 1), (0, 0), (TOTAL - 1, 2), (0, TOTAL + 1)])
def test_invalid_symbol_range_rejected(cum, freq):
    with pytest.raises(ValueError, match="invalid symbol range"):
        RangeEncoder().encode(cum, freq)


def test_consume_rejects_wrong_symbol():
    data = encode_symbols([np.full(ALPHABET_SIZE, 256)], [200])
    decoder = RangeDecoder(data)
    assert decoder.decode_target() // 256 == 200
    with pytest.raises(ValueError, match="does not contain"):
        decoder.consume(0, 256)


def test_encoder_rejects_use_after_finish():
    encoder = RangeEncoder()
    encoder.finish()
    with pytest.raises(RuntimeError):
        encoder.encode(0, 1)
    with pytest.raises(RuntimeError):
        encoder.finish()
