//! Integer primitives of the exact inference path, as `nnzip/fixedpoint.py` defines them.
//!
//! Every function uses i64 arithmetic whose operands docs/inference-spec.md bounds below
//! 2**62, and the model loader rejects exports outside those bounds. No function here uses
//! floating point, so the results are the same on every machine.

use crate::coder::{ALPHABET_SIZE, TOTAL};

pub const INT8_MAX: i64 = 127;

/// Fractional bits of the RMSNorm gains.
pub const GAIN_BITS: u32 = 16;

/// Fractional bits of the decay factor exp(Δ A).
pub const DECAY_BITS: u32 = 20;

/// Fractional bits of Δ.
pub const DELTA_BITS: u32 = 16;

/// The residual stream saturates at ± this value.
pub const RESIDUAL_LIMIT: i64 = (1 << 23) - 1;

/// Every SSM state entry saturates at ± this value.
pub const STATE_LIMIT: i64 = (1 << 24) - 1;

/// Probability mass left after each of the 256 symbols gets its minimum frequency of 1.
const FREE_MASS: i64 = TOTAL as i64 - ALPHABET_SIZE as i64;

/// A multiplier and shift pair that scales by `multiplier / 2**shift`, rounding half up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// In [0, 2**24].
    pub multiplier: i64,
    /// In [1, 62].
    pub shift: u32,
}

impl Requant {
    /// Returns `floor((value * multiplier + 2**(shift - 1)) / 2**shift)`.
    ///
    /// Callers keep `|value| < 2**38`, so the product stays below 2**62.
    #[inline]
    pub fn apply(self, value: i64) -> i64 {
        (value * self.multiplier + (1i64 << (self.shift - 1))) >> self.shift
    }
}

#[inline]
pub fn clamp_int8(value: i64) -> i64 {
    value.clamp(-INT8_MAX, INT8_MAX)
}

/// Looks up an int8 input in [-127, 127] in a 255-entry table.
#[inline]
pub fn table_lookup(table: &[i64; 255], q: i64) -> i64 {
    // The clamp is a no-op for valid inputs; it lets the compiler drop the bounds check.
    table[(q.clamp(-INT8_MAX, INT8_MAX) + INT8_MAX) as usize]
}

/// Integer RMSNorm of one residual row to int8 values, written to `out` as f32 for the matmul.
///
/// `rms = max(1, isqrt(floor(sum(x**2) / D)))`, then each value is
/// `clamp8(floor((x * gain + den / 2) / den))` with `den = rms * 2**GAIN_BITS`. The bounds
/// |x| < 2**23 and |gain| < 2**30 keep `x * gain` below 2**53 and the sum of squares below
/// 2**56.
pub fn rms_normalize(x: &[i64], gain: &[i64], out: &mut [f32]) {
    let sum_of_squares: i64 = x.iter().map(|&value| value * value).sum();
    let mean_square = sum_of_squares / x.len() as i64;
    // u64::isqrt is the exact integer floor of the square root.
    let rms = ((mean_square as u64).isqrt() as i64).max(1);
    let denominator = rms << GAIN_BITS;
    for ((slot, &value), &g) in out.iter_mut().zip(x).zip(gain) {
        let q = (value * g + (denominator >> 1)).div_euclid(denominator);
        *slot = clamp_int8(q) as f32;
    }
}

/// Integer frequencies of one row of 256 fixed-point logits; see docs/inference-spec.md.
///
/// With `d = min(max(logits) - logits, len(exp_table) - 1)` and `e = exp_table[d]`, each
/// frequency is `1 + floor(e * FREE_MASS / sum(e))`, and the remainder goes to the first
/// symbol with the largest logit. Every frequency is then at least 1 and the row sums to
/// exactly TOTAL, because `exp_table[0] >= 1` and every entry is in [0, 2**30].
pub fn frequencies(logits: &[i64], exp_table: &[i64], out: &mut [u32]) {
    debug_assert_eq!(logits.len(), ALPHABET_SIZE);
    let mut top = logits[0];
    let mut top_symbol = 0;
    for (symbol, &logit) in logits.iter().enumerate() {
        if logit > top {
            top = logit;
            top_symbol = symbol;
        }
    }

    let last = exp_table.len() as i64 - 1;
    let mut weights = [0i64; ALPHABET_SIZE];
    for (weight, &logit) in weights.iter_mut().zip(logits) {
        *weight = exp_table[(top - logit).min(last) as usize];
    }
    let total: i64 = weights.iter().sum();

    let mut sum: i64 = 0;
    for (slot, &weight) in out.iter_mut().zip(&weights) {
        let freq = 1 + weight * FREE_MASS / total;
        sum += freq;
        *slot = freq as u32;
    }
    out[top_symbol] += (i64::from(TOTAL) - sum) as u32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requant_rounds_half_up() {
        let half = Requant {
            multiplier: 1,
            shift: 1,
        };
        assert_eq!(half.apply(1), 1);
        assert_eq!(half.apply(-1), 0);
        assert_eq!(half.apply(3), 2);
        assert_eq!(half.apply(-3), -1);
    }

    #[test]
    fn rms_normalize_uses_floor_division() {
        // x = [-3, 4]: mean square 12, rms 3, den 3 * 2**16.
        let gain = [1 << GAIN_BITS, 1 << GAIN_BITS];
        let mut out = [0f32; 2];
        rms_normalize(&[-3, 4], &gain, &mut out);
        // -3 * 2**16 + den / 2 = -0.5 den floors to -1, where truncation would give 0.
        assert_eq!(out, [-1.0, 1.0]);
    }

    #[test]
    fn rms_normalize_of_zeros_uses_rms_one() {
        let mut out = [5f32; 3];
        rms_normalize(&[0, 0, 0], &[7, 7, 7], &mut out);
        assert_eq!(out, [0.0, 0.0, 0.0]);
    }

    #[test]
    fn frequencies_sum_to_total() {
        let exp_table: Vec<i64> = (0..1536)
            .map(|j| ((1u64 << 30) >> (j / 64).min(40)) as i64)
            .collect();
        let logits: Vec<i64> = (0..256).map(|s| (s * 37 % 101) as i64 * 9).collect();
        let mut out = [0u32; 256];
        frequencies(&logits, &exp_table, &mut out);
        assert_eq!(out.iter().sum::<u32>(), TOTAL);
        assert!(out.iter().all(|&freq| freq >= 1));
        let top = *logits.iter().max().unwrap();
        let first_top = logits.iter().position(|&logit| logit == top).unwrap();
        assert_eq!(out.iter().max(), Some(&out[first_top]));
    }
}
