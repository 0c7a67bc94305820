"""Run-time proofs that the integer graph keeps its own width contract.

A violated bound means intforge computed a wrong `acc_bits` or built an impossible table:
a bug, not bad user input. These errors are therefore `AssertionError`s, never
`IntforgeError`s, and they name the operator (and channel) so the bug is easy to find.
"""
from __future__ import annotations

import numpy as np

INT64_BITS = 64


class ContractError(AssertionError):
    """An integer graph broke its own contract (a bug in intforge)."""


class WidthError(ContractError):
    """A value does not fit the signed width that the quantizer proved for it."""


def check_width(values: np.ndarray, bits: np.ndarray | int, where: str,
                channel_axis: int | None = None) -> None:
    """Every value fits `bits` signed bits: -2^(bits-1) <= v < 2^(bits-1).

    `bits` is one width, or one width per channel along `channel_axis` of `values`.
    """
    bits = np.asarray(bits, np.int64)
    if bits.ndim and channel_axis is not None:
        bits = bits.reshape((-1,) + (1,) * (values.ndim - 1 - channel_axis % values.ndim))
    if np.any(bits > INT64_BITS - 1):
        raise WidthError(f"{where}: accumulator width {int(bits.max())} exceeds {INT64_BITS - 1} bits")
    limit = np.int64(1) << (bits - 1)
    bad = (values < -limit) | (values >= limit)
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        channel = f" channel {index[channel_axis]}" if channel_axis is not None else ""
        width = int(np.broadcast_to(bits, values.shape)[index])
        raise WidthError(f"{where}:{channel} accumulator {int(values[index])} at index {index} "
                         f"does not fit its proven {width} signed bits")


def check_product(acc_bits: np.ndarray | int, multiplier: np.ndarray | int, where: str) -> None:
    """acc * M + 2^(n-1) fits int64: acc_bits + bit_length(M) <= 63 for each channel.

    Then |acc * M| < 2^62 and the rounding term 2^(n-1) <= 2^61 (n <= 62) cannot overflow.
    Pass M = 1 for a plain rounding shift, which asks acc_bits <= 62.
    """
    bits, mults = np.broadcast_arrays(np.atleast_1d(np.asarray(acc_bits, np.int64)),
                                      np.atleast_1d(np.asarray(multiplier, np.int64)))
    for channel, (b, m) in enumerate(zip(bits.tolist(), mults.tolist())):
        if b + abs(m).bit_length() > INT64_BITS - 1:
            raise WidthError(f"{where}: channel {channel} accumulator of {b} bits times multiplier "
                             f"{m} ({abs(m).bit_length()} bits) does not fit int64")


def table_lookup(table: np.ndarray, index: np.ndarray, where: str) -> np.ndarray:
    """table[index], refusing indices outside the table (numpy would wrap negatives)."""
    if index.size and (int(index.min()) < 0 or int(index.max()) >= len(table)):
        raise ContractError(f"{where}: index range [{int(index.min())}, {int(index.max())}] "
                            f"outside its table of {len(table)} entries")
    return table[index]
