"""The requantizer of `quant.arith.requantize`, run in place on a scratch accumulator.

A full-size temporary costs more than the arithmetic on it (see `quant.ops.scratch`), so the
kernels requantize the accumulators they own in place: the same int64 operations in the same
order as `quant.arith.requantize`, hence the same bits (the tests compare the two). Only the
final clamp allocates: the output, in the narrowest dtype that holds [qmin, qmax]. Conv and
Gemm, whose dot products come out of float BLAS, can instead requantize in float64 when that
is provably exact (`Folded`): fewer passes over the data, the same bits.
"""
from __future__ import annotations

import numpy as np

from quant.ops.dtypes import narrowest


def requantize_scratch(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int,
                       zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    """y = clamp(((acc * M + 2^(n-1)) >> n) + z, qmin, qmax) as a fresh array of the narrowest
    dtype holding [qmin, qmax]; M and n broadcast against `acc`, an int64 array that this
    overwrites."""
    shift = np.asarray(shift, np.int64)
    if not (np.ndim(multiplier) == 0 and multiplier == 1):  # Add and Affine have none
        acc *= np.asarray(multiplier, np.int64)
    acc += np.int64(1) << (shift - 1)
    acc >>= shift
    acc += zero_point
    return np.clip(acc, qmin, qmax, out=np.empty(acc.shape, narrowest(qmin, qmax)), casting="unsafe")

