//! A 32-bit range coder over integer frequency tables, with LZMA-style carry handling.
//!
//! This is a line-by-line port of `nnzip/coder.py`, and `docs/coder.md` specifies every step.
//! A frequency table has 256 entries, each at least 1, that sum to exactly [`TOTAL`].

use crate::error::{Error, Result};

pub const PRECISION_BITS: u32 = 16;
pub const TOTAL: u32 = 1 << PRECISION_BITS;
pub const ALPHABET_SIZE: usize = 256;

/// The decoder reads zero bytes past the end of its input. A valid stream needs at most 4 of
/// them, because [`RangeEncoder::finish`] trims at most 4 trailing zero bytes.
pub const MAX_BYTES_PAST_END: usize = 4;

/// The range stays at or above 2**24 between symbols, so `range >> 16` is at least 256 and
/// every symbol with a frequency of at least 1 gets a non-empty subrange.
const TOP: u32 = 1 << 24;

/// Encoder that turns (cum, freq) pairs into bytes.
#[derive(Debug, Clone)]
pub struct RangeEncoder {
    /// Lower end of the interval. Bit 32 is a carry that is not yet applied, so `low` stays
    /// below 2**33.
    low: u64,
    range: u32,
    /// The last byte shifted out, which a carry can still change. None before the first shift.
    cache: Option<u8>,
    /// Number of 0xFF bytes shifted out after `cache`.
    pending_ff: u64,
    output: Vec<u8>,
    stats: CarryStats,
}

/// Diagnostics of the carry handling of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarryStats {
    /// Number of carries that reached bytes already shifted out.
    pub carry_count: u64,
    /// Longest run of pending 0xFF bytes that one carry turned into 0x00 bytes.
    pub max_carry_run: u64,
}

impl Default for RangeEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeEncoder {
    pub fn new() -> Self {
        RangeEncoder {
            low: 0,
            range: u32::MAX,
            cache: None,
            pending_ff: 0,
            output: Vec::new(),
            stats: CarryStats::default(),
        }
    }

    /// Narrows the interval to the symbol whose subrange is `[cum, cum + freq)` out of [`TOTAL`].
    ///
    /// # Panics
    ///
    /// Panics if `freq < 1` or `cum + freq > TOTAL`, which no valid frequency table produces.
    pub fn encode(&mut self, cum: u32, freq: u32) {
        assert!(
            freq >= 1 && cum.checked_add(freq).is_some_and(|end| end <= TOTAL),
            "{}",
            symbol_range_message(cum, freq)
        );

        let r = self.range >> PRECISION_BITS;
        self.low += u64::from(r) * u64::from(cum);
        self.range = r * freq;

        while self.range < TOP {
            self.shift_low();
            self.range <<= 8;
        }
    }

    /// Flushes the state and returns the complete stream.
    pub fn finish(self) -> Vec<u8> {
        self.finish_with_stats().0
    }

    /// Flushes the state and returns the complete stream with the carry diagnostics, which
    /// include a carry that the flush itself causes.
    pub fn finish_with_stats(mut self) -> (Vec<u8>, CarryStats) {
        self.low = pick_flush_value(self.low, self.range);
        for _ in 0..5 {
            self.shift_low();
        }
        trim_trailing_zeros(&mut self.output, MAX_BYTES_PAST_END);
        (self.output, self.stats)
    }

