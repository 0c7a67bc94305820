"""Reading board builds from stored yosys and nextpnr logs (tests/data/boards, captured from
real builds here); every expected number was read off the log text by hand."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from boards.report import ClockTiming, clock_timing, read_report

DATA = Path(__file__).resolve().parent / "data" / "boards"


def report_from(tmp_path: Path, stem: str, bitstream: str, synth: bool = True, **kwargs):
    shutil.copy(DATA / f"{stem}.tim", tmp_path / "top.tim")
    if synth:
        shutil.copy(DATA / f"{stem}.rpt", tmp_path / "top.rpt")
    (tmp_path / bitstream).write_bytes(b"\0")
    return read_report(tmp_path, "top", board=stem, device="dev", clock_mhz=24.0,
                       bitstream=tmp_path / bitstream, **kwargs)


def test_icebreaker_build_with_a_pll(tmp_path):
    r = report_from(tmp_path, "icebreaker-pll24", "top.bin", interval=1024)
    assert r.fits and r.timing_met and r.error is None and r.warnings == []
    assert (r.luts.used, r.luts.available) == (1734, 5280)
    assert (r.dsps.used, r.dsps.available) == (7, 8)
    assert (r.brams.used, r.brams.available) == (11, 30)
    assert (r.sprams.used, r.sprams.available) == (0, 4)
    assert r.flip_flops == 78 + 316 + 483 + 3 + 2 + 39  # SB_DFF, E, ESR, ESS, R, SR
    # The post-route line (34.96), not the pre-route estimate (36.53).
    assert r.fmax_mhz == 34.96 and r.clocks["clk"].target_mhz == 24.0
    assert r.inferences_per_s == pytest.approx(34.96e6 / 1024)
    assert r.bitstream == tmp_path / "top.bin"
    assert set(r.logs) == {"synth", "pnr"}


def test_icebreaker_build_with_too_many_dsps_does_not_fit(tmp_path):
    shutil.copy(DATA / "icebreaker-dsp-overflow.tim", tmp_path / "top.tim")
    r = read_report(tmp_path, "top", board="b", device="d", clock_mhz=12.0, interval=None,
                    bitstream=tmp_path / "top.bin", exit_code=1)
    assert not r.fits and not r.timing_met
    assert (r.dsps.used, r.dsps.available) == (10, 8)
    assert (r.luts.used, r.brams.used) == (1651, 4)
    assert r.fmax_mhz is None and r.clocks == {} and r.bitstream is None
    assert r.error.startswith("ERROR: Unable to place cell") and "'ICESTORM_DSP'" in r.error


def test_ulx3s_build_with_a_pll(tmp_path):
    r = report_from(tmp_path, "ulx3s-pll60", "top.bit", synth=False, interval=416)
    assert r.fits and r.timing_met
    assert (r.luts.used, r.luts.available) == (3009, 24288)
    assert (r.dsps.used, r.dsps.available) == (24, 28)
    assert (r.brams.used, r.brams.available) == (6, 56)
    assert r.flip_flops == 1629 and r.sprams is None
    # The post-route line (77.61), not the pre-route estimate (61.08).
    assert r.fmax_mhz == 77.61 and r.clocks["$glbnet$clk"].target_mhz == 60.0
    assert r.inferences_per_s == pytest.approx(77.61e6 / 416)


def test_unregistered_dsp_clock_is_left_out_with_a_warning(tmp_path):
    # Lines of a real nextpnr-ice40 log of a MAC whose DSP registers stayed in logic cells.
    log = ("Info: Max frequency for clock '$PACKER_GND_NET_$glb_clk': 256.08 MHz "
           "(PASS at 12.00 MHz)\n"
           "Info: Max frequency for clock                      'clk': 36.26 MHz "
           "(PASS at 12.00 MHz)\n")
    assert set(clock_timing(log)) == {"$PACKER_GND_NET_$glb_clk", "clk"}
    shutil.copy(DATA / "icebreaker-pll24.tim", tmp_path / "top.tim")
    with open(tmp_path / "top.tim", "a") as f:
        f.write(log)
    r = read_report(tmp_path, "top", board="b", device="d", clock_mhz=12.0, interval=None,
                    bitstream=tmp_path / "top.bin")
    assert r.fmax_mhz == 36.26 and list(r.clocks) == ["clk"]
    assert r.warnings == ["DSP blocks without registers: Fmax leaves the multipliers' delay out "
                          "(clock '$PACKER_GND_NET_$glb_clk')"]


def test_ulx3s_build_that_misses_its_clock(tmp_path):
    # The digits CNN at 100 MHz: after routing, nextpnr reports the missed clock as a Warning.
    r = report_from(tmp_path, "ulx3s-cnn-miss100", "top.bit", synth=False, interval=2816)
    assert r.fits and not r.timing_met and r.error is None
    assert (r.luts.used, r.luts.available) == (18662, 24288)
    assert (r.dsps.used, r.dsps.available) == (28, 28)
    assert (r.brams.used, r.flip_flops) == (3, 5340)
    # The post-route line (66.72, a Warning), not the placer's estimate (51.40, an Info).
    assert r.fmax_mhz == 66.72 and r.clocks["$glbnet$clk"] == ClockTiming(66.72, 100.0, False)
    assert r.inferences_per_s == pytest.approx(66.72e6 / 2816)


def test_icebreaker_build_of_the_cnn_overflows_the_logic_cells(tmp_path):
    shutil.copy(DATA / "icebreaker-cnn-overflow.tim", tmp_path / "top.tim")
    r = read_report(tmp_path, "top", board="b", device="d", clock_mhz=12.0, interval=36864,
                    bitstream=tmp_path / "top.bin", exit_code=1)
    assert not r.fits and not r.timing_met and r.fmax_mhz is None
    assert (r.luts.used, r.luts.available) == (24726, 5280) and not r.luts.fits
    assert (r.dsps.used, r.brams.used, r.sprams.used) == (4, 7, 0)
    assert r.error.startswith("ERROR: Unable to place cell") and "'ICESTORM_LC'" in r.error


def test_a_yosys_error_is_the_reported_error(tmp_path):
    # yosys writes its ERROR to its log (top.rpt); the script's output may end in warnings.
    (tmp_path / "top.rpt").write_text("4.43.20.7. Executing ABC_OPS_REINTEGRATE pass\n"
                                      "ERROR: Assert `GetSize(conn.first) == "
                                      "GetSize(conn.second)' failed in kernel/rtlil.cc:3091.\n")
    (tmp_path / "build.log").write_text("Warning: Wire top.$22 [0] is used but has no driver.\n")
    r = read_report(tmp_path, "top", board="b", device="d", clock_mhz=12.0, interval=None,
                    bitstream=tmp_path / "top.bin", exit_code=1)
    assert not r.fits and r.luts is None and r.fmax_mhz is None
    assert r.error == ("ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in "
                       "kernel/rtlil.cc:3091.")
