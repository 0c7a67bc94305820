# amaranth: UnusedElaboratable=no
"""The elementwise engines on Amaranth's simulator, bit-exact against the golden kernels, with
their cycle formulas at full rate and random gaps (independent per input) and backpressure."""
import math
from pathlib import Path

import numpy as np
import pytest

from hw.emit import verilog
from hw.layers.add import AddEngine
from hw.layers.affine import AffineEngine
from hw.layers.argmax import ArgMaxEngine
from hw.layers.clamp import ClampEngine
from hw.layers.concat import ConcatEngine
from hw.layers.gap import GlobalAvgPoolEngine
from hw.layers.lut import LutEngine
from hw.layers.mul import MulEngine
from quant import ir
from quant.errors import ModelError
from quant.options import QuantOptions
from quant.qtypes import IntType, QParams
from sim.tb_elementwise import (amaranth_run, check_cycles, check_op, random_add,
                                random_affine, random_clamp, random_gap, random_lut, random_mul,
                                samples_of)
from sim.vectors import quantized_taps

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 6
SHAPE = (6, 2, 3)  # (C, H, W): 36 elements
TIMINGS = {"full-rate": (0.0, 0.0), "gaps": (0.4, 0.4)}


def types(bits: int) -> tuple[IntType, IntType]:
    return IntType(bits, True), IntType(bits, False)


def run_checked(engine, op, xs, timing: str, *, latency: int, beats: int, seed: int):
    """Run, compare with the golden kernel, and at full rate assert
    cycles = samples * beats + latency (one beat per cycle)."""
    gap, stall = TIMINGS[timing]
    transcript = check_op(engine, op, xs, amaranth_run(engine), gap=gap, stall=stall, seed=seed)
    if timing == "full-rate":
        check_cycles(op.name, transcript, len(xs[0]) * beats + latency,
                     f"{len(xs[0])} samples x {beats} beats + latency {latency}")


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("variant", ["dyadic", "pow2-relu", "subtract"])
@pytest.mark.parametrize("lanes", [1, 3])
@pytest.mark.parametrize("bits", [4, 8])
def test_add(bits, lanes, variant, timing):
    rng = np.random.default_rng(bits * 100 + lanes)
    signed, unsigned = types(bits)
    op = random_add(rng, (signed, unsigned), signed, pow2=variant == "pow2-relu",
                    relu=variant == "pow2-relu", subtract=variant == "subtract")
    engine = AddEngine(op, in_types=(signed, unsigned), out_type=signed, lanes=lanes)
    xs = [samples_of(signed, SAMPLES, SHAPE, rng), samples_of(unsigned, SAMPLES, SHAPE, rng,
                                                              reverse=True)]
    run_checked(engine, op, xs, timing, latency=engine.latency,
                beats=math.ceil(36 / lanes), seed=lanes)


def test_documented_latencies():
    """docs/hardware-elementwise.md: cycles from a beat's transfer to its result's."""
    latencies = {AddEngine: 7, MulEngine: 7, AffineEngine: 7, GlobalAvgPoolEngine: 7,
                 ArgMaxEngine: 3, LutEngine: 1, ClampEngine: 1, ConcatEngine: 1}
    assert {engine: engine.LATENCY for engine in latencies} == latencies


def multiplies(block) -> bool:
    """Whether the block's Verilog has a multiply (comments aside)."""
    return any(" * " in line for line in verilog(block).splitlines()
               if not line.lstrip().startswith("/"))


@pytest.mark.parametrize("pow2", [False, True], ids=["dyadic", "pow2"])
def test_power_of_two_factors_are_shifts(pow2):
    """Add's Ma, Mb and Affine's A: a multiplier only when some factor is not +-2^k."""
    rng = np.random.default_rng(1)
    signed, _ = types(8)
    add = random_add(rng, (signed, signed), signed, pow2=pow2)
    affine = random_affine(rng, signed, signed, (1,), pow2=pow2)
    assert multiplies(AddEngine(add, in_types=(signed, signed), out_type=signed,
                                lanes=2)) is not pow2
    assert multiplies(AffineEngine(affine, shape=SHAPE, in_type=signed, out_type=signed,
                                   lanes=2)) is not pow2


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("pow2", [False, True], ids=["dyadic", "pow2"])
@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("bits", [4, 8])
def test_mul(bits, lanes, pow2, timing):
    rng = np.random.default_rng(bits * 100 + lanes + pow2)
    signed, unsigned = types(bits)
    op = random_mul(rng, (signed, unsigned), signed, pow2=pow2)
    engine = MulEngine(op, in_types=(signed, unsigned), out_type=signed, lanes=lanes)
    xs = [samples_of(signed, SAMPLES, SHAPE, rng), samples_of(unsigned, SAMPLES, SHAPE, rng,
                                                              reverse=True)]
    run_checked(engine, op, xs, timing, latency=engine.latency,
                beats=math.ceil(36 / lanes), seed=lanes)


