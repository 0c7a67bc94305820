# amaranth: UnusedElaboratable=no
"""The MaxPool and AvgPool engines on Amaranth's simulator, bit-exact against the golden pool
kernels: random layers (stride, dilation, asymmetric padding, count_include_pad both ways)
at widths 4 and 8 with two lane settings each, and the real pools of the quantized digits
CNNs on digits images."""
import numpy as np
import pytest

from hw.emit import verilog
from hw.layers.pool import AvgPoolEngine, MaxPoolEngine
from quant import evaluate, ir
from quant.qtypes import IntType
from sim.amaranth_harness import run_stream
from sim.tb_conv2d import (check_engine, check_full_rate_cycles, check_output_bound, output_bound,
                           tensors)
from sim.tb_pool import (graph_pool, random_avg_engine, random_avgpool, random_max_engine,
                         random_maxpool)
from tests.quantized import dataset, quantized

MAX_LAYERS = {
    "2x2-s2": dict(in_shape=(4, 6, 6), kernel=(2, 2), strides=(2, 2)),
    "3x2-dilated-asym": dict(in_shape=(3, 7, 6), kernel=(3, 2), strides=(1, 2), pads=(1, 0, 1, 1),
                             dilations=(2, 1)),
}
AVG_LAYERS = {
    "2x2-s2-pad-exclude": dict(in_shape=(4, 6, 6), kernel=(2, 2), strides=(2, 2),
                               pads=(1, 1, 1, 1)),
    "3x3-s2-pad-include": dict(in_shape=(3, 5, 5), kernel=(3, 3), strides=(2, 2),
                               pads=(1, 1, 1, 1), count_include_pad=True),
    "3x2-asym-exclude": dict(in_shape=(3, 5, 6), kernel=(3, 2), strides=(2, 1), pads=(2, 1, 0, 1)),
}
TYPES = {4: IntType(4, True), 8: IntType(8, False)}
LANES = {"L1-in1": (1, 1), "L2-pixel": (2, None)}  # (output lanes, input lanes; None = C)


def max_engine(bits: int, layer: str, lanes: str) -> MaxPoolEngine:
    spec = MAX_LAYERS[layer]
    out_lanes, in_lanes = LANES[lanes]
    return random_max_engine(TYPES[bits], lanes=out_lanes,
                             in_lanes=in_lanes or spec["in_shape"][0], **spec)


def avg_engine(bits: int, layer: str, lanes: str, seed: int) -> AvgPoolEngine:
    """Width 4: signed in, unsigned out, pow2 requantizers; width 8: unsigned in, signed out,
    dyadic multipliers."""
    spec = AVG_LAYERS[layer]
    out_lanes, in_lanes = LANES[lanes]
    return random_avg_engine(TYPES[bits], IntType(bits, not TYPES[bits].signed), lanes=out_lanes,
                             in_lanes=in_lanes or spec["in_shape"][0], seed=seed, pow2=bits == 4,
                             **spec)


def run_full_rate(engine, itype: IntType, seed: int):
    x = tensors(itype, 3, engine.window.shape, np.random.default_rng(seed))
    transcript = check_engine(engine, x, lambda case: run_stream(engine, case))
    check_full_rate_cycles(engine, transcript, len(x))
    if output_bound(engine):
        check_output_bound(engine, transcript, len(x))
    return transcript


@pytest.mark.parametrize("lanes", LANES)
@pytest.mark.parametrize("layer", MAX_LAYERS)
@pytest.mark.parametrize("bits", [4, 8])
def test_maxpool_matches_golden_at_full_rate(bits, layer, lanes):
    run_full_rate(max_engine(bits, layer, lanes), TYPES[bits], seed=bits)


@pytest.mark.parametrize("lanes", LANES)
@pytest.mark.parametrize("layer", AVG_LAYERS)
@pytest.mark.parametrize("bits", [4, 8])
def test_avgpool_matches_golden_at_full_rate(bits, layer, lanes):
    run_full_rate(avg_engine(bits, layer, lanes, seed=bits), TYPES[bits], seed=bits)


