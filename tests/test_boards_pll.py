"""PLL settings against the reference calculators themselves (icestorm's icepll and Project
Trellis' ecppll, run from the YoWASP packages)."""
from __future__ import annotations

import re
import subprocess

import pytest

from boards.build import find_command
from boards.ecp5 import ecp5_pll
from boards.ice40 import ice40_pll


def run_tool(command: str, *args: str) -> str:
    return subprocess.run([find_command(command), *args], capture_output=True, text=True,
                          check=True).stdout


def field(text: str, name: str) -> str:
    return re.search(rf"^{name}:\s*([\d.]+)", text, re.M).group(1)


@pytest.mark.parametrize("mhz", [30, 55.5, 100])
def test_ice40_pll_matches_icepll(mhz):
    text = run_tool("yowasp-icepll", "-i", "12", "-o", str(mhz))
    config = ice40_pll(12e6, mhz * 1e6)
    assert (config.divr, config.divf, config.divq, config.filter_range) == tuple(
        int(field(text, name)) for name in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE"))
    achieved = re.search(r"F_PLLOUT:\s*([\d.]+) MHz \(achieved\)", text).group(1)
    assert config.f_out_hz / 1e6 == pytest.approx(float(achieved), abs=5e-4)


@pytest.mark.parametrize("mhz", [48, 60, 123.4])
def test_ecp5_pll_matches_ecppll(mhz):
    text = run_tool("yowasp-ecppll", "-i", "25", "-o", str(mhz))
    config = ecp5_pll(25e6, mhz * 1e6)
    assert (config.clki_div, config.clkfb_div, config.clkop_div) == tuple(
        int(field(text, name)) for name in ("Refclk divisor", "Feedback divisor",
                                            "clkout0 divisor"))
    assert config.f_out_hz / 1e6 == pytest.approx(float(field(text, "clkout0 frequency")),
                                                  rel=1e-5)
