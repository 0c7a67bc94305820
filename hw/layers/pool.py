"""Pooling engines: `ir.MaxPool` (window maximum, no arithmetic beyond compares) and `ir.AvgPool`
(window sum, then the requantizer with the (M, n) of the window's divisor).

    MaxPool: y[c] = max over the window of x[c], padding = the type's qmin (never wins)
    AvgPool: acc[c] = sum over the window's real elements of (x[c] - z_in),
             y[c] = clamp(((acc * M[d] + 2^(n[d]-1)) >> n[d]) + z, qmin, qmax),
             d = the index of the window's divisor in `op.divisors`

Both take L channels per cycle: the window generator sends each output pixel as
Q = ceil(C/L) beats whose lane t*L + l carries tap t of channel q*L + l, one register stage
reduces the kh*kw taps of every lane, and the output is HWC with L lanes, Q beats per pixel
(the last padded when L does not divide C). At full rate a sample takes OH*OW*Q cycles
whenever the input keeps up (`hw.window_geometry.full_rate_cycles`).

AvgPool pads with the input zero point, so padded taps add (z - z) = 0 and the sum runs over
all taps; the generator's row and column masks give the real-element count
(rows inside the image x columns inside it), which selects the divisor: the requantizer's
`index`, a ROM word per divisor holding that divisor's (M, n) on every lane.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fold import ceil_div
from hw.mac import adder_tree
from hw.requant import Requantizer
from hw.shapes import shape_of
from hw.window import WindowGenerator, lookup
from hw.window_geometry import PAD, Beats, Window
from quant import ir
from quant.qtypes import IntType


def pool_beats(window: Window, lanes: int) -> Beats:
    """Q = ceil(C/L) beats per pixel; lane t*L + l of beat q carries tap t, channel q*L + l."""
    beats = ceil_div(window.channels, lanes)
    q, tap, lane = np.meshgrid(range(beats), range(window.taps), range(lanes), indexing="ij")
    channel = q * lanes + lane
    table = np.where(channel < window.channels, tap * window.channels + channel, PAD)
    return Beats(table.reshape(beats, window.taps * lanes))


def _max_tree(values: list[Value]) -> Value:
    while len(values) > 1:
        values = [Mux(a >= b, a, b) for a, b in zip(values[::2], values[1::2])] + \
                 values[len(values) & ~1:]
    return values[0]


def pool_window(op: ir.MaxPool | ir.AvgPool, in_shape: tuple[int, int, int],
                dilations: tuple[int, int]) -> Window:
    return Window(*in_shape, kernel=tuple(op.kernel), strides=tuple(op.strides),
                  pads=tuple(op.pads), dilations=dilations)


def divisor_index(op: ir.AvgPool, window: Window) -> list[int]:
    """The requantizer word for each (real rows r, real columns c) of a window, at
    r * 2^bits(kw) + c (no multiplier): the index of the window's divisor (r*c, or kh*kw with
    count_include_pad) in `op.divisors`."""
    kh, kw = window.kernel
    rows = {hi - lo for lo, hi in (window.bounds(0, oy) for oy in range(window.out_height))}
    cols = {hi - lo for lo, hi in (window.bounds(1, ox) for ox in range(window.out_width))}
    count = (lambda r, c: kh * kw) if op.count_include_pad else (lambda r, c: r * c)
    divisors = [int(d) for d in op.divisors]
    missing = {count(r, c) for r in rows for c in cols} - set(divisors)
    if missing:
        raise ValueError(f"AvgPool '{op.name}' divisors must include the window counts "
                         f"{sorted(missing)}, not only {divisors}")
    return [divisors.index(count(r, c)) if r <= kh and c <= kw and count(r, c) in divisors
            else 0 for r in range(kh + 1) for c in range(1 << kw.bit_length())]


class _PoolEngine(wiring.Component):
    """Window generator -> one register stage that reduces each lane's taps (`reduce_stage`)."""

    def __init__(self, op: ir.MaxPool | ir.AvgPool, *, window: Window, in_type: IntType,
                 out_type: IntType, pad_value: int, lanes: int, in_lanes: int):
        if not (isinstance(lanes, int) and lanes >= 1):
            raise ValueError(f"{type(op).__name__} '{op.name}' lanes must be a positive integer, "
                             f"not {lanes!r}")
        self.op, self.window, self.lanes, self.in_lanes = op, window, lanes, in_lanes
        self.out_channels = window.channels
        beats = pool_beats(window, lanes)
        self.per_pixel = self.pixel_beats = beats.per_window
        self.generator = WindowGenerator(window, shape=shape_of(in_type), in_lanes=in_lanes,
                                         pad_value=pad_value, beats=beats)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape_of(in_type), in_lanes))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(shape_of(out_type), lanes))),
        })

    def lane_taps(self, beat) -> list[list[Value]]:
        """Per output lane l, the kh*kw tap values beat.data[t*L + l]."""
        return [[beat.data[t * self.lanes + lane] for t in range(self.window.taps)]
                for lane in range(self.lanes)]

    def reduce_stage(self, m: Module, sink: stream.Interface,
                     reduce: Callable[[object], list]) -> None:
        """generator -> register stage (`sink`'s payload <= reduce(beat)), all-advance style."""
        m.submodules.generator = gen = self.generator
        wiring.connect(m, wiring.flipped(self.i_stream), gen.i_stream)
        advance = ~sink.valid | sink.ready
        m.d.comb += gen.o_stream.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [sink.valid.eq(gen.o_stream.valid), *reduce(gen.o_stream.p)]


