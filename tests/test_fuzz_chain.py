"""Property: for random small float ONNX graphs (`fuzzgraphs.fuzz_cases`), the whole chain
agrees bit for bit: the golden model (`quant.evaluate.run`) == onnxruntime on the all-integer
export (`quant.check.check`, every tensor) == the RTL accelerator on Verilator
(`hw.plan.make_plan` -> `hw.lower.Accelerator` -> `sim.network.simulate`, random input gaps
and output stalls), on a few samples. Every drawn graph must quantize, plan and lower: a
refusal anywhere is a failure, not a skip.

Tiers (docs/reliability-fuzz.md): the fast tier runs in every CI run (GOLDEN_FAST graphs to
onnxruntime, RTL_FAST graphs to Verilator, fixed seeds); the long tier is marked slow and
sized by INTFORGE_FUZZ_GRAPHS (golden graphs, default 300 in CI; the 1,000-graph goal: INTFORGE_FUZZ_GRAPHS=1000), INTFORGE_FUZZ_RTL_GRAPHS
(Verilator graphs, default 4) and INTFORGE_FUZZ_SEED.
"""
from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from fuzzgraphs import FuzzCase, fuzz_cases
from hw.lower import Accelerator
from hw.plan import make_plan
from quant.check import check
from quant.data import Dataset
from quant.evaluate import quantize_input
from quant.ir import IntGraph
from quant.pipeline import quantize_model
from sim.network import simulate

GOLDEN_FAST = 60
RTL_FAST = 2  # per shard; a Verilator build takes 10-60 s here
SHARDS = (0, 1)  # RTL graphs are split over shards so `pytest -n 2` builds two at a time
LONG_GOLDEN = int(os.environ.get("INTFORGE_FUZZ_GRAPHS", "300"))
LONG_RTL = int(os.environ.get("INTFORGE_FUZZ_RTL_GRAPHS", "4"))
LONG_SEED = int(os.environ.get("INTFORGE_FUZZ_SEED", "0"))
QUIET = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # shrinking would rebuild RTL dozens of times


def quantized(case: FuzzCase, work: Path) -> IntGraph:
    path = work / "model.onnx"
    onnx.save(case.model, path)
    return quantize_model(path, Dataset(case.calib, None, "fuzz calibration"), case.options, progress=False)


def check_golden_against_onnx(case: FuzzCase, work: Path) -> IntGraph:
    graph = quantized(case, work)
    report = check(graph, case.samples, layers=True)
    assert report.ok, f"golden != onnxruntime: {report}"
    return graph


def check_rtl(case: FuzzCase, work: Path) -> None:
    graph = check_golden_against_onnx(case, work)
    accelerator = Accelerator(graph, make_plan(graph, multipliers=case.multipliers))
    xq = quantize_input(graph, case.samples)
    run = simulate(accelerator, graph, xq, "verilator", work, gap=case.gap, stall=case.stall, seed=case.seed)
    assert run.mismatches == 0, f"RTL != golden: {run.mismatches} elements, first {run.first_mismatch}"
    if case.gap == case.stall == 0:
        assert run.cycles_per_sample == accelerator.interval, "full-rate interval differs from the plan"


class Workdirs:
    """A fresh folder per hypothesis example under the test's tmp_path."""

    def __init__(self, root: Path) -> None:
        self.root, self.count = root, 0

    def __call__(self) -> Path:
        self.count += 1
        path = self.root / f"case{self.count}"
        path.mkdir()
        return path


def run_golden(tmp_path: Path, examples: int, at_seed: int) -> None:
    work = Workdirs(tmp_path)

    @seed(at_seed)
    @settings(max_examples=examples, database=None, **QUIET)
    @given(fuzz_cases())
    def golden(case: FuzzCase) -> None:
        check_golden_against_onnx(case, work())

    golden()
    assert work.count >= examples


def run_rtl(tmp_path: Path, examples: int, at_seed: int) -> None:
    work = Workdirs(tmp_path)

    @seed(at_seed)
    @settings(max_examples=examples, database=None, phases=NO_SHRINK, **QUIET)
    @given(fuzz_cases(samples=4))
    def rtl(case: FuzzCase) -> None:
        check_rtl(case, work())

    rtl()
    assert work.count >= examples


def test_golden_equals_onnx_fast(tmp_path: Path) -> None:
    run_golden(tmp_path, GOLDEN_FAST, 20240601)


@pytest.mark.parametrize("shard", SHARDS)
def test_rtl_equals_golden_fast(shard: int, tmp_path: Path) -> None:
    run_rtl(tmp_path, RTL_FAST, 7 + shard)


@pytest.mark.slow
def test_golden_equals_onnx_long(tmp_path: Path) -> None:
    run_golden(tmp_path, LONG_GOLDEN, 1000 + LONG_SEED)


@pytest.mark.slow
@pytest.mark.parametrize("shard", SHARDS)
def test_rtl_equals_golden_long(shard: int, tmp_path: Path) -> None:
    run_rtl(tmp_path, -(-LONG_RTL // len(SHARDS)), 2000 + 2 * LONG_SEED + shard)


def test_strategy_covers_every_block() -> None:
    """The strategy reaches every block and head (a generator that lost one would test less)."""
    seen: set[str] = set()

    @seed(3)
    @settings(max_examples=150, database=None, **QUIET)
    @given(fuzz_cases())
    def collect(case: FuzzCase) -> None:
        seen.update(case.blocks)

    collect()
    assert {"conv", "depthwise", "maxpool", "avgpool", "activation", "residual", "concat",
            "none", "gap", "gemm", "gap_gemm"} <= seen
