"""Soak: thousands of random quantized inputs through the digits CNN accelerator (residual
Add, skip FIFO) on Verilator under random input gaps and output stalls; every output element
is compared with the golden model (a lost or extra beat shifts every later element, so it
shows as mismatches), then a second phase at full rate on the same build checks that the
pipeline drains and recovers its planned interval exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.lower import Accelerator
from hw.plan import make_plan
from quantized import quantized
from sim.network import build_for, simulate

SAMPLES = 2000
RECOVERY_SAMPLES = 50
BUDGET = 16  # multipliers: a small accelerator, so its interval is long and FIFOs fill
GAP, STALL = 0.3, 0.3


@pytest.mark.slow
def test_digits_cnn_soak_under_stalls_then_full_rate(tmp_path: Path) -> None:
    graph = quantized("digits_cnn")
    plan = make_plan(graph, multipliers=BUDGET)
    accelerator = Accelerator(graph, plan)
    spec = graph.input_spec
    xq = np.random.default_rng(2024).integers(spec.itype.qmin, spec.itype.qmax + 1, (SAMPLES, *spec.shape))
    build = build_for(accelerator, SAMPLES, "verilator")

    soak = simulate(accelerator, graph, xq, "verilator", tmp_path / "soak", gap=GAP, stall=STALL,
                    seed=11, stall_stretch=4, build_dir=build)
    assert soak.checked == SAMPLES * plan.output_elements
    assert soak.mismatches == 0, f"{soak.mismatches} wrong or lost elements, first {soak.first_mismatch}"

    recovery = simulate(accelerator, graph, xq[-RECOVERY_SAMPLES:], "verilator", tmp_path / "recovery",
                        build_dir=build)
    assert recovery.mismatches == 0, f"first {recovery.first_mismatch}"
    assert recovery.cycles_per_sample == plan.interval