    /// Moves bits 24..31 of `low` out, holding back bytes that a later carry can still change.
    fn shift_low(&mut self) {
        let carry = (self.low >> 32) as u8;
        let top_byte = ((self.low >> 24) & 0xFF) as u8;

        if top_byte != 0xFF || carry != 0 {
            self.release_pending(carry);
            self.cache = Some(top_byte);
        } else {
            // A byte of 0xFF would become 0x00 after a carry, so it waits with the cache.
            self.pending_ff += 1;
        }

        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    fn release_pending(&mut self, carry: u8) {
        if carry != 0 {
            self.stats.carry_count += 1;
            self.stats.max_carry_run = self.stats.max_carry_run.max(self.pending_ff);
        }

        match self.cache {
            // The coded value is below 2**32 at the initial scale, so no carry can pass the
            // first byte: a carry here means the arithmetic is broken.
            None => assert!(carry == 0, "range coder carry past the first output byte"),
            Some(cache) => self.output.push(cache.wrapping_add(carry)),
        }

        let filler = 0xFFu8.wrapping_add(carry);
        for _ in 0..self.pending_ff {
            self.output.push(filler);
        }
        self.pending_ff = 0;
    }
}

fn symbol_range_message(cum: u32, freq: u32) -> String {
    format!(
        "invalid symbol range: cum={cum}, freq={freq}, expected 0 <= cum, 1 <= freq, cum + freq <= {TOTAL}"
    )
}

/// Returns the smallest multiple of 2**32 in `[low, low + width)`, else that of 2**24.
///
/// Low-order zero bytes of the flushed value are trimmed from the stream. Normalization keeps
/// `width >= 2**24`, so the interval always contains a multiple of 2**24.
fn pick_flush_value(low: u64, width: u32) -> u64 {
    let end = low + u64::from(width);
    for bits in [32u32, 24] {
        let mask = (1u64 << bits) - 1;
        let value = (low + mask) & !mask;
        if value < end {
            return value;
        }
    }
    unreachable!("range {width} below 2**24 at flush")
}

/// Drops up to `limit` trailing zero bytes, which the decoder restores by reading zeros past
/// the end.
fn trim_trailing_zeros(output: &mut Vec<u8>, limit: usize) {
    let mut trimmed = 0;
    while trimmed < limit && output.last() == Some(&0) {
        output.pop();
        trimmed += 1;
    }
}

/// Decoder for a stream written by [`RangeEncoder`].
///
/// Call [`decode_target`](Self::decode_target), map the target to a symbol with the same
/// frequency table as the encoder, then call [`consume`](Self::consume) with that symbol's
/// (cum, freq).
#[derive(Debug, Clone)]
pub struct RangeDecoder<'a> {
    data: &'a [u8],
    position: usize,
    bytes_past_end: usize,
    range: u32,
    /// The coded number minus `low`. `code < range` is true after each step.
    code: u32,
}

impl<'a> RangeDecoder<'a> {
    /// Starts decoding `data`. Reading the first 4 bytes cannot fail, because up to
    /// [`MAX_BYTES_PAST_END`] zero bytes past the end are allowed.
    pub fn new(data: &'a [u8]) -> Self {
        let mut decoder = RangeDecoder {
            data,
            position: 0,
            bytes_past_end: 0,
            range: u32::MAX,
            code: 0,
        };
        for _ in 0..4 {
            let byte = decoder
                .next_byte()
                .expect("the first 4 bytes are within the bytes-past-end limit");
            decoder.code = (decoder.code << 8) | u32::from(byte);
        }
        decoder
    }

    /// Number of bytes read so far, counting the zero bytes read past the end.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Number of zero bytes read past the end of the input.
    pub fn bytes_past_end(&self) -> usize {
        self.bytes_past_end
    }

    /// Returns the value in `[0, TOTAL)` that lies in the subrange of the next symbol.
    pub fn decode_target(&self) -> Result<u32> {
        let target = self.code / (self.range >> PRECISION_BITS);
        if target >= TOTAL {
            return Err(Error::InvalidData(format!(
                "corrupt range coder stream at byte {}: target {target}, expected < {TOTAL}",
                self.position
            )));
        }
        Ok(target)
    }

    /// Removes the decoded symbol's subrange `[cum, cum + freq)` from the state.
    ///
    /// Returns `InvalidData` when the stream needs more than [`MAX_BYTES_PAST_END`] bytes past
    /// its end.
    ///
    /// # Panics
    ///
    /// Panics if the range is invalid or does not contain the target that
    /// [`decode_target`](Self::decode_target) returned, which is a bug of the caller.
    pub fn consume(&mut self, cum: u32, freq: u32) -> Result<()> {
        assert!(
            freq >= 1 && cum.checked_add(freq).is_some_and(|end| end <= TOTAL),
            "{}",
            symbol_range_message(cum, freq)
        );

        let r = self.range >> PRECISION_BITS;
        // r * (cum + freq) <= r * TOTAL <= range, so neither product overflows. The check is
        // equivalent to cum <= decode_target() < cum + freq.
        let code = self.code.checked_sub(r * cum);
        let code = match code {
            Some(code) if code < r * freq => code,
            _ => panic!(
                "symbol range [{cum}, {}) does not contain the decoded target",
                cum + freq
            ),
        };

        self.code = code;
        self.range = r * freq;

        // code < range is true before each shift, so the shifted code stays below 2**32.
        while self.range < TOP {
            self.code = (self.code << 8) | u32::from(self.next_byte()?);
            self.range <<= 8;
        }
        Ok(())
    }

