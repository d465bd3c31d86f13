//! The external index of a retrieval model: a reference corpus and its suffix array, searched
//! for the longest match of a stream's last bytes, as `nnzip/index.py` defines it.
//!
//! An index file (`.nzi`) contains a corpus of n bytes and its suffix array. The array is
//! sorted by the first [`MAX_MATCH`] + 1 bytes of each suffix (a suffix that is a prefix of
//! another sorts first), with ties in offset order, so one corpus gives one file. The index id is the first 16 bytes
//! of the file's sha256. `docs/retrieval.md` specifies the layout and the search rules.

use std::cmp::Ordering;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::pyrepr::bytes_repr;

pub const MAGIC: [u8; 4] = *b"NZI\x1a";
pub const VERSION: u8 = 1;

/// The maximum match length searched, in bytes (K in `docs/retrieval.md`).
pub const MAX_MATCH: usize = 32;

/// Suffix array entries are u32, and this bound keeps every offset + MAX_MATCH + 1 below 2**32.
pub const MAX_CORPUS: u64 = (1 << 31) - 1;

pub const ID_SIZE: usize = 16;

/// Magic, version, max match, reserved (u16) and corpus length (u64).
pub const HEADER_SIZE: usize = 16;

/// Bytes per suffix array entry (u32).
const ENTRY_SIZE: usize = 4;

/// Intervals up to this size are counted entry by entry, larger ones run by run.
const SCAN_LIMIT: usize = 16;

/// The bytes that follow a pattern in the corpus: how many there are, the most frequent one
/// (the smallest byte value on ties) and how often it occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuations {
    pub total: usize,
    pub top: u8,
    pub count: usize,
}

/// A loaded and validated index.
pub struct Index {
    /// The first 16 bytes of the sha256 of the whole file.
    pub id: [u8; ID_SIZE],
    /// The whole file. The corpus and the suffix array are read from it in place, so the
    /// index takes its file size in memory.
    file: Vec<u8>,
    /// The corpus length n.
    n: usize,
}

impl Index {
    /// Reads and validates the index file at `path`. Returns `ModelLoad` on any problem.
    pub fn load(path: &Path) -> Result<Index> {
        let file = std::fs::read(path).map_err(|error| {
            Error::ModelLoad(format!("cannot read index {}: {error}", path.display()))
        })?;
        Index::from_bytes(file, &path.display().to_string())
    }

    /// Validates the bytes of an index file. `name` is only used in messages.
    pub fn from_bytes(file: Vec<u8>, name: &str) -> Result<Index> {
        let n = check_header(&file, name)?;
        let index = Index {
            id: index_id(&file),
            file,
            n,
        };
        index.check_suffixes(name)?;
        Ok(index)
    }

    /// Returns the corpus.
    pub fn corpus(&self) -> &[u8] {
        &self.file[HEADER_SIZE..HEADER_SIZE + self.n]
    }

    /// Returns the corpus offset at position `i` of the suffix array.
    fn suffix(&self, i: usize) -> usize {
        let start = HEADER_SIZE + self.n + ENTRY_SIZE * i;
        let bytes: [u8; ENTRY_SIZE] = self.file[start..start + ENTRY_SIZE]
            .try_into()
            .expect("the entry has 4 bytes");
        u32::from_le_bytes(bytes) as usize
    }

    /// Returns the first `size` bytes of the suffix at `offset`, fewer at the corpus end.
    fn key(&self, offset: usize, size: usize) -> &[u8] {
        let corpus = self.corpus();
        &corpus[offset..corpus.len().min(offset + size)]
    }

    /// Returns the suffix array range `lo..hi` of the suffixes that start with `pattern`.
    ///
    /// `pattern` has at most [`MAX_MATCH`] bytes, so the order of the first `pattern.len()`
    /// bytes is the order of the array.
    pub fn interval(&self, pattern: &[u8]) -> (usize, usize) {
        let size = pattern.len();
        let lo = self.partition(0, self.n, |offset| self.key(offset, size) < pattern);
        let hi = self.partition(lo, self.n, |offset| self.key(offset, size) <= pattern);
        (lo, hi)
    }

