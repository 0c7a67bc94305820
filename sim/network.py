"""Whole-network co-simulation: the `hw.lower.Accelerator` of an integer graph, run in cocotb
through the in-design harness (`sim.player`), against the golden model, element by element.

Inputs stream one element per beat in stream order (HWC), samples back to back, with random
valid gaps; the output is taken with random ready backpressure. Every output element of every
sample is compared with `quant.evaluate.run`; timing comes from the harness's cycle stamps.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from amaranth.hdl import Shape

from hw.lower import Accelerator
from hw.streams import to_stream_order
from quant import evaluate, ir
from sim.bench import Transcript
from sim.player import CYCLE_BITS, HarnessCase, busy_fraction, throughput
from sim.runner import build_harness, run_harness

if TYPE_CHECKING:  # sim.bundle builds on this module
    from sim.bundle import Bundle


@dataclass(frozen=True)
class Mismatch:
    sample: int
    element: int  # index in the output's stream order
    expected: int
    actual: int


@dataclass
class NetworkRun:
    """What one co-simulation gave: outputs [N, elements] (stream order), expected ones,
    the first mismatch (or None), and steady-state timing. `inputs_left` is counted in a
    bundle, whose turns end only when every input beat is taken; `simulate` leaves it 0, as
    a lone run may end before the trailing beats that a stride skips are taken."""

    outputs: np.ndarray
    expected: np.ndarray
    first_mismatch: Mismatch | None
    mismatches: int
    cycles_per_sample: float
    latency: int
    cycles: int
    inputs_left: int = 0  # input beats never taken (counted by `sim.bundle` only)

    @property
    def checked(self) -> int:
        return int(self.expected.size)


def expected_outputs(graph: ir.IntGraph, xq: np.ndarray) -> np.ndarray:
    """The golden model's output for `xq`, each sample flattened in stream order."""
    out = evaluate.run(graph, xq)[graph.outputs[0]]
    return to_stream_order(out.reshape(len(xq), *graph.tensors[graph.outputs[0]].shape))


def build_for(accelerator: Accelerator | Bundle, samples: int, simulator: str, *,
              waves: bool = False, quick: bool = False) -> Path:
    """Build (cached) the harness of `accelerator` (or of a `sim.bundle.Bundle`) with memories
    for runs of up to `samples` samples, so that several runs, or processes, share one build
    (`simulate(build_dir=)`). `quick`: a quick Verilator build (`sim.runner.build_harness`)."""
    case = HarnessCase(inputs={"i_stream": [0] * (samples * accelerator.inputs)},
                       outputs=samples * accelerator.outputs)
    return build_harness(accelerator, case, simulator, waves=waves, quick=quick)


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
    expected = expected_outputs(graph, xq)
    case = HarnessCase(inputs={"i_stream": stimulus(in_shape, xq)}, outputs=expected.size,
                       gap=gap, stall=stall, seed=seed, gap_stretch=gap_stretch,
                       stall_stretch=stall_stretch,
                       max_cycles=cycle_budget([accelerator], len(xq), gap, stall, gap_stretch,
                                               stall_stretch))
    if build_dir is None:
        build_dir = build_harness(accelerator, case, simulator, waves=waves is not None)
    transcript = run_harness(build_dir, simulator, case, work_dir, waves=waves)
    return compare(transcript, expected, Shape.cast(accelerator.out_shape))


def stimulus(shape: Shape, xq: np.ndarray) -> list[int]:
    """The input beats of `xq` ([N, *input shape]) for a stream of `shape` elements: samples
    back to back, each in stream order, every value as its raw bits."""
    mask = (1 << shape.width) - 1
    return [int(v) & mask for v in to_stream_order(xq).reshape(-1)]


def cycle_budget(accelerators: Sequence[Accelerator], samples: int, gap: float, stall: float,
                 gap_stretch: int = 1, stall_stretch: int = 1) -> int:
    """The cycle limit of a run of `samples` samples through each of `accelerators` in turn:
    twice what they need at full rate (with room to spare), stretched by the idle input and
    not-ready output cycles, within the harness's cycle stamps."""
    work = sum(a.interval * samples + 20 * a.latency + 5000 for a in accelerators)
    busy = busy_fraction(gap, gap_stretch), busy_fraction(stall, stall_stretch)
    budget = int(work / max(1e-3, (1 - busy[0]) * (1 - busy[1])) * 2)
    return min(budget, (1 << CYCLE_BITS) - 1)


def compare(transcript: Transcript, expected: np.ndarray, shape: Shape, settle: int = 0) -> NetworkRun:
    """Check a run's output beats (elements of `shape`) against `expected` ([N, elements]),
    element by element (a missing beat mismatches), and time it from its cycle stamps: the
    latency of the first sample, the cycles per sample from the end of sample `settle` on
    (after the pipeline has settled: a graph's first sample may leave a few cycles sooner
    than the steady state's, docs/reliability-fuzz.md finding 5)."""
    values = np.array([_signed(int(v), shape) for v in transcript.outputs], np.int64)
    got = np.full(expected.size, np.iinfo(np.int64).min, np.int64)
    got[:len(values)] = values[:expected.size]
    got = got.reshape(expected.shape)
    bad = np.argwhere(got != expected)
    first = None if not len(bad) else Mismatch(int(bad[0][0]), int(bad[0][1]),
                                                int(expected[tuple(bad[0])]), int(got[tuple(bad[0])]))
    per_sample = expected.shape[1]
    if len(expected) < settle + 2 or len(values) < expected.size:
        return NetworkRun(got, expected, first, len(bad), float("nan"), 0, transcript.cycles)
    steady = replace(transcript, out_cycles=transcript.out_cycles[settle * per_sample:])
    return NetworkRun(got, expected, first, len(bad), throughput(steady, per_sample).cycles_per_sample,
                      throughput(transcript, per_sample).latency, transcript.cycles)


def _signed(bits: int, shape: Shape) -> int:
    # one-lane ArrayLayout payload: the element's bits are the whole payload
    bits &= (1 << shape.width) - 1
    return bits - (1 << shape.width) if shape.signed and bits >> (shape.width - 1) else bits
