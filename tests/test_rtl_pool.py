"""The MaxPool and AvgPool engines' Verilog under cocotb on Icarus and Verilator, bit-exact
against the golden pool kernels, with the same bench as the Amaranth-simulator tests:
full-rate cycle counts, then random gaps and backpressure."""
from pathlib import Path

import numpy as np
import pytest

from quant.qtypes import IntType
from sim import runner
from sim.tb_conv2d import check_engine, check_full_rate_cycles, tensors
from sim.tb_pool import random_avg_engine, random_max_engine

INT4, UINT8, INT8 = IntType(4, True), IntType(8, False), IntType(8, True)
# name -> (input type, engine); the AvgPool pads without counting padding (divisors 1, 2, 4)
DESIGNS = {
    "maxpool-int4-3x2-dilated-asym-L2": (INT4, lambda: random_max_engine(
        INT4, in_shape=(3, 7, 6), kernel=(3, 2), strides=(1, 2), pads=(1, 0, 1, 1),
        dilations=(2, 1), lanes=2, in_lanes=3)),
    "avgpool-uint8-2x2-s2-pad-exclude-L2": (UINT8, lambda: random_avg_engine(
        UINT8, INT8, in_shape=(4, 6, 6), kernel=(2, 2), strides=(2, 2), pads=(1, 1, 1, 1),
        lanes=2, in_lanes=2, seed=5)),
}


def runs_in(build_dir: Path, simulator: str, tmp_path: Path, folder: str):
    return lambda case: runner.run_stream(build_dir, simulator, case, tmp_path / folder)


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
@pytest.mark.parametrize("design", DESIGNS)
def test_pool_rtl_matches_golden(design, simulator, tmp_path):
    itype, build = DESIGNS[design]
    engine = build()
    x = tensors(itype, 3, engine.window.shape, np.random.default_rng(7))
    build_dir = runner.build(engine, simulator)
    transcript = check_engine(engine, x, runs_in(build_dir, simulator, tmp_path, "full-rate"))
    check_full_rate_cycles(engine, transcript, len(x))
    check_engine(engine, x, runs_in(build_dir, simulator, tmp_path, "gaps"), gap=0.4, stall=0.4,
                 seed=13)
