"""Exact integer matrix products, through float BLAS whenever that is provably exact.

A float type with a p-bit significand represents every integer of magnitude <= 2^p exactly
(float32: p = 24, float64: p = 53), so a product or sum of two such integers is computed
exactly (IEEE rounding of a representable result is the identity) whenever the exact result
is again at most 2^p. In w @ x every product w[c, k] * x[k] and every partial sum of them —
in whatever order BLAS adds them, with or without fused multiply-add — is bounded by

    B = max_c sum_k |w[c, k]| * max|x|,

so when B < 2^p the float result is the exact integer result. `exact_dtype` picks the
narrowest such type (float32 BLAS is about twice as fast as float64); above 2^53 the product
is computed in int64, which is exact below 2^63. max|x| is read from the actual input tensor
(one min and one max, before any unrolling): the unrolled matrix holds the same values, plus
padding, which callers include.
"""
from __future__ import annotations

import numpy as np

from quant.ops.checks import WidthError

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
INT64_EXACT = 1 << 63


def magnitude(x: np.ndarray) -> int:
    """max |x| as a Python int (0 for an empty array), without numpy's abs(-2^63) overflow."""
    if x.size == 0:
        return 0
    return max(-int(x.min()), int(x.max()))


def channel_sums(weight: np.ndarray) -> np.ndarray:
    """sum_k |weight[c, k]| for each output channel c of a [C, ...] weight (int64)."""
    return np.abs(weight).reshape(len(weight), -1).sum(axis=1)


def dot_bound(x_peak: int, sums: np.ndarray) -> int:
    """max_c sums[c] * x_peak as a Python int, for the `channel_sums` of a weight: with
    x_peak >= max|x| this bounds every partial sum of every channel's dot product with x."""
    return int(sums.max()) * int(x_peak) if sums.size else 0


def exact_dtype(bound: int) -> np.dtype:
    """The cheapest dtype in which a matmul with partial sums bounded by `bound` is exact."""
    if bound < FLOAT32_EXACT:
        return np.dtype(np.float32)
    if bound < FLOAT64_EXACT:
        return np.dtype(np.float64)
    if bound < INT64_EXACT:
        return np.dtype(np.int64)
    raise WidthError(f"integer matmul partial sums up to {bound} do not fit int64")


def exact_matmul(a: np.ndarray, b: np.ndarray, dtype: np.dtype, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b of integer arrays, computed in `dtype` from `exact_dtype` (into `out` if given):
    every value of the result is the exact integer, so converting it to int64 (astype, or
    copying it into an int64 array) is exact."""
    return np.matmul(a.astype(dtype, copy=False), b.astype(dtype, copy=False), out=out)
