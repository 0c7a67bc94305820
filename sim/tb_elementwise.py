"""The elementwise engines' bench: samples in as beats on every input stream, outputs checked
against the golden kernel (`quant.ops.kernel_for(op)`), on any simulator.

A run is a `sim.player.HarnessCase` (beats per input port, one output count, gap, stall,
seed) returning a `Transcript`: `amaranth_run` plays it on Amaranth's simulator with a
separately seeded driver per input (independent gaps), `sim.runner.run_fast` on Icarus and
Verilator. Random operators are built the way the quantizer builds them (`quant.convert`):
zero points anywhere in the type, multipliers of at most 16 bits sharing one shift, and
`acc_bits` from the bound of |acc| over the input types.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from amaranth.lib import wiring

from hw.fold import from_beats, to_beats
from hw.streams import input_names, to_stream_order
from quant import ir
from quant.ops import kernel_for
from quant.qtypes import IntType, multiplier_and_shift, pow2_shift, signed_bits_for
from sim.amaranth_harness import run_ports
from sim.bench import StreamCase, Transcript, check_outputs
from sim.payload import pack, unpack
from sim.player import HarnessCase, seed_of
from sim.vectors import MULT_BITS, operands

Run = Callable[[HarnessCase], Transcript]


# --- running and checking -------------------------------------------------------------------

def amaranth_run(dut: wiring.Component) -> Run:
    """Run a case on Amaranth's simulator: each input port gets its own driver seeded
    `seed_of(seed, k + 1)`, so gaps are independent; transcripts merge as the harness does."""

    def run(case: HarnessCase) -> Transcript:
        inputs = {name: StreamCase(inputs=beats, in_width=_width(dut, name), outputs=0,
                                   gap=case.gap, seed=seed_of(case.seed, k + 1))
                  for k, (name, beats) in enumerate(case.inputs.items())}
        out = StreamCase(inputs=[], in_width=0, outputs=case.outputs, stall=case.stall,
                         seed=seed_of(case.seed, 0), drain=case.drain,
                         max_cycles=case.max_cycles)
        ports = run_ports(dut, inputs, {"o_stream": out})
        o = ports["o_stream"]
        return Transcript(outputs=o.outputs, out_cycles=o.out_cycles, cycles=o.cycles,
                          in_cycles=sorted(c for name in inputs for c in ports[name].in_cycles))

    return run


def _width(dut: wiring.Component, name: str) -> int:
    return getattr(dut, name).p.shape().size


def lanes_of(dut: wiring.Component, name: str) -> int:
    return getattr(dut, name).p.shape().length


def stream_beats(dut: wiring.Component, name: str, x: np.ndarray) -> list[int]:
    """x [samples, *shape] in stream order, cut into beats of the port's lanes, packed."""
    layout = getattr(dut, name).p.shape()
    beats = to_beats(to_stream_order(x), layout.length).reshape(-1, layout.length)
    return [pack(layout, [int(v) for v in beat]) for beat in beats]


def output_values(dut: wiring.Component, block: str, transcript: Transcript, samples: int,
                  length: int) -> np.ndarray:
    """[samples, length] from the output beats (padding lanes dropped)."""
    layout = dut.o_stream.p.shape()
    lanes = np.array([unpack(layout, bits) for bits in transcript.outputs], np.int64)
    assert len(lanes) % samples == 0, (
        f"{block}: {len(lanes)} output beats in {transcript.cycles} "
        f"cycles is not a whole number of beats for each of {samples} samples")
    return from_beats(lanes.reshape(samples, -1, layout.length), length)


