"""Constants broadcast against a streamed sample: per-lane values from a small ROM and counter.

A constant of shape (C, 1, 1) against a (C, H, W) sample streamed in HWC order has the value
c[e % C] at element e: a pattern of period P = C. Element e is lane e % L of beat e // L, so
lane l of beat b reads c[(b*L + l) % P], and the beats repeat every lcm(P, L) / L beats. The
ROM holds that many words (at most the sample's B = ceil(N/L) beats) of L lanes; an address
counter steps with every beat and restarts at each sample's first beat. A pattern that is the
same in every word needs no ROM: each lane's value is a constant, so a multiply by it can be a
shift.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data
from amaranth.lib.memory import Memory

from hw.fold import ceil_div
from hw.shapes import index_shape, range_shape
from hw.streams import to_stream_order
from quant.errors import ModelError


def channel_pattern(const: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """The values of one period of `const` broadcast against a sample of `shape` in stream
    order: one value for a uniform constant, C values for a per-channel constant of a (C, H, W)
    sample, K for a (K,) sample. Anything else is refused."""
    const = np.asarray(const, np.int64)
    try:
        if const.ndim > len(shape):
            raise ValueError
        flat = to_stream_order(np.broadcast_to(const, shape)[None])[0]
    except ValueError:
        raise ModelError(f"{where}: constant of shape {const.shape} does not broadcast against "
                         f"its input of shape {shape}") from None
    if np.all(flat == flat[0]):
        return flat[:1]
    if len(shape) == 1:
        return flat
    rows = flat.reshape(-1, shape[0])
    if len(shape) == 3 and np.all(rows == rows[0]):
        return rows[0]
    raise ModelError(f"{where}: constant of shape {const.shape} varies within a channel of its "
                     f"input of shape {shape}; the hardware supports scalar and per-channel "
                     f"constants")


class LanePattern:
    """Named periodic constants (`columns`: one period each, all of the same length P) for a
    vector of `length` elements in beats of `lanes` lanes.

    `words[name]` is [depth, lanes]; names whose words are all equal are per-lane constants
    (`constants[name][lane]`, Python ints), the others one ROM of `depth` words.
    """

    def __init__(self, columns: dict[str, np.ndarray], *, length: int, lanes: int):
        periods = {len(v) for v in columns.values()}
        if len(periods) != 1:
            raise ValueError(f"LanePattern columns must share one period, not {sorted(periods)}")
        period = periods.pop()
        self.lanes = lanes
        self.beats = ceil_div(length, lanes)
        self.depth = min(math.lcm(period, lanes) // lanes, self.beats)
        element = np.arange(self.depth * lanes).reshape(self.depth, lanes) % period
        words = {name: np.asarray(v, np.int64)[element] for name, v in columns.items()}
        self.constants = {name: [int(x) for x in w[0]] for name, w in words.items()
                          if np.all(w == w[0])}
        self.rom = {name: w for name, w in words.items() if name not in self.constants}
        self.bounds = {name: (int(np.min(v)), int(np.max(v))) for name, v in columns.items()}
        self.shapes = {name: range_shape(bounds) for name, bounds in self.bounds.items()}

    def read(self, m: Module, advance: Value, taken: Value) -> Callable[[str, int], Value | int]:
        """value(name, lane): the constant of the beat taken one advance earlier (the ROM's
        registered read, enabled by `advance`), or a Python int for a per-lane constant."""
        if not self.rom:
            return lambda name, lane: self.constants[name][lane]
        layout = data.StructLayout({name: data.ArrayLayout(self.shapes[name], self.lanes)
                                    for name in self.rom})
        init = [{name: [int(x) for x in w[d]] for name, w in self.rom.items()}
                for d in range(self.depth)]
        m.submodules.pattern = rom = Memory(shape=layout, depth=self.depth, init=init)
        port = rom.read_port(domain="sync")
        address = Signal(index_shape(self.depth))
        wrap = address == self.depth - 1
        if self.beats % self.depth:  # the sample ends inside a period: restart there too
            beat = Signal(index_shape(self.beats))
            sample_end = beat == self.beats - 1
            wrap = wrap | sample_end
            with m.If(taken):
                m.d.sync += beat.eq(Mux(sample_end, 0, beat + 1))
        with m.If(taken):
            m.d.sync += address.eq(Mux(wrap, 0, address + 1))
        m.d.comb += [port.addr.eq(address), port.en.eq(advance)]
        return lambda name, lane: (self.constants[name][lane] if name in self.constants
                                   else port.data[name][lane])
