"""A UART (8 data bits, no parity, 1 stop bit, LSB first) with byte streams.

Written here because no maintained Amaranth 0.5 UART is on PyPI: `amaranth-stdio`, where the
Amaranth project keeps one, is published there only as an empty placeholder (version 0), and
`amaranth.lib` 0.5 has none.

`divisor` is clock cycles per bit (clock / baud, rounded; `divisor_for` checks the error).
The receiver samples each bit once, in its middle, counted from the falling edge of the start
bit (seen through a two-flip-flop synchronizer, which delays the edge and every sample alike).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4
MAX_BAUD_ERROR = 0.02  # a receiver sampling mid-bit tolerates about +-4% over a 10-bit frame


def divisor_for(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit for `baud` at `clock_hz`, if the rounding error stays under 2%."""
    divisor = round(clock_hz / baud)
    if divisor < MIN_DIVISOR or abs(clock_hz / divisor - baud) > MAX_BAUD_ERROR * baud:
        raise ValueError(f"a {clock_hz / 1e6:g} MHz clock cannot make {baud} baud "
                         f"(divisor {divisor}; must be >= {MIN_DIVISOR}, error under 2%)")
    return divisor


def _check_divisor(divisor: int) -> None:
    if not (isinstance(divisor, int) and divisor >= MIN_DIVISOR):
        raise ValueError(f"UART divisor must be an integer >= {MIN_DIVISOR}, not {divisor!r}")


class UartTx(wiring.Component):
    """Sends each byte of `i_stream` on `tx` (idle high); takes the next byte right after the
    previous stop bit, so back-to-back bytes leave with no gap: 10 * divisor cycles a byte."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"i_stream": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        busy = Signal()
        timer = Signal(range(self.divisor))
        remaining = Signal(range(10))  # bits still to send after the one on the line
        shift = Signal(9)  # data bits then the stop bit
        m.d.comb += self.i_stream.ready.eq(~busy)
        with m.If(~busy):
            with m.If(self.i_stream.valid):
                m.d.sync += [busy.eq(1), self.tx.eq(0), timer.eq(self.divisor - 1),
                             remaining.eq(9), shift.eq(Cat(self.i_stream.payload, 1))]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(remaining == 0):
            m.d.sync += busy.eq(0)
        with m.Else():
            m.d.sync += [self.tx.eq(shift[0]), shift.eq(shift >> 1),
                         remaining.eq(remaining - 1), timer.eq(self.divisor - 1)]
        return m


class UartRx(wiring.Component):
    """Receives bytes from `rx` into `o_stream`, one byte held until taken.

    `error` is high for one cycle when a frame's stop bit is low (framing error; the byte is
    dropped) or when a byte arrives while the previous one was not taken yet (overrun; the
    new byte is dropped). A start bit that is high again at mid-bit is ignored as a glitch.
    """

    SYNC_STAGES = 2

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o_stream": Out(stream.Signature(8)),
                          "error": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        o = self.o_stream
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1, stages=self.SYNC_STAGES)

        busy = Signal()
        timer = Signal(range(self.divisor))
        remaining = Signal(range(10))  # samples still to take after the current one
        shift = Signal(8)
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        m.d.sync += self.error.eq(0)

        with m.If(~busy):
            with m.If(~line):
                # Every sample sees the line as late as this edge did, so counting from here
                # the start bit's middle is divisor/2 cycles in.
                m.d.sync += [busy.eq(1), remaining.eq(9), timer.eq(self.divisor // 2 - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [timer.eq(self.divisor - 1), remaining.eq(remaining - 1)]
            with m.If(remaining == 9):
                with m.If(line):
                    m.d.sync += busy.eq(0)
            with m.Elif(remaining != 0):
                m.d.sync += shift.eq(Cat(shift[1:], line))
            with m.Else():
                m.d.sync += busy.eq(0)
                with m.If(~line | (o.valid & ~o.ready)):
                    m.d.sync += self.error.eq(1)
                with m.Else():
                    m.d.sync += [o.payload.eq(shift), o.valid.eq(1)]
        return m
