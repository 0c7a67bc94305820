"""Exact integer matrix products, through float64 BLAS whenever that is provably exact.

float64 represents every integer of magnitude <= 2^53 exactly, and the sum or product of two
such integers is exact while the result stays within that range. In x @ w every product and
every partial sum (in whatever order BLAS adds them, with or without FMA) is bounded by
sum_k |w[k, c]| * max|x|, so when that bound is below 2^53 the float64 result is the exact
integer result. Otherwise the product is computed in int64, which is exact below 2^63.
"""
from __future__ import annotations

import numpy as np

from quant.ops.checks import WidthError

FLOAT64_EXACT = 1 << 53
INT64_EXACT = 1 << 63


def dot_bound(x: np.ndarray, weight_t: np.ndarray) -> int:
    """max over output columns c of sum_k |w[k, c]| * max|x| (as a Python int, no overflow).

    `weight_t` is [..., K, C]; it bounds every partial sum of x @ weight_t.
    """
    if x.size == 0 or weight_t.size == 0:
        return 0
    column_sums = np.abs(weight_t).sum(axis=-2)
    return int(column_sums.max()) * int(np.abs(x).max())


def int_matmul(x: np.ndarray, weight_t: np.ndarray, bound: int) -> np.ndarray:
    """x @ weight_t of int64 arrays, exact, for a proven bound on every partial sum."""
    if bound < FLOAT64_EXACT:
        return np.matmul(x.astype(np.float64), weight_t.astype(np.float64)).astype(np.int64)
    if bound < INT64_EXACT:
        return np.matmul(x, weight_t)
    raise WidthError(f"integer matmul partial sums up to {bound} do not fit int64")
