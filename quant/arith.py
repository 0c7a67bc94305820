"""The run-time integer arithmetic of SPEC-integer.md, in int64 numpy.

These few functions are the contract every execution (golden model, ONNX export, RTL) must
match bit for bit; the golden kernels in `quant.ops` are built only from them.
"""
from __future__ import annotations

import numpy as np


def rounding_shift(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """(x + 2^(n-1)) >> n for n >= 1: one rounding, ties toward +inf; `>>` is a floor shift."""
    x = np.asarray(x, np.int64)
    n = np.asarray(shift, np.int64)
    return (x + (np.int64(1) << (n - 1))) >> n


def requantize(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int,
               zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """y = clamp(((acc * M + 2^(n-1)) >> n) + z, qmin, qmax); M and n broadcast against acc."""
    scaled = rounding_shift(np.asarray(acc, np.int64) * np.asarray(multiplier, np.int64), shift)
    return np.clip(scaled + zero_point, qmin, qmax)
