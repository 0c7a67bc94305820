"""The dense engine on Amaranth's simulator, bit-exact against the golden Gemm kernel."""
from pathlib import Path

import pytest

from hw.fold import Fold
from quant import ir
from quant.options import QuantOptions, ScaleMode
from sim.amaranth_harness import run_stream
from sim.tb_dense import check_dense, check_full_rate_cycles, graph_dense, random_dense
from sim.vectors import quantized_taps

ROOT = Path(__file__).resolve().parent.parent
FOLDS = [Fold(1, 1), Fold(2, 3), Fold(3, 4), Fold(16, 32)]
SHAPES = {4: (5, 7), 8: (10, 20)}  # bits -> (N, K)
VARIANTS = {"mult": dict(pow2=False, relu=False), "pow2-relu": dict(pow2=True, relu=True)}


def engine_for(bits: int, fold: Fold, variant: str, seed: int):
    n, k = SHAPES[bits]
    return random_dense(bits, fold, outputs=n, inputs=k, seed=seed, **VARIANTS[variant])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("fold", FOLDS, ids=lambda f: f"P{f.outputs}S{f.inputs}")
@pytest.mark.parametrize("bits", [4, 8])
def test_dense_matches_golden_at_full_rate(bits, fold, variant):
    engine, x = engine_for(bits, fold, variant, seed=bits + fold.outputs)
    transcript = check_dense(engine, x, lambda case: run_stream(engine, case))
    check_full_rate_cycles(engine, transcript, len(x))


@pytest.mark.parametrize("fold", FOLDS[:3], ids=lambda f: f"P{f.outputs}S{f.inputs}")
@pytest.mark.parametrize("bits", [4, 8])
def test_dense_matches_golden_with_gaps_and_backpressure(bits, fold):
    engine, x = engine_for(bits, fold, "mult", seed=bits * fold.inputs)
    check_dense(engine, x, lambda case: run_stream(engine, case), gap=0.4, stall=0.4, seed=bits)


@pytest.mark.parametrize("options", [QuantOptions(), QuantOptions(
    weight_bits=4, act_bits=4, scale=ScaleMode.POW2)], ids=["int8-dyadic", "int4-pow2"])
def test_dense_runs_every_layer_of_the_quantized_mlp(options):
    graph, taps = quantized_taps(ROOT / "tests" / "models" / "mlp.onnx",
                                 ROOT / "models" / "digits_calib.npz", options, samples=6)
    gemms = [op for op in graph.ops if isinstance(op, ir.Gemm)]
    assert len(gemms) == 3
    for op in gemms:
        engine = graph_dense(graph, op, Fold(4, 8))
        check_dense(engine, taps[op.inputs[0]], lambda case: run_stream(engine, case),
                    gap=0.2, stall=0.2, seed=1)
