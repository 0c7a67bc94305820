"""The dense engine's Verilog under cocotb on Icarus and Verilator, bit-exact against the
golden Gemm kernel, with the same bench as the Amaranth-simulator tests."""
import pytest

from hw.fold import Fold
from sim import runner
from sim.tb_dense import check_dense, check_full_rate_cycles, random_dense

# name -> (bits, fold, N, K, pow2 requantizer with ReLU folded in)
DESIGNS = {
    "int4-pow2-P2S3": (4, Fold(2, 3), 5, 7, True),
    "int8-dyadic-P3S4": (8, Fold(3, 4), 10, 20, False),
}


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
@pytest.mark.parametrize("design", DESIGNS)
def test_dense_rtl_matches_golden(design, simulator, tmp_path):
    bits, fold, n, k, pow2 = DESIGNS[design]
    engine, x = random_dense(bits, fold, outputs=n, inputs=k, pow2=pow2, relu=pow2,
                             seed=bits, samples=8)
    build_dir = runner.build(engine, simulator)

    def run_in(folder: str):
        return lambda case: runner.run_stream(build_dir, simulator, case, tmp_path / folder)

    transcript = check_dense(engine, x, run_in("full-rate"))
    check_full_rate_cycles(engine, transcript, len(x))
    check_dense(engine, x, run_in("gaps"), gap=0.4, stall=0.4, seed=11)