@pytest.mark.parametrize("layer", [*MAX_LAYERS, *AVG_LAYERS])
@pytest.mark.parametrize("bits", [4, 8])
def test_pools_match_golden_with_gaps_and_backpressure(bits, layer):
    engine = max_engine(bits, layer, "L1-in1") if layer in MAX_LAYERS else \
        avg_engine(bits, layer, "L2-pixel", seed=bits + 1)
    x = tensors(TYPES[bits], 3, engine.window.shape, np.random.default_rng(bits))
    check_engine(engine, x, lambda case: run_stream(engine, case), gap=0.4, stall=0.4, seed=bits)


def test_input_bound_pool_never_stalls_its_input():
    """2x2 stride 2 on 4x6x6, one element per input beat, 4 lanes out: an output row takes
    3 cycles, its two new input rows 2*24, so the engine waits for every row and frees two
    rows before the writer gets R = 5 rows ahead: all 3*144 input beats go in back to back."""
    engine = MaxPoolEngine(random_maxpool(kernel=(2, 2), strides=(2, 2), itype=TYPES[8]),
                           in_shape=(4, 6, 6), itype=TYPES[8], lanes=4, in_lanes=1)
    assert engine.window.slots == 5
    transcript = run_full_rate(engine, TYPES[8], seed=3)
    assert transcript.in_cycles == list(range(transcript.in_cycles[0],
                                              transcript.in_cycles[0] + 3 * 144))


def test_avgpool_rejects_incomplete_divisors():
    op = random_avgpool(np.random.default_rng(0), in_shape=(2, 6, 6), kernel=(2, 2),
                        strides=(2, 2), pads=(1, 1, 1, 1), in_type=TYPES[8], out_type=TYPES[8])
    op.divisors, op.requant.multiplier, op.requant.shift = (
        op.divisors[1:], op.requant.multiplier[1:], op.requant.shift[1:])
    with pytest.raises(ValueError, match=r"^AvgPool 'avgpool' divisors must include the window "
                                         r"counts \[1\], not only \[2, 4\]$"):
        AvgPoolEngine(op, in_shape=(2, 6, 6), in_type=TYPES[8], out_type=TYPES[8])


@pytest.mark.parametrize("model, weight_bits, scale, gap", [
    ("digits_cnn", 8, "dyadic", 0.0), ("cnn_bn", 4, "pow2", 0.2), ("dwsep", 8, "dyadic", 0.0)])
def test_pools_run_real_layers(model, weight_bits, scale, gap):
    """Every MaxPool and AvgPool of a quantized digits CNN on its own input tensor from the
    golden model, 4 lanes, a whole pixel per input beat: 2x2 stride-2 max pools, and dwsep's
    2x2 stride-2 pad-1 average pool without padding in the count (divisors 1, 2, 4) and its
    3x3 stride-2 pad-1 one with it."""
    graph = quantized(model, weight_bits, scale)
    tensors_ = evaluate.run(graph, evaluate.quantize_input(graph, dataset("calib", False).x[:2]),
                            taps=True)
    pools = [op for op in graph.ops if isinstance(op, (ir.MaxPool, ir.AvgPool))]
    assert pools
    for op in pools:
        engine = graph_pool(graph, op, lanes=4, in_lanes=graph.tensors[op.inputs[0]].shape[0])
        transcript = check_engine(engine, tensors_[op.inputs[0]],
                                  lambda case: run_stream(engine, case), gap=gap, stall=gap,
                                  seed=2)
        if not gap:
            check_full_rate_cycles(engine, transcript, 2)


def test_maxpool_and_pow2_avgpool_have_no_multiplier():
    """Max pools compare and move integers; a pow2 AvgPool shifts. A dyadic AvgPool's one
    multiplier is its requantizer's."""
    def multiplies(engine) -> bool:
        text = verilog(engine)
        return any(" * " in line for line in text.splitlines() if not line.lstrip().startswith("/"))
    assert not multiplies(max_engine(8, "3x2-dilated-asym", "L2-pixel"))
    assert not multiplies(avg_engine(4, "3x2-asym-exclude", "L2-pixel", seed=0))
    assert multiplies(avg_engine(8, "3x2-asym-exclude", "L2-pixel", seed=0))
