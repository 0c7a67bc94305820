# amaranth: UnusedElaboratable=no
"""Property: for random small float ONNX graphs (`fuzzgraphs.fuzz_cases`), the whole chain
agrees bit for bit: the golden model (`quant.evaluate.run`) == onnxruntime on the all-integer
export (`quant.check.check`, every tensor) == the RTL accelerator on Verilator
(`hw.plan.make_plan` -> `hw.lower.Accelerator`), on a few samples. Every drawn graph must
quantize, plan and lower: a refusal anywhere is a failure, not a skip.

RTL: a Verilator build costs 10-20 s per graph and a run about 1 s, so graphs go to the RTL in
bundles (`sim.bundle.Bundle`: up to BUNDLE accelerators in turns behind one pair of streams,
one quick build). Each bundle runs twice on its build: at full rate, where every graph's
cycles per sample, timed once its first sample is out (finding 5 in docs/reliability-fuzz.md),
must equal its `plan.interval`, and with random input gaps and output stalls (STRESS, per
bundle; the cases' own gap, stall and seed are not used). Both runs compare every output
element of every graph with its own golden model. Quantizing, checking against onnxruntime
and planning happen while hypothesis draws (a failure there shrinks); the RTL
stage comes after, runs every bundle and then names each failing graph (hypothesis seed and
example, case, options, its work folder) and its first differing element.

Tiers (docs/reliability-fuzz.md): the fast tier runs in every CI run (GOLDEN_FAST graphs to
onnxruntime, RTL_FAST graphs to Verilator in one bundle, fixed seeds); the long tier is marked
slow and sized by INTFORGE_FUZZ_GRAPHS (golden graphs, default 300; the 1,000-graph goal:
1000), INTFORGE_FUZZ_RTL_GRAPHS (golden == ONNX == RTL graphs, default 48, split over the
shards) and INTFORGE_FUZZ_SEED.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, seed, settings

from fuzzgraphs import FuzzCase, fuzz_cases
from hw.lower import Accelerator
from hw.plan import Plan, make_plan
from quant.check import check
from quant.data import Dataset
from quant.evaluate import quantize_input
from quant.ir import IntGraph
from quant.options import QuantOptions, ScaleMode
from quant.pipeline import quantize_model
from sim.bundle import Bundle, simulate_bundle
from sim.network import NetworkRun, build_for

GOLDEN_FAST = 60
RTL_FAST = 8  # one bundle
BUNDLE = 40  # graphs per Verilator build (docs/reliability-fuzz.md: about 1.5 s of build per graph)
SAMPLES = 4
SHARDS = (0, 1)  # long RTL graphs are split over shards so `pytest -n 2` builds two bundles at a time
STRESS = (dict(gap=0.2, stall=0.5), dict(gap=0.5, stall=0.2), dict(gap=0.5, stall=0.5),
          dict(gap=0.3, stall=0.3, gap_stretch=8, stall_stretch=8))  # bundle b: STRESS[b % 4]
LONG_GOLDEN = int(os.environ.get("INTFORGE_FUZZ_GRAPHS", "300"))
LONG_RTL = int(os.environ.get("INTFORGE_FUZZ_RTL_GRAPHS", "48"))
LONG_SEED = int(os.environ.get("INTFORGE_FUZZ_SEED", "0"))
QUIET = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def quantized(case: FuzzCase, work: Path) -> IntGraph:
    path = work / "model.onnx"
    onnx.save(case.model, path)
    return quantize_model(path, Dataset(case.calib, None, "fuzz calibration"), case.options, progress=False)


def check_golden_against_onnx(case: FuzzCase, work: Path) -> IntGraph:
    graph = quantized(case, work)
    report = check(graph, case.samples, layers=True)
    assert report.ok, f"golden != onnxruntime: {report}"
    return graph


class Workdirs:
    """A fresh folder per hypothesis example under the test's tmp_path."""

    def __init__(self, root: Path) -> None:
        self.root, self.count = root, 0

    def __call__(self) -> Path:
        self.count += 1
        path = self.root / f"case{self.count}"
        path.mkdir()
        return path


@dataclass
class Checked:
    """A drawn case whose golden model equals onnxruntime, ready for the RTL: its integer
    graph, hardware plan, quantized test inputs, work folder (holding model.onnx) and where it
    was drawn."""

    case: FuzzCase
    graph: IntGraph
    plan: Plan
    xq: np.ndarray
    work: Path
    origin: str  # "seed S, example E"

    def name(self) -> str:
        """The graph, for a failure message; saves its data beside its model (model.onnx)."""
        np.savez(self.work / "case.npz", calib=self.case.calib, samples=self.case.samples)
        return f"{self.origin}: {self.case!r}, {self.case.options}, folder {self.work}"

    def describe(self, run: NetworkRun, setting: dict, interval: int) -> str:
        """What a failing RTL run of this graph shows."""
        return (f"{self.name()}: under {setting or 'full rate'}: {run.mismatches} elements differ "
                f"(first {run.first_mismatch}), {run.inputs_left} input beats not taken, "
                f"{run.cycles_per_sample} cycles per sample (plan: {interval})")


