//! Retrieval features: predictions of the next byte from the bytes already coded, as
//! `nnzip/retrieval.py` defines them (the rules are in `docs/retrieval.md`).
//!
//! A retriever reads the streams of one container in coding order: all streams advance
//! together, and within a position stream 0 comes first. A feature code packs a bucket and the
//! predicted byte as `bucket * 256 + byte`; code 0 means no match. [`HistoryRetriever`] matches
//! the container's own history (buckets 1 to 15), [`IndexRetriever`] searches an external
//! index (buckets 16 to 31), and retrieval "history+index" runs both.

use rayon::prelude::*;

use crate::config::Retrieval;
use crate::error::{Error, Result};
use crate::index::{Index, MAX_MATCH};

/// Context bytes hashed; a match must agree on at least this many.
pub const ORDER: usize = 6;

/// log2 of the number of table entries.
pub const TABLE_BITS: u32 = 20;

/// Bytes compared backwards when a match starts.
pub const VERIFY_LIMIT: usize = 32;

/// Match lengths saturate here.
pub const MAX_LENGTH: u32 = 65535;

/// Length buckets; bucket 0 is "no match", bucket b >= 1 contains the lengths of bit length b.
pub const BUCKETS: usize = 16;

/// Buckets of index matches, BUCKETS to BUCKETS + 15: 4 length classes times 4 shares of the
/// top continuation.
pub const INDEX_BUCKETS: usize = 16;

/// Index matches shorter than this give no code.
pub const MIN_INDEX_MATCH: usize = 4;

/// 2**64 divided by the golden ratio, odd.
const HASH_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

const CONTEXT_MASK: u64 = (1 << (8 * ORDER)) - 1;

/// Marks an empty table entry or a stream without a match.
const NONE: usize = usize::MAX;

/// Returns the bucket of a match length (0 for no match).
pub fn bucket_of(length: u32) -> u32 {
    (u32::BITS - length.leading_zeros()).min(BUCKETS as u32 - 1)
}

/// Returns the number of buckets, and so of retrieval biases, of a retrieval kind.
pub fn bucket_count(kind: Retrieval) -> usize {
    match kind {
        Retrieval::HistoryIndex => BUCKETS + INDEX_BUCKETS,
        Retrieval::None | Retrieval::History => BUCKETS,
    }
}

/// Returns the bucket of an index match of `length` bytes (4 to MAX_MATCH) whose top
/// continuation came `top` times out of `total`.
pub fn index_bucket(length: usize, total: usize, top: usize) -> u32 {
    let length_class = match length {
        ..8 => 0,
        8..16 => 1,
        16..32 => 2,
        _ => 3,
    };
    // top <= total, so the share is 0 to 3.
    (BUCKETS + 4 * length_class + (4 * top) / (total + 1)) as u32
}

fn context_hash(context: u64) -> usize {
    (context.wrapping_mul(HASH_MULTIPLIER) >> (64 - TABLE_BITS)) as usize
}

/// The match model over the bytes coded so far in the streams of one container.
pub struct HistoryRetriever {
    starts: Vec<usize>,
    buffer: Vec<u8>,
    table: Vec<usize>,
    coded: Vec<usize>,
    context: Vec<u64>,
    /// Global offset of the predicted byte per stream, or NONE.
    pointer: Vec<usize>,
    /// End offset of the stream that contains the pointer.
    end: Vec<usize>,
    length: Vec<u32>,
}

impl HistoryRetriever {
    /// Returns a retriever for streams of `lengths` bytes. The table takes 2**TABLE_BITS
    /// words and the buffer the streams' total length; nothing else grows.
    pub fn new(lengths: &[usize]) -> Self {
        let mut starts = Vec::with_capacity(lengths.len() + 1);
        let mut total = 0usize;
        starts.push(0);
        for &length in lengths {
            total += length;
            starts.push(total);
        }
        let n = lengths.len();
        HistoryRetriever {
            starts,
            buffer: vec![0; total],
            table: vec![NONE; 1 << TABLE_BITS],
            coded: vec![0; n],
            context: vec![0; n],
            pointer: vec![NONE; n],
            end: vec![0; n],
            length: vec![0; n],
        }
    }

