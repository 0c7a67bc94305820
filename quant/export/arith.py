"""SPEC's run-time arithmetic as ONNX nodes: zero-point centring and the requantizer.

onnxruntime's integer Div truncates toward zero, but the contract's `>>` is a floor shift.
Mod with fmod=0 is the floor remainder for integers (its sign follows the divisor), so

    floor(v / 2^n) = (v - Mod(v, 2^n)) / 2^n

where the Div is exact (the dividend is a multiple of 2^n) and nothing can overflow:
v - Mod(v, 2^n) lies in (v - 2^n, v]. This holds for every int64 v, with no offset and no
bound to trust, which is why it is used instead of the offset form
Div(v + OFF, 2^n) - OFF / 2^n (whose v + OFF overflows int64 once |acc*M| nears 2^62).
"""
from __future__ import annotations

import numpy as np

from quant.export.builder import Builder


def centred(b: Builder, x: str, zero_point: int, hint: str = "centred") -> str:
    """x - z (no node when z = 0)."""
    return x if zero_point == 0 else b.node("Sub", [x, b.const(zero_point)], hint)


def floor_shift(b: Builder, v: str, shift: np.ndarray | int) -> str:
    """floor(v / 2^n) = (v - Mod(v, 2^n)) / 2^n, exact for every int64 v; n broadcasts."""
    divisor = b.const(np.left_shift(np.int64(1), np.asarray(shift, np.int64)), "pow2")
    rem = b.node("Mod", [v, divisor], "rem", fmod=0)
    return b.node("Div", [b.node("Sub", [v, rem], "floored"), divisor], "shifted")


def requantize(b: Builder, acc: str, multiplier: np.ndarray | int, shift: np.ndarray | int,
               zero_point: int, qmin: int, qmax: int) -> str:
    """y = clamp(((acc * M + 2^(n-1)) >> n) + z, qmin, qmax); M and n broadcast against acc.

    The multiply is skipped when every M is 1 (power-of-two mode) and the zero-point add
    when z is 0; both are exact identities.
    """
    multiplier = np.asarray(multiplier, np.int64)
    shift = np.asarray(shift, np.int64)
    scaled = acc if np.all(multiplier == 1) else b.node("Mul", [acc, b.const(multiplier, "M")], "scaled")
    half = np.left_shift(np.int64(1), shift - 1)
    rounded = floor_shift(b, b.node("Add", [scaled, b.const(half, "half")], "rounding"), shift)
    if zero_point:
        rounded = b.node("Add", [rounded, b.const(zero_point, "z")], "zeroed")
    return b.node("Clip", [rounded, b.const(qmin, "qmin"), b.const(qmax, "qmax")], "y")