def check_op(dut: wiring.Component, op: ir.Op, xs: list[np.ndarray], run: Run, *,
             gap: float = 0.0, stall: float = 0.0, seed: int = 0) -> Transcript:
    """Stream the samples xs[k] ([samples, *shape]) into input k; assert the outputs equal the
    golden kernel's, element by element in stream order."""
    golden = np.asarray(kernel_for(op)(op, *xs))
    expected = to_stream_order(golden.reshape(len(golden), -1) if golden.ndim < 2 else golden)
    out_beats = math.ceil(expected.shape[1] / lanes_of(dut, "o_stream"))
    case = HarnessCase(inputs={name: stream_beats(dut, name, x)
                               for name, x in zip(input_names(len(xs)), xs)},
                       outputs=len(expected) * out_beats, gap=gap, stall=stall, seed=seed)
    transcript = run(case)
    block = f"{type(op).__name__} '{op.name}'"
    check_outputs(block, expected, output_values(dut, block, transcript, len(expected),
                                                 expected.shape[1]))
    return transcript


def cycles_of(transcript: Transcript) -> int:
    """Cycles from the first input beat taken to the last output beat taken."""
    return transcript.out_cycles[-1] - transcript.in_cycles[0] + 1


def check_cycles(block: str, transcript: Transcript, expected: int, formula: str) -> None:
    """A full-rate run took exactly the engine's cycle formula."""
    cycles = cycles_of(transcript)
    assert cycles == expected, f"{block}: took {cycles} cycles, expected {expected} = {formula}"


# --- stimulus -------------------------------------------------------------------------------

def samples_of(itype: IntType, samples: int, shape: tuple[int, ...],
               rng: np.random.Generator, reverse: bool = False) -> np.ndarray:
    """[samples, *shape]: all max, all min, alternating (reversed with `reverse`, so a second
    operand meets max with min), then random (`sim.vectors.operands`)."""
    rows = operands(itype, samples, math.prod(shape), rng)
    if reverse and samples > 3:
        rows[[2, 3]] = rows[[3, 2]]
    return rows.reshape((samples, *shape))


def _zero(itype: IntType, rng: np.random.Generator) -> int:
    return int(rng.integers(itype.qmin, itype.qmax, endpoint=True))


def _magnitude(itype: IntType, zero: int) -> int:
    return max(zero - itype.qmin, itype.qmax - zero)


def _output_clamp(out_type: IntType, zero: int, relu: bool) -> dict:
    return dict(zero_point=zero, qmin=zero if relu else out_type.qmin, qmax=out_type.qmax)


def _common_shift(ratios: list[float]) -> int:
    """The largest n with every round(ratio * 2^n) below 2^(MULT_BITS-1) (`quant.convert`)."""
    shift = MULT_BITS - 1 - math.frexp(max(ratios))[1]
    while round(max(ratios) * 2.0 ** shift) >= 1 << (MULT_BITS - 1):
        shift -= 1
    return max(shift, 1)


def random_add(rng: np.random.Generator, in_types: tuple[IntType, IntType], out_type: IntType,
               *, pow2: bool = False, subtract: bool = False, relu: bool = False) -> ir.Add:
    """A residual Add (or Sub) whose outputs spread over and past the output range; with
    `pow2`, scale ratios are powers of two so both multipliers are shifts."""
    zeros = [_zero(t, rng) for t in in_types]
    span = sum(_magnitude(t, z) for t, z in zip(in_types, zeros))
    target = (out_type.qmax - out_type.qmin) / span
    ratios = [2.0 ** round(math.log2(target * rng.uniform(0.5, 2))) if pow2
              else target * rng.uniform(0.3, 2.5) for _ in in_types]
    shift = _common_shift(ratios)
    mult_a, mult_b = (math.floor(r * 2.0 ** shift + 0.5) for r in ratios)
    mult_b *= -1 if subtract else 1
    bound = sum(_magnitude(t, z) * abs(m) for t, z, m in zip(in_types, zeros, (mult_a, mult_b)))
    return ir.Add(name="add", inputs=["a", "b"], outputs=["y"], zero_a=zeros[0],
                  zero_b=zeros[1], mult_a=mult_a, mult_b=mult_b, shift=shift,
                  acc_bits=signed_bits_for(bound), **_output_clamp(out_type, _zero(out_type, rng),
                                                                 relu))


