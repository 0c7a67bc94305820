"""The global average pool engine: `ir.GlobalAvgPool` on a (C, H, W) sample in HWC order.

    acc[c] = sum over the H*W pixels of (x - z_in),   y[c] = requant(acc[c])

With L lanes dividing C, a pixel is G = C/L beats and lane l of a pixel's beat g is channel
g*L + l. `ChannelSum` keeps G words of L accumulators (of the op's proven `acc_bits`) in a
memory: each beat reads its group's word, adds the centred lanes and writes it back (the read
port is transparent to the write, so consecutive beats of one group see each other); a
pixel's first beat starts from 0 and its last pixel's beats leave as {acc, index: g} for
`hw.requant.Requantizer`. One input beat per cycle: H*W*G cycles per sample; the C outputs
(G beats) leave during the last pixel.
"""
from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.requant import Requantizer, requant_input
from hw.shapes import index_shape, range_shape, shape_of
from quant import ir
from quant.qtypes import IntType


class ChannelSum(wiring.Component):
    """Per-channel sums of (x - zero) over `pixels` pixels of `channels` channels, L lanes.

    Input `[L] x in_type`; output `{acc: [L] x signed(acc_bits), index: g}`, G beats per
    sample. `LATENCY` = 2 from a group's last input beat to its output: the input register
    (with the accumulator read), then the sum into the output register.
    """

    LATENCY = 2

    def __init__(self, *, channels: int, pixels: int, zero: int, in_type: IntType,
                 acc_bits: int, lanes: int):
        self.groups = channels // lanes
        self.pixels = pixels
        self.zero = zero
        self.lanes = lanes
        self.acc_bits = acc_bits
        self.centred = range_shape([in_type.qmin - zero, in_type.qmax - zero])
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape_of(in_type), lanes))),
            "o_stream": Out(stream.Signature(requant_input(acc_bits, lanes, self.groups))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)
        taken = i.valid & advance

        group, pixel = Signal(index_shape(self.groups)), Signal(index_shape(self.pixels))
        last_group = group == self.groups - 1
        with m.If(taken):
            m.d.sync += group.eq(Mux(last_group, 0, group + 1))
            with m.If(last_group):
                m.d.sync += pixel.eq(Mux(pixel == self.pixels - 1, 0, pixel + 1))

        acc_layout = data.ArrayLayout(signed(self.acc_bits), self.lanes)
        m.submodules.sums = sums = Memory(shape=acc_layout, depth=self.groups, init=[])
        write = sums.write_port()
        read = sums.read_port(domain="sync", transparent_for=(write,))
        m.d.comb += [read.addr.eq(group), read.en.eq(advance)]

        meta = data.StructLayout({"valid": 1, "first": 1, "last": 1,
                                  "group": index_shape(self.groups)})
        meta1 = Signal(meta)
        x1 = Signal(data.ArrayLayout(self.centred, self.lanes))
        total = Signal(acc_layout)
        for lane in range(self.lanes):
            m.d.comb += total[lane].eq(Mux(meta1.first, 0, read.data[lane]) + x1[lane])
        m.d.comb += [write.addr.eq(meta1.group), write.data.eq(total),
                     write.en.eq(advance & meta1.valid)]
        with m.If(advance):
            m.d.sync += [meta1.valid.eq(i.valid), meta1.first.eq(pixel == 0),
                         meta1.last.eq(pixel == self.pixels - 1), meta1.group.eq(group),
                         o.valid.eq(meta1.valid & meta1.last), o.p.acc.eq(total),
                         o.p.index.eq(meta1.group)]
            m.d.sync += [x1[lane].eq(i.p[lane] - self.zero) for lane in range(self.lanes)]
        return m


class GlobalAvgPoolEngine(wiring.Component):
    """`ir.GlobalAvgPool` of a (C, H, W) sample: ChannelSum -> Requantizer.

    Input `[L] x in_type`, H*W*C/L beats per sample (L must divide C); output
    `[L] x out_type`, C/L beats per sample. `LATENCY` = 2 + 5 = 7 from a sample's last input
    beat to its last output beat's first cycle of valid.
    """

    LATENCY = ChannelSum.LATENCY + Requantizer.LATENCY

    def __init__(self, op: ir.GlobalAvgPool, *, shape: tuple[int, int, int], in_type: IntType,
                 out_type: IntType, lanes: int):
        if len(shape) != 3 or lanes < 1 or shape[0] % lanes:
            raise ValueError(f"GlobalAvgPool '{op.name}': lanes must divide the channels of its "
                             f"(C, H, W) input, not {lanes} lanes for shape {shape}")
        channels, pixels = shape[0], math.prod(shape[1:])
        self.op = op
        self.lanes = lanes
        self.beats = pixels * channels // lanes
        self.sum = ChannelSum(channels=channels, pixels=pixels, zero=op.input_zero_point,
                              in_type=in_type, acc_bits=op.acc_bits, lanes=lanes)
        self.requant = Requantizer(op.requant, acc_bits=op.acc_bits, out_type=out_type,
                                   lanes=lanes, channels=channels)
        self.latency = self.LATENCY
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape_of(in_type), lanes))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(shape_of(out_type), lanes))),
        })

    @classmethod
    def from_graph(cls, graph: ir.IntGraph, op: ir.GlobalAvgPool,
                   lanes: int) -> GlobalAvgPoolEngine:
        x = graph.tensors[op.inputs[0]]
        return cls(op, shape=x.shape, in_type=x.itype,
                   out_type=graph.tensors[op.outputs[0]].itype, lanes=lanes)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.sum = self.sum
        m.submodules.requant = self.requant
        wiring.connect(m, wiring.flipped(self.i_stream), self.sum.i_stream)
        wiring.connect(m, self.sum.o_stream, self.requant.i_stream)
        wiring.connect(m, self.requant.o_stream, wiring.flipped(self.o_stream))
        return m
