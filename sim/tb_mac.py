"""The MAC array's bench: each vector sent once per output group; accumulators checked
against the golden Gemm kernel run with an identity requantizer."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hw.fold import from_beats, to_beats
from hw.mac import MacArray
from quant import ir
from quant.ops import kernel_for
from sim.bench import StreamCase, Transcript, check_outputs
from sim.payload import pack, unpack

Run = Callable[[StreamCase], Transcript]


def accumulator_gemm(op: ir.Gemm) -> ir.Gemm:
    """`op` with its requantizer replaced by the identity on the accumulator's range:
    M = 2, n = 1 gives ((acc * 2 + 1) >> 1) = acc, so the golden kernel returns acc itself."""
    bits = int(max(op.acc_bits))
    identity = ir.Requant(multiplier=np.array([2]), shift=np.array([1]), zero_point=0,
                          qmin=-(1 << (bits - 1)), qmax=(1 << (bits - 1)) - 1)
    return ir.Gemm(name=op.name, inputs=op.inputs, outputs=op.outputs, weight=op.weight,
                   bias=op.bias, requant=identity, acc_bits=op.acc_bits)


def check_mac(mac: MacArray, op: ir.Gemm, x: np.ndarray, run: Run, *, gap: float = 0.0,
              stall: float = 0.0, seed: int = 0) -> Transcript:
    """Send each vector of x [samples, K] G times; assert the accumulators equal the golden
    w @ x + b and that group indices run 0..G-1 for every vector."""
    layout = mac.i_stream.p.shape()
    beats = to_beats(x, mac.fold.inputs)  # [samples, J, S]
    stream = [pack(layout, [int(v) for v in beat])
              for vector in beats for _ in range(mac.groups) for beat in vector]
    case = StreamCase(inputs=stream, in_width=layout.size, outputs=len(x) * mac.groups,
                      gap=gap, stall=stall, seed=seed)
    transcript = run(case)
    out = [unpack(mac.o_stream.p.shape(), bits) for bits in transcript.outputs]
    index = np.array([[beat["index"] for beat in out]])
    check_outputs("MacArray index", np.tile(np.arange(mac.groups), (1, len(x))), index)
    acc = np.array([beat["acc"] for beat in out], np.int64).reshape(len(x), mac.groups, -1)
    check_outputs("MacArray", kernel_for(op)(accumulator_gemm(op), x),
                  from_beats(acc, len(op.bias)))
    return transcript