    /// Returns whether some suffix in `lo..hi`, all of which start with a pattern of `size`
    /// bytes, has a byte after the pattern.
    pub fn followed_by_a_byte(&self, lo: usize, hi: usize, size: usize) -> bool {
        // Only one suffix can end right after the pattern: the corpus's last `size` bytes.
        hi - lo > 1 || (hi - lo == 1 && self.suffix(lo) + size < self.n)
    }

    /// Counts the bytes that follow a pattern of `size` bytes at the suffixes `lo..hi`, all of
    /// which start with it.
    pub fn continuations(&self, size: usize, lo: usize, hi: usize) -> Continuations {
        let mut counts = [0usize; 256];
        let corpus = self.corpus();
        if hi - lo <= SCAN_LIMIT {
            for i in lo..hi {
                if let Some(&byte) = corpus.get(self.suffix(i) + size) {
                    counts[usize::from(byte)] += 1;
                }
            }
        } else {
            // The suffix that ends with the pattern sorts first. After it, the next bytes are
            // sorted, so each byte value is one run, found by binary search.
            let mut i = lo;
            if self.suffix(i) + size == self.n {
                i += 1;
            }
            while i < hi {
                let byte = corpus[self.suffix(i) + size];
                let end = self.partition(i, hi, |offset| corpus[offset + size] <= byte);
                counts[usize::from(byte)] = end - i;
                i = end;
            }
        }
        top_continuation(&counts)
    }

    /// Returns the first position in `lo..hi` whose suffix fails `before`, which is true for
    /// a prefix of that range.
    fn partition(&self, mut lo: usize, mut hi: usize, before: impl Fn(usize) -> bool) -> usize {
        while lo < hi {
            let middle = lo + (hi - lo) / 2;
            if before(self.suffix(middle)) {
                lo = middle + 1;
            } else {
                hi = middle;
            }
        }
        lo
    }

    /// Checks that the suffix array is a permutation of the offsets, in the order of
    /// [`build`].
    fn check_suffixes(&self, name: &str) -> Result<()> {
        let n = self.n;
        let width = MAX_MATCH + 1;
        let mut seen = vec![false; n];
        for i in 0..n {
            let offset = self.suffix(i);
            if offset >= n || seen[offset] {
                return Err(Error::ModelLoad(format!(
                    "{name}: suffix array entry {i} is {offset}, not a new offset below {n}; \
                     rebuild the index"
                )));
            }
            seen[offset] = true;
            if i == 0 {
                continue;
            }
            let previous = self.suffix(i - 1);
            let order = self
                .key(offset, width)
                .cmp(self.key(previous, width))
                .then(offset.cmp(&previous));
            if order == Ordering::Less {
                return Err(Error::ModelLoad(format!(
                    "{name}: suffix array entry {i} is out of order; rebuild the index"
                )));
            }
        }
        Ok(())
    }
}

/// Shows the id and the corpus length, not the megabytes of the file.
impl std::fmt::Debug for Index {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Index")
            .field("id", &id_hex(&self.id))
            .field("corpus_length", &self.n)
            .finish()
    }
}

/// Checks the header and the file size, and returns the corpus length.
fn check_header(file: &[u8], name: &str) -> Result<usize> {
    if file.len() < HEADER_SIZE {
        return Err(Error::ModelLoad(format!(
            "{name} is not an nnzip index: {} bytes, expected at least {HEADER_SIZE}",
            file.len()
        )));
    }

    let magic = &file[..4];
    if magic != MAGIC {
        return Err(Error::ModelLoad(format!(
            "{name} is not an nnzip index: magic {}, expected {}",
            bytes_repr(magic),
            bytes_repr(&MAGIC)
        )));
    }

    let version = file[4];
    if version != VERSION {
        return Err(Error::ModelLoad(format!(
            "{name} has index version {version}; this nnzip reads version {VERSION}"
        )));
    }

    let max_match = file[5];
    let reserved = u16::from_le_bytes([file[6], file[7]]);
    if usize::from(max_match) != MAX_MATCH || reserved != 0 {
        return Err(Error::ModelLoad(format!(
            "{name} has max match {max_match} and reserved field {reserved}; \
             expected {MAX_MATCH} and 0"
        )));
    }

    let n = u64::from_le_bytes(file[8..16].try_into().expect("8 bytes"));
    // u128, because 5 * n overflows u64 for a corrupted length.
    let expected = HEADER_SIZE as u128 + 5 * u128::from(n);
    if !(1..=MAX_CORPUS).contains(&n) || file.len() as u128 != expected {
        return Err(Error::ModelLoad(format!(
            "{name} declares a corpus of {n} bytes, so it should have {expected} bytes, \
             but it has {}",
            file.len()
        )));
    }
    Ok(n as usize)
}

