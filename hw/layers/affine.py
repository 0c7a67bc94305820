"""The Affine engine: `ir.Affine`, constants A and B broadcast per channel (or uniform).

    y = clamp((((x - zx)*A[c] + B[c] + 2^(n-1)) >> n) + z, qmin, qmax)

c is the channel of the element (e % C in HWC order, `hw.layers.broadcast`). Stage 1
registers x - zx beside the constants' ROM read; stage 2 the product (a shift when A is one
power of two for the lane, a multiplier otherwise) and B; their sum enters the requantizer as
a plain rounding shift (M = 1).
"""
from __future__ import annotations

import math

from amaranth.hdl import Module, Value

from hw.layers.broadcast import LanePattern, channel_pattern
from hw.layers.pointwise import (PointwiseEngine, centred_range, product_shape, rounding_shift,
                                 scaled, stage)
from hw.shapes import range_shape
from quant import ir
from quant.qtypes import IntType


class AffineEngine(PointwiseEngine):
    """`ir.Affine` on a sample of `shape`: input `[L] x in_type`, output `[L] x out_type`.
    One beat per cycle, LATENCY = 7."""

    def __init__(self, op: ir.Affine, *, shape: tuple[int, ...], in_type: IntType,
                 out_type: IntType, lanes: int):
        self.op = op
        where = f"Affine '{op.name}'"
        scale = channel_pattern(op.scale, shape, where)
        offset = channel_pattern(op.offset, shape, where)
        period = max(len(scale), len(offset))
        self.pattern = LanePattern({"scale": scale.repeat(period // len(scale)),
                                    "offset": offset.repeat(period // len(offset))},
                                   length=math.prod(shape), lanes=lanes)
        super().__init__(in_types=(in_type,), out_type=out_type, lanes=lanes,
                         acc_bits=op.acc_bits,
                         requant=rounding_shift(op.shift, op.zero_point, op.qmin, op.qmax))

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.Affine, lanes: int) -> AffineEngine:
        x = graph.tensors[op.inputs[0]]
        return cls(op, shape=x.shape, in_type=x.itype,
                   out_type=graph.tensors[op.outputs[0]].itype, lanes=lanes)

    def datapath(self, m: Module, advance: Value, taken: Value, inputs: list) -> list[Value]:
        lanes, (x,), zero = range(self.lanes), inputs, self.op.input_zero_point
        param = self.pattern.read(m, advance, taken)
        span = centred_range(self.in_types[0], zero)
        centred = stage(m, advance, range_shape(span), [x[i] - zero for i in lanes], "centred")
        product = stage(m, advance, product_shape(span, self.pattern.bounds["scale"]),
                        [_times(centred[i], param("scale", i)) for i in lanes], "product")
        if "offset" in self.pattern.constants:
            offset = [param("offset", i) for i in lanes]
        else:
            offset = stage(m, advance, self.pattern.shapes["offset"],
                           [param("offset", i) for i in lanes], "offset")
        return [product[i] + offset[i] for i in lanes]


def _times(value: Value, factor: Value | int) -> Value:
    """value * factor: `scaled` (shifts for powers of two) when the factor is a constant."""
    return scaled(value, factor) if isinstance(factor, int) else value * factor
