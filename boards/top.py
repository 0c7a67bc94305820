"""The board top: the accelerator behind the UART host link (`boards.link`), a clock from the
board's oscillator (through the FPGA's PLL when a faster clock is asked for), a reset, and
two LEDs: a heartbeat (about 1 Hz: the clock runs and reset is over) and a sticky error
(a UART framing error or overrun since reset).

Reset holds the design while the PLL is not locked, while the reset button is pressed, and
for `POR_SECONDS` after configuration: iCE40 block RAMs read as zero for ~3 us after
configuration (amaranth's own iCE40 reset waits 15 us as well). The reset's release is
synchronized to the clock (`ResetSynchronizer`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from amaranth.build import Platform, Resource
from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import Out

from boards.dsp import Family
from boards.link import HostLink
from boards.uart import divisor_for

POR_SECONDS = 15e-6
CLOCK_TOLERANCE = 0.05  # how far the PLL's nearest clock may be from the one asked for
DEFAULT_BAUD = 115_200

Pin = tuple[str, int] | tuple[str, int, str]  # (resource, number[, subsignal])


class PllConfig(Protocol):
    """A family's PLL settings; `f_out_hz` is the frequency they give."""

    f_out_hz: float


def pll_signature() -> wiring.Signature:
    """The ports of a board's PLL block (built from its settings and the oscillator's pin,
    which it buffers as its family needs): the clock out, and lock."""
    return wiring.Signature({"clk_out": Out(1), "locked": Out(1)})


@dataclass(frozen=True)
class Board:
    """One board: its amaranth-boards platform, the FPGA family's PLL (a search for the
    settings nearest a frequency, and the block that instantiates them), and the
    resources the top uses. `extra` adds resources the platform lacks (e.g. a UART on a
    header); `synth_opts` go to yosys' synth_<family>; `dsps` is the device's DSP blocks,
    which `boards.dsp` shares out among the multipliers."""

    name: str
    platform: Callable[[], Platform]
    family: Family
    dsps: int
    pll_search: Callable[[float, float], PllConfig]
    pll_block: Callable[[PllConfig, io.PortLike], wiring.Component]
    heartbeat: Pin
    error: Pin
    reset: Pin
    uart: Pin = ("uart", 0)
    extra: tuple[Resource, ...] = field(default_factory=tuple)
    synth_opts: str = ""
    bitstream: str = "bit"  # the bitstream file's extension


@dataclass(frozen=True)
class ClockPlan:
    """The clock a design gets: `hz`, made by `pll` (None: the oscillator itself)."""

    hz: float
    pll: PllConfig | None


def plan_clock(board: Board, oscillator_hz: float, clock_hz: float | None = None) -> ClockPlan:
    """The oscillator, or the PLL's nearest frequency to `clock_hz` when that differs (within
    5%, else ValueError)."""
    wanted = oscillator_hz if clock_hz is None else clock_hz
    if wanted == oscillator_hz:
        return ClockPlan(oscillator_hz, None)
    pll = board.pll_search(oscillator_hz, wanted)
    if abs(pll.f_out_hz - wanted) > CLOCK_TOLERANCE * wanted:
        raise ValueError(f"the PLL's nearest clock to {wanted / 1e6:g} MHz is "
                         f"{pll.f_out_hz / 1e6:g} MHz")
    return ClockPlan(pll.f_out_hz, pll)


class BoardTop(Elaboratable):
    """`accelerator` (see `HostLink`) on `board` with the clock of `plan_clock`; the UART
    runs at `baud` from it (`divisor_for` checks that the clock can make it)."""

    def __init__(self, board: Board, accelerator: wiring.Component, *, clock: ClockPlan,
                 baud: int = DEFAULT_BAUD):
        self.board = board
        self.pll, self.clock_hz = clock.pll, clock.hz
        self.baud = baud
        self.link = HostLink(accelerator, divisor=divisor_for(self.clock_hz, baud))

    def elaborate(self, platform: Platform) -> Module:
        m = Module()
        requested: dict[tuple[str, int], object] = {}

        def pin(spec: Pin, direction: str) -> io.Buffer:
            """A buffer on a board pin (resource, number[, subsignal]), each requested once."""
            key = spec[:2]
            if key not in requested:
                requested[key] = platform.request(*key, dir="-")
            port = getattr(requested[key], spec[2]) if len(spec) == 3 else requested[key]
            m.submodules[f"pin_{'_'.join(map(str, spec))}"] = buffer = io.Buffer(direction, port)
            return buffer

        oscillator = platform.request(platform.default_clk, dir="-")
        m.domains.sync = sync = ClockDomain("sync")
        if self.pll is None:
            m.submodules.clk_buf = clk_buf = io.Buffer("i", oscillator)
            m.d.comb += sync.clk.eq(clk_buf.i)
            locked = Const(1)
        else:  # nextpnr derives the PLL output's clock constraint from its settings
            m.submodules.pll = pll = self.board.pll_block(self.pll, oscillator)
            m.d.comb += sync.clk.eq(pll.clk_out)
            locked = pll.locked

        # Power-on delay in a reset-less domain on the same clock.
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(sync.clk)
        delay = int(POR_SECONDS * self.clock_hz)
        timer = Signal(range(delay + 1))
        with m.If(timer != delay):
            m.d.por += timer.eq(timer + 1)
        m.submodules.reset_sync = ResetSynchronizer(
            (timer != delay) | ~locked | pin(self.board.reset, "i").i, domain="sync")

        m.submodules.link = link = self.link
        m.d.comb += [link.rx.eq(pin((*self.board.uart, "rx"), "i").i),
                     pin((*self.board.uart, "tx"), "o").o.eq(link.tx)]

        beat = Signal(max(1, int(self.clock_hz).bit_length()))
        error = Signal()
        m.d.sync += beat.eq(beat + 1)
        with m.If(link.error):
            m.d.sync += error.eq(1)
        m.d.comb += [pin(self.board.heartbeat, "o").o.eq(beat[-1]),
                     pin(self.board.error, "o").o.eq(error)]
        return m
