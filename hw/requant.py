"""The requantizer: SPEC's one multiply, one rounding shift, one clamp, as a pipelined stream block.

    y = clamp(((acc * M[c] + 2^(n[c]-1)) >> n[c]) + z, qmin, qmax)        (n >= 1)

The rounding is computed as ((acc*M >> (n-1)) + 1) >> 1, which is the same integer: with
q = floor(p / 2^(n-1)), floor((p + 2^(n-1)) / 2^n) = floor((p / 2^(n-1) + 1) / 2) =
floor((q + 1) / 2), because floor(floor(x) / 2) = floor(x / 2). It needs no variable-width
rounding constant, only the shift n-1 (which the parameter ROM stores).

When every M is a power of two 2^k (SPEC's pow2 mode: M = 1, or 2^(1-n) with n = 1), the
multiply is a left shift by k and the block has no multiplier.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fold import ceil_div, to_beats
from hw.shapes import index_shape, range_shape, shape_of
from quant import ir
from quant.qtypes import IntType


def requant_input(acc_bits: int, lanes: int, groups: int) -> data.StructLayout:
    """Payload of a requantizer's input: `lanes` accumulators of channel group `index`."""
    return data.StructLayout({"acc": data.ArrayLayout(signed(acc_bits), lanes),
                              "index": index_shape(groups)})


