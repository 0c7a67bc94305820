"""The gating Mul engine: `ir.Mul` on two joined streams of L lanes.

    y = clamp((((a - za)*(b - zb)*M + 2^(n-1)) >> n) + z, qmin, qmax)

Stage 1 registers the centred inputs, stage 2 their product (a registered multiplier); the
product, which fits the op's proven `acc_bits`, enters the requantizer with (M, n).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Value

from hw.layers.pointwise import (PointwiseEngine, centred_range, equal_shapes, product_shape,
                                 stage)
from hw.shapes import range_shape
from quant import ir
from quant.qtypes import IntType


class MulEngine(PointwiseEngine):
    """`ir.Mul`: inputs `i0_stream` (a) and `i1_stream` (b); output `[L] x out_type`.
    One beat per cycle, LATENCY = 7."""

    def __init__(self, op: ir.Mul, *, in_types: tuple[IntType, IntType], out_type: IntType,
                 lanes: int):
        self.op = op
        requant = ir.Requant(multiplier=np.array([op.multiplier]), shift=np.array([op.shift]),
                             zero_point=op.zero_point, qmin=op.qmin, qmax=op.qmax)
        super().__init__(in_types=in_types, out_type=out_type, lanes=lanes, acc_bits=op.acc_bits,
                         requant=requant)

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.Mul, lanes: int) -> MulEngine:
        equal_shapes(graph, op)
        return cls(op, in_types=tuple(graph.tensors[name].itype for name in op.inputs),
                   out_type=graph.tensors[op.outputs[0]].itype, lanes=lanes)

    def datapath(self, m: Module, advance: Value, taken: Value, inputs: list) -> list[Value]:
        lanes, zeros = range(self.lanes), (self.op.zero_a, self.op.zero_b)
        spans = [centred_range(t, z) for t, z in zip(self.in_types, zeros)]
        a, b = (stage(m, advance, range_shape(span), [x[i] - zero for i in lanes], f"centred{k}")
                for k, (x, span, zero) in enumerate(zip(inputs, spans, zeros)))
        product = stage(m, advance, product_shape(*spans), [a[i] * b[i] for i in lanes],
                        "product")
        return [product[i] for i in lanes]