    /// Returns the code for the next byte of `stream`; call once per byte, before `push`.
    ///
    /// Without a match, the lookup happens here rather than at the last push, so it finds
    /// every byte coded before this one, the other streams' bytes of this position too.
    pub fn feature(&mut self, stream: usize) -> u32 {
        if self.pointer[stream] == NONE && self.coded[stream] >= ORDER {
            self.start_match(stream, self.starts[stream] + self.coded[stream] - 1);
        }
        match self.pointer[stream] {
            NONE => 0,
            pointer => bucket_of(self.length[stream]) * 256 + u32::from(self.buffer[pointer]),
        }
    }

    /// Records that `byte` was coded as the next byte of `stream`, and updates the match and
    /// the table.
    pub fn push(&mut self, stream: usize, byte: u8) {
        let t = self.coded[stream];
        let offset = self.starts[stream] + t;
        self.buffer[offset] = byte;

        // Follow the match while it predicts right and its stream goes on.
        let pointer = self.pointer[stream];
        if pointer != NONE && self.buffer[pointer] == byte && pointer + 1 < self.end[stream] {
            self.pointer[stream] = pointer + 1;
            self.length[stream] = (self.length[stream] + 1).min(MAX_LENGTH);
        } else {
            self.pointer[stream] = NONE;
            self.length[stream] = 0;
        }

        // The context before this byte now has a coded continuation: this byte.
        if t >= ORDER {
            self.table[context_hash(self.context[stream])] = offset;
        }
        self.context[stream] = ((self.context[stream] << 8) | u64::from(byte)) & CONTEXT_MASK;
        self.coded[stream] = t + 1;
    }

    /// Looks up the context that ends at offset `last` and starts a match if it checks out.
    fn start_match(&mut self, stream: usize, last: usize) {
        let candidate = self.table[context_hash(self.context[stream])];
        if candidate == NONE {
            return;
        }
        // Compare backwards from the bytes before the candidate and from `last`, within
        // both streams. `starts` is sorted, so the owner is the last start <= candidate.
        let owner = self.starts.partition_point(|&start| start <= candidate) - 1;
        let limit = VERIFY_LIMIT
            .min(candidate - self.starts[owner])
            .min(last + 1 - self.starts[stream]);
        let mut length = 0;
        while length < limit && self.buffer[candidate - 1 - length] == self.buffer[last - length] {
            length += 1;
        }
        if length >= ORDER {
            self.pointer[stream] = candidate;
            self.end[stream] = self.starts[owner + 1];
            self.length[stream] = length as u32;
        }
    }
}

/// The longest match of each stream's last bytes in an external index.
///
/// It reads only each stream's own bytes, so the order of the streams does not matter to it.
pub struct IndexRetriever<'a> {
    index: &'a Index,
    /// The last MAX_MATCH bytes of each stream, oldest first. The first `filled` are valid.
    context: Vec<[u8; MAX_MATCH]>,
    filled: Vec<usize>,
    /// The match length found before the stream's last byte, 0 at the start.
    length: Vec<usize>,
}

impl<'a> IndexRetriever<'a> {
    /// Returns a retriever of `streams` streams with empty contexts.
    pub fn new(index: &'a Index, streams: usize) -> Self {
        IndexRetriever {
            index,
            context: vec![[0; MAX_MATCH]; streams],
            filled: vec![0; streams],
            length: vec![0; streams],
        }
    }

    /// Returns the code for the next byte of `stream`; call once per byte, before `push`.
    ///
    /// The longest match before this byte is at most one longer than the one before the
    /// previous byte, so the search starts there and shortens until the context occurs
    /// followed by a byte.
    pub fn feature(&mut self, stream: usize) -> u32 {
        let filled = self.filled[stream];
        let context = &self.context[stream][..filled];
        let mut length = (self.length[stream] + 1).min(filled);
        let mut interval = (0, 0);
        while length > 0 {
            let (lo, hi) = self.index.interval(&context[filled - length..]);
            if self.index.followed_by_a_byte(lo, hi, length) {
                interval = (lo, hi);
                break;
            }
            length -= 1;
        }
        self.length[stream] = length;
        if length < MIN_INDEX_MATCH {
            return 0;
        }
        let next = self.index.continuations(length, interval.0, interval.1);
        index_bucket(length, next.total, next.count) * 256 + u32::from(next.top)
    }

