"""Board tops and real builds with the open toolchain (YoWASP yosys + nextpnr). Fast: every
board's top elaborates around the whole-network accelerator with its PLL, and the user's
mistakes are errors before any tool runs. Slow: the bundled digits CNN (24 multipliers, more
than the ECP5's 28 DSP blocks hold with its requantizers) placed and routed for the OrangeCrab
at 100 MHz (issue #6's ECP5 bar)."""
from __future__ import annotations

import pytest
from amaranth.hdl import Fragment

from boards.build import BOARDS, NO_COLLISIONS, BoardError, board_for, build_board, prepare
from boards.top import BoardTop, plan_clock
from hw.lower import Accelerator
from hw.plan import make_plan
from quantized import quantized


def accelerator(name: str, multipliers: int) -> Accelerator:
    graph = quantized(name)
    return Accelerator(graph, make_plan(graph, multipliers=multipliers))


@pytest.mark.parametrize("name, mhz, pll", [("ulx3s", 60.0, "EHXPLLL"),
                                            ("orangecrab", 72.0, "EHXPLLL"),
                                            ("icebreaker", 30.0, "SB_PLL40_PAD")])
def test_board_tops_elaborate_with_a_pll(name, mhz, pll):
    board = board_for(name)
    platform = board.platform()
    platform.add_resources(list(board.extra))
    top = BoardTop(board, accelerator("mlp", 8),
                   clock=plan_clock(board, platform.default_clk_frequency, mhz * 1e6))
    assert top.clock_hz == mhz * 1e6
    plan = platform.prepare(top, name="top")
    assert f"cell \\{pll} " in plan.files["top.il"]


def test_line_buffer_collisions_are_left_undefined():
    """The synthesis script marks the window generators' line-buffer read ports (found by
    memory name) as having undefined collisions, so yosys adds no read-old-data bypass."""
    board = board_for("icebreaker")
    top = BoardTop(board, accelerator("digits_cnn", 8),
                   clock=plan_clock(board, board.platform().default_clk_frequency, None))
    plan = prepare(board, top)
    assert NO_COLLISIONS in plan.files["top.ys"].splitlines()
    assert plan.files["top.il"].count('parameter \\MEMID "\\\\line_buffer"') > 3


def test_unknown_board_impossible_clock_and_baud_are_user_errors(tmp_path):
    top = accelerator("mlp", 8)
    with pytest.raises(BoardError, match="unknown board 'de0': choose one of "
                       + ", ".join(BOARDS)):
        build_board("de0", top, tmp_path)
    with pytest.raises(BoardError, match="board 'icebreaker': the PLL's nearest clock to "
                       "1000 MHz is 528 MHz"):
        build_board("icebreaker", top, tmp_path, clock_mhz=1000.0)
    with pytest.raises(BoardError, match="board 'icebreaker': a 12 MHz clock cannot make "
                       "4000000 baud"):
        build_board("icebreaker", top, tmp_path, baud=4_000_000)
    assert list(tmp_path.iterdir()) == []
    Fragment.get(top, None)  # elaborated after all: no "created but never used" warning


@pytest.mark.slow
def test_digits_cnn_on_the_orangecrab_at_100_mhz(tmp_path):
    top = accelerator("digits_cnn", 24)
    report = build_board("orangecrab", top, tmp_path, clock_mhz=100.0, interval=top.interval)
    assert report.fits, report.error
    assert report.error is None and report.warnings == []
    assert report.bitstream == tmp_path / "top.bit" and report.bitstream.stat().st_size > 0
    assert report.device == "LFE5U-25F" and report.luts.available == 24288
    # 24 MAC products (1 block each) and 7 dyadic requantizer lanes (2 blocks each) want 38
    # blocks: all 28 are used (no warning: as many as planned), the rest is logic.
    assert report.dsps.used == report.dsps.available == 28
    assert report.multipliers.dsp >= 14 and report.multipliers.logic > 0
    assert report.brams.used > 0 and report.flip_flops > 0
    assert report.clock_mhz == 100.0 and report.timing_met and report.fmax_mhz >= 100.0
    assert report.inferences_per_s == pytest.approx(report.fmax_mhz * 1e6 / top.interval)
