"""The Conv2d engine's Verilog under cocotb on Icarus and Verilator, bit-exact against the golden
Conv kernel, with the same bench as the Amaranth-simulator tests: full-rate cycle counts, then
random gaps and backpressure."""
from pathlib import Path

import pytest

from hw.fold import Fold
from sim import runner
from sim.tb_conv2d import check_engine, check_full_rate_cycles, random_conv_engine

# name -> (bits, fold, input lanes, layer)
DESIGNS = {
    "int8-3x3-same-P3S4": (8, Fold(3, 4), 1, dict(in_shape=(3, 6, 5), out_channels=5,
                                                  kernel=(3, 3), pads=(1, 1, 1, 1))),
    "int4-depthwise-strided-P4S9": (4, Fold(4, 9), 6, dict(
        in_shape=(6, 7, 5), out_channels=6, kernel=(3, 3), strides=(2, 1), pads=(1, 0, 0, 1),
        group=6)),
}


def runs_in(build_dir: Path, simulator: str, tmp_path: Path, folder: str):
    return lambda case: runner.run_stream(build_dir, simulator, case, tmp_path / folder)


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
@pytest.mark.parametrize("design", DESIGNS)
def test_conv_rtl_matches_golden(design, simulator, tmp_path):
    bits, fold, in_lanes, layer = DESIGNS[design]
    engine, x = random_conv_engine(bits, fold, in_lanes=in_lanes, seed=bits, **layer)
    build_dir = runner.build(engine, simulator)
    transcript = check_engine(engine, x, runs_in(build_dir, simulator, tmp_path, "full-rate"))
    check_full_rate_cycles(engine, transcript, len(x))
    check_engine(engine, x, runs_in(build_dir, simulator, tmp_path, "gaps"), gap=0.4, stall=0.4,
                 seed=11)
