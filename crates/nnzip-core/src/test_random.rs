//! A seeded generator for tests (splitmix64), so random corpora are the same on every run.

pub struct Random(pub u64);

impl Random {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number below `bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// Returns `length` bytes from the first `alphabet` lower-case letters.
    pub fn text(&mut self, length: usize, alphabet: u8) -> Vec<u8> {
        (0..length)
            .map(|_| b'a' + self.below(usize::from(alphabet)) as u8)
            .collect()
    }

    /// Returns `length` uniformly random bytes.
    pub fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }
}
