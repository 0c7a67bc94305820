"""Stream payloads as raw bits and back, through the payload's Amaranth shape or layout.

Simulators see a payload as one bit vector (`i_stream__payload` in the Verilog); testbenches
think in lanes and fields. Nested lists stand for `ArrayLayout`s, dicts for `StructLayout`s.
"""
from __future__ import annotations

from typing import Any

from amaranth.hdl import Const, Shape, ShapeLike
from amaranth.lib import data


def pack(shape: ShapeLike | data.Layout, value: Any) -> int:
    """The payload bits of `value` (a nested list/dict of ints for a layout)."""
    if isinstance(shape, data.Layout):
        return shape.const(value).as_bits()
    shape = Shape.cast(shape)
    return Const(value, shape).value & ((1 << shape.width) - 1)


def unpack(shape: ShapeLike | data.Layout, bits: int) -> Any:
    """The value (nested lists, dicts and ints) that the payload bits `bits` hold."""
    if isinstance(shape, data.Layout):
        return _python(shape.from_bits(bits))
    return Const(bits, Shape.cast(shape).width).as_signed().value if Shape.cast(shape).signed \
        else bits


def _python(value: Any) -> Any:
    if not isinstance(value, data.Const):
        return int(value)
    layout = value.shape()
    if isinstance(layout, data.ArrayLayout):
        return [_python(v) for v in value]
    return {name: _python(value[name]) for name, _ in layout}