# const shape, sample shape, pow2 gains
AFFINES = {
    "scalar-pow2": ((1,), SHAPE, True),
    "scalar": ((), SHAPE, False),
    "per-channel": ((6, 1, 1), SHAPE, False),
    "per-channel-pow2": ((6, 1, 1), SHAPE, True),
    "per-channel-odd-sample": ((6, 1, 1), (6, 1, 3), False),  # 4 lanes: ends mid-period
    "vector": ((10,), (10,), False),
}


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("kind", AFFINES)
@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("bits", [4, 8])
def test_affine(bits, lanes, kind, timing):
    const_shape, shape, pow2 = AFFINES[kind]
    rng = np.random.default_rng(bits * 100 + lanes)
    signed, unsigned = types(bits)
    op = random_affine(rng, unsigned, signed, const_shape, pow2=pow2)
    engine = AffineEngine(op, shape=shape, in_type=unsigned, out_type=signed, lanes=lanes)
    run_checked(engine, op, [samples_of(unsigned, SAMPLES, shape, rng)], timing,
                latency=engine.latency, beats=math.ceil(math.prod(shape) / lanes),
                seed=lanes)


def test_affine_refuses_constants_that_vary_within_a_channel():
    signed, _ = types(8)
    op = random_affine(np.random.default_rng(0), signed, signed, (1, 2, 3))
    with pytest.raises(ModelError, match=r"^Affine 'affine': constant of shape \(1, 2, 3\) "
                                         r"varies within a channel of its input of shape "
                                         r"\(6, 2, 3\); the hardware supports scalar and "
                                         r"per-channel constants$"):
        AffineEngine(op, shape=SHAPE, in_type=signed, out_type=signed, lanes=2)


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("lanes", [1, 3])
@pytest.mark.parametrize("bits", [4, 8])
def test_lut(bits, lanes, timing):
    rng = np.random.default_rng(bits + lanes)
    signed, unsigned = types(bits)
    op = random_lut(rng, signed, unsigned)
    engine = LutEngine(op, in_type=signed, out_type=unsigned, lanes=lanes)
    run_checked(engine, op, [samples_of(signed, SAMPLES, SHAPE, rng)], timing,
                latency=engine.latency, beats=math.ceil(36 / lanes), seed=lanes)


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("lanes", [1, 3])
@pytest.mark.parametrize("bits", [4, 8])
def test_clamp(bits, lanes, timing):
    rng = np.random.default_rng(bits + lanes)
    signed, _ = types(bits)
    op = random_clamp(rng, signed)
    engine = ClampEngine(op, itype=signed, lanes=lanes)
    run_checked(engine, op, [samples_of(signed, SAMPLES, SHAPE, rng)], timing,
                latency=engine.latency, beats=math.ceil(36 / lanes), seed=lanes)


# axis (batch axis 0), input shapes: channels of (C,H,W), H, W, a 1-D vector, negative axis
CONCATS = {
    "channels": (1, [(4, 2, 3), (8, 2, 3)]),
    "height": (2, [(4, 1, 3), (4, 2, 3)]),
    "width-3-inputs": (3, [(4, 2, 2), (4, 2, 1), (4, 2, 3)]),
    "vector": (1, [(4,), (6,)]),
    "negative-axis": (-3, [(4, 2, 3), (4, 2, 3)]),
}


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("case", CONCATS)
@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("bits", [4, 8])
def test_concat(bits, lanes, case, timing):
    axis, shapes = CONCATS[case]
    rng = np.random.default_rng(bits + lanes)
    signed, _ = types(bits)
    op = ir.Concat(name="concat", inputs=[f"x{k}" for k in range(len(shapes))], outputs=["y"],
                   axis=axis)
    engine = ConcatEngine(op, shapes=shapes, itype=signed, lanes=lanes)
    beats = sum(math.ceil(math.prod(s) / lanes) for s in shapes)
    assert engine.beats == beats
    run_checked(engine, op, [samples_of(signed, SAMPLES, s, rng) for s in shapes], timing,
                latency=engine.latency, beats=beats, seed=lanes)