    /// Returns `InvalidData` if the stream has bytes that decoding the symbols did not read.
    pub fn verify_end(&self) -> Result<()> {
        if self.position < self.data.len() {
            let unread = self.data.len() - self.position;
            return Err(Error::InvalidData(format!(
                "range coder stream has {unread} unread trailing bytes after the last symbol, expected 0"
            )));
        }
        Ok(())
    }

    fn next_byte(&mut self) -> Result<u8> {
        let position = self.position;
        self.position += 1;
        if let Some(&byte) = self.data.get(position) {
            return Ok(byte);
        }

        self.bytes_past_end += 1;
        if self.bytes_past_end > MAX_BYTES_PAST_END {
            return Err(Error::InvalidData(format!(
                "corrupt or truncated range coder stream: {} bytes, decoding needs more than {}",
                self.data.len(),
                self.data.len() + MAX_BYTES_PAST_END
            )));
        }
        Ok(0)
    }
}

/// Returns the symbol `s` with `cumfreq[s] <= target < cumfreq[s + 1]`.
///
/// `cumfreq` has 257 entries starting at 0 and ending at [`TOTAL`], and `target < TOTAL`.
pub fn symbol_from_target(cumfreq: &[u32; ALPHABET_SIZE + 1], target: u32) -> usize {
    // The number of entries <= target, minus one: numpy's searchsorted(side="right") - 1.
    cumfreq.partition_point(|&c| c <= target) - 1
}

/// Validates a frequency table and returns its 257 cumulative frequencies, starting at 0.
///
/// Returns a message naming the first problem for a table with a frequency below 1 or a sum
/// other than [`TOTAL`].
pub fn cumulative_frequencies(
    freqs: &[u32; ALPHABET_SIZE],
) -> std::result::Result<[u32; ALPHABET_SIZE + 1], String> {
    let smallest = freqs.iter().copied().min().unwrap_or(0);
    if smallest < 1 {
        return Err(format!(
            "frequency table has a frequency of {smallest}, expected every frequency >= 1"
        ));
    }

    let mut cumfreq = [0u32; ALPHABET_SIZE + 1];
    let mut sum: u64 = 0;
    for (symbol, &freq) in freqs.iter().enumerate() {
        sum += u64::from(freq);
        // Saturation only hides sums far above TOTAL, which the check below rejects anyway.
        cumfreq[symbol + 1] = u32::try_from(sum).unwrap_or(u32::MAX);
    }
    if sum != u64::from(TOTAL) {
        return Err(format!("frequency table sums to {sum}, expected {TOTAL}"));
    }
    Ok(cumfreq)
}

/// Encodes `symbols[i]` with frequency table `tables[i]` and returns the stream.
pub fn encode_symbols(
    tables: &[[u32; ALPHABET_SIZE]],
    symbols: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    if tables.len() != symbols.len() {
        return Err(format!(
            "got {} symbols but {} frequency tables, expected equal counts",
            symbols.len(),
            tables.len()
        ));
    }

    let mut encoder = RangeEncoder::new();
    for (table, &symbol) in tables.iter().zip(symbols) {
        let cumfreq = cumulative_frequencies(table)?;
        let symbol = usize::from(symbol);
        encoder.encode(cumfreq[symbol], table[symbol]);
    }
    Ok(encoder.finish())
}

