//! Retrieval features: the match model over the bytes already coded, as `nnzip/retrieval.py`
//! defines it (the rules are in `docs/retrieval.md`).
//!
//! The retriever reads the streams of one container in coding order: all streams advance
//! together, and within a position stream 0 comes first. A feature code packs the match
//! length bucket and the predicted byte as `bucket * 256 + byte`; code 0 means no match.

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

/// 2**64 divided by the golden ratio, odd.
const HASH_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

const CONTEXT_MASK: u64 = (1 << (8 * ORDER)) - 1;

/// Marks an empty table entry or a stream without a match.
const NONE: usize = usize::MAX;

/// Returns the bucket of a match length (0 for no match).
pub fn bucket_of(length: u32) -> u32 {
    (u32::BITS - length.leading_zeros()).min(BUCKETS as u32 - 1)
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

/// Returns the code of every byte of `streams`, computed in coding order.
pub fn stream_codes(streams: &[&[u8]]) -> Vec<Vec<u32>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let codes = stream_codes(&[&first, &first]);

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
        let codes = stream_codes(&[stream]);
        // The second "abcdefgh" matches from its 7th byte on.
        assert_eq!(codes[0][14] % 256, u32::from(b'g'));
        assert!(codes[0][15] >= 256);
    }
}
