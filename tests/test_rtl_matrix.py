# amaranth: UnusedElaboratable=no
"""The RTL matrix: every hardware block (`sim.tb_matrix.BLOCKS`) x widths 4 and 8 x two fold
settings x Icarus and Verilator, through the in-design harness (`sim.runner.run_fast`) with
random valid gaps on every input and random ready backpressure, bit-exact against quant's
golden kernels through each block's own bench (docs/hardware-matrix.md). Verilator builds
are quick ones (`sim.runner.build(public=...)`): these runs are short, compiling dominates."""
from pathlib import Path

import pytest

from sim import runner
from sim.tb_matrix import design, labels, seed_of

GAP, STALL = 0.3, 0.4


@pytest.mark.slow
@pytest.mark.parametrize("simulator", runner.SIMULATORS)
@pytest.mark.parametrize("block, bits, setting", labels(),
                         ids=[f"{b}-w{bits}-{s}" for b, bits, s in labels()])
def test_block_matches_golden_on_rtl(block, bits, setting, simulator, tmp_path: Path):
    under_test = design(block, bits, setting)
    run = lambda case: runner.run_fast(under_test.dut, simulator, case, tmp_path, quick=True)
    under_test.check(run,
                     gap=GAP, stall=STALL, seed=seed_of(simulator))