class Requantizer(wiring.Component):
    """Requantizes `lanes` accumulators per beat; lane l of group g is channel g*lanes + l.

    `channels` defaults to the length of the requantizer's arrays; a per-tensor requantizer
    (one entry) serves any number of channels.

    Input stream payload: `{acc: [lanes] x signed(acc_bits), index: g}` (the producer names the
    channel group, so any channel order works); output stream: `[lanes] x out_type`.
    Per-channel M and n come from a ROM addressed by `index`; a parameter that is the same for
    every channel (always z, qmin, qmax; M and n of a per-tensor requantizer) is a constant.

    Pipeline (`LATENCY` = 5 cycles, one beat per cycle): accumulator register and ROM read;
    partial products (`SPLIT`); their sum; the rounding shift; round, offset and clamp into
    the output register. All stages advance together when the output register is empty or
    being read (`ready` is combinational from the output's `ready`), so a stall holds every
    stage, ROM included.

    An accumulator wider than `SPLIT` + 1 bits is multiplied in two pieces, acc = hi * 2^SPLIT
    + lo with lo unsigned, each product a DSP block with registers on both sides; their sum
    is the next stage. (A single product that wide is two DSP blocks whose partial sum
    synthesis puts in the same cycle as the multiply, with the blocks far apart: ECP5's
    critical path.) The pieces fit one iCE40 (16 x 16) or ECP5 (18 x 18) block each when M
    has at most 16 bits, as many blocks as the undivided product.
    """

    LATENCY = 5
    SPLIT = 15

    def __init__(self, requant: ir.Requant, *, acc_bits: int, out_type: IntType, lanes: int = 1,
                 channels: int | None = None):
        mult = np.asarray(requant.multiplier, np.int64).reshape(-1)
        shift = np.asarray(requant.shift, np.int64).reshape(-1)
        channels = len(mult) if channels is None else channels
        if {len(mult), len(shift)} - {1, channels}:
            raise ValueError(f"Requant multiplier and shift must have 1 or {channels} entries, not "
                             f"{len(mult)} and {len(shift)}")
        mult, shift = np.broadcast_to(mult, channels), np.broadcast_to(shift, channels)
        if mult.min() < 1 or shift.min() < 1:
            raise ValueError(f"Requant multipliers and shifts must be >= 1, not {mult.min()} and "
                             f"{shift.min()}")
        if not out_type.qmin <= requant.qmin <= requant.qmax <= out_type.qmax:
            raise ValueError(f"Requant clamp range must lie within {out_type}, not "
                             f"[{requant.qmin}, {requant.qmax}]")
        if acc_bits < 2 or lanes < 1:
            raise ValueError(f"acc_bits must be >= 2 and lanes >= 1, not {acc_bits} and {lanes}")
        self.requant = requant
        self.acc_bits = acc_bits
        self.lanes = lanes
        self.groups = ceil_div(channels, lanes)
        self.pow2 = bool(np.all(mult & (mult - 1) == 0))
        # The per-channel parameters; "lshift" (k = log2 M) replaces "mult" in pow2 mode.
        columns = {"lshift": np.array([int(m).bit_length() - 1 for m in mult])} if self.pow2 \
            else {"mult": mult}
        columns["rshift"] = shift - 1
        self.constants = {k: int(v[0]) for k, v in columns.items() if np.all(v == v[0])}
        # ROM contents, [groups, lanes] per parameter that varies between channels.
        self.per_channel = {k: to_beats(v, lanes, fill=int(v[0])) for k, v in columns.items()
                            if k not in self.constants}
        self.shapes = {k: range_shape(v) for k, v in columns.items()}
        grow = int(columns["lshift"].max()) if self.pow2 else int(mult.max()).bit_length()
        self.product_bits = acc_bits + grow  # |acc * M| < 2^(acc_bits - 1 + grow)
        super().__init__({
            "i_stream": In(stream.Signature(requant_input(acc_bits, lanes, self.groups))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(shape_of(out_type), lanes))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)

        param = self._parameters(m, advance)
        lanes, rq = range(self.lanes), self.requant
        split = not self.pow2 and self.acc_bits > self.SPLIT + 1
        # No reset on the multiplier's operand and product registers: they go into the DSP.
        acc = Signal(data.ArrayLayout(signed(self.acc_bits), self.lanes), reset_less=True)
        pieces = [Signal(data.ArrayLayout(signed(self.product_bits), 1 + split), reset_less=True,
                         name=f"pieces{lane}") for lane in lanes]
        product, shifted = (Signal(data.ArrayLayout(signed(self.product_bits), self.lanes),
                                   name=name) for name in ("product", "shifted"))
        valid = Signal(4)
        # The right shift per lane at stages 2 and 3 (a constant when it is per-tensor).
        rshift = [[Signal(self.shapes["rshift"], name=f"rshift{k}_{lane}") for lane in lanes]
                  if "rshift" in self.per_channel else [self.constants["rshift"]] * self.lanes
                  for k in range(2)]
        with m.If(advance):
            m.d.sync += [valid.eq(Cat(i.valid, valid[:3])), o.valid.eq(valid[3]),
                         acc.eq(i.p.acc)]
            for lane in lanes:
                if self.pow2:
                    m.d.sync += pieces[lane][0].eq(acc[lane] << param("lshift", lane))
                elif split:
                    low, high = acc[lane][:self.SPLIT], acc[lane][self.SPLIT:].as_signed()
                    m.d.sync += [pieces[lane][0].eq(low * param("mult", lane)),
                                 pieces[lane][1].eq(high * param("mult", lane))]
                else:
                    m.d.sync += pieces[lane][0].eq(acc[lane] * param("mult", lane))
                m.d.sync += [product[lane].eq(pieces[lane][0] + (pieces[lane][1] << self.SPLIT)
                                              if split else pieces[lane][0]),
                             shifted[lane].eq(product[lane] >> rshift[1][lane])]
                if "rshift" in self.per_channel:
                    m.d.sync += [rshift[0][lane].eq(param("rshift", lane)),
                                 rshift[1][lane].eq(rshift[0][lane])]
                rounded = ((shifted[lane] + 1) >> 1) + rq.zero_point
                m.d.sync += o.p[lane].eq(
                    Mux(rounded < rq.qmin, rq.qmin, Mux(rounded > rq.qmax, rq.qmax, rounded)))
        return m

    def _parameters(self, m: Module, advance):
        """param(name, lane): the stage-1 value of a parameter: a Python int when it is the
        same for every channel (so shifts by it are static), else the ROM's read data."""
        port = None
        if self.per_channel:
            layout = data.StructLayout({k: data.ArrayLayout(self.shapes[k], self.lanes)
                                        for k in self.per_channel})
            init = [{k: [int(x) for x in v[g]] for k, v in self.per_channel.items()}
                    for g in range(self.groups)]
            m.submodules.params = rom = Memory(shape=layout, depth=self.groups, init=init)
            port = rom.read_port(domain="sync")
            m.d.comb += [port.addr.eq(self.i_stream.p.index), port.en.eq(advance)]
        return lambda name, lane: (self.constants[name] if name in self.constants
                                   else port.data[name][lane])
