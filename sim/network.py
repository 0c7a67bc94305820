"""Whole-network co-simulation: the `hw.lower.Accelerator` of an integer graph, run in cocotb
through the in-design harness (`sim.player`), against the golden model, element by element.

Inputs stream one element per beat in stream order (HWC), samples back to back, with random
valid gaps; the output is taken with random ready backpressure. Every output element of every
sample is compared with `quant.evaluate.run`; timing comes from the harness's cycle stamps.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape

from hw.lower import Accelerator
from hw.streams import to_stream_order
from quant import evaluate, ir
from sim.player import CYCLE_BITS, HarnessCase, busy_fraction, throughput
from sim.runner import build_harness, run_harness


@dataclass(frozen=True)
class Mismatch:
    sample: int
    element: int  # index in the output's stream order
    expected: int
    actual: int


@dataclass
class NetworkRun:
    """What one co-simulation gave: outputs [N, elements] (stream order), expected ones,
    the first mismatch (or None), and steady-state timing."""

    outputs: np.ndarray
    expected: np.ndarray
    first_mismatch: Mismatch | None
    mismatches: int
    cycles_per_sample: float
    latency: int
    cycles: int

    @property
    def checked(self) -> int:
        return int(self.expected.size)


def expected_outputs(graph: ir.IntGraph, xq: np.ndarray) -> np.ndarray:
    """The golden model's output for `xq`, each sample flattened in stream order."""
    out = evaluate.run(graph, xq)[graph.outputs[0]]
    return to_stream_order(out.reshape(len(xq), *graph.tensors[graph.outputs[0]].shape))


def build_for(accelerator: Accelerator, samples: int, simulator: str, *, waves: bool = False) -> Path:
    """Build (cached) the harness of `accelerator` with memories for runs of up to `samples`
    samples, so that several runs, or processes, share one build (`simulate(build_dir=)`)."""
    case = HarnessCase(inputs={"i_stream": [0] * (samples * accelerator.inputs)},
                       outputs=samples * accelerator.outputs)
    return build_harness(accelerator, case, simulator, waves=waves)


def simulate(accelerator: Accelerator, graph: ir.IntGraph, xq: np.ndarray, simulator: str,
             work_dir: Path, *, gap: float = 0.0, stall: float = 0.0, seed: int = 0,
             gap_stretch: int = 1, stall_stretch: int = 1,
             build_dir: Path | None = None, waves: Path | None = None) -> NetworkRun:
    """Stream every sample of `xq` (integer inputs, [N, *input shape]) through the accelerator
    on `simulator` ("icarus" or "verilator") and compare with the golden model.
    `gap_stretch`, `stall_stretch`: input idle and output not-ready come in bursts of up to
    that many cycles (`sim.player`; 1: per-cycle). `build_dir`: a harness built by
    `build_for` for at least N samples (default: build one for this run); `waves`: a
    waveform file to record the run into (`sim.runner.WAVES_FORMAT`)."""
    in_shape = Shape.cast(accelerator.i_stream.p.shape().elem_shape)
    out_shape = Shape.cast(accelerator.out_shape)
    beats = to_stream_order(xq).reshape(-1)
    mask = (1 << in_shape.width) - 1
    expected = expected_outputs(graph, xq)
    per_sample = expected.shape[1]
    busy = busy_fraction(gap, gap_stretch), busy_fraction(stall, stall_stretch)
    budget = int((accelerator.interval * len(xq) + 20 * accelerator.latency + 5000)
                 / max(1e-3, (1 - busy[0]) * (1 - busy[1])) * 2)
    case = HarnessCase(inputs={"i_stream": [int(v) & mask for v in beats]}, outputs=expected.size,
                       gap=gap, stall=stall, seed=seed, gap_stretch=gap_stretch,
                       stall_stretch=stall_stretch, max_cycles=min(budget, (1 << CYCLE_BITS) - 1))
    if build_dir is None:
        build_dir = build_harness(accelerator, case, simulator, waves=waves is not None)
    transcript = run_harness(build_dir, simulator, case, work_dir, waves=waves)
    raw = np.array(transcript.outputs, dtype=object)
    values = np.array([_signed(int(v), out_shape) for v in raw], np.int64)
    got = np.full(expected.size, np.iinfo(np.int64).min, np.int64)
    got[:len(values)] = values[:expected.size]
    got = got.reshape(expected.shape)
    bad = np.argwhere(got != expected)
    first = None if not len(bad) else Mismatch(int(bad[0][0]), int(bad[0][1]),
                                                int(expected[tuple(bad[0])]), int(got[tuple(bad[0])]))
    timing = throughput(transcript, per_sample) if len(xq) >= 2 and len(values) >= expected.size else None
    return NetworkRun(got, expected, first, len(bad),
                      timing.cycles_per_sample if timing else float("nan"),
                      timing.latency if timing else 0, transcript.cycles)


def _signed(bits: int, shape: Shape) -> int:
    # one-lane ArrayLayout payload: the element's bits are the whole payload
    bits &= (1 << shape.width) - 1
    return bits - (1 << shape.width) if shape.signed and bits >> (shape.width - 1) else bits
