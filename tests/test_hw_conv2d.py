# amaranth: UnusedElaboratable=no
"""The Conv2d engine on Amaranth's simulator, bit-exact against the golden Conv kernel: random
layers (stride, dilation, asymmetric padding, depthwise and grouped) at widths 4 and 8 on two
folds each, and the real conv layers of the quantized digits CNNs on digits images."""
import numpy as np
import pytest

from hw.fold import Fold, ceil_div
from hw.layers.conv2d import ConvEngine
from quant import evaluate, ir
from quant.qtypes import IntType
from sim.amaranth_harness import run_stream
from sim.tb_conv2d import (check_engine, check_full_rate_cycles, check_output_bound, graph_conv,
                           output_bound, random_conv, random_conv_engine)
from tests.quantized import dataset, quantized

LAYERS = {
    "3x3-same": dict(in_shape=(3, 6, 5), out_channels=5, kernel=(3, 3), pads=(1, 1, 1, 1)),
    "strided-dilated-asym": dict(in_shape=(4, 7, 6), out_channels=6, kernel=(2, 3),
                                 strides=(2, 1), pads=(0, 1, 1, 0), dilations=(2, 1)),
    "depthwise": dict(in_shape=(6, 5, 5), out_channels=6, kernel=(3, 3), pads=(1, 1, 1, 1),
                      group=6),
    "grouped": dict(in_shape=(6, 5, 4), out_channels=9, kernel=(3, 2), pads=(1, 0, 1, 1),
                    group=3),
}
# Per width: two folds, the first fed one element per beat, the second a whole pixel per beat.
FOLDS = {4: [Fold(2, 3), Fold(4, 9)], 8: [Fold(3, 4), Fold(8, 16)]}


def conv_engine(bits: int, layer: str, fold: Fold, in_lanes: int, seed: int, samples: int = 3):
    return random_conv_engine(bits, fold, in_lanes=in_lanes, seed=seed, samples=samples,
                              **LAYERS[layer])


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bits, which", [(4, 0), (4, 1), (8, 0), (8, 1)])
def test_conv_matches_golden_at_full_rate(bits, which, layer):
    fold = FOLDS[bits][which]
    in_lanes = LAYERS[layer]["in_shape"][0] if which else 1
    engine, x = conv_engine(bits, layer, fold, in_lanes, seed=bits + which)
    transcript = check_engine(engine, x, lambda case: run_stream(engine, case))
    check_full_rate_cycles(engine, transcript, len(x))
    if output_bound(engine):
        check_output_bound(engine, transcript, len(x))


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bits", [4, 8])
def test_conv_matches_golden_with_gaps_and_backpressure(bits, layer):
    engine, x = conv_engine(bits, layer, FOLDS[bits][0], 1, seed=bits * 3)
    check_engine(engine, x, lambda case: run_stream(engine, case), gap=0.4, stall=0.4, seed=bits)


def test_depthwise_multiplies_no_structural_zeros():
    """C = 6 depthwise 3x3 on fold (4, 4): each output lane reads its own channel's 9 taps,
    so a pixel takes ceil(6/4) * ceil(9/4) = 2 * 3 = 6 cycles (a dense 54-input window would
    take 2 * ceil(54/4) = 28), and the conv is output-bound: 4 samples take
    hi(0) * W*C/L_in + 4 * OH*OW*6 + latency cycles with no idle output cycle."""
    engine, x = conv_engine(8, "depthwise", Fold(4, 4), in_lanes=6, seed=5, samples=4)
    assert engine.per_pixel == ceil_div(6, 4) * ceil_div(9, 4) == 6
    assert engine.mac.tiles.shape == (6, 4, 4)  # G*J tiles of P x S: no window-wide K
    transcript = check_engine(engine, x, lambda case: run_stream(engine, case))
    assert transcript.out_cycles[-1] - transcript.in_cycles[0] + 1 == \
        2 * 5 + 4 * 5 * 5 * 6 + engine.latency
    check_output_bound(engine, transcript, len(x))


def test_conv_rejects_mismatched_channels():
    rng = np.random.default_rng(0)
    itype = IntType(8, False)
    op = random_conv(rng, in_shape=(4, 5, 5), out_channels=4, kernel=(3, 3), in_type=itype,
                     out_type=itype, weight_bits=8, group=2)
    with pytest.raises(ValueError, match=r"^Conv 'conv' weight \[4, 2, 3, 3\] with group 2 must "
                                         r"match the input's 6 channels$"):
        ConvEngine(op, in_shape=(6, 5, 5), in_type=itype, out_type=itype, fold=Fold(2, 2))


@pytest.mark.parametrize("model, weight_bits, scale, layers, gap", [
    ("digits_cnn", 8, "dyadic", None, 0.0),
    ("cnn_bn", 4, "pow2", None, 0.3),
    ("dwsep", 8, "dyadic", [1, 2], 0.3),
], ids=["digits_cnn-int8", "cnn_bn-w4-pow2", "dwsep-depthwise"])
def test_conv_runs_real_layers(model, weight_bits, scale, layers, gap):
    """Every conv (or the chosen ones) of a quantized digits CNN on its own input tensor from
    the golden model, fold (4, 8), a whole pixel per input beat: 3x3 pad 1, a dilated conv,
    a stride-2 conv with asymmetric padding, a depthwise and a pointwise conv."""
    graph = quantized(model, weight_bits, scale)
    tensors_ = evaluate.run(graph, evaluate.quantize_input(graph, dataset("calib", False).x[:2]),
                            taps=True)
    convs = [op for op in graph.ops if isinstance(op, ir.Conv)]
    for op in [convs[k] for k in layers] if layers else convs:
        engine = graph_conv(graph, op, Fold(4, 8), in_lanes=graph.tensors[op.inputs[0]].shape[0])
        transcript = check_engine(engine, tensors_[op.inputs[0]],
                                  lambda case: run_stream(engine, case), gap=gap, stall=gap,
                                  seed=1)
        if not gap:
            check_full_rate_cycles(engine, transcript, 2)
