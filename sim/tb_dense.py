"""The dense engine's bench: vectors in as beats, outputs checked against the golden Gemm."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hw.fold import Fold, from_beats, to_beats
from hw.layers.dense import DenseEngine
from quant import ir
from quant.ops import kernel_for
from quant.qtypes import IntType
from sim.bench import StreamCase, Transcript, check_outputs
from sim.payload import pack, unpack
from sim.vectors import operands, random_gemm

Run = Callable[[StreamCase], Transcript]


def random_dense(bits: int, fold: Fold, *, outputs: int, inputs: int, pow2: bool = False,
                 relu: bool = False, seed: int = 0,
                 samples: int = 10) -> tuple[DenseEngine, np.ndarray]:
    """A random `bits`-bit Gemm (unsigned inputs, signed outputs) on `fold`, and `samples`
    input vectors: all max, all min, alternating, then random."""
    rng = np.random.default_rng(seed)
    in_type, out_type = IntType(bits, False), IntType(bits, True)
    op = random_gemm(rng, outputs=outputs, inputs=inputs, in_type=in_type, weight_bits=bits,
                     out_type=out_type, pow2=pow2, relu=relu)
    engine = DenseEngine(op, in_type=in_type, out_type=out_type, fold=fold)
    return engine, operands(in_type, samples, inputs, rng)


def graph_dense(graph: ir.IntGraph, op: ir.Gemm, fold: Fold) -> DenseEngine:
    """The engine of one Gemm of an integer graph, typed by the graph's tensors."""
    return DenseEngine(op, in_type=graph.tensors[op.inputs[0]].itype,
                       out_type=graph.tensors[op.outputs[0]].itype, fold=fold)


def dense_case(engine: DenseEngine, x: np.ndarray, *, gap: float = 0.0, stall: float = 0.0,
               seed: int = 0) -> StreamCase:
    """x [samples, K] as J beats per sample; G output beats expected per sample."""
    layout = engine.i_stream.p.shape()
    beats = to_beats(x, engine.fold.inputs).reshape(-1, engine.fold.inputs)
    return StreamCase(inputs=[pack(layout, [int(v) for v in b]) for b in beats],
                      in_width=layout.size, outputs=len(x) * engine.groups,
                      gap=gap, stall=stall, seed=seed)


def dense_outputs(engine: DenseEngine, transcript: Transcript) -> np.ndarray:
    """[samples, N] from the transcript's output beats (padding lanes dropped)."""
    layout = engine.o_stream.p.shape()
    lanes = np.array([unpack(layout, bits) for bits in transcript.outputs], np.int64)
    assert len(lanes) % engine.groups == 0, (
        f"Gemm '{engine.op.name}': {len(lanes)} output beats in {transcript.cycles} cycles is "
        f"not a whole number of {engine.groups}-beat vectors")
    return from_beats(lanes.reshape(-1, engine.groups, engine.fold.outputs), engine.outputs)


def check_dense(engine: DenseEngine, x: np.ndarray, run: Run, *, gap: float = 0.0,
                stall: float = 0.0, seed: int = 0) -> Transcript:
    """Run x through the engine with `run`; assert every output equals the golden Gemm's."""
    transcript = run(dense_case(engine, x, gap=gap, stall=stall, seed=seed))
    expected = kernel_for(engine.op)(engine.op, x)
    check_outputs(f"Gemm '{engine.op.name}'", expected, dense_outputs(engine, transcript))
    return transcript


def check_full_rate_cycles(engine: DenseEngine, transcript: Transcript, samples: int) -> None:
    """Without gaps or backpressure, from the first input beat taken to the last output beat
    taken: the first vector's J load beats, G*J cycles per vector, and the pipeline latency."""
    cycles = transcript.out_cycles[-1] - transcript.in_cycles[0] + 1
    g, j = engine.groups, engine.chunks
    expected = samples * g * j + j + engine.latency
    assert cycles == expected, (
        f"Gemm '{engine.op.name}': {samples} vectors took {cycles} cycles, expected {expected} "
        f"= {samples} x {g}x{j} + {j} + latency {engine.latency}")
