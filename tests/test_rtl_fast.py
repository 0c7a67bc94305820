# amaranth: UnusedElaboratable=no
"""The in-design harness (`sim.player.Harness`, `sim.runner.run_fast`): the dense engine and
the requantizer on Icarus and Verilator, bit-exact against the golden kernels through the same
decoders as the per-edge bench, with random gaps and backpressure whose rates match their
probabilities, and wrong, missing and extra outputs reported; the player alone on Amaranth's
simulator keeps the stream contract."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hw.fold import Fold
from hw.requant import Requantizer
from quant.qtypes import IntType
from sim import runner
from sim.player import Harness, HarnessCase, Throughput, throughput
from sim.tb_dense import check_dense, check_full_rate_cycles, dense_case, random_dense
from sim.tb_requant import check_requant
from sim.vectors import operands, random_requant

INT8 = IntType(8, True)

# name -> (bits, fold, N, K, pow2 requantizer with ReLU folded in)
DESIGNS = {
    "int4-pow2-P2S3": (4, Fold(2, 3), 5, 7, True),
    "int8-dyadic-P3S4": (8, Fold(3, 4), 10, 20, False),
}


def fast(dut, simulator: str, folder: Path):
    return lambda case: runner.run_fast(dut, simulator, case, folder)


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
@pytest.mark.parametrize("design", DESIGNS)
def test_dense_fast_matches_golden(design, simulator, tmp_path):
    bits, fold, n, k, pow2 = DESIGNS[design]
    engine, x = random_dense(bits, fold, outputs=n, inputs=k, pow2=pow2, relu=pow2,
                             seed=bits, samples=8)
    transcript = check_dense(engine, x, fast(engine, simulator, tmp_path / "full-rate"))
    check_full_rate_cycles(engine, transcript, len(x))
    # docs/hardware.md: G*J cycles per vector; the first one also loads (J) and fills (latency)
    g, j = engine.groups, engine.chunks
    assert throughput(transcript, g) == Throughput(len(x), g * j + j + engine.latency, g * j)
    check_dense(engine, x, fast(engine, simulator, tmp_path / "gaps"), gap=0.4, stall=0.4,
                seed=11)


def requantizer(rng: np.random.Generator) -> Requantizer:
    """7 channels on 3 lanes, per-channel dyadic multipliers, int8 out."""
    rq = random_requant(2.0 ** rng.uniform(-14, -8, size=7), INT8, rng, pow2=False)
    return Requantizer(rq, acc_bits=17, out_type=INT8, lanes=3, channels=7)


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
def test_requantizer_fast_matches_arith(simulator, tmp_path):
    """600 beats through a block that takes one per cycle. With gaps only, each beat waits a
    geometric number of idle cycles (mean gap / (1 - gap)); with stalls only, the full
    pipeline moves in the cycles where ready is high: either way the transfers come every
    1 / (1 - p) cycles on average. (Both runs share one build, so they run in turn.)"""
    rng = np.random.default_rng(5)
    block = requantizer(rng)
    acc = operands(IntType(block.acc_bits, True), 600, block.lanes, rng)
    index = rng.integers(0, block.groups, size=len(acc))
    for gap, stall in [(0.5, 0.0), (0.0, 0.5)]:
        transcript = check_requant(block, 7, acc, index,
                                   fast(block, simulator, tmp_path / f"gap{gap}-stall{stall}"),
                                   gap=gap, stall=stall, seed=3)
        stamps = transcript.in_cycles if gap else transcript.out_cycles
        spacing = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        assert spacing == pytest.approx(1 / (1 - max(gap, stall)), rel=0.15), (gap, stall)


def test_fast_harness_reports_wrong_missing_and_extra_outputs(tmp_path):
    """The harness plays something other than what the checker expects: one sample's inputs
    changed, the last sample never sent (the collector gives up at `max_cycles`), one sample
    more than expected (caught in the quiet cycles after the expected beats). The seed differs
    from the designs above, so no two tests build the same harness at once."""
    engine, x = random_dense(8, Fold(3, 4), outputs=10, inputs=20, seed=9, samples=8)
    groups = engine.groups

    def plays(x_played: np.ndarray, folder: str, **changes):
        case = replace(dense_case(engine, x_played), **changes)
        return lambda _: runner.run_fast(engine, "icarus", case, tmp_path / folder)

    wrong = x.copy()
    wrong[5] = 255 - x[5]
    with pytest.raises(AssertionError, match=r"^Gemm 'dense': sample 5 output \d+: expected"):
        check_dense(engine, x, plays(wrong, "wrong"))
    with pytest.raises(AssertionError, match=r"expected 8 samples .* got 7 of"):
        check_dense(engine, x, plays(x[:7], "missing", outputs=8 * groups, max_cycles=2000))
    with pytest.raises(AssertionError, match=r"expected 7 samples .* got 8 of"):
        check_dense(engine, x[:7], plays(x, "extra", outputs=7 * groups))


def test_harness_case_must_name_the_inputs():
    message = r"^Harness case must give beats for the inputs \['i_stream'\], not \['x'\]$"
    with pytest.raises(ValueError, match=message):
        Harness(requantizer(np.random.default_rng(0)), HarnessCase(inputs={"x": [1]}, outputs=1))