/// Returns the most frequent byte of `counts`, the smallest on ties, and 0 when all are 0.
fn top_continuation(counts: &[usize; 256]) -> Continuations {
    let total = counts.iter().sum();
    let mut top = 0u8;
    for (byte, &count) in (0u8..=255).zip(counts) {
        if count > counts[usize::from(top)] {
            top = byte;
        }
    }
    Continuations {
        total,
        top,
        count: counts[usize::from(top)],
    }
}

/// Returns the 16-byte id of an index file's bytes.
pub fn index_id(file: &[u8]) -> [u8; ID_SIZE] {
    let digest = Sha256::digest(file);
    digest[..ID_SIZE].try_into().expect("sha256 has 32 bytes")
}

/// Formats an index id as 32 lower-case hex digits, as configs and messages write it.
pub fn id_hex(id: &[u8; ID_SIZE]) -> String {
    id.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Returns the index file of `corpus`, byte for byte as `nnzip index build` writes it.
///
/// Returns `InvalidArgument` for an empty corpus or one of more than [`MAX_CORPUS`] bytes.
pub fn build(corpus: &[u8]) -> Result<Vec<u8>> {
    let n = corpus.len();
    if n == 0 || n as u64 > MAX_CORPUS {
        return Err(Error::InvalidArgument(format!(
            "index corpus of {n} bytes; expected 1 to {MAX_CORPUS} bytes"
        )));
    }
    let width = MAX_MATCH + 1;
    let key = |offset: usize| &corpus[offset..n.min(offset + width)];
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&a, &b| key(a as usize).cmp(key(b as usize)).then(a.cmp(&b)));

    let mut file = Vec::with_capacity(HEADER_SIZE + 5 * n);
    file.extend_from_slice(&MAGIC);
    file.push(VERSION);
    file.push(MAX_MATCH as u8);
    file.extend_from_slice(&0u16.to_le_bytes());
    file.extend_from_slice(&(n as u64).to_le_bytes());
    file.extend_from_slice(corpus);
    for offset in order {
        file.extend_from_slice(&offset.to_le_bytes());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_random::Random;

    fn index_of(corpus: &[u8]) -> Index {
        Index::from_bytes(build(corpus).unwrap(), "test.nzi").unwrap()
    }

    /// Returns the offsets where `pattern` occurs, found by scanning the corpus.
    fn brute_occurrences(corpus: &[u8], pattern: &[u8]) -> Vec<usize> {
        (0..corpus.len())
            .filter(|&offset| corpus[offset..].starts_with(pattern))
            .collect()
    }

    /// Returns the continuations of `pattern`, counted by scanning the corpus.
    fn brute_continuations(corpus: &[u8], pattern: &[u8]) -> Continuations {
        let mut counts = [0usize; 256];
        for offset in brute_occurrences(corpus, pattern) {
            if let Some(&byte) = corpus.get(offset + pattern.len()) {
                counts[usize::from(byte)] += 1;
            }
        }
        let total: usize = counts.iter().sum();
        let count = counts.iter().copied().max().unwrap();
        let top = counts.iter().position(|&c| c == count).unwrap() as u8;
        Continuations {
            total,
            top: if total == 0 { 0 } else { top },
            count,
        }
    }

    fn check_search(index: &Index, pattern: &[u8], label: &str) {
        let corpus = index.corpus();
        let (lo, hi) = index.interval(pattern);
        let mut found: Vec<usize> = (lo..hi).map(|i| index.suffix(i)).collect();
        found.sort_unstable();
        assert_eq!(
            found,
            brute_occurrences(corpus, pattern),
            "{label}: occurrences"
        );

        let expected = brute_continuations(corpus, pattern);
        let got = index.continuations(pattern.len(), lo, hi);
        assert_eq!(got, expected, "{label}: continuations");
        assert_eq!(
            index.followed_by_a_byte(lo, hi, pattern.len()),
            expected.total > 0,
            "{label}: followed by a byte"
        );
    }

    #[test]
    fn search_matches_brute_force() {
        let mut random = Random(7);
        for round in 0..40 {
            let alphabet = [2, 3, 4, 26][round % 4];
            let length = 1 + random.below(400);
            let corpus = random.text(length, alphabet);
            let index = index_of(&corpus);
            for _ in 0..30 {
                // Patterns cut from the corpus, its end included, and random ones.
                let size = random.below(MAX_MATCH + 1);
                let pattern = if random.below(2) == 0 {
                    let start = random.below(length);
                    corpus[start..length.min(start + size)].to_vec()
                } else {
                    random.text(size, alphabet)
                };
                check_search(&index, &pattern, &format!("round {round}, {pattern:?}"));
            }
            let tail = &corpus[length.saturating_sub(5)..];
            check_search(&index, tail, &format!("round {round}, corpus tail"));
        }
    }

    #[test]
    fn empty_pattern_spans_every_suffix() {
        let index = index_of(b"banana");
        assert_eq!(index.interval(b""), (0, 6));
        assert_eq!(
            index.continuations(0, 0, 6),
            Continuations {
                total: 6,
                top: b'a',
                count: 3
            }
        );
    }

    #[test]
    fn pattern_at_corpus_end_has_no_continuation() {
        let index = index_of(b"xyzabcd");
        let (lo, hi) = index.interval(b"abcd");
        assert_eq!(hi - lo, 1);
        assert!(!index.followed_by_a_byte(lo, hi, 4));
        assert_eq!(
            index.continuations(4, lo, hi),
            Continuations {
                total: 0,
                top: 0,
                count: 0
            }
        );
    }

    #[test]
    fn absent_pattern_has_empty_interval() {
        let index = index_of(b"xyzabcd");
        let (lo, hi) = index.interval(b"abd");
        assert_eq!(lo, hi);
        assert!(!index.followed_by_a_byte(lo, hi, 3));
    }

    #[test]
    fn ties_pick_smallest_byte() {
        let index = index_of(b"wxyzB.wxyzA.wxyzB.wxyzA.");
        let (lo, hi) = index.interval(b"wxyz");
        assert_eq!(
            index.continuations(4, lo, hi),
            Continuations {
                total: 4,
                top: b'A',
                count: 2
            }
        );
    }

    #[test]
    fn large_interval_counted_by_runs() {
        let corpus: Vec<u8> = (0..200u8)
            .flat_map(|i| [b'k', b'e', b'y', b'A' + i % 5])
            .collect();
        let index = index_of(&corpus);
        let (lo, hi) = index.interval(b"key");
        assert!(hi - lo > SCAN_LIMIT);
        assert_eq!(
            index.continuations(3, lo, hi),
            Continuations {
                total: 200,
                top: b'A',
                count: 40
            }
        );
    }

    #[test]
    fn large_interval_skips_suffix_at_corpus_end() {
        // "ab" occurs 40 times, the last time at the very end, without a next byte.
        let mut corpus = b"abc".repeat(39);
        corpus.extend_from_slice(b"ab");
        let index = index_of(&corpus);
        let (lo, hi) = index.interval(b"ab");
        assert_eq!(hi - lo, 40);
        assert_eq!(index.suffix(lo), corpus.len() - 2);
        assert_eq!(
            index.continuations(2, lo, hi),
            Continuations {
                total: 39,
                top: b'c',
                count: 39
            }
        );
    }

    #[test]
    fn build_sorts_by_key_then_offset() {
        let corpus = b"abracadabra".repeat(20);
        let file = build(&corpus).unwrap();
        assert_eq!(file.len(), HEADER_SIZE + 5 * corpus.len());
        assert_eq!(build(&corpus).unwrap(), file);

        let index = Index::from_bytes(file.clone(), "abracadabra.nzi").unwrap();
        assert_eq!(index.corpus(), &corpus[..]);
        assert_eq!(index.id, index_id(&file));
        let keys: Vec<(&[u8], usize)> = (0..corpus.len())
            .map(|i| (index.key(index.suffix(i), MAX_MATCH + 1), index.suffix(i)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn index_id_is_sha256_prefix() {
        // sha256("abc") starts with ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(
            index_id(b"abc"),
            [
                0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
                0x22, 0x23
            ]
        );
    }

    #[test]
    fn empty_corpus_rejected() {
        let error = build(b"").unwrap_err();
        assert_eq!(
            error.to_string(),
            "index corpus of 0 bytes; expected 1 to 2147483647 bytes"
        );
    }

    fn replaced(file: &[u8], offset: usize, value: &[u8]) -> Vec<u8> {
        let mut changed = file.to_vec();
        changed[offset..offset + value.len()].copy_from_slice(value);
        changed
    }

    #[test]
    fn invalid_index_rejected() {
        let mut random = Random(2);
        let corpus: Vec<u8> = (0..100).map(|_| random.next() as u8).collect();
        let file = build(&corpus).unwrap();
        let entries = HEADER_SIZE + 100;
        let entry = |i: usize| file[entries + 4 * i..entries + 4 * i + 4].to_vec();
        let swapped: Vec<u8> = [entry(1), entry(0)].concat();
        let repeated = u32::from_le_bytes(entry(98).try_into().unwrap());
        let repeated_message = format!(
            "bad.nzi: suffix array entry 99 is {repeated}, not a new offset below 100; \
             rebuild the index"
        );
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                replaced(&file, 0, b"XXXX"),
                "bad.nzi is not an nnzip index: magic b'XXXX', expected b'NZI\\x1a'",
            ),
            (
                replaced(&file, 4, &[2]),
                "bad.nzi has index version 2; this nnzip reads version 1",
            ),
            (
                replaced(&file, 5, &[16]),
                "bad.nzi has max match 16 and reserved field 0; expected 32 and 0",
            ),
            (
                replaced(&file, 6, &[1]),
                "bad.nzi has max match 32 and reserved field 1; expected 32 and 0",
            ),
            (
                file[..file.len() - 1].to_vec(),
                "bad.nzi declares a corpus of 100 bytes, so it should have 516 bytes, but it has 515",
            ),
            (
                file[..20].to_vec(),
                "bad.nzi declares a corpus of 100 bytes, so it should have 516 bytes, but it has 20",
            ),
            (
                replaced(&file, 8, &0u64.to_le_bytes()),
                "bad.nzi declares a corpus of 0 bytes, so it should have 16 bytes, but it has 516",
            ),
            (
                replaced(&file, 8, &u64::MAX.to_le_bytes()),
                "bad.nzi declares a corpus of 18446744073709551615 bytes, so it should have \
                 92233720368547758091 bytes, but it has 516",
            ),
            (
                file[..5].to_vec(),
                "bad.nzi is not an nnzip index: 5 bytes, expected at least 16",
            ),
            (
                replaced(&file, entries, &100u32.to_le_bytes()),
                "bad.nzi: suffix array entry 0 is 100, not a new offset below 100; rebuild the index",
            ),
            (replaced(&file, entries + 4 * 99, &entry(98)), &repeated_message),
            (
                replaced(&file, entries, &swapped),
                "bad.nzi: suffix array entry 1 is out of order; rebuild the index",
            ),
        ];
        for (changed, message) in cases {
            let error = Index::from_bytes(changed, "bad.nzi").unwrap_err();
            assert!(matches!(error, Error::ModelLoad(_)), "{error:?}");
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn equal_keys_out_of_offset_order_rejected() {
        // In 40 equal bytes, the suffixes at offsets 0 to 7 have equal keys of 33 bytes, so
        // they sort last, by offset, and swapping the last two breaks the order.
        let file = build(&[b'z'; 40]).unwrap();
        let index = Index::from_bytes(file.clone(), "z.nzi").unwrap();
        let last = HEADER_SIZE + 40 + 4 * 39;
        let before_last = last - 4;
        assert_eq!(index.suffix(39), 7);
        assert_eq!(index.suffix(38), 6);
        let mut changed = file;
        changed[before_last..last].copy_from_slice(&7u32.to_le_bytes());
        changed[last..last + 4].copy_from_slice(&6u32.to_le_bytes());
        let error = Index::from_bytes(changed, "z.nzi").unwrap_err();
        assert_eq!(
            error.to_string(),
            "z.nzi: suffix array entry 39 is out of order; rebuild the index"
        );
    }

    #[test]
    fn missing_file_rejected() {
        let error = Index::load(Path::new("/nonexistent/index.nzi")).unwrap_err();
        assert!(matches!(error, Error::ModelLoad(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("cannot read index /nonexistent/index.nzi: "),
            "{error}"
        );
    }
}
