"""The ArgMax engine: `ir.ArgMax` over a vector of K elements, the index of its first maximum.

Each beat's L lanes reduce in a balanced tree of comparisons that keeps the lower lane on
ties (lanes past K in the last beat never win); the beat's winner then replaces the running
maximum only when strictly greater, so the earliest element wins overall, like numpy's
argmax. Stages: input register; lane tree into a register; running compare, whose result
leaves on the vector's last beat. One beat per cycle, ceil(K/L) cycles per vector,
LATENCY = 3 from the last beat to the index.
"""
from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fold import ceil_div
from hw.shapes import index_shape, shape_of
from quant import ir
from quant.errors import ModelError
from quant.qtypes import IntType


def first_maximum(candidates: list[tuple[Value, Value, int]]) -> tuple[Value, Value]:
    """(value, lane) of the first maximum among (enabled, value, lane) candidates, by a
    balanced tree: the right one wins only if enabled and strictly greater (or the left one
    is disabled)."""
    nodes = [(enabled, value, Value.cast(lane)) for enabled, value, lane in candidates]
    while len(nodes) > 1:
        pairs = []
        for (ea, va, la), (eb, vb, lb) in zip(nodes[::2], nodes[1::2]):
            right = eb & (~ea | (vb > va))
            pairs.append((ea | eb, Mux(right, vb, va), Mux(right, lb, la)))
        nodes = pairs + nodes[len(nodes) & ~1:]
    _, value, lane = nodes[0]
    return value, lane


class ArgMaxEngine(wiring.Component):
    """`ir.ArgMax` over the last axis of a sample of `shape` whose other axes are 1 (a vector
    of K elements). Input `[L] x in_type`, ceil(K/L) beats; output `[1] x index`, one beat of
    an unsigned index wide enough for K - 1."""

    LATENCY = 3

    def __init__(self, op: ir.ArgMax, *, shape: tuple[int, ...], in_type: IntType, lanes: int):
        rank = len(shape)
        if op.axis % (rank + 1) != rank or math.prod(shape[:-1]) != 1:
            raise ModelError(f"ArgMax '{op.name}': the hardware reduces the last axis of a "
                             f"vector, not axis {op.axis} of shape {shape}")
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, not {lanes}")
        self.op = op
        self.lanes = lanes
        self.latency = self.LATENCY
        self.length = shape[-1]
        self.beats = ceil_div(self.length, lanes)
        self.in_shape = shape_of(in_type)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self.in_shape, lanes))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(index_shape(self.length), 1))),
        })

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.ArgMax, lanes: int) -> ArgMaxEngine:
        x = graph.tensors[op.inputs[0]]
        return cls(op, shape=x.shape, in_type=x.itype, lanes=lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)

        beat = Signal(index_shape(self.beats))
        last_beat = beat == self.beats - 1
        with m.If(i.valid & advance):
            m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))

        meta = data.StructLayout({"valid": 1, "first": 1, "last": 1,
                                  "beat": index_shape(self.beats)})
        meta1, meta2 = Signal(meta), Signal(meta)
        x1 = Signal(data.ArrayLayout(self.in_shape, self.lanes))
        tail = self.length - (self.beats - 1) * self.lanes  # real lanes of the last beat
        value, lane = first_maximum([(~meta1.last if l >= tail else Value.cast(1), x1[l], l)
                                     for l in range(self.lanes)])
        best, index = Signal(self.in_shape), Signal(index_shape(self.length))
        running, running_index = Signal(self.in_shape), Signal(index_shape(self.length))
        wins = meta2.first | (best > running)
        new_value, new_index = Mux(wins, best, running), Mux(wins, index, running_index)
        with m.If(advance):
            m.d.sync += [meta1.valid.eq(i.valid), meta1.first.eq(beat == 0),
                         meta1.last.eq(last_beat), meta1.beat.eq(beat), x1.eq(i.p),
                         meta2.eq(meta1), best.eq(value),
                         index.eq(meta1.beat * self.lanes + lane),
                         o.valid.eq(meta2.valid & meta2.last), o.p[0].eq(new_index)]
            with m.If(meta2.valid):
                m.d.sync += [running.eq(new_value), running_index.eq(new_index)]
        return m
