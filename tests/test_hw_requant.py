# amaranth: UnusedElaboratable=no
"""The requantizer on Amaranth's simulator, bit-exact against quant.arith.requantize."""
import numpy as np
import pytest

from hw.emit import verilog
from hw.requant import Requantizer
from quant import ir
from quant.qtypes import IntType
from sim.amaranth_harness import run_stream
from sim.tb_requant import check_requant
from sim.vectors import operands, random_requant

INT8, UINT8, INT4, UINT4 = IntType(8, True), IntType(8, False), IntType(4, True), IntType(4, False)


def accumulators(acc_bits: int, lanes: int, rng: np.random.Generator) -> np.ndarray:
    """Extremes (all max, all min, alternating) and random accumulators of `acc_bits` bits."""
    return operands(IntType(acc_bits, True), 40, lanes, rng)


# (channels, lanes, acc_bits, out_type, scale range (log2), pow2, relu, per_tensor)
CASES = {
    "mult-1-lane": (5, 1, 20, INT8, (-14, -6), False, False, False),
    "mult-3-lanes-uint4": (7, 3, 17, UINT4, (-14, -8), False, False, False),
    "mult-relu-int4": (4, 2, 12, INT4, (-9, -3), False, True, False),
    "mult-per-tensor": (6, 2, 24, INT8, (-18, -14), False, False, True),
    "pow2-right-shift": (6, 2, 18, INT8, (-12, -2), True, False, False),
    "pow2-left-shift": (5, 1, 6, UINT8, (0, 3), True, False, False),
    "pow2-per-tensor": (3, 3, 16, INT8, (-9, -9), True, False, True),
}


def make_block(name: str, rng: np.random.Generator) -> tuple[Requantizer, int]:
    channels, lanes, acc_bits, out_type, (lo, hi), pow2, relu, per_tensor = CASES[name]
    scales = 2.0 ** rng.uniform(lo, hi, size=1 if per_tensor else channels)
    rq = random_requant(scales, out_type, rng, pow2=pow2, relu=relu)
    return Requantizer(rq, acc_bits=acc_bits, out_type=out_type, lanes=lanes,
                       channels=channels), channels


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("gap, stall", [(0.0, 0.0), (0.3, 0.4)])
def test_requantizer_matches_arith(name, gap, stall):
    rng = np.random.default_rng(list(CASES).index(name))
    block, channels = make_block(name, rng)
    acc = accumulators(block.acc_bits, block.lanes, rng)
    index = rng.integers(0, block.groups, size=len(acc))
    transcript = check_requant(block, channels, acc, index, lambda case: run_stream(block, case),
                               gap=gap, stall=stall, seed=7)
    if gap == stall == 0:  # one beat per cycle after a fixed latency
        first, last = transcript.in_cycles[0], transcript.out_cycles[-1]
        assert last - first == len(acc) - 1 + Requantizer.LATENCY


def test_rounding_ties_go_up():
    """acc = j * 2^n + 2^(n-1) lies exactly between two outputs; SPEC rounds it toward +inf."""
    n = np.array([1, 3, 6, 9])
    rq = ir.Requant(multiplier=np.ones(4, np.int64), shift=n, zero_point=0, qmin=-128, qmax=127)
    block = Requantizer(rq, acc_bits=20, out_type=INT8, lanes=4)
    j = np.arange(-6, 6)[:, None]
    acc = j * (1 << n) + (1 << (n - 1))
    check_requant(block, 4, acc, np.zeros(len(acc), np.int64),
                  lambda case: run_stream(block, case))
    assert block.pow2


def test_widths_follow_the_multipliers():
    rq = ir.Requant(multiplier=np.array([3, 40000]), shift=np.array([20, 21]), zero_point=0,
                    qmin=0, qmax=255)
    block = Requantizer(rq, acc_bits=22, out_type=UINT8)
    assert (block.product_bits, block.pow2) == (22 + 16, False)
    shifts = ir.Requant(multiplier=np.array([1, 8]), shift=np.array([5, 1]), zero_point=0,
                        qmin=0, qmax=255)
    assert Requantizer(shifts, acc_bits=22, out_type=UINT8).product_bits == 22 + 3


def test_pow2_mode_has_no_multiplier():
    def multiplies(mult: list[int]) -> bool:
        rq = ir.Requant(multiplier=np.array(mult), shift=np.array([4, 7]), zero_point=3,
                        qmin=-128, qmax=127)
        text = verilog(Requantizer(rq, acc_bits=16, out_type=INT8, lanes=2))
        return any(" * " in line for line in text.splitlines() if not line.lstrip().startswith("/"))
    assert multiplies([3, 5])
    assert not multiplies([1, 4])


def test_rejects_a_zero_shift():
    rq = ir.Requant(multiplier=np.array([5]), shift=np.array([0]), zero_point=0, qmin=0, qmax=255)
    message = r"^Requant multipliers and shifts must be >= 1, not 5 and 0$"
    with pytest.raises(ValueError, match=message):
        Requantizer(rq, acc_bits=16, out_type=UINT8)
