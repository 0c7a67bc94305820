"""The Conv2d engine: the integer `ir.Conv` as window generator -> MAC array -> requantizer.

    y[c, oy, ox] = clamp(((acc * M[c] + 2^(n[c]-1)) >> n[c]) + z, qmin, qmax),
    acc = bias[c] + sum over the window of w[c, ci, ky, kx] * x[ci, y, x]

with the window padded by the input zero point (`op.pad_value`), so no correction term is
needed beyond the folded bias. Fold (P, S): P output channels x S inputs per cycle.

- group == 1: the window vector (ky, kx, c) goes out as J = ceil(kh*kw*C / S) beats of S
  lanes, repeated for each of the G = ceil(Cout / P) output groups, into the shared-input
  MAC array; the weights are permuted to the same (ky, kx, c) order.
- group > 1 (grouped and depthwise): the MAC array's per-lane variant, where output lane p
  gets its own S inputs: channel c reads the kh*kw*Cg elements of its own group's window,
  J = ceil(kh*kw*Cg / S), so no multiplier ever sees a structural zero. A depthwise conv
  (Cg = 1) takes ceil(C/P) * ceil(kh*kw/S) beats per pixel.

Output: HWC with P lanes, G beats per pixel (lane p of beat g is channel g*P + p; the last
beat of a pixel is padded when P does not divide Cout). At full rate the conv takes
OH*OW*G*J cycles per sample whenever the input keeps up (`hw.window_geometry.full_rate_cycles`).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fold import Fold
from hw.mac import MacArray
from hw.requant import Requantizer
from hw.shapes import shape_of
from hw.window import WindowGenerator
from hw.window_geometry import PAD, Beats, Window
from quant import ir
from quant.qtypes import IntType


def grouped_beats(window: Window, out_channels: int, group: int, fold: Fold) -> Beats:
    """Per-lane beats for a grouped conv: beat g*J + j, lane p*S + s carries element j*S + s
    (in (ky, kx, ci) order) of output channel c = g*P + p's group window, i.e. window element
    (ky*kw + kx)*C + (c // (Cout/group))*Cg + ci; PAD past Cout or past kh*kw*Cg."""
    per_group = window.channels // group
    length = window.taps * per_group
    groups, chunks = fold.groups(out_channels), fold.chunks(length)
    g, j, p, s = np.meshgrid(range(groups), range(chunks), range(fold.outputs),
                             range(fold.inputs), indexing="ij")
    channel, k = g * fold.outputs + p, j * fold.inputs + s
    tap, ci = np.divmod(k, per_group)
    first = channel // (out_channels // group) * per_group
    element = tap * window.channels + first + ci
    table = np.where((channel < out_channels) & (k < length), element, PAD)
    return Beats(table.reshape(groups * chunks, fold.outputs * fold.inputs))


class ConvEngine(wiring.Component):
    """One `ir.Conv` over a (C, H, W) input on a folded MAC array, sample after sample.

    Input stream: `[in_lanes] x in_type`, the sample in HWC order (in_lanes | C). Output
    stream: `[P] x out_type`, `pixel_beats` = G beats per output pixel, pixels in raster order.
    `per_pixel` = G*J cycles per output pixel; `latency` = generator 3 + MAC array 5 +
    requantizer 5.
    """

    def __init__(self, op: ir.Conv, *, in_shape: tuple[int, int, int], in_type: IntType,
                 out_type: IntType, fold: Fold, in_lanes: int = 1):
        c_out, c_group, kh, kw = op.weight.shape
        if in_shape[0] != c_group * op.group or c_out % op.group:
            raise ValueError(f"Conv '{op.name}' weight {list(op.weight.shape)} with group "
                             f"{op.group} must match the input's {in_shape[0]} channels")
        self.op, self.fold, self.in_lanes = op, fold, in_lanes
        self.window = Window(*in_shape, kernel=(kh, kw), strides=tuple(op.strides),
                             pads=tuple(op.pads), dilations=tuple(op.dilations))
        length = kh * kw * c_group
        self.out_channels = c_out
        self.groups, self.chunks = fold.groups(c_out), fold.chunks(length)
        self.per_pixel, self.pixel_beats = self.groups * self.chunks, self.groups
        per_lane = op.group > 1
        beats = grouped_beats(self.window, c_out, op.group, fold) if per_lane else \
            Beats.chunks(length, fold.inputs, repeats=self.groups)
        acc_bits = int(max(op.acc_bits))
        self.generator = WindowGenerator(self.window, shape=shape_of(in_type), in_lanes=in_lanes,
                                         pad_value=op.pad_value, beats=beats)
        self.mac = MacArray(op.weight.transpose(0, 2, 3, 1).reshape(c_out, length), op.bias,
                            in_shape=shape_of(in_type), acc_bits=acc_bits, fold=fold,
                            per_lane=per_lane)
        self.requant = Requantizer(op.requant, acc_bits=acc_bits, out_type=out_type,
                                   lanes=fold.outputs, channels=c_out)
        self.latency = self.generator.latency + MacArray.LATENCY + Requantizer.LATENCY
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape_of(in_type), in_lanes))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(shape_of(out_type),
                                                              fold.outputs))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.generator = gen = self.generator
        m.submodules.mac = mac = self.mac
        m.submodules.requant = self.requant
        wiring.connect(m, wiring.flipped(self.i_stream), gen.i_stream)
        m.d.comb += [mac.i_stream.valid.eq(gen.o_stream.valid),
                     gen.o_stream.ready.eq(mac.i_stream.ready),
                     Value.cast(mac.i_stream.payload).eq(Value.cast(gen.o_stream.p.data))]
        wiring.connect(m, mac.o_stream, self.requant.i_stream)
        wiring.connect(m, self.requant.o_stream, wiring.flipped(self.o_stream))
        return m
