"""Real builds with the open toolchain (YoWASP yosys + nextpnr): the last layer of the
quantized digits MLP behind the UART link, placed and routed for the iCEBreaker (~15 s once
the YoWASP cache is warm); the other boards' tops elaborate with their PLLs."""
from __future__ import annotations

import pytest
from amaranth.hdl import Fragment

from boards.build import BOARDS, BoardError, build_board, board_for
from boards.payload import DenseChain
from boards.top import BoardTop, plan_clock
from quant import ir
from quantized import quantized


def last_layer() -> DenseChain:
    graph = quantized("mlp")
    op = graph.ops[-1]
    assert isinstance(op, ir.Gemm)
    alone = ir.IntGraph(ops=[op], tensors=graph.tensors, input=op.inputs[0],
                        outputs=graph.outputs, name="mlp-last")
    # 4 MAC multipliers + 2 SB_MAC16 for the requantizer's 21 x 15-bit product: 6 of 8 DSPs.
    return DenseChain(alone, multipliers=4)


def test_icebreaker_build_of_the_last_mlp_layer(tmp_path):
    chain = last_layer()
    report = build_board("icebreaker", chain, tmp_path, interval=chain.interval)
    assert report.fits, report.error
    assert report.error is None and report.warnings == []
    assert report.bitstream == tmp_path / "top.bin"
    assert report.bitstream.stat().st_size == 104_090  # the iCE40UP5K's bitstream size
    assert 0 < report.luts.used < report.luts.available == 5280
    assert report.dsps.used >= 4 and report.brams.used > 0 and report.flip_flops > 0
    assert report.clock_mhz == 12.0 and report.timing_met and report.fmax_mhz > 12.0
    assert report.inferences_per_s == pytest.approx(report.fmax_mhz * 1e6 / chain.interval)
    assert set(report.logs) == {"synth", "pnr", "build"}


@pytest.mark.parametrize("name, mhz, pll", [("ulx3s", 60.0, "EHXPLLL"),
                                            ("orangecrab", 72.0, "EHXPLLL"),
                                            ("icebreaker", 30.0, "SB_PLL40_PAD")])
def test_board_tops_elaborate_with_a_pll(name, mhz, pll):
    board = board_for(name)
    platform = board.platform()
    platform.add_resources(list(board.extra))
    top = BoardTop(board, last_layer(),
                   clock=plan_clock(board, platform.default_clk_frequency, mhz * 1e6))
    assert top.clock_hz == mhz * 1e6
    plan = platform.prepare(top, name="top")
    assert f"cell \\{pll} " in plan.files["top.il"]


def test_unknown_board_impossible_clock_and_baud_are_user_errors(tmp_path):
    chain = last_layer()
    with pytest.raises(BoardError, match="unknown board 'de0': choose one of "
                       + ", ".join(BOARDS)):
        build_board("de0", chain, tmp_path)
    with pytest.raises(BoardError, match="board 'icebreaker': the PLL's nearest clock to "
                       "1000 MHz is 528 MHz"):
        build_board("icebreaker", chain, tmp_path, clock_mhz=1000.0)
    with pytest.raises(BoardError, match="board 'icebreaker': a 12 MHz clock cannot make "
                       "4000000 baud"):
        build_board("icebreaker", chain, tmp_path, baud=4_000_000)
    Fragment.get(chain, None)  # elaborated after all: no "created but never used" warning
