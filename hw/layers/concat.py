"""The Concat engine: `ir.Concat`, several streams merged into one without arithmetic.

In stream order (HWC for (C, H, W), natural otherwise) a concatenation along one axis is a
fixed interleaving: the axes before it in stream order repeat R times, and in each repeat
input k gives a chunk of its elements from that axis on. Along channels of (C, H, W):
R = H*W pixels, chunk_k = C_k (per pixel, C_1 elements of input 1, then C_2 of input 2, ...);
along H: R = 1 (all of input 1, then all of input 2); along a 1-D vector: R = 1.

Beats move whole, so every chunk must be whole beats (L divides chunk_k); only when R = 1
may the last input end in a padded beat (its padding becomes the output's padding).
The engine takes chunk_k beats from input k in turn into its output register: one beat per
cycle, LATENCY = 1, sum_k R*chunk_k/L cycles per sample.
"""
from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fold import ceil_div
from hw.shapes import index_shape, shape_of
from hw.streams import input_names, stream_axes
from quant import ir
from quant.errors import ModelError
from quant.qtypes import IntType


def interleaving(axis: int, shapes: list[tuple[int, ...]], where: str) -> tuple[int, list[int]]:
    """(R, [chunk_k]) of a concatenation along sample axis `axis` (batch axis excluded)."""
    rank = len(shapes[0])
    rest = [tuple(s[a] for a in range(rank) if a != axis) for s in shapes]
    if any(len(s) != rank for s in shapes) or len(set(rest)) != 1:
        raise ModelError(f"{where}: input shapes {shapes} differ outside axis {axis + 1}")
    order = stream_axes(rank)
    position = order.index(axis)
    repeats = math.prod(shapes[0][a] for a in order[:position])
    return repeats, [math.prod(s[a] for a in order[position:]) for s in shapes]


def pick(select: Value, values: list) -> Value:
    """values[select] as a chain of Muxes. (Not `Array` or `Switch`: Yosys writes those as
    `always @*` case blocks, and Icarus never runs such a block when its only input, a
    register like `select`, keeps its initial value, which left the table undefined.)"""
    chosen = values[-1]
    for k in reversed(range(len(values) - 1)):
        chosen = Mux(select == k, values[k], chosen)
    return Value.cast(chosen)


class ConcatEngine(wiring.Component):
    """`ir.Concat` of samples of `shapes` (per input, batch axis excluded): inputs
    `i0_stream`, `i1_stream`, ... and output `o_stream`, all `[L] x itype`."""

    LATENCY = 1

    def __init__(self, op: ir.Concat, *, shapes: list[tuple[int, ...]], itype: IntType,
                 lanes: int):
        where = f"Concat '{op.name}'"
        axis = op.axis % (len(shapes[0]) + 1)
        if axis == 0 or len(shapes) < 2:
            raise ModelError(f"{where}: needs two or more inputs and a sample axis, not "
                             f"{len(shapes)} inputs along axis {op.axis}")
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, not {lanes}")
        self.op = op
        self.lanes = lanes
        self.latency = self.LATENCY
        self.repeats, chunks = interleaving(axis - 1, shapes, where)
        whole = chunks if self.repeats > 1 else chunks[:-1]
        if any(chunk % lanes for chunk in whole):
            raise ValueError(f"{where}: chunks of {chunks} elements ({self.repeats} times per "
                             f"sample) must be whole beats of {lanes} lanes")
        self.chunk_beats = [ceil_div(chunk, lanes) for chunk in chunks]
        self.beats = self.repeats * sum(self.chunk_beats)
        layout = data.ArrayLayout(shape_of(itype), lanes)
        self.names = input_names(len(shapes))
        ports = {name: In(stream.Signature(layout)) for name in self.names}
        ports["o_stream"] = Out(stream.Signature(layout))
        super().__init__(ports)

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.Concat, lanes: int) -> ConcatEngine:
        return cls(op, shapes=[graph.tensors[name].shape for name in op.inputs],
                   itype=graph.tensors[op.outputs[0]].itype, lanes=lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        inputs, o = [getattr(self, name) for name in self.names], self.o_stream
        count = len(inputs)
        select = Signal(index_shape(count))
        beat = Signal(index_shape(max(self.chunk_beats)))
        repeat = Signal(index_shape(self.repeats))
        advance = ~o.valid | o.ready
        for k, i in enumerate(inputs):
            m.d.comb += i.ready.eq(advance & (select == k))
        valid = pick(select, [i.valid for i in inputs])
        payload = pick(select, [Value.cast(i.p) for i in inputs])
        taken = advance & valid
        with m.If(advance):
            m.d.sync += [o.valid.eq(valid), Value.cast(o.p).eq(payload)]
        chunk_end = beat == pick(select, [n - 1 for n in self.chunk_beats])
        last_input, last_repeat = select == count - 1, repeat == self.repeats - 1
        with m.If(taken):
            m.d.sync += beat.eq(Mux(chunk_end, 0, beat + 1))
            with m.If(chunk_end):
                m.d.sync += select.eq(Mux(last_input, 0, select + 1))
                with m.If(last_input):
                    m.d.sync += repeat.eq(Mux(last_repeat, 0, repeat + 1))
        return m