    /// Records that `byte` was coded as the next byte of `stream`.
    pub fn push(&mut self, stream: usize, byte: u8) {
        let context = &mut self.context[stream];
        let filled = &mut self.filled[stream];
        if *filled < MAX_MATCH {
            context[*filled] = byte;
            *filled += 1;
        } else {
            context.copy_within(1.., 0);
            context[MAX_MATCH - 1] = byte;
        }
    }
}

/// The retriever of a model with retrieval: the history alone, or the history with the index
/// as the fallback.
pub enum Retriever<'a> {
    History(HistoryRetriever),
    /// Both retrievers read every byte and keep their own state. The history code counts
    /// where it is nonzero, else the index code.
    HistoryIndex(HistoryRetriever, IndexRetriever<'a>),
}

impl<'a> Retriever<'a> {
    /// Returns the retriever of `kind` for streams of `lengths` bytes, or None for
    /// `Retrieval::None`.
    ///
    /// Returns `InvalidArgument` for "history+index" without an index.
    pub fn new(
        kind: Retrieval,
        lengths: &[usize],
        index: Option<&'a Index>,
    ) -> Result<Option<Retriever<'a>>> {
        Ok(match kind {
            Retrieval::None => None,
            Retrieval::History => Some(Retriever::History(HistoryRetriever::new(lengths))),
            Retrieval::HistoryIndex => {
                let index = index.ok_or_else(missing_index)?;
                Some(Retriever::HistoryIndex(
                    HistoryRetriever::new(lengths),
                    IndexRetriever::new(index, lengths.len()),
                ))
            }
        })
    }

    /// Returns the code for the next byte of `stream`; call once per byte, before `push`.
    pub fn feature(&mut self, stream: usize) -> u32 {
        match self {
            Retriever::History(history) => history.feature(stream),
            Retriever::HistoryIndex(history, index) => {
                // Both run, because the index retriever's search starts from its last match.
                let code = history.feature(stream);
                let fallback = index.feature(stream);
                if code != 0 {
                    code
                } else {
                    fallback
                }
            }
        }
    }

    /// Records that `byte` was coded as the next byte of `stream`.
    pub fn push(&mut self, stream: usize, byte: u8) {
        match self {
            Retriever::History(history) => history.push(stream, byte),
            Retriever::HistoryIndex(history, index) => {
                history.push(stream, byte);
                index.push(stream, byte);
            }
        }
    }
}

fn missing_index() -> Error {
    Error::InvalidArgument(
        "retrieval 'history+index' needs an index; load the model with Model::load, which \
         reads it"
            .to_owned(),
    )
}

/// Returns the code of every byte of `streams` for retrieval `kind`, computed in coding
/// order; all codes are 0 for `Retrieval::None`.
///
/// The index codes of each stream depend only on that stream, so they are computed in
/// parallel on the current rayon pool and merged with the history codes. That gives the codes
/// of [`Retriever`] fed in coding order, which the decoder uses.
pub fn stream_codes(
    kind: Retrieval,
    streams: &[&[u8]],
    index: Option<&Index>,
) -> Result<Vec<Vec<u32>>> {
    match kind {
        Retrieval::None => Ok(streams.iter().map(|stream| vec![0; stream.len()]).collect()),
        Retrieval::History => Ok(history_codes(streams)),
        Retrieval::HistoryIndex => {
            let index = index.ok_or_else(missing_index)?;
            let mut codes = history_codes(streams);
            let fallbacks: Vec<Vec<u32>> = streams
                .par_iter()
                .map(|stream| index_codes(index, stream))
                .collect();
            for (stream_codes, stream_fallbacks) in codes.iter_mut().zip(fallbacks) {
                for (code, fallback) in stream_codes.iter_mut().zip(stream_fallbacks) {
                    if *code == 0 {
                        *code = fallback;
                    }
                }
            }
            Ok(codes)
        }
    }
}