def random_mul(rng: np.random.Generator, in_types: tuple[IntType, IntType], out_type: IntType,
               *, pow2: bool = False) -> ir.Mul:
    """A gating Mul whose products spread over and past the output range."""
    zeros = [_zero(t, rng) for t in in_types]
    peak = math.prod(_magnitude(t, z) for t, z in zip(in_types, zeros))
    scale = (out_type.qmax - out_type.qmin) / peak * rng.uniform(0.5, 3)
    mult, shift = (pow2_shift(2.0 ** round(math.log2(scale)), "mul") if pow2
                   else multiplier_and_shift(scale, MULT_BITS, "mul"))
    return ir.Mul(name="mul", inputs=["a", "b"], outputs=["y"], zero_a=zeros[0],
                  zero_b=zeros[1], multiplier=mult, shift=shift, acc_bits=signed_bits_for(peak),
                  **_output_clamp(out_type, _zero(out_type, rng), False))


def random_affine(rng: np.random.Generator, in_type: IntType, out_type: IntType,
                  const_shape: tuple[int, ...], *, pow2: bool = False) -> ir.Affine:
    """An Affine with A and B of `const_shape` (gains in [-2, 2], offsets across the output
    range); with `pow2`, every A is +-2^k (shifts)."""
    zero = _zero(in_type, rng)
    shift = int(rng.integers(3, 10))
    if pow2:
        scale = rng.choice([-1, 1], size=const_shape) * 2 ** rng.integers(0, shift + 1,
                                                                         size=const_shape)
    else:
        scale = rng.integers(-2 << shift, 2 << shift, size=const_shape, endpoint=True)
    out_span = out_type.qmax - out_type.qmin
    offset = rng.integers(-out_span << shift, out_span << shift, size=const_shape, endpoint=True)
    bound = _magnitude(in_type, zero) * int(np.abs(scale).max()) + int(np.abs(offset).max())
    return ir.Affine(name="affine", inputs=["x"], outputs=["y"], input_zero_point=zero,
                     scale=np.asarray(scale, np.int64), offset=np.asarray(offset, np.int64),
                     shift=shift, acc_bits=signed_bits_for(bound),
                     **_output_clamp(out_type, _zero(out_type, rng), False))


def random_lut(rng: np.random.Generator, in_type: IntType, out_type: IntType) -> ir.Lut:
    """A table of random outputs over every input value (extremes included)."""
    table = rng.integers(out_type.qmin, out_type.qmax, size=1 << in_type.bits, endpoint=True)
    table[[0, -1]] = out_type.qmax, out_type.qmin
    return ir.Lut(name="lut", inputs=["x"], outputs=["y"], table=table.astype(np.int64),
                  input_min=in_type.qmin)


def random_clamp(rng: np.random.Generator, itype: IntType) -> ir.Clamp:
    low, high = sorted(int(v) for v in rng.integers(itype.qmin, itype.qmax, size=2,
                                                    endpoint=True))
    return ir.Clamp(name="clamp", inputs=["x"], outputs=["y"], low=low, high=high)


def random_gap(rng: np.random.Generator, shape: tuple[int, int, int], in_type: IntType,
               out_type: IntType, *, pow2: bool = False) -> ir.GlobalAvgPool:
    """A GlobalAvgPool with S = s_in / (H*W*s_out) around the output range's fit."""
    zero = _zero(in_type, rng)
    count = shape[1] * shape[2]
    scale = (out_type.qmax - out_type.qmin) / (2 * _magnitude(in_type, zero)) / count
    scale *= rng.uniform(0.5, 3)
    mult, shift = (pow2_shift(2.0 ** round(math.log2(scale)), "gap") if pow2
                   else multiplier_and_shift(scale, MULT_BITS, "gap"))
    requant = ir.Requant(multiplier=np.array([mult]), shift=np.array([shift]),
                         **_output_clamp(out_type, _zero(out_type, rng), False))
    return ir.GlobalAvgPool(name="gap", inputs=["x"], outputs=["y"], input_zero_point=zero,
                            requant=requant,
                            acc_bits=signed_bits_for(count * _magnitude(in_type, zero)))
