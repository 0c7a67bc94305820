"""Integer types, quantization parameters, and the offline derivation of requantizers.

Everything here runs offline (at quantize time) and may use floats; what it produces is
integers. The run-time arithmetic that consumes them lives in `quant.arith`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quant.errors import QuantizationError

MIN_SHIFT = 1
MAX_SHIFT = 62


@dataclass(frozen=True)
class IntType:
    """A (bits, signed) integer type, e.g. IntType(8, True) is int8 with range [-128, 127]."""

    bits: int
    signed: bool

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def storage(self) -> np.dtype:
        """The smallest numpy dtype that holds every value of this type."""
        for bits in (8, 16, 32, 64):
            if self.bits <= bits:
                return np.dtype(f"{'int' if self.signed else 'uint'}{bits}")
        raise ValueError(f"no numpy dtype holds {self}")

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"


def signed_bits_for(bound: int) -> int:
    """Bits of a signed integer holding every value in [-bound, bound]: ceil(log2(bound+1)) + 1."""
    return max(int(bound).bit_length() + 1, 2)


@dataclass(frozen=True)
class QParams:
    """How a tensor's integers map to reals: real = scale * (q - zero_point).

    The scale is metadata for quantizing the input and dequantizing outputs; it is never
    used at inference.
    """

    scale: float
    zero_point: int
    itype: IntType

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """q = clamp(floor(x / scale + 1/2) + zero_point, qmin, qmax), computed in float64."""
        q = np.floor(np.asarray(x, np.float64) / self.scale + 0.5) + self.zero_point
        return np.clip(q, self.itype.qmin, self.itype.qmax).astype(np.int64)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, np.float64) - self.zero_point) * self.scale


def multiplier_and_shift(scale: float, mult_bits: int, where: str) -> tuple[int, int]:
    """SPEC: (m, e) = frexp(S); M = round(m * 2^(B-1)); if M == 2^(B-1): M /= 2, e += 1;
    n = (B-1) - e.  `where` names the layer in the error when n is out of range.

    A scale so large that n < 1 keeps n = 1 and moves the rest into the multiplier,
    M * 2^(1-n): the result is the same integer (the rounding term is then exact), and the
    product's width is checked by the caller like any other."""
    if not (scale > 0 and math.isfinite(scale)):
        raise QuantizationError(f"{where}: requantization scale must be positive and finite, not {scale!r}")
    mant, exp = math.frexp(scale)
    mult = round(mant * (1 << (mult_bits - 1)))
    if mult == 1 << (mult_bits - 1):
        mult //= 2
        exp += 1
    shift = (mult_bits - 1) - exp
    if MIN_SHIFT > shift > -32:
        return mult << (MIN_SHIFT - shift), MIN_SHIFT
    return mult, _check_shift(shift, scale, where)


def pow2_shift(scale: float, where: str) -> tuple[int, int]:
    """Multiplier-free requantization: M = 1 and n = round(-log2 S), exact when S is a power of two.

    A scale S >= 1 would need n <= 0; it becomes M = 2^(1-n), n = 1 instead: M is still a
    power of two (a left shift in hardware, no multiplier) and the rounding term then adds
    nothing, so the result is exactly acc * S.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise QuantizationError(f"{where}: requantization scale must be positive and finite, not {scale!r}")
    shift = round(-math.log2(scale))
    if MIN_SHIFT > shift > -32:
        return 1 << (MIN_SHIFT - shift), MIN_SHIFT
    return 1, _check_shift(shift, scale, where)


def _check_shift(shift: int, scale: float, where: str) -> int:
    if not MIN_SHIFT <= shift <= MAX_SHIFT:
        raise QuantizationError(
            f"{where}: requantization scale {scale:.3g} needs shift {shift}, outside the supported "
            f"range {MIN_SHIFT}..{MAX_SHIFT}")
    return shift


def pow2_scale(scale: float) -> float:
    """The smallest power of two >= scale (so the quantized range still covers the real range)."""
    return 2.0 ** math.ceil(math.log2(scale))
