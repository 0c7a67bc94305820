"""iCE40 boards: the iCEBreaker (iCE40UP5K-SG48: 5,280 logic cells, 8 SB_MAC16 DSPs,
30 EBR block RAMs of 4 kbit, 4 SPRAMs of 256 kbit), and the iCE40 PLL.

The PLL search is icestorm's `icepll` (simple feedback): f_pfd = f_in / (DIVR+1) in
[10, 133] MHz, f_vco = f_pfd * (DIVF+1) in [533, 1066] MHz, f_out = f_vco / 2^DIVQ, DIVQ in
1..6; the first settings closest to the target win.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Instance, Module
from amaranth.lib import io, wiring
from amaranth_boards.icebreaker import ICEBreakerPlatform

from boards.dsp import ICE40
from boards.top import Board, pll_signature

PFD_MHZ = (10.0, 133.0)
VCO_MHZ = (533.0, 1066.0)
FILTER_RANGES = ((17.0, 1), (26.0, 2), (44.0, 3), (66.0, 4), (101.0, 5))  # f_pfd below -> range


@dataclass(frozen=True)
class Ice40PllConfig:
    divr: int
    divf: int
    divq: int
    filter_range: int
    f_out_hz: float


def ice40_pll(f_in_hz: float, f_out_hz: float) -> Ice40PllConfig:
    """The SB_PLL40 settings whose output is nearest `f_out_hz` (as icepll finds them)."""
    f_in, target = f_in_hz / 1e6, f_out_hz / 1e6
    best: tuple[float, int, int, int, float] | None = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not PFD_MHZ[0] <= f_pfd <= PFD_MHZ[1]:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not VCO_MHZ[0] <= f_vco <= VCO_MHZ[1]:
                continue
            for divq in range(1, 7):
                out = f_vco / 2 ** divq
                if best is None or abs(out - target) < best[0]:
                    best = (abs(out - target), divr, divf, divq, out)
    if best is None:
        raise ValueError(f"the iCE40 PLL cannot take a {f_in:g} MHz input")
    _, divr, divf, divq, out = best
    f_pfd = f_in / (divr + 1)
    filter_range = next((r for limit, r in FILTER_RANGES if f_pfd < limit), 6)
    return Ice40PllConfig(divr, divf, divq, filter_range, out * 1e6)


class Ice40Pll(wiring.Component):
    """SB_PLL40_PAD in simple feedback mode, its output on a global buffer. The PAD variant
    takes the oscillator's pin itself: on the UP5K the PLL sits at the clock pin's I/O site,
    so SB_PLL40_CORE behind that pin's input buffer cannot be placed."""

    def __init__(self, config: Ice40PllConfig, pin: io.PortLike):
        self.config, self.pin = config, pin
        super().__init__(pll_signature())

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self.config
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
            p_DIVR=c.divr, p_DIVF=c.divf, p_DIVQ=c.divq, p_FILTER_RANGE=c.filter_range,
            i_PACKAGEPIN=self.pin.io, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=self.clk_out, o_LOCK=self.locked)
        return m


ICEBREAKER = Board(
    name="icebreaker", platform=ICEBreakerPlatform, family=ICE40, dsps=8,
    pll_search=ice40_pll, pll_block=Ice40Pll,
    heartbeat=("led_g", 0), error=("led_r", 0), reset=("button", 0),
    synth_opts="-dsp", bitstream="bin")
