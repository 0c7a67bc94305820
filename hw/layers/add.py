"""The residual Add engine: `ir.Add` on two joined streams of L lanes.

    y = clamp((((a - za)*Ma + (b - zb)*Mb + 2^(n-1)) >> n) + z, qmin, qmax)

Stage 1 registers the centred inputs (the multipliers' input registers), stage 2 the products
(a shift when |M| is a power of two, so no multiplier); their sum, which fits the op's
proven `acc_bits`, enters the requantizer as a plain rounding shift (M = 1).
"""
from __future__ import annotations

from amaranth.hdl import Module, Value

from hw.layers.pointwise import (PointwiseEngine, centred_range, equal_shapes, product_shape,
                                 rounding_shift, scaled, stage)
from hw.shapes import range_shape
from quant import ir
from quant.qtypes import IntType


class AddEngine(PointwiseEngine):
    """`ir.Add`: inputs `i0_stream` (a) and `i1_stream` (b), `[L] x` their types; output
    `[L] x out_type`. One beat per cycle, LATENCY = 7."""

    def __init__(self, op: ir.Add, *, in_types: tuple[IntType, IntType], out_type: IntType,
                 lanes: int):
        self.op = op
        super().__init__(in_types=in_types, out_type=out_type, lanes=lanes, acc_bits=op.acc_bits,
                         requant=rounding_shift(op.shift, op.zero_point, op.qmin, op.qmax))

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.Add, lanes: int) -> AddEngine:
        equal_shapes(graph, op)
        return cls(op, in_types=tuple(graph.tensors[name].itype for name in op.inputs),
                   out_type=graph.tensors[op.outputs[0]].itype, lanes=lanes)

    def datapath(self, m: Module, advance: Value, taken: Value, inputs: list) -> list[Value]:
        op, lanes = self.op, range(self.lanes)
        terms = []
        for k, (x, itype, zero, mult) in enumerate(zip(inputs, self.in_types,
                                                       (op.zero_a, op.zero_b),
                                                       (op.mult_a, op.mult_b))):
            span = centred_range(itype, zero)
            centred = stage(m, advance, range_shape(span), [x[i] - zero for i in lanes],
                            f"centred{k}")
            terms.append(stage(m, advance, product_shape(span, (mult,)),
                               [scaled(centred[i], mult) for i in lanes], f"product{k}"))
        return [terms[0][i] + terms[1][i] for i in lanes]
