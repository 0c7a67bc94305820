"""Kernel inputs may be any numpy integer dtype: the golden model stores every tensor in its
type's narrow storage dtype (int8, uint8, int16, ...; see `quant.evaluate`), other callers
pass int64. Kernels therefore do their arithmetic in explicit int64 and use the input's
dtype only to move, compare, pad or clip values that fit it.
"""
from __future__ import annotations

import numpy as np


def holding(x: np.ndarray, *values: int) -> np.ndarray:
    """`x`, or `x` as int64 when one of `values` (a padding or clipping constant) does not
    fit x's dtype, so that padding or clipping with it stays exact."""
    info = np.iinfo(x.dtype)
    if all(info.min <= v <= info.max for v in values):
        return x
    return x.astype(np.int64)


_NARROW = tuple((int(np.iinfo(t).min), int(np.iinfo(t).max), np.dtype(t))
                for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32))


def narrowest(low: int, high: int) -> np.dtype:
    """The smallest integer dtype holding every value of [low, high] (int64 at most): the
    storage of a kernel output that is clamped to that range."""
    for lowest, highest, dtype in _NARROW:
        if lowest <= low and high <= highest:
            return dtype
    return np.dtype(np.int64)
