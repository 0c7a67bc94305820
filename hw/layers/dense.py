"""The dense engine: the integer `ir.Gemm` (matrix x vector, bias, per-channel requantizer).

    y[c] = clamp(((acc[c] * M[c] + 2^(n[c]-1)) >> n[c]) + z, qmin, qmax),
    acc[c] = sum_k w[c, k] * x[k] + bias[c]

Replay -> MacArray -> Requantizer: the replay buffer stores each input vector once and feeds
it to the MAC array once per output group, while the next vector loads into its other bank.
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.fold import Fold
from hw.mac import MacArray
from hw.replay import Replay
from hw.requant import Requantizer
from hw.shapes import shape_of
from quant import ir
from quant.qtypes import IntType


class DenseEngine(wiring.Component):
    """One `ir.Gemm` on a folded MAC array, one vector (sample) at a time.

    Input stream: `[S] x in_type`, the K inputs as J = ceil(K/S) beats (lanes past K are
    ignored). Output stream: `[P] x out_type`, the N outputs as G = ceil(N/P) beats (lanes past
    N are padding). In steady state a vector takes G*J cycles; the first output of a vector
    leaves `latency` cycles after the MAC array starts on it.
    """

    def __init__(self, op: ir.Gemm, *, in_type: IntType, out_type: IntType, fold: Fold):
        self.op = op
        self.fold = fold
        n, k = op.weight.shape
        self.outputs, self.inputs = n, k
        self.groups, self.chunks = fold.groups(n), fold.chunks(k)
        acc_bits = int(max(op.acc_bits))
        in_layout = data.ArrayLayout(shape_of(in_type), fold.inputs)
        self.replay = Replay(in_layout, beats=self.chunks, repeats=self.groups)
        self.mac = MacArray(op.weight, op.bias, in_shape=shape_of(in_type), acc_bits=acc_bits,
                            fold=fold)
        self.requant = Requantizer(op.requant, acc_bits=acc_bits, out_type=out_type,
                                   lanes=fold.outputs, channels=n)
        self.latency = Replay.LATENCY + MacArray.LATENCY + Requantizer.LATENCY
        super().__init__({
            "i_stream": In(stream.Signature(in_layout)),
            "o_stream": Out(stream.Signature(data.ArrayLayout(shape_of(out_type), fold.outputs))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.replay = self.replay
        m.submodules.mac = self.mac
        m.submodules.requant = self.requant
        wiring.connect(m, wiring.flipped(self.i_stream), self.replay.i_stream)
        wiring.connect(m, self.replay.o_stream, self.mac.i_stream)
        wiring.connect(m, self.mac.o_stream, self.requant.i_stream)
        wiring.connect(m, self.requant.o_stream, wiring.flipped(self.o_stream))
        return m