/// Decodes one symbol per frequency table and checks that the stream ends there.
///
/// # Panics
///
/// Panics on an invalid frequency table.
pub fn decode_symbols(data: &[u8], tables: &[[u32; ALPHABET_SIZE]]) -> Result<Vec<u8>> {
    let mut decoder = RangeDecoder::new(data);
    let mut symbols = Vec::with_capacity(tables.len());
    for table in tables {
        let cumfreq = cumulative_frequencies(table).unwrap_or_else(|message| panic!("{message}"));
        let symbol = symbol_from_target(&cumfreq, decoder.decode_target()?);
        decoder.consume(cumfreq[symbol], table[symbol])?;
        symbols.push(symbol as u8);
    }

    decoder.verify_end()?;
    Ok(symbols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Fixed 64-bit LCG, the same as `golden_case` in tests/test_coder.py.
    struct Lcg(u64);

    impl Lcg {
        fn next_u32(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 32
        }
    }

    /// Builds a valid table that gives `symbol` exactly `freq` and the rest of TOTAL to the next symbol.
    fn peaked_table(symbol: usize, freq: u32) -> [u32; ALPHABET_SIZE] {
        let mut table = [1u32; ALPHABET_SIZE];
        table[symbol] = freq;
        let other = (symbol + 1) % ALPHABET_SIZE;
        let sum: u32 = table.iter().sum();
        table[other] += TOTAL - sum;
        table
    }

    /// Tables and symbols of `golden_case` in tests/test_coder.py: every tenth position uses a
    /// table with a frequency-1 symbol and codes that symbol.
    fn golden_case(length: usize) -> (Vec<[u32; ALPHABET_SIZE]>, Vec<u8>) {
        let mut lcg = Lcg(20240601);
        let mut tables = Vec::new();
        let mut symbols = Vec::new();
        for position in 0..length {
            if position % 10 == 9 {
                let symbol = (lcg.next_u32() % ALPHABET_SIZE as u64) as usize;
                tables.push(peaked_table(
                    (symbol + 1) % ALPHABET_SIZE,
                    TOTAL - ALPHABET_SIZE as u32 + 1,
                ));
                symbols.push(symbol as u8);
                continue;
            }

            let weights: Vec<u64> = (0..ALPHABET_SIZE)
                .map(|_| (lcg.next_u32() % 64).pow(3))
                .collect();
            let weight_sum: u64 = weights.iter().sum();
            let mut table = [0u32; ALPHABET_SIZE];
            for (entry, weight) in table.iter_mut().zip(&weights) {
                *entry = (1 + weight * u64::from(TOTAL - ALPHABET_SIZE as u32) / weight_sum) as u32;
            }
            // numpy's argmax: the first index of the maximum.
            let mut top = 0;
            for (index, &value) in table.iter().enumerate() {
                if value > table[top] {
                    top = index;
                }
            }
            let sum: u32 = table.iter().sum();
            table[top] += TOTAL - sum;

            let cumfreq = cumulative_frequencies(&table).unwrap();
            let target = (lcg.next_u32() % u64::from(TOTAL)) as u32;
            symbols.push(symbol_from_target(&cumfreq, target) as u8);
            tables.push(table);
        }
        (tables, symbols)
    }

    fn hex(data: &[u8]) -> String {
        data.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn empty_input_encodes_to_nothing() {
        assert_eq!(encode_symbols(&[], &[]).unwrap(), Vec::<u8>::new());
        assert_eq!(decode_symbols(&[], &[]).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn golden_small_stream() {
        let (tables, symbols) = golden_case(4);
        assert_eq!(symbols, vec![67, 146, 204, 200]);
        assert_eq!(hex(&encode_symbols(&tables, &symbols).unwrap()), "4b5bc116");
    }

    #[test]
    fn golden_long_stream() {
        let (tables, symbols) = golden_case(1500);
        let mut encoder = RangeEncoder::new();
        for (table, &symbol) in tables.iter().zip(&symbols) {
            let cumfreq = cumulative_frequencies(table).unwrap();
            encoder.encode(cumfreq[symbol as usize], table[symbol as usize]);
        }
        let (data, stats) = encoder.finish_with_stats();
        assert_eq!(stats.carry_count, 119);
        assert_eq!(stats.max_carry_run, 2);
        assert_eq!(data, encode_symbols(&tables, &symbols).unwrap());
        assert_eq!(data.len(), 1494);
        assert_eq!(
            hex(&Sha256::digest(&data)),
            "1057556248fd6d320953154454d3c2d4b264f46372c18245e863760158adef1c"
        );
        assert_eq!(decode_symbols(&data, &tables).unwrap(), symbols);
    }

    /// Encodes symbols that keep 2**32 inside the interval, then one symbol above it, so the
    /// carry turns the whole run of pending 0xFF bytes into 0x00 bytes.
    fn encode_carry_case(run_steps: usize) -> (Vec<u8>, CarryStats, Vec<(u32, u32)>) {
        let mut encoder = RangeEncoder::new();
        let mut pairs = vec![(0x8000, 0x100)];
        encoder.encode(0x8000, 0x100);

        for _ in 0..run_steps {
            let r = u64::from(encoder.range >> 16);
            let cum = (((1u64 << 32) - encoder.low) / r) as u32;
            pairs.push((cum, 1));
            encoder.encode(cum, 1);
        }

        let r = u64::from(encoder.range >> 16);
        let cum = ((1u64 << 32) - encoder.low).div_ceil(r) as u32;
        pairs.push((cum, TOTAL - cum));
        encoder.encode(cum, TOTAL - cum);
        let (data, stats) = encoder.finish_with_stats();
        (data, stats, pairs)
    }

    fn decode_pairs<'a>(data: &'a [u8], pairs: &[(u32, u32)]) -> RangeDecoder<'a> {
        let mut decoder = RangeDecoder::new(data);
        for &(cum, freq) in pairs {
            let target = decoder.decode_target().unwrap();
            assert!(
                cum <= target,
                "target {target} below [{cum}, {})",
                cum + freq
            );
            assert!(
                target < cum + freq,
                "target {target} above [{cum}, {})",
                cum + freq
            );
            decoder.consume(cum, freq).unwrap();
        }
        decoder.verify_end().unwrap();
        decoder
    }

    #[test]
    fn carry_through_ff_run() {
        let (data, stats, pairs) = encode_carry_case(10);
        assert_eq!(stats.carry_count, 1);
        assert_eq!(stats.max_carry_run, 20);

        let mut expected = vec![0x80];
        expected.extend([0u8; 20]);
        expected.push(0x01);
        assert_eq!(data, expected);
        decode_pairs(&data, &pairs);
    }

    #[test]
    fn carry_runs_round_trip() {
        for run_steps in [1, 2, 5, 50] {
            let (data, stats, pairs) = encode_carry_case(run_steps);
            assert!(stats.max_carry_run >= run_steps as u64);
            decode_pairs(&data, &pairs);
        }
    }

    #[test]
    fn first_byte_pending_ff() {
        // The top symbol first makes the very first shifted-out byte 0xFF, held with no cache.
        let pairs = [(TOTAL - 1, 1), (TOTAL - 1, 1), (0, 1), (12345, 3)];
        let mut encoder = RangeEncoder::new();
        for &(cum, freq) in &pairs {
            encoder.encode(cum, freq);
        }
        let data = encoder.finish();
        assert_eq!(data[0], 0xFF);
        decode_pairs(&data, &pairs);
    }

    #[test]
    fn frequency_one_run_costs_two_bytes() {
        let table = peaked_table(128, TOTAL - ALPHABET_SIZE as u32 + 1);
        let tables = vec![table; 2000];
        let symbols = vec![0u8; 2000];
        let data = encode_symbols(&tables, &symbols).unwrap();
        assert!(
            data.len() >= 4000 && data.len() <= 4004,
            "{} bytes",
            data.len()
        );
        assert_eq!(decode_symbols(&data, &tables).unwrap(), symbols);
    }

    #[test]
    fn decoder_reads_exactly_the_stream() {
        let (tables, symbols) = golden_case(300);
        let data = encode_symbols(&tables, &symbols).unwrap();
        let pairs: Vec<(u32, u32)> = tables
            .iter()
            .zip(&symbols)
            .map(|(table, &symbol)| {
                let cumfreq = cumulative_frequencies(table).unwrap();
                (cumfreq[symbol as usize], table[symbol as usize])
            })
            .collect();

        let decoder = decode_pairs(&data, &pairs);
        assert!(decoder.bytes_past_end() <= MAX_BYTES_PAST_END);
        assert_eq!(decoder.position(), data.len() + decoder.bytes_past_end());
    }

    #[test]
    fn extra_trailing_bytes_rejected() {
        let (tables, symbols) = golden_case(100);
        let data = encode_symbols(&tables, &symbols).unwrap();
        // Up to MAX_BYTES_PAST_END appended bytes can take the place of trimmed zero bytes, so
        // only longer additions are certain to be left unread.
        for extra in [vec![0u8; 5], vec![1u8; 5], vec![0xFFu8; 9]] {
            let mut longer = data.clone();
            longer.extend(&extra);
            let message = decode_symbols(&longer, &tables).unwrap_err().to_string();
            assert!(message.contains("unread trailing bytes"), "{message}");
        }
    }

    #[test]
    fn truncated_stream_never_decodes_right() {
        let (tables, symbols) = golden_case(200);
        let data = encode_symbols(&tables, &symbols).unwrap();
        for cut in 0..data.len() {
            match decode_symbols(&data[..cut], &tables) {
                Err(error) => assert!(error.is_invalid_data()),
                Ok(decoded) => assert_ne!(decoded, symbols, "cut to {cut} bytes decoded right"),
            }
        }
    }

    #[test]
    fn stream_cut_to_nothing_raises() {
        let (tables, symbols) = golden_case(200);
        assert!(encode_symbols(&tables, &symbols).unwrap().len() > MAX_BYTES_PAST_END);
        let message = decode_symbols(&[], &tables).unwrap_err().to_string();
        assert!(message.contains("truncated"), "{message}");
    }

    #[test]
    fn target_out_of_range_raises() {
        let decoder = RangeDecoder::new(&[0xFF; 4]);
        let message = decoder.decode_target().unwrap_err().to_string();
        assert_eq!(
            message,
            "corrupt range coder stream at byte 4: target 65537, expected < 65536"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let (tables, _) = golden_case(100);
        let mut lcg = Lcg(99);
        for _ in 0..200 {
            let length = (lcg.next_u32() % 200) as usize;
            let garbage: Vec<u8> = (0..length).map(|_| lcg.next_u32() as u8).collect();
            if let Ok(decoded) = decode_symbols(&garbage, &tables) {
                assert_eq!(decoded.len(), tables.len());
            }
        }
    }

    #[test]
    fn uniform_table_costs_one_byte_per_symbol() {
        let uniform = [TOTAL / ALPHABET_SIZE as u32; ALPHABET_SIZE];
        let symbols: Vec<u8> = (0..4 * ALPHABET_SIZE).map(|i| i as u8).collect();
        let tables = vec![uniform; symbols.len()];
        let data = encode_symbols(&tables, &symbols).unwrap();
        assert!(data.len() >= symbols.len());
        assert!(data.len() <= symbols.len() + MAX_BYTES_PAST_END);
        assert_eq!(decode_symbols(&data, &tables).unwrap(), symbols);
    }

    #[test]
    fn symbol_from_target_boundaries() {
        let (tables, _) = golden_case(1);
        let cumfreq = cumulative_frequencies(&tables[0]).unwrap();
        for symbol in 0..ALPHABET_SIZE {
            assert_eq!(symbol_from_target(&cumfreq, cumfreq[symbol]), symbol);
            assert_eq!(
                symbol_from_target(&cumfreq, cumfreq[symbol + 1] - 1),
                symbol
            );
        }
    }

    #[test]
    fn invalid_tables_rejected() {
        let short_sum = [255u32; ALPHABET_SIZE];
        let message = cumulative_frequencies(&short_sum).unwrap_err();
        assert!(message.contains("sums to"), "{message}");

        let mut zero = [256u32; ALPHABET_SIZE];
        zero[0] = 0;
        zero[1] = 512;
        let message = cumulative_frequencies(&zero).unwrap_err();
        assert!(message.contains("frequency of 0"), "{message}");
    }

    #[test]
    #[should_panic(expected = "invalid symbol range")]
    fn encode_rejects_range_past_total() {
        RangeEncoder::new().encode(TOTAL - 1, 2);
    }

    #[test]
    #[should_panic(expected = "does not contain")]
    fn consume_rejects_wrong_symbol() {
        let uniform = [256u32; ALPHABET_SIZE];
        let data = encode_symbols(&[uniform], &[200]).unwrap();
        let mut decoder = RangeDecoder::new(&data);
        assert_eq!(decoder.decode_target().unwrap() / 256, 200);
        let _ = decoder.consume(0, 256);
    }
}