def test_concat_refuses_chunks_of_partial_beats():
    op = ir.Concat(name="concat", inputs=["a", "b"], outputs=["y"], axis=1)
    with pytest.raises(ValueError, match=r"^Concat 'concat': chunks of \[3, 5\] elements "
                                         r"\(6 times per sample\) must be whole beats of "
                                         r"2 lanes$"):
        ConcatEngine(op, shapes=[(3, 2, 3), (5, 2, 3)], itype=types(8)[0], lanes=2)


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("pow2", [False, True], ids=["dyadic", "pow2"])
@pytest.mark.parametrize("lanes", [1, 2, 6])
@pytest.mark.parametrize("bits", [4, 8])
def test_global_avg_pool(bits, lanes, pow2, timing):
    rng = np.random.default_rng(bits + lanes + pow2)
    signed, unsigned = types(bits)
    op = random_gap(rng, SHAPE, unsigned, signed, pow2=pow2)
    engine = GlobalAvgPoolEngine(op, shape=SHAPE, in_type=unsigned, out_type=signed,
                                 lanes=lanes)
    run_checked(engine, op, [samples_of(unsigned, SAMPLES, SHAPE, rng)], timing,
                latency=engine.latency, beats=36 // lanes, seed=lanes)


def test_global_avg_pool_refuses_lanes_that_split_pixels():
    signed, _ = types(8)
    op = random_gap(np.random.default_rng(0), SHAPE, signed, signed)
    with pytest.raises(ValueError, match=r"^GlobalAvgPool 'gap': lanes must divide the "
                                         r"channels of its \(C, H, W\) input, not 4 lanes for "
                                         r"shape \(6, 2, 3\)$"):
        GlobalAvgPoolEngine(op, shape=SHAPE, in_type=signed, out_type=signed, lanes=4)


@pytest.mark.parametrize("timing", TIMINGS)
@pytest.mark.parametrize("length", [7, 9])
@pytest.mark.parametrize("lanes", [1, 3])
@pytest.mark.parametrize("bits", [4, 8])
def test_argmax_picks_the_first_maximum(bits, lanes, length, timing):
    rng = np.random.default_rng(bits + lanes + length)
    signed, _ = types(bits)
    x = samples_of(signed, SAMPLES + 2, (length,), rng)
    x[4] = 1  # all tied: index 0
    x[5, [2, length - 1]] = signed.qmax  # tied maxima in different beats
    x[6, [1, 2]] = signed.qmax  # tied maxima in one beat
    op = ir.ArgMax(name="argmax", inputs=["x"], outputs=["y"], axis=1, keepdims=False)
    engine = ArgMaxEngine(op, shape=(length,), in_type=signed, lanes=lanes)
    run_checked(engine, op, [x], timing, latency=engine.latency,
                beats=math.ceil(length / lanes), seed=lanes)


def test_argmax_refuses_other_axes():
    op = ir.ArgMax(name="argmax", inputs=["x"], outputs=["y"], axis=1, keepdims=True)
    with pytest.raises(ModelError, match=r"^ArgMax 'argmax': the hardware reduces the last axis "
                                         r"of a vector, not axis 1 of shape \(3, 4\)$"):
        ArgMaxEngine(op, shape=(3, 4), in_type=types(8)[0], lanes=1)


def test_two_input_engines_refuse_broadcasting():
    signed, _ = types(8)
    op = random_mul(np.random.default_rng(0), (signed, signed), signed)
    spec = {name: ir.TensorSpec(shape, QParams(1.0, 0, signed))
            for name, shape in {"a": (16, 8, 8), "b": (16, 1, 1), "y": (16, 8, 8)}.items()}
    graph = ir.IntGraph(ops=[op], tensors=spec, input="a", outputs=["y"])
    with pytest.raises(ModelError, match=r"^Mul 'mul': inputs of shapes \(16, 8, 8\) and "
                                         r"\(16, 1, 1\) broadcast; the hardware engine needs "
                                         r"equal shapes$"):
        MulEngine.from_graph(graph, op, lanes=4)


# --- the quantized zoo models' own layers, on their real tensors -----------------------------

def quantized(name: str) -> tuple[ir.IntGraph, dict[str, np.ndarray]]:
    """The zoo model quantized (int8) on the digits calibration set, and its golden tensors
    on two images."""
    return quantized_taps(ROOT / "tests" / "models" / f"{name}.onnx",
                          ROOT / "models" / "digits_calib.npz", QuantOptions(), samples=2)


ENGINES = {ir.Add: AddEngine, ir.Mul: MulEngine, ir.Lut: LutEngine, ir.Concat: ConcatEngine,
           ir.GlobalAvgPool: GlobalAvgPoolEngine}


@pytest.mark.parametrize("model", ["resnet_gap", "gated"])
def test_zoo_layers_on_their_tensors(model):
    """Every Add, Mul, Lut, Concat and GlobalAvgPool of the model, built from the graph, on
    the golden model's own input tensors (digits images): a sample takes one cycle per beat
    of its busiest port."""
    graph, taps = quantized(model)
    ops = [op for op in graph.ops if type(op) in ENGINES]
    assert len(ops) >= 3
    for op in ops:
        engine = ENGINES[type(op)].from_graph(graph, op, lanes=4)
        ports = [graph.tensors[name].shape for name in [*op.inputs, *op.outputs]]
        beats = max(math.ceil(math.prod(shape) / 4) for shape in ports)
        run_checked(engine, op, [taps[name] for name in op.inputs], "full-rate",
                    latency=engine.latency, beats=beats, seed=5)
