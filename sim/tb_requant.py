"""The requantizer's bench: (accumulators, channel group) beats in, checked against
`quant.arith.requantize` channel by channel."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hw.requant import Requantizer
from quant.arith import requantize
from sim.bench import StreamCase, Transcript, check_outputs
from sim.payload import pack, unpack

Run = Callable[[StreamCase], Transcript]


def channels_of(block: Requantizer, index: np.ndarray) -> np.ndarray:
    """[beats, lanes] channel numbers of each lane: g * lanes + l."""
    return np.asarray(index)[:, None] * block.lanes + np.arange(block.lanes)


def check_requant(block: Requantizer, channels: int, acc: np.ndarray, index: np.ndarray,
                  run: Run, *, gap: float = 0.0, stall: float = 0.0, seed: int = 0) -> Transcript:
    """Send beat b = (acc[b], index[b]); assert each real lane (channel < `channels`) equals
    requantize(acc, M[c], n[c], z, qmin, qmax). Padding lanes are not compared."""
    layout = block.i_stream.p.shape()
    case = StreamCase(inputs=[pack(layout, {"acc": [int(v) for v in a], "index": int(g)})
                              for a, g in zip(acc, index)],
                      in_width=layout.size, outputs=len(acc), gap=gap, stall=stall, seed=seed)
    transcript = run(case)
    out_layout = block.o_stream.p.shape()
    actual = np.array([unpack(out_layout, bits) for bits in transcript.outputs], np.int64)
    rq = block.requant
    channel = channels_of(block, index)
    real = channel < channels
    table = np.minimum(channel, channels - 1)
    mult = np.broadcast_to(np.asarray(rq.multiplier, np.int64).reshape(-1), channels)[table]
    shift = np.broadcast_to(np.asarray(rq.shift, np.int64).reshape(-1), channels)[table]
    expected = requantize(acc, mult, shift, rq.zero_point, rq.qmin, rq.qmax)
    if actual.shape == expected.shape:
        actual = np.where(real, actual, 0)
    check_outputs("Requantizer", np.where(real, expected, 0), actual)
    return transcript
