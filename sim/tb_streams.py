"""Benches for the stream plumbing (`hw.streams`): Regroup, Fork, StreamFifo, and a residual
block built from them to prove the skip FIFO's depth bound.

The residual block is the pattern a whole-network compiler builds for y = x + f(x):

    x -> Fork -o0-> Replay(B beats) -> Lut (f) -> Add.i0 -> y
              -o1-> StreamFifo(depth) ---------> Add.i1

Replay stands for any long path that must absorb a whole vector (B beats) before it emits
the vector's first beat (a line buffer, a dense layer's input store). The golden reference
is the golden kernels composed: add(lut(x), x).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.layers.add import AddEngine
from hw.layers.lut import LutEngine
from hw.replay import Replay
from hw.shapes import shape_of
from hw.streams import Fork, StreamFifo
from quant import ir
from quant.ops import kernel_for
from quant.qtypes import IntType


def long_latency(beats: int) -> int:
    """Λ: cycles from the fork giving a beat to the long path presenting it to the join."""
    return beats + Replay.LATENCY + LutEngine.LATENCY


class Residual(wiring.Component):
    """y = add(lut(x), x) per element, with the skip path through a FIFO of `depth` beats.

    The long path must absorb A = B beats before it emits the first, and its element latency
    at full rate is Λ = B + Replay.LATENCY + Lut.LATENCY = B + 2 cycles (a vector's beats
    all in, the last one landing the cycle after it is forked; the read register; the
    table). `hw.streams.skip_depths(B, Λ)` gives the skip FIFO depths: B - 1 to finish,
    Λ + 1 = B + 3 for full rate.
    """

    def __init__(self, lut: ir.Lut, add: ir.Add, *, itype: IntType, beats: int, lanes: int,
                 depth: int):
        self.beats = beats
        self.lanes = lanes
        layout = data.ArrayLayout(shape_of(itype), lanes)
        self.fork = Fork(layout)
        self.replay = Replay(layout, beats=beats, repeats=1)
        self.lut = LutEngine(lut, in_type=itype, out_type=itype, lanes=lanes)
        self.skip = StreamFifo(layout, depth)
        self.add = AddEngine(add, in_types=(itype, itype), out_type=itype, lanes=lanes)
        self.long_latency = long_latency(beats)
        self.latency = self.long_latency + AddEngine.LATENCY
        super().__init__({"i_stream": In(stream.Signature(layout)),
                          "o_stream": Out(stream.Signature(layout))})

    def golden(self, x: np.ndarray) -> np.ndarray:
        """The composed golden kernels on [samples, elements]."""
        return kernel_for(self.add.op)(self.add.op, kernel_for(self.lut.op)(self.lut.op, x), x)

    def elaborate(self, platform) -> Module:
        m = Module()
        for name in ("fork", "replay", "lut", "skip", "add"):
            m.submodules[name] = getattr(self, name)
        wiring.connect(m, wiring.flipped(self.i_stream), self.fork.i_stream)
        wiring.connect(m, self.fork.o0_stream, self.replay.i_stream)
        wiring.connect(m, self.replay.o_stream, self.lut.i_stream)
        wiring.connect(m, self.lut.o_stream, self.add.i0_stream)
        wiring.connect(m, self.fork.o1_stream, self.skip.i_stream)
        wiring.connect(m, self.skip.o_stream, self.add.i1_stream)
        wiring.connect(m, self.add.o_stream, wiring.flipped(self.o_stream))
        return m