def draw_checked(tmp_path: Path, examples: int, at_seed: int) -> list[Checked]:
    """`examples` cases drawn at `at_seed`, each checked golden == onnxruntime and planned
    (a failure shrinks, which costs no RTL)."""
    work, checked = Workdirs(tmp_path), []

    @seed(at_seed)
    @settings(max_examples=examples, database=None, **QUIET)
    @given(fuzz_cases(samples=SAMPLES))
    def golden(case: FuzzCase) -> None:
        folder = work()
        graph = check_golden_against_onnx(case, folder)
        checked.append(Checked(case, graph, make_plan(graph, multipliers=case.multipliers),
                               quantize_input(graph, case.samples), folder,
                               f"seed {at_seed}, example {work.count}"))

    golden()
    assert len(checked) >= examples
    return checked


def rtl_failures(group: list[Checked], stress: dict, work: Path) -> list[str]:
    """Simulate `group` as one bundle on Verilator, at full rate and under `stress`; every
    graph whose outputs differ from its golden model, that left inputs untaken, or that at
    full rate missed its planned interval (timed once the first sample is out: finding 5 in
    docs/reliability-fuzz.md). A failed build or run fails every graph of the bundle."""
    accelerators = [Accelerator(c.graph, c.plan) for c in group]
    bundle = Bundle(accelerators, SAMPLES)
    graphs, xqs = [c.graph for c in group], [c.xq for c in group]
    failures = []
    try:
        build_dir = build_for(bundle, SAMPLES, "verilator", quick=True)
        for setting in ({}, stress):
            runs = simulate_bundle(bundle, graphs, xqs, "verilator", work / ("stress" if setting else "full"),
                                   seed=group[0].case.seed, settle=0 if setting else 1,
                                   build_dir=build_dir, **setting)
            failures += [c.describe(run, setting, acc.interval)
                         for c, run, acc in zip(group, runs, accelerators)
                         if run.mismatches or run.inputs_left
                         or (not setting and run.cycles_per_sample != acc.interval)]
    except RuntimeError as error:  # sim.runner's report of a failed tool run
        failures += [f"{c.name()}: {error}" for c in group]
    return failures


def run_rtl(tmp_path: Path, examples: int, at_seed: int) -> None:
    """golden == onnxruntime == RTL for `examples` cases drawn at `at_seed`, in bundles of
    at most BUNDLE graphs (of even sizes)."""
    checked = draw_checked(tmp_path, examples, at_seed)
    count = -(-len(checked) // BUNDLE)
    failures = []
    for b in range(count):
        group = checked[b * len(checked) // count:(b + 1) * len(checked) // count]
        failures += rtl_failures(group, STRESS[b % len(STRESS)], tmp_path / f"bundle{b}")
    assert not failures, (f"RTL != golden for {len(failures)} runs of {len(checked)} graphs "
                          f"(every bundle ran):\n" + "\n".join(failures))


def test_golden_equals_onnx_fast(tmp_path: Path) -> None:
    draw_checked(tmp_path, GOLDEN_FAST, 20240601)


def test_rtl_equals_golden_fast(tmp_path: Path) -> None:
    run_rtl(tmp_path, RTL_FAST, 7)


@pytest.mark.slow
def test_golden_equals_onnx_long(tmp_path: Path) -> None:
    draw_checked(tmp_path, LONG_GOLDEN, 1000 + LONG_SEED)


@pytest.mark.slow
@pytest.mark.parametrize("shard", SHARDS)
def test_rtl_equals_golden_long(shard: int, tmp_path: Path) -> None:
    run_rtl(tmp_path, -(-LONG_RTL // len(SHARDS)), 2000 + 2 * LONG_SEED + shard)


FINDING_5 = Path(__file__).parent / "data" / "fuzz_first_sample_latency"  # seed 2001, example 257


@pytest.fixture(scope="module")
def finding_5(tmp_path_factory: pytest.TempPathFactory) -> tuple[IntGraph, Bundle, np.ndarray, Path]:
    """The graph of finding 5 (input (2, 3, 5): maxpool, residual, concat, depthwise, GAP; W4A4
    pow2, output 4 bits, 8 multipliers) alone in a bundle, 8 samples (its 4 test inputs
    twice), and its quick build."""
    data = np.load(FINDING_5 / "case.npz")
    options = QuantOptions(weight_bits=4, act_bits=4, output_bits=4, scale=ScaleMode.POW2)
    graph = quantize_model(FINDING_5 / "model.onnx", Dataset(data["calib"], None, "finding 5"),
                           options, progress=False)
    xq = quantize_input(graph, np.concatenate([data["samples"]] * 2))
    bundle = Bundle([Accelerator(graph, make_plan(graph, multipliers=8))], len(xq))
    return graph, bundle, xq, build_for(bundle, len(xq), "verilator", quick=True)


@pytest.mark.slow
def test_finding_5_full_rate(finding_5, tmp_path: Path) -> None:
    """At full rate the input is taken every `plan.interval` (30) cycles and every sample
    after the first ends 30 cycles after the one before; the first, which meets an empty
    pipeline, may end sooner but never later and never a whole interval sooner (timed from
    its end, the rate is at most one interval per sample more than the plan's, spread over
    the run)."""
    graph, bundle, xq, build_dir = finding_5
    interval = bundle.accelerators[0].interval
    settled, = simulate_bundle(bundle, [graph], [xq], "verilator", tmp_path / "settled", settle=1,
                               build_dir=build_dir)
    strict, = simulate_bundle(bundle, [graph], [xq], "verilator", tmp_path / "strict",
                              build_dir=build_dir)
    assert settled.mismatches == strict.mismatches == 0
    assert settled.cycles_per_sample == interval == 30
    assert interval <= strict.cycles_per_sample < interval + interval / (len(xq) - 1)


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
