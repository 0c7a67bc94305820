"""The dense engine's Verilog under cocotb on Icarus and Verilator, bit-exact against the
golden Gemm kernel, with the same bench as the Amaranth-simulator tests."""
from pathlib import Path

import pytest

from hw.fold import Fold
from quant import ir
from quant.options import QuantOptions
from sim import runner
from sim.tb_dense import check_dense, check_full_rate_cycles, graph_dense, random_dense
from sim.vectors import quantized_taps

ROOT = Path(__file__).resolve().parent.parent

# name -> (bits, fold, N, K, pow2 requantizer with ReLU folded in)
DESIGNS = {
    "int4-pow2-P2S3": (4, Fold(2, 3), 5, 7, True),
    "int8-dyadic-P3S4": (8, Fold(3, 4), 10, 20, False),
}


def runs_in(build_dir: Path, simulator: str, tmp_path: Path, folder: str):
    return lambda case: runner.run_stream(build_dir, simulator, case, tmp_path / folder)


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
@pytest.mark.parametrize("design", DESIGNS)
def test_dense_rtl_matches_golden(design, simulator, tmp_path):
    bits, fold, n, k, pow2 = DESIGNS[design]
    engine, x = random_dense(bits, fold, outputs=n, inputs=k, pow2=pow2, relu=pow2,
                             seed=bits, samples=8)
    build_dir = runner.build(engine, simulator)
    transcript = check_dense(engine, x, runs_in(build_dir, simulator, tmp_path, "full-rate"))
    check_full_rate_cycles(engine, transcript, len(x))
    check_dense(engine, x, runs_in(build_dir, simulator, tmp_path, "gaps"),
                gap=0.4, stall=0.4, seed=11)


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
def test_quantized_mlp_output_layer_rtl(simulator, tmp_path):
    """The digits MLP's last layer (uint8 -> int16 logits) on real digits images."""
    graph, taps = quantized_taps(ROOT / "tests" / "models" / "mlp.onnx",
                                 ROOT / "models" / "digits_calib.npz", QuantOptions(), samples=8)
    op = [op for op in graph.ops if isinstance(op, ir.Gemm)][-1]
    engine = graph_dense(graph, op, Fold(4, 8))
    build_dir = runner.build(engine, simulator)
    check_dense(engine, taps[op.inputs[0]], runs_in(build_dir, simulator, tmp_path, "digits"),
                gap=0.2, stall=0.2, seed=3)
