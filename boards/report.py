"""What a board build gave, read from the tools' logs: yosys' final statistics (`top.rpt`:
cells by type, for the iCE40 flip-flop count) and nextpnr's log (`top.tim`: device utilisation,
the last "Max frequency" line of each clock, the first error).

Utilisation names per family: iCE40 logic cells ICESTORM_LC (a LUT4 and a flip-flop each),
DSPs ICESTORM_DSP (SB_MAC16), block RAMs ICESTORM_RAM (4 kbit EBR), ICESTORM_SPRAM (256
kbit); ECP5 LUT4s TRELLIS_COMB, flip-flops TRELLIS_FF, DSPs MULT18X18D, block RAMs DP16KD
(18 kbit).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

CELLS = {
    "ice40": {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM",
              "sprams": "ICESTORM_SPRAM"},
    "ecp5": {"luts": "TRELLIS_COMB", "dsps": "MULT18X18D", "brams": "DP16KD",
             "flip_flops": "TRELLIS_FF"},
}
# nextpnr-ice40 times a DSP block without registers as if clocked by a constant net: its
# paths are cut there, so the Fmax leaves the multiplier's delay out.
PHANTOM_CLOCK = "$PACKER_GND_NET"
FLIP_FLOP = re.compile(r"^(SB_DFF\w*|TRELLIS_FF)$")
_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
# A clock that misses its target is reported as a Warning after routing, an Info before.
_FMAX = re.compile(r"^(?:Info|Warning): Max frequency for clock\s+'([^']+)': ([\d.]+) MHz "
                   r"\((PASS|FAIL) at ([\d.]+) MHz\)", re.M)
_STAT_CELL = re.compile(r"^\s+(\d+)\s+([A-Za-z_][\w$]*)\s*$", re.M)


@dataclass(frozen=True)
class Usage:
    used: int
    available: int

    @property
    def fits(self) -> bool:
        return self.used <= self.available


@dataclass(frozen=True)
class MultiplierUse:
    """Where the design's multipliers went: `dsp` on DSP blocks, `logic` built from LUTs
    although yosys would have put them on blocks (those too narrow for a block, such as an
    index times a width, are not counted)."""

    dsp: int
    logic: int


@dataclass(frozen=True)
class ClockTiming:
    fmax_mhz: float
    target_mhz: float
    met: bool


@dataclass
class BoardReport:
    """Resources, timing and files of one build. `fits`: nextpnr placed and routed the
    design and every resource is within the device; `fmax_mhz`: the slowest clock's Fmax
    (None if routing did not finish); `timing_met`: every clock met its constraint;
    `inferences_per_s` = Fmax / interval (cycles per sample) when the interval is given;
    `multipliers`: how many went to DSP blocks and how many to logic (`boards.dsp`)."""

    board: str
    device: str
    fits: bool
    luts: Usage | None
    flip_flops: int | None
    dsps: Usage | None
    brams: Usage | None
    sprams: Usage | None
    clock_mhz: float
    clocks: dict[str, ClockTiming]
    fmax_mhz: float | None
    timing_met: bool
    interval: int | None
    inferences_per_s: float | None
    bitstream: Path | None
    logs: dict[str, Path] = field(default_factory=dict)
    multipliers: MultiplierUse | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Plain JSON-ready values (paths as strings)."""
        out = asdict(self)
        out["bitstream"] = None if self.bitstream is None else str(self.bitstream)
        out["logs"] = {name: str(path) for name, path in self.logs.items()}
        return out


def utilisation(nextpnr_log: str) -> dict[str, Usage]:
    """Cell type -> used/available from nextpnr's "Device utilisation" table."""
    return {name: Usage(int(used), int(available))
            for name, used, available in _UTILISATION.findall(nextpnr_log)}


def clock_timing(nextpnr_log: str) -> dict[str, ClockTiming]:
    """Clock -> its last (post-route) Fmax, target and PASS/FAIL."""
    return {name: ClockTiming(float(fmax), float(target), verdict == "PASS")
            for name, fmax, verdict, target in _FMAX.findall(nextpnr_log)}


def first_error(log: str) -> str | None:
    return next((line.strip() for line in log.splitlines() if line.startswith("ERROR")), None)


def cell_counts(yosys_log: str) -> dict[str, int]:
    """Cell type -> count from yosys' last statistics (including submodules)."""
    last = yosys_log.rfind("Printing statistics")
    section = yosys_log[last:] if last >= 0 else ""
    hierarchy = section.rfind("=== design hierarchy ===")
    return {name: int(count) for count, name in
            _STAT_CELL.findall(section[hierarchy if hierarchy >= 0 else 0:])}


def family_of(cells: dict[str, Usage]) -> str:
    return "ice40" if "ICESTORM_LC" in cells else "ecp5"


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def read_report(out_dir: Path, design: str, *, board: str, device: str, clock_mhz: float,
                interval: int | None, bitstream: Path, exit_code: int = 0,
                multipliers: MultiplierUse | None = None) -> BoardReport:
    """The report of the build in `out_dir` (logs `<design>.rpt`, `<design>.tim` and the
    build script's output `build.log`, which ended with `exit_code`)."""
    out_dir = Path(out_dir)
    logs = {"synth": out_dir / f"{design}.rpt", "pnr": out_dir / f"{design}.tim",
            "build": out_dir / "build.log"}
    pnr, synth, build = _read(logs["pnr"]), _read(logs["synth"]), _read(logs["build"])
    cells = utilisation(pnr)
    names = CELLS[family_of(cells)]
    usage = {key: cells.get(cell) for key, cell in names.items()}
    if "flip_flops" in usage:
        flip_flops = None if usage["flip_flops"] is None else usage["flip_flops"].used
    else:
        counts = cell_counts(synth)
        flip_flops = sum(n for name, n in counts.items() if FLIP_FLOP.match(name)) or None
    routed = "Routing complete" in pnr
    timing = clock_timing(pnr) if routed else {}
    clocks = {name: t for name, t in timing.items() if not name.startswith(PHANTOM_CLOCK)}
    warnings = [f"DSP blocks without registers: Fmax leaves the multipliers' delay out "
                f"(clock '{name}')" for name in timing if name not in clocks]
    fmax = min((c.fmax_mhz for c in clocks.values()), default=None)
    error = first_error(pnr) or first_error(synth) or first_error(build) or (
        None if exit_code == 0 else f"build script exit status {exit_code}: "
                                    f"{(build.strip().splitlines() or [''])[-1]}")
    fits = bool(cells) and routed and all(u.fits for u in cells.values()) and bitstream.exists()
    return BoardReport(
        board=board, device=device, fits=fits, luts=usage["luts"], flip_flops=flip_flops,
        dsps=usage["dsps"], brams=usage["brams"], sprams=usage.get("sprams"),
        clock_mhz=clock_mhz, clocks=clocks, fmax_mhz=fmax,
        timing_met=routed and all(c.met for c in clocks.values()), interval=interval,
        inferences_per_s=None if fmax is None or not interval else fmax * 1e6 / interval,
        bitstream=bitstream if bitstream.exists() else None,
        logs={name: path for name, path in logs.items() if path.exists()},
        multipliers=multipliers, error=error, warnings=warnings)
