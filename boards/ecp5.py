"""ECP5 boards: the ULX3S and the OrangeCrab r0.2 with an LFE5U-25F (24k LUT4s, 28
MULT18X18D DSPs, 56 DP16KD block RAMs of 18 kbit), and the ECP5 PLL.

The PLL search is Project Trellis' `ecppll` for one output: f_pfd = f_in / CLKI_DIV >=
3.125 MHz, f_vco = f_pfd * CLKFB_DIV * CLKOP_DIV in [400, 800] MHz, f_out = f_vco /
CLKOP_DIV in [10, 400] MHz; the settings closest to the target win, ties going to the VCO
nearest 600 MHz.

The OrangeCrab has no UART on its USB connector (the FPGA drives USB directly), so its link
uses the Feather header's pins 0 (rx) and 1 (tx), for a 3.3 V USB-serial adapter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.build import Attrs
from amaranth.hdl import Instance, Module
from amaranth.lib import io, wiring
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
from amaranth_boards.resources import UARTResource
from amaranth_boards.ulx3s import ULX3S_25F_Platform

from boards.dsp import ECP5
from boards.top import Board, pll_signature

PFD_MIN_MHZ = 3.125
VCO_MHZ = (400.0, 800.0)
OUT_MHZ = (10.0, 400.0)
VCO_PREFERRED_MHZ = 600.0


@dataclass(frozen=True)
class Ecp5PllConfig:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    f_out_hz: float


def ecp5_pll(f_in_hz: float, f_out_hz: float) -> Ecp5PllConfig:
    """The EHXPLLL settings whose CLKOP is nearest `f_out_hz` (as ecppll finds them)."""
    f_in, target = f_in_hz / 1e6, f_out_hz / 1e6
    best: tuple[float, float, int, int, int, float] | None = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if f_pfd < PFD_MIN_MHZ:
            break
        for clkfb_div in range(1, 81):
            out = f_pfd * clkfb_div  # CLKOP_DIV only sets the VCO: pick the one nearest 600
            lowest, highest = max(1, math.ceil(VCO_MHZ[0] / out)), min(128, int(VCO_MHZ[1] / out))
            if not OUT_MHZ[0] <= out <= OUT_MHZ[1] or lowest > highest:
                continue
            near = min(max(int(VCO_PREFERRED_MHZ / out), lowest), highest)
            for clkop_div in (near, min(near + 1, highest)):
                key = (abs(out - target), abs(out * clkop_div - VCO_PREFERRED_MHZ))
                if best is None or key < best[:2]:
                    best = (*key, clki_div, clkfb_div, clkop_div, out)
    if best is None:
        raise ValueError(f"the ECP5 PLL cannot take a {f_in:g} MHz input")
    return Ecp5PllConfig(*best[2:5], best[5] * 1e6)


class Ecp5Pll(wiring.Component):
    """EHXPLLL with CLKOP fed back (FEEDBK_PATH CLKOP), 0 degrees (CPHASE = CLKOP_DIV - 1)."""

    def __init__(self, config: Ecp5PllConfig, pin: io.PortLike):
        self.config, self.pin = config, pin
        super().__init__(pll_signature())

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self.config
        m.submodules.clk_buf = clk_buf = io.Buffer("i", self.pin)
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
            p_CLKI_DIV=c.clki_div, p_CLKFB_DIV=c.clkfb_div, p_CLKOP_DIV=c.clkop_div,
            p_CLKOP_CPHASE=c.clkop_div - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            i_CLKI=clk_buf.i, i_CLKFB=self.clk_out, i_RST=0, i_STDBY=0,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=self.clk_out, o_LOCK=self.locked)
        return m


ULX3S = Board(
    name="ulx3s", platform=ULX3S_25F_Platform, family=ECP5, dsps=28,
    pll_search=ecp5_pll, pll_block=Ecp5Pll,
    heartbeat=("led", 0), error=("led", 1), reset=("button_fire", 0))

ORANGECRAB = Board(
    name="orangecrab", platform=OrangeCrabR0_2_25FPlatform, family=ECP5, dsps=28,
    pll_search=ecp5_pll, pll_block=Ecp5Pll,
    heartbeat=("rgb_led", 0, "g"), error=("rgb_led", 0, "r"), reset=("button", 0),
    extra=(UARTResource(0, rx="0", tx="1", conn=("io", 0), attrs=Attrs(IO_TYPE="LVCMOS33")),))
