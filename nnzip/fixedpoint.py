"""Integer primitives of the exact inference path, vectorized with numpy int64.

Every function here computes the same integers on any machine: they use int64 arithmetic
whose operands the inference spec bounds below 2**62, and float64 only where the result is
provably exact (matrix products of integers whose partial sums stay below 2**53, and the
correctly rounded IEEE square root). docs/inference-spec.md defines each one.
"""

from __future__ import annotations

import numpy as np

INT8_MAX = 127


def requantize(value: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Return floor((value * multiplier + 2**(shift - 1)) / 2**shift), round half up.

    `multiplier` < 2**24 and 1 <= `shift` <= 62 (checked at export); callers keep
    |value| < 2**38, so the product fits int64.
    """
    one = np.int64(1)
    return (value * multiplier + (one << (shift - 1))) >> shift


def clamp_int8(value: np.ndarray) -> np.ndarray:
    return np.clip(value, -INT8_MAX, INT8_MAX)


def exact_matmul(activations: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """Integer product activations (b, K) @ weight_t (K, M) through float64 BLAS.

    Exact because |activation|, |weight| <= 127 and K <= 1024 keep every partial sum below
    2**24, far inside float64's 2**53, so any summation order gives the same integers.
    """
    return (activations.astype(np.float64) @ weight_t).astype(np.int64)


def isqrt(value: np.ndarray) -> np.ndarray:
    """Floor of the square root of non-negative int64 values below 2**62, exactly.

    The float64 square root is correctly rounded (IEEE 754), so its floor is off by at most
    one from the true integer root; the two corrections below remove that error.
    """
    root = np.floor(np.sqrt(value.astype(np.float64))).astype(np.int64)
    root = np.where(root * root > value, root - 1, root)
    root = np.where((root + 1) * (root + 1) <= value, root + 1, root)
    return root


def rms_normalize(x: np.ndarray, gain: np.ndarray, gain_bits: int) -> np.ndarray:
    """Integer RMSNorm of x (b, D) to int8: clamp(round(x * gain / (rms * 2**gain_bits))).

    rms = max(1, isqrt(floor(sum(x**2) / D))); division rounds half up.
    """
    d = x.shape[-1]
    mean_square = (x * x).sum(axis=-1, keepdims=True) // d
    rms = np.maximum(isqrt(mean_square), 1)
    denominator = rms << gain_bits
    return clamp_int8((x * gain + (denominator >> 1)) // denominator)
