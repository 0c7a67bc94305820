"""The lookup-table engine: `ir.Lut`, y = table[x - input_min] for L lanes per beat.

One ROM (`Memory` with the table as its initial contents) with one registered read port per
lane; the read ports' data registers are the output register (LATENCY = 1, one beat per
cycle), enabled like every pipeline stage by `advance = ~o.valid | o.ready`.
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.shapes import index_shape, shape_of
from quant import ir
from quant.qtypes import IntType


class LutEngine(wiring.Component):
    """`ir.Lut`: input `[L] x in_type`, output `[L] x out_type`. The table must cover every
    value of `in_type` (the quantizer tabulates exactly qmin..qmax)."""

    LATENCY = 1

    def __init__(self, op: ir.Lut, *, in_type: IntType, out_type: IntType, lanes: int):
        table = [int(v) for v in op.table]
        if not op.input_min <= in_type.qmin <= in_type.qmax < op.input_min + len(table):
            raise ValueError(f"Lut '{op.name}': table of {len(table)} entries from "
                             f"{op.input_min} must cover {in_type} [{in_type.qmin}, "
                             f"{in_type.qmax}]")
        if min(table) < out_type.qmin or max(table) > out_type.qmax:
            raise ValueError(f"Lut '{op.name}': table values [{min(table)}, {max(table)}] must "
                             f"fit {out_type}")
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, not {lanes}")
        self.op = op
        self.lanes = lanes
        self.latency = self.LATENCY
        self.table = table
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape_of(in_type), lanes))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(shape_of(out_type), lanes))),
        })

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.Lut, lanes: int) -> LutEngine:
        return cls(op, in_type=graph.tensors[op.inputs[0]].itype,
                   out_type=graph.tensors[op.outputs[0]].itype, lanes=lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += o.valid.eq(i.valid)
        m.submodules.table = table = Memory(shape=o.p.shape().elem_shape, depth=len(self.table),
                                            init=self.table)
        address_bits = index_shape(len(self.table)).width
        for lane in range(self.lanes):
            port = table.read_port(domain="sync")
            m.d.comb += [port.addr.eq((i.p[lane] - self.op.input_min)[:address_bits]),
                         port.en.eq(advance), o.p[lane].eq(port.data)]
        return m
