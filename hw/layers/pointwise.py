"""The common frame of the elementwise engines that end in a requantizer (Add, Mul, Affine).

    y[e] = clamp(((acc[e] * M + 2^(n-1)) >> n) + z, qmin, qmax),   acc[e] = f(x_0[e], x_1[e], ...)

Each input stream brings L lanes per beat; the inputs are joined beat by beat (no stream gives
a beat until all have one). `f` runs in two registered stages written by the subclass (the
multiplier's input registers, then its output registers), and its result enters
`hw.requant.Requantizer` (M = 1 for Add and Affine: SPEC's plain rounding shift, no
multiplier). All stages advance together with the requantizer's input.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Module, ShapeLike, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.requant import Requantizer
from hw.shapes import range_shape, shape_of
from hw.streams import input_names, join
from quant import ir
from quant.errors import ModelError
from quant.qtypes import IntType


def stage(m: Module, advance: Value, shape: ShapeLike, values: Sequence, name: str) -> Signal:
    """A pipeline register of len(values) lanes of `shape`, loaded when the pipeline advances.
    Data only (the valid bits beside it are reset), so it has no reset: a multiplier's
    operand and product registers can then go into the DSP block."""
    register = Signal(data.ArrayLayout(shape, len(values)), name=name, reset_less=True)
    with m.If(advance):
        m.d.sync += [register[lane].eq(v) for lane, v in enumerate(values)]
    return register


def centred_range(itype: IntType, zero: int) -> tuple[int, int]:
    """The range of x - z over the type's values."""
    return itype.qmin - zero, itype.qmax - zero


def product_shape(a: Sequence[int], b: Sequence[int]):
    """The narrowest shape holding every product of a value in range a with one in range b."""
    return range_shape([x * y for x in (min(a), max(a)) for y in (min(b), max(b))])


def scaled(value: Value, factor: int) -> Value:
    """value * factor for a constant factor: a shift (and negation) when |factor| is a power of
    two, so no multiplier is built; 0 for 0."""
    magnitude = abs(factor)
    if magnitude == 0:
        return value * 0
    if magnitude & (magnitude - 1):
        return value * factor
    shifted = value << (magnitude.bit_length() - 1)
    return -shifted if factor < 0 else shifted


def rounding_shift(shift: int, zero_point: int, qmin: int, qmax: int) -> ir.Requant:
    """SPEC's requantizer with M = 1: y = clamp(((acc + 2^(n-1)) >> n) + z, qmin, qmax)."""
    return ir.Requant(multiplier=np.array([1]), shift=np.array([shift]), zero_point=zero_point,
                      qmin=qmin, qmax=qmax)


def equal_shapes(graph: ir.IntGraph, op: ir.Op) -> None:
    """Refuse a two-input op whose inputs broadcast: the engines pair equal streams beat by beat."""
    shapes = [graph.tensors[name].shape for name in op.inputs]
    if len(set(shapes)) != 1:
        raise ModelError(f"{type(op).__name__} '{op.name}': inputs of shapes "
                         f"{' and '.join(map(str, shapes))} broadcast; the hardware engine "
                         f"needs equal shapes")


class PointwiseEngine(wiring.Component):
    """Joined input streams -> two registered stages (`datapath`) -> Requantizer.

    Inputs `[L] x in_types[k]` (ports named by `hw.streams.input_names`), output
    `[L] x out_type`. One beat per cycle; `LATENCY` = 2 + Requantizer.LATENCY = 7 cycles
    from a beat's transfer to its output's first cycle of valid.
    """

    LATENCY = 2 + Requantizer.LATENCY

    def __init__(self, *, in_types: Sequence[IntType], out_type: IntType, lanes: int,
                 acc_bits: int, requant: ir.Requant):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, not {lanes}")
        self.lanes = lanes
        self.latency = self.LATENCY
        self.in_types = tuple(in_types)
        self.out_type = out_type
        self.requantizer = Requantizer(requant, acc_bits=acc_bits, out_type=out_type,
                                       lanes=lanes)
        ports = {name: In(stream.Signature(data.ArrayLayout(shape_of(t), lanes)))
                 for name, t in zip(input_names(len(in_types)), in_types)}
        ports["o_stream"] = Out(stream.Signature(data.ArrayLayout(shape_of(out_type), lanes)))
        super().__init__(ports)

    @property
    def input_streams(self) -> list[stream.Interface]:
        return [getattr(self, name) for name in input_names(len(self.in_types))]

    def datapath(self, m: Module, advance: Value, taken: Value, inputs: list) -> list[Value]:
        """Build the two registered stages (each register enabled by `advance`) from the input
        payloads; `taken` is high in the cycles a beat is transferred. Returns acc per lane,
        combinational from the second stage."""
        raise NotImplementedError

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.requant = rq = self.requantizer
        advance = ~rq.i_stream.valid | rq.i_stream.ready
        valid = join(m, self.input_streams, advance)
        valid1 = Signal()
        with m.If(advance):
            m.d.sync += [valid1.eq(valid), rq.i_stream.valid.eq(valid1)]
        acc = self.datapath(m, advance, valid & advance, [s.p for s in self.input_streams])
        m.d.comb += [rq.i_stream.p.acc[lane].eq(value) for lane, value in enumerate(acc)]
        wiring.connect(m, rq.o_stream, wiring.flipped(self.o_stream))
        return m
