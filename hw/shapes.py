"""Amaranth shapes derived from the integer graph, so no block hard-codes a width.

Every register width in `hw/` comes from one of these: a tensor's `IntType`, the range of the
constants a ROM holds, or a proven accumulator width (`acc_bits`).
"""
from __future__ import annotations

from collections.abc import Iterable

from amaranth.hdl import Shape, ShapeLike, signed, unsigned

from quant.qtypes import IntType


def shape_of(itype: IntType) -> Shape:
    """The shape that holds exactly `itype`: int8 -> signed(8), uint4 -> unsigned(4)."""
    return signed(itype.bits) if itype.signed else unsigned(itype.bits)


def range_shape(values: Iterable[int]) -> Shape:
    """The narrowest shape holding every value (at least one bit): signed iff one is negative."""
    values = [int(v) for v in values]
    low, high = min(values, default=0), max(values, default=0)
    if low < 0:
        return signed(max((-low - 1).bit_length(), max(high, 0).bit_length(), 1) + 1)
    return unsigned(max(high.bit_length(), 1))


def index_shape(count: int) -> Shape:
    """An unsigned counter for 0..count-1 (at least one bit, so every port has a wire)."""
    return unsigned(max((count - 1).bit_length(), 1))


def bounds(shape: ShapeLike) -> tuple[int, int]:
    """The least and greatest value of a shape: signed(8) -> (-128, 127)."""
    shape = Shape.cast(shape)
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1
