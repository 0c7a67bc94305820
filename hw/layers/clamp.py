"""The clamp engine: `ir.Clamp`, y = clamp(x, low, high) for L lanes per beat (a ReLU or Clip
that no producer absorbed). One register stage: LATENCY = 1, one beat per cycle."""
from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.shapes import shape_of
from quant import ir
from quant.qtypes import IntType


class ClampEngine(wiring.Component):
    """`ir.Clamp`: input and output `[L] x itype` (input and output share QParams)."""

    LATENCY = 1

    def __init__(self, op: ir.Clamp, *, itype: IntType, lanes: int):
        if not itype.qmin <= op.low <= op.high <= itype.qmax:
            raise ValueError(f"Clamp '{op.name}': bounds [{op.low}, {op.high}] must lie within "
                             f"{itype}")
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, not {lanes}")
        self.op = op
        self.lanes = lanes
        self.latency = self.LATENCY
        layout = data.ArrayLayout(shape_of(itype), lanes)
        super().__init__({"i_stream": In(stream.Signature(layout)),
                          "o_stream": Out(stream.Signature(layout))})

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.Clamp, lanes: int) -> ClampEngine:
        return cls(op, itype=graph.tensors[op.inputs[0]].itype, lanes=lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        low, high = self.op.low, self.op.high
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += o.valid.eq(i.valid)
            for lane in range(self.lanes):
                x = i.p[lane]
                m.d.sync += o.p[lane].eq(Mux(x < low, low, Mux(x > high, high, x)))
        return m
