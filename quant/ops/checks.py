"""Run-time proofs that the integer graph keeps its own width contract.

A violated bound means intforge computed a wrong `acc_bits` or built an impossible table:
a bug, not bad user input. These errors are therefore `AssertionError`s, never
`IntforgeError`s, and they name the operator (and channel) so the bug is easy to find.
"""
from __future__ import annotations

import functools

import numpy as np

from quant.ops.scratch import scratch

INT64_BITS = 64


class ContractError(AssertionError):
    """An integer graph broke its own contract (a bug in intforge)."""


class WidthError(ContractError):
    """A value does not fit the signed width that the quantizer proved for it."""


def _extremes(values: np.ndarray) -> tuple[int, int]:
    """(min, max) of a small non-empty int64 array of per-channel constants (widths,
    multipliers) as Python ints: checked on every call, so cached by value."""
    return _extremes_of(values.tobytes())


@functools.lru_cache(maxsize=4096)
def _extremes_of(int64_bytes: bytes) -> tuple[int, int]:
    values = np.frombuffer(int64_bytes, np.int64)
    return int(values.min()), int(values.max())


def check_width(values: np.ndarray, bits: np.ndarray | int, where: str,
                channel_axis: int | None = None) -> None:
    """Every value fits `bits` signed bits: -2^(bits-1) <= v < 2^(bits-1).

    `bits` is one width, or one width per channel along `channel_axis` of `values`. Fitting
    the narrowest width proves fitting them all, which only needs the global minimum and
    maximum; the exact per-channel test runs only when that shortcut fails.
    """
    bits = np.asarray(bits, np.int64)
    if bits.size == 0 or values.size == 0:
        return
    narrow, wide = _extremes(bits)
    if wide > INT64_BITS - 1:
        raise WidthError(f"{where}: accumulator width {wide} exceeds {INT64_BITS - 1} bits")
    if narrow >= 1 and -(1 << (narrow - 1)) <= int(values.min()) and int(values.max()) < 1 << (narrow - 1):
        return
    if bits.ndim and channel_axis is not None:
        bits = bits.reshape((-1,) + (1,) * (values.ndim - 1 - channel_axis % values.ndim))
    limit = np.int64(1) << (bits - 1)
    bad = (values < -limit) | (values >= limit)
    if not np.any(bad):
        return
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    channel = f" channel {index[channel_axis]}" if channel_axis is not None else ""
    width = int(np.broadcast_to(bits, values.shape)[index])
    raise WidthError(f"{where}:{channel} accumulator {int(values[index])} at index {index} "
                     f"does not fit its proven {width} signed bits")


def check_product(acc_bits: np.ndarray | int, multiplier: np.ndarray | int, where: str) -> None:
    """acc * M + 2^(n-1) fits int64: acc_bits + bit_length(M) <= 63 for each channel.

    Then |acc * M| < 2^62 and the rounding term 2^(n-1) <= 2^61 (n <= 62) cannot overflow.
    Pass M = 1 for a plain rounding shift, which asks acc_bits <= 62. The widest accumulator
    times the largest multiplier fitting proves every channel fits; the per-channel loop runs
    only when that shortcut fails.
    """
    bits, mults = np.asarray(acc_bits, np.int64), np.asarray(multiplier, np.int64)
    if bits.size and mults.size:
        (narrow, wide), (lowest, highest) = _extremes(bits), _extremes(mults)
        if narrow >= 1 and wide + max(-lowest, highest).bit_length() <= INT64_BITS - 1:
            return
    bits, mults = np.broadcast_arrays(np.atleast_1d(bits), np.atleast_1d(mults))
    for channel, (b, m) in enumerate(zip(bits.tolist(), mults.tolist())):
        if b + abs(m).bit_length() > INT64_BITS - 1:
            raise WidthError(f"{where}: channel {channel} accumulator of {b} bits times multiplier "
                             f"{m} ({abs(m).bit_length()} bits) does not fit int64")


def table_lookup(table: np.ndarray, index: np.ndarray, where: str, offset: int = 0) -> np.ndarray:
    """table[index - offset] (as np.take, faster than fancy indexing), refusing indices outside
    the table (numpy would wrap negatives)."""
    if index.size and (int(index.min()) - offset < 0 or int(index.max()) - offset >= len(table)):
        raise ContractError(f"{where}: index range [{int(index.min()) - offset}, {int(index.max()) - offset}] "
                            f"outside its table of {len(table)} entries")
    if offset:
        shifted = scratch("table_lookup", index.shape, np.intp)
        np.copyto(shifted, index)
        shifted -= offset
        index = shifted
    return table.take(index, axis=0)
