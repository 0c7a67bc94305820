# amaranth: UnusedElaboratable=no
"""The MAC array on Amaranth's simulator: accumulators equal the golden Gemm's w @ x + b."""
import numpy as np
import pytest
from amaranth.hdl import signed

from hw.fold import Fold
from hw.mac import MacArray
from hw.shapes import shape_of
from quant.qtypes import IntType
from sim.amaranth_harness import run_stream
from sim.tb_mac import check_mac
from sim.vectors import operands, random_gemm

# (N, K, fold, input type, weight bits)
CASES = [
    (3, 5, Fold(1, 1), IntType(8, True), 8),
    (5, 7, Fold(2, 3), IntType(4, False), 4),
    (4, 6, Fold(2, 2), IntType(2, True), 2),
    (6, 9, Fold(4, 4), IntType(16, True), 16),
    (2, 3, Fold(4, 8), IntType(8, False), 8),
    (5, 3, Fold(2, 4), IntType(8, True), 4),
]


def make(case, seed):
    n, k, fold, in_type, weight_bits = case
    rng = np.random.default_rng(seed)
    op = random_gemm(rng, outputs=n, inputs=k, in_type=in_type, weight_bits=weight_bits,
                     out_type=IntType(8, True))
    mac = MacArray(op.weight, op.bias, in_shape=shape_of(in_type),
                   acc_bits=int(max(op.acc_bits)), fold=fold)
    return mac, op, operands(in_type, 7, k, rng)


def case_id(case) -> str:
    n, k, fold, in_type, weight_bits = case
    return f"{n}x{k}-P{fold.outputs}S{fold.inputs}-{in_type}-w{weight_bits}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("gap, stall", [(0.0, 0.0), (0.3, 0.5)])
def test_mac_array_matches_golden(case, gap, stall):
    mac, op, x = make(case, seed=CASES.index(case))
    transcript = check_mac(mac, op, x, lambda c: run_stream(mac, c), gap=gap, stall=stall, seed=5)
    if gap == stall == 0:  # a group's accumulators leave LATENCY cycles after its last beat
        last_beats = transcript.in_cycles[mac.chunks - 1::mac.chunks]
        assert [o - i for o, i in zip(transcript.out_cycles, last_beats)] == \
            [MacArray.LATENCY] * len(transcript.out_cycles)


def test_widths_come_from_the_weights_and_acc_bits():
    weight = np.array([[7, -7, 0], [3, 1, -2]])
    mac = MacArray(weight, np.array([100, -100]), in_shape=shape_of(IntType(8, False)),
                   acc_bits=13, fold=Fold(2, 3))
    assert mac.weight_shape == signed(4)
    assert mac.product_shape == signed(12)  # 255 * -7 = -1785 needs 12 signed bits
    assert mac.o_stream.p.shape()["acc"].shape.elem_shape == signed(13)


def test_rejects_mismatched_bias():
    with pytest.raises(ValueError, match=r"^MacArray weight must be \[N, K\] and bias \[N\], "
                                         r"not \[2, 3\] and \[3\]$"):
        MacArray(np.zeros((2, 3)), np.zeros(3), in_shape=signed(8), acc_bits=8, fold=Fold(1, 1))