/// Returns the history code of every byte of `streams`, computed in coding order.
fn history_codes(streams: &[&[u8]]) -> Vec<Vec<u32>> {
    let lengths: Vec<usize> = streams.iter().map(|stream| stream.len()).collect();
    let mut retriever = HistoryRetriever::new(&lengths);
    let mut codes: Vec<Vec<u32>> = lengths.iter().map(|&length| vec![0; length]).collect();
    let longest = lengths.iter().copied().max().unwrap_or(0);
    for position in 0..longest {
        for (index, (stream, stream_codes)) in streams.iter().zip(codes.iter_mut()).enumerate() {
            if let Some(&byte) = stream.get(position) {
                stream_codes[position] = retriever.feature(index);
                retriever.push(index, byte);
            }
        }
    }
    codes
}

/// Returns the index code of every byte of one stream.
fn index_codes(index: &Index, stream: &[u8]) -> Vec<u32> {
    let mut retriever = IndexRetriever::new(index, 1);
    stream
        .iter()
        .map(|&byte| {
            let code = retriever.feature(0);
            retriever.push(0, byte);
            code
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_random::Random;

    #[test]
    fn buckets_follow_bit_length() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(6), 3);
        assert_eq!(bucket_of(8), 4);
        assert_eq!(bucket_of(MAX_LENGTH), (BUCKETS - 1) as u32);
    }

    #[test]
    fn aligned_repeat_in_next_stream_is_predicted() {
        let first: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let codes = history_codes(&[&first, &first]);

        let predicted = codes[1]
            .iter()
            .zip(&first)
            .filter(|(&code, &byte)| code >= 256 && code % 256 == u32::from(byte))
            .count();
        assert!(predicted > 4000, "{predicted} of 4096 bytes predicted");
        assert!(codes[0].iter().take(ORDER + 1).all(|&code| code == 0));
    }

    #[test]
    fn repeat_within_stream_is_predicted() {
        let stream = b"abcdefghabcdefgh";
        let codes = history_codes(&[stream]);
        // The second "abcdefgh" matches from its 7th byte on.
        assert_eq!(codes[0][14] % 256, u32::from(b'g'));
        assert!(codes[0][15] >= 256);
    }

    fn index_of(corpus: &[u8]) -> Index {
        Index::from_bytes(crate::index::build(corpus).unwrap(), "test.nzi").unwrap()
    }

    /// Returns the index code of the byte after `context` by exhaustive search: the code of
    /// the longest suffix of the context, at most MAX_MATCH bytes, that the corpus contains
    /// followed by a byte.
    fn brute_code(corpus: &[u8], context: &[u8]) -> u32 {
        for length in (1..=MAX_MATCH.min(context.len())).rev() {
            let pattern = &context[context.len() - length..];
            let mut counts = [0usize; 256];
            for offset in 0..corpus.len().saturating_sub(length) {
                if corpus[offset..].starts_with(pattern) {
                    counts[usize::from(corpus[offset + length])] += 1;
                }
            }
            let total: usize = counts.iter().sum();
            if total == 0 {
                continue;
            }
            if length < MIN_INDEX_MATCH {
                return 0;
            }
            let count = *counts.iter().max().unwrap();
            let top = counts.iter().position(|&c| c == count).unwrap() as u32;
            return index_bucket(length, total, count) * 256 + top;
        }
        0
    }

    #[test]
    fn index_codes_match_exhaustive_search() {
        let mut random = Random(11);
        for round in 0..60 {
            let alphabet = [2, 3, 3, 5][round % 4];
            let corpus_length = 1 + (random.next() % 300) as usize;
            let corpus = random.text(corpus_length, alphabet);
            let text_length = (random.next() % 120) as usize;
            let text = random.text(text_length, alphabet);
            let index = index_of(&corpus);

            let codes = index_codes(&index, &text);
            for (t, &code) in codes.iter().enumerate() {
                assert_eq!(
                    code,
                    brute_code(&corpus, &text[..t]),
                    "round {round}, byte {t}"
                );
            }
        }
    }

    #[test]
    fn long_repeat_reaches_top_length_class() {
        let corpus = Random(1).bytes(5000);
        let index = index_of(&corpus);
        let text = &corpus[1000..1100];

        let codes = index_codes(&index, text);

        // Length 32, one continuation out of one.
        assert_eq!(codes[MAX_MATCH] >> 8, (BUCKETS + 4 * 3 + 2) as u32);
        assert!(codes[..MIN_INDEX_MATCH].iter().all(|&code| code == 0));
        for (t, (&code, &byte)) in codes.iter().zip(text).enumerate().skip(MIN_INDEX_MATCH) {
            assert_eq!(code & 255, u32::from(byte), "byte {t}");
        }
    }

    #[test]
    fn index_buckets_follow_length_class_and_share() {
        assert_eq!(index_bucket(4, 1, 1), 16 + 2);
        assert_eq!(index_bucket(7, 3, 0), 16);
        assert_eq!(index_bucket(8, 7, 7), 16 + 4 + 3);
        assert_eq!(index_bucket(16, 4, 2), 16 + 8 + 1);
        assert_eq!(index_bucket(31, 100, 50), 16 + 8 + 1);
        assert_eq!(index_bucket(MAX_MATCH, 1000, 1000), 31);
        assert_eq!(bucket_count(Retrieval::History), 16);
        assert_eq!(bucket_count(Retrieval::HistoryIndex), 32);
    }

    /// Codes of the retriever fed in coding order, as the decoder computes them.
    fn sequential_codes(kind: Retrieval, streams: &[&[u8]], index: &Index) -> Vec<Vec<u32>> {
        let lengths: Vec<usize> = streams.iter().map(|stream| stream.len()).collect();
        let mut retriever = Retriever::new(kind, &lengths, Some(index))
            .unwrap()
            .unwrap();
        let mut codes: Vec<Vec<u32>> = lengths.iter().map(|&length| vec![0; length]).collect();
        for position in 0..lengths.iter().copied().max().unwrap_or(0) {
            for (i, (stream, stream_codes)) in streams.iter().zip(codes.iter_mut()).enumerate() {
                if let Some(&byte) = stream.get(position) {
                    stream_codes[position] = retriever.feature(i);
                    retriever.push(i, byte);
                }
            }
        }
        codes
    }

    #[test]
    fn combined_codes_match_coding_order() {
        let mut random = Random(3);
        let corpus = random.bytes(3000);
        let index = index_of(&corpus);
        let block = random.bytes(2000);
        // Stream 0: a piece of the corpus, then new bytes that stream 1 coded 1000 positions
        // earlier, which only the history has seen. Stream 1 ends with a piece of the
        // corpus, and stream 2 is a short piece that stream 0 repeats up to position 400.
        let first = [&corpus[..1000], &block[..]].concat();
        let second = [&block[..], &corpus[2000..2500]].concat();
        let third = corpus[100..400].to_vec();
        let streams: Vec<&[u8]> = vec![&first, &second, &third];

        let codes = stream_codes(Retrieval::HistoryIndex, &streams, Some(&index)).unwrap();
        assert_eq!(
            codes,
            sequential_codes(Retrieval::HistoryIndex, &streams, &index)
        );

        let is_index = |code: &u32| code >> 8 >= BUCKETS as u32;
        let is_history = |code: &u32| (1..BUCKETS as u32).contains(&(code >> 8));
        assert!(codes[0][410..1000].iter().all(is_index));
        let from_history = codes[0][1100..]
            .iter()
            .filter(|code| is_history(code))
            .count();
        assert!(
            from_history > 1800,
            "{from_history} of 1900 codes from the history"
        );
        assert!(codes[1][2100..].iter().all(is_index));
    }

    #[test]
    fn history_kind_ignores_index() {
        let corpus = Random(5).bytes(500);
        let index = index_of(&corpus);
        let streams: Vec<&[u8]> = vec![&corpus[..300], &corpus[..300]];
        let codes = stream_codes(Retrieval::History, &streams, Some(&index)).unwrap();
        assert_eq!(codes, history_codes(&streams));
        assert_eq!(
            codes,
            sequential_codes(Retrieval::History, &streams, &index)
        );
    }

    #[test]
    fn no_retrieval_gives_zero_codes() {
        let codes = stream_codes(Retrieval::None, &[b"abc", b"de"], None).unwrap();
        assert_eq!(codes, vec![vec![0; 3], vec![0; 2]]);
        assert!(Retriever::new(Retrieval::None, &[3, 2], None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn combined_without_index_rejected() {
        let error = stream_codes(Retrieval::HistoryIndex, &[b"abc"], None).unwrap_err();
        assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
        assert!(Retriever::new(Retrieval::HistoryIndex, &[3], None).is_err());
    }
}