class MaxPoolEngine(_PoolEngine):
    """One `ir.MaxPool`; input `[in_lanes] x itype` (HWC), output `[lanes] x itype`, Q beats per
    pixel; `latency` = generator 2 + max stage 1."""

    def __init__(self, op: ir.MaxPool, *, in_shape: tuple[int, int, int], itype: IntType,
                 lanes: int = 1, in_lanes: int = 1):
        super().__init__(op, window=pool_window(op, in_shape, tuple(op.dilations)),
                         in_type=itype, out_type=itype, pad_value=op.pad_value, lanes=lanes,
                         in_lanes=in_lanes)
        self.latency = self.generator.latency + 1

    def elaborate(self, platform) -> Module:
        m = Module()
        self.reduce_stage(m, self.o_stream, lambda beat: [
            self.o_stream.p[lane].eq(_max_tree(taps))
            for lane, taps in enumerate(self.lane_taps(beat))])
        return m


class AvgPoolEngine(_PoolEngine):
    """One `ir.AvgPool`; input `[in_lanes] x in_type` (HWC), output `[lanes] x out_type`, Q
    beats per pixel; `latency` = generator 3 + sum stage 1 + requantizer 5."""

    def __init__(self, op: ir.AvgPool, *, in_shape: tuple[int, int, int], in_type: IntType,
                 out_type: IntType, lanes: int = 1, in_lanes: int = 1):
        window = pool_window(op, in_shape, (1, 1))
        self.divisor_index = divisor_index(op, window)
        super().__init__(op, window=window, in_type=in_type, out_type=out_type,
                         pad_value=op.input_zero_point, lanes=lanes, in_lanes=in_lanes)
        rq = op.requant
        per_lane = ir.Requant(multiplier=np.repeat(rq.multiplier, lanes),
                              shift=np.repeat(rq.shift, lanes), zero_point=rq.zero_point,
                              qmin=rq.qmin, qmax=rq.qmax)
        self.requant = Requantizer(per_lane, acc_bits=op.acc_bits, out_type=out_type, lanes=lanes,
                                   channels=len(op.divisors) * lanes)
        self.latency = self.generator.latency + 1 + Requantizer.LATENCY

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.requant = requant = self.requant
        z, kw = self.op.input_zero_point, self.window.kernel[1]
        sink = requant.i_stream

        def reduce(beat) -> list:
            rows = sum(beat.rows[ky] for ky in range(self.window.kernel[0]))
            cols = Value.cast(sum(beat.cols[kx] for kx in range(kw)))[:kw.bit_length()]
            return [sink.p.index.eq(lookup(self.divisor_index, Cat(cols, rows))),
                    *(sink.p.acc[lane].eq(adder_tree([t - z for t in taps]))
                      for lane, taps in enumerate(self.lane_taps(beat)))]

        self.reduce_stage(m, sink, reduce)
        wiring.connect(m, requant.o_stream, wiring.flipped(self.o_stream))
        return m
