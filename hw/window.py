"""The sliding-window generator: line buffers that turn an HWC pixel stream into the windows of
a convolution or a pooling, one output pixel at a time, in raster order.

Window element order is (ky, kx, c): element (ky*kw + kx)*C + c of pixel (oy, ox) is input
x[c, oy*sh - top + ky*dh, ox*sw - left + kx*dw], or the pad value where that lies outside the
image. Output size is ONNX floor mode. How the window leaves the block is a `Beats` table: the
conv engine cuts it into ceil(K/S) beats of S lanes repeated for each output group, the
depthwise conv and the pools use per-channel orders of the same elements.

Line buffer: R row slots x B column banks of `Memory`, each `ceil(W/B)` words of one pixel
(C elements, written L_in elements at a time). Global input row k goes to slot k mod R, column
x to bank x mod B. B is the least number >= kw coprime with the column dilation, so the kw
columns of any window lie in distinct banks, and R slots cover every pair of consecutive
output rows (`Window.slots`). One cycle therefore reads a whole window: every output pixel can
issue as soon as the previous one's beats are out, at any stride, across row and sample ends.

Writer and reader meet on whole rows: `avail` counts the complete rows from the first row the
current output row uses. An output row starts once its rows are in; the writer takes a beat
while its row has a free slot (`avail < R`); a row's slots free when its last pixel issues.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from numbers import Integral

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, ShapeLike, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fold import ceil_div, to_beats
from hw.shapes import bounds, index_shape
from quant.ops.windows import output_size

PAD = -1  # a `Beats` table entry for a lane that carries no window element


@dataclass(frozen=True)
class Window:
    """A kh x kw window with strides, ONNX pads (top, left, bottom, right) and dilations
    sliding over a (C, H, W) tensor."""

    channels: int
    height: int
    width: int
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        positive = {"channels": (self.channels,), "height": (self.height,), "width": (self.width,),
                    "kernel": self.kernel, "strides": self.strides, "dilations": self.dilations}
        for name, values in positive.items():
            if not all(isinstance(v, Integral) and v >= 1 for v in values):
                raise ValueError(f"Window {name} must be positive integers, not {values!r}")
        if len(self.pads) != 4 or min(self.pads) < 0:
            raise ValueError(f"Window pads must be 4 integers >= 0, not {self.pads!r}")
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"Window kernel {self.kernel} with dilations {self.dilations} must "
                             f"fit the padded {self.height}x{self.width} input")

    @property
    def shape(self) -> tuple[int, int, int]:
        """The input's (C, H, W)."""
        return self.channels, self.height, self.width

    @property
    def span(self) -> tuple[int, int]:
        """Dilated kernel height and width: (k-1)*d + 1."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))

    @property
    def out_height(self) -> int:
        return output_size(self.height, self.pads[0], self.pads[2], self.kernel[0],
                           self.strides[0], self.dilations[0])

    @property
    def out_width(self) -> int:
        return output_size(self.width, self.pads[1], self.pads[3], self.kernel[1],
                           self.strides[1], self.dilations[1])

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def length(self) -> int:
        """Elements per window: kh*kw*C."""
        return self.taps * self.channels

    def element(self, ky: int, kx: int, c: int) -> int:
        """Index of tap (ky, kx), channel c in the window vector."""
        return (ky * self.kernel[1] + kx) * self.channels + c

    def bounds(self, axis: int, index: int) -> tuple[int, int]:
        """(lo, hi): output row (axis 0) or column (axis 1) `index` spans input rows or
        columns lo..hi-1 of the image (its padding excluded)."""
        size = (self.height, self.width)[axis]
        first = index * self.strides[axis] - self.pads[axis]
        return min(max(first, 0), size), min(max(first + self.span[axis], 0), size)

    @property
    def slots(self) -> int:
        """R: rows held. Consecutive output rows n, n+1 (the last row of a sample and the first
        of the next included) read rows lo(n)..hi(n+1)-1 while both are in flight, so
        R = max(hi(n+1) - lo(n)) lets the next row's rows load during the current one; one
        spare row lets a writer that ran ahead keep going (see `full_rate_cycles`)."""
        rows = [self.bounds(0, oy) for oy in range(self.out_height)]
        steps = [hi - lo for (lo, _), (_, hi) in zip(rows, rows[1:])]
        steps.append(self.height + rows[0][1] - rows[-1][0])
        return max(steps) + 1

    @property
    def banks(self) -> int:
        """B: the least b >= kw with gcd(b, dw) = 1, so columns x0 + kx*dw hit distinct banks."""
        banks = self.kernel[1]
        while gcd(banks, self.dilations[1]) != 1:
            banks += 1
        return banks


@dataclass(frozen=True, eq=False)
class Beats:
    """How each window leaves the generator: `table[b, s]` is the window element on lane s of
    the window's b-th distinct beat (or `PAD`); the distinct beats go out in order, the whole
    sequence `repeats` times (the MAC array reads the window once per output group)."""

    table: np.ndarray  # int64 [distinct beats, lanes]
    repeats: int = 1

    @classmethod
    def chunks(cls, length: int, lanes: int, repeats: int = 1) -> Beats:
        """The window vector as ceil(length/lanes) beats: element e on lane e % lanes of beat
        e // lanes, the last beat padded."""
        return cls(to_beats(np.arange(length), lanes, fill=PAD), repeats)

    @property
    def lanes(self) -> int:
        return self.table.shape[1]

    @property
    def distinct(self) -> int:
        return self.table.shape[0]

    @property
    def per_window(self) -> int:
        """T_pix: output beats (cycles at full rate) per output pixel."""
        return self.distinct * self.repeats


def full_rate_cycles(window: Window, per_window: int, in_lanes: int, samples: int) -> int:
    """Cycles from the first input beat to the last pixel's last beat leaving the issue stage,
    with input valid and output ready every cycle (add the block's latency for its last output).

    With Tw = W*C/L_in beats per input row, T_row = OW * T_pix cycles per output row and
    output rows m = 0..M-1 over all samples (M = samples*OH), row m may start once the rows up
    to hi(m) are in (at hi(m)*Tw, hi counted over the whole input) and the previous row is
    done, so the last one ends at max_m(hi(m)*Tw + (M - m)*T_row). At the term m = 0 this is
    hi(0)*Tw + samples*OH*OW*T_pix: when the output is the bottleneck every sample takes
    exactly OH*OW*T_pix cycles, the next sample's rows loading while the current one finishes.
    This assumes the writer is never held by a full buffer when a later row will wait for it;
    that is proven when every output row's new input rows load within the previous output row
    ((hi(m+1) - hi(m))*Tw <= T_row), and the tests assert the formula on every geometry they run.
    """
    t_in = window.width * window.channels // in_lanes
    t_row = window.out_width * per_window
    his = [s * window.height + window.bounds(0, oy)[1]
           for s in range(samples) for oy in range(window.out_height)]
    return max(hi * t_in + (len(his) - m) * t_row for m, hi in enumerate(his))


def _clip(value: Value, high: int) -> Value:
    return Mux(value < 0, 0, Mux(value > high, high, value))


def select(values: list, index: Value) -> Value:
    """values[index] as a tree of 2:1 multiplexers on the index bits: no multiplier (as
    `word_select` writes) and no case block (which Icarus leaves unevaluated while its inputs
    keep their initial values). An index past the end picks one of the values."""
    level = [Value.cast(v) for v in values]
    bit = 0
    while len(level) > 1:
        level = [Mux(index[bit], level[k + 1], level[k]) if k + 1 < len(level) else level[k]
                 for k in range(0, len(level), 2)]
        bit += 1
    return level[0]


def lookup(values: list[int], index: Value) -> Value:
    """values[index] for a list of non-negative constants (multiplexers, not a memory)."""
    width = max(max(values).bit_length(), 1)
    return select([Const(v, width) for v in values], index)


class WindowGenerator(wiring.Component):
    """HWC pixel stream in, windows out (see the module docstring for the order and storage).

    Input stream: `[L_in] x shape`, the (C, H, W) sample in HWC order, L_in | C. Output
    stream: `{data: [lanes] x shape, rows: kh bits, cols: kw bits}`, `beats.per_window` beats
    per output pixel; `rows`/`cols` flag the taps that lie inside the image (the rest hold
    `pad_value`), so a consumer can count real elements (AvgPool's divisor).

    Pipeline (`LATENCY` = 2 from issue to the first beat): issue (pixel counters, memory
    addresses) -> memory read registers, which hold the window while its beats go out ->
    beat register. Every register advances when the window's last beat leaves; ready on the
    input depends only on `avail`. Full-rate timing: `full_rate_cycles`.
    """

    LATENCY = 2

    def __init__(self, window: Window, *, shape: ShapeLike, in_lanes: int, pad_value: int,
                 beats: Beats):
        shape = Shape.cast(shape)
        if not (isinstance(in_lanes, int) and in_lanes >= 1 and window.channels % in_lanes == 0):
            raise ValueError(f"Window input lanes must divide the {window.channels} channels, not "
                             f"{in_lanes!r}")
        low, high = bounds(shape)
        if not low <= pad_value <= high:
            raise ValueError(f"Window pad value must lie in [{low}, {high}], not {pad_value}")
        table = np.asarray(beats.table, np.int64)
        if table.ndim != 2 or table.size == 0 or table.min() < PAD or table.max() >= window.length:
            raise ValueError(f"Window beats must be a [beats, lanes] table of elements in "
                             f"[{PAD}, {window.length}), not {table.tolist()!r}")
        if beats.repeats < 1:
            raise ValueError(f"Window beats repeats must be >= 1, not {beats.repeats}")
        self.window, self.shape, self.in_lanes = window, shape, in_lanes
        self.pad_value, self.beats = pad_value, beats
        self.latency = self.LATENCY
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape, in_lanes))),
            "o_stream": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(shape, beats.lanes),
                "rows": window.kernel[0], "cols": window.kernel[1]}))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        win = self.window
        pixel_bits = win.channels * self.shape.width
        depth = ceil_div(win.width, win.banks)
        memories = [[Memory(shape=unsigned(pixel_bits), depth=depth, init=[])
                     for _ in range(win.banks)] for _ in range(win.slots)]
        for r, row in enumerate(memories):
            for b, memory in enumerate(row):
                m.submodules[f"slot{r}_bank{b}"] = memory
        granule = self.in_lanes * self.shape.width
        writes = [[memory.write_port(granularity=granule) for memory in row] for row in memories]
        reads = [[memory.read_port(domain="sync") for memory in row] for row in memories]

        # avail: complete rows counted from the current output row's first row `lo`; it drops
        # below zero when the reader skips rows (stride > kernel) that are still to come.
        avail = Signal(range(-(win.height + win.strides[0]), win.slots + 1))
        advance = Signal()  # the window stage takes the next pixel
        window = Signal(data.StructLayout({  # the pixel whose taps the read registers hold
            "valid": 1, "rho": index_shape(win.banks), "rows": win.kernel[0],
            "cols": win.kernel[1], "slots": data.ArrayLayout(index_shape(win.slots),
                                                             win.kernel[0])}))
        row_written = self._writer(m, writes, avail)
        freed = self._reader(m, reads, avail, advance, window)
        m.d.sync += avail.eq(avail + row_written - freed)
        self._emitter(m, reads, window, advance)
        return m

    def _writer(self, m: Module, writes, avail: Signal) -> Value:
        """Store each input beat at (slot, bank, address, chunk); returns "a row ends now"."""
        win, i = self.window, self.i_stream
        chunks = win.channels // self.in_lanes
        slot, bank = Signal(index_shape(win.slots)), Signal(index_shape(win.banks))
        addr = Signal(index_shape(ceil_div(win.width, win.banks)))
        chunk, x = Signal(index_shape(chunks)), Signal(index_shape(win.width))
        m.d.comb += i.ready.eq(avail < win.slots)
        take = i.valid & i.ready
        for r, row in enumerate(writes):
            for b, port in enumerate(row):
                m.d.comb += [port.addr.eq(addr), port.data.eq(Cat(*[Value.cast(i.p)] * chunks))]
                for k in range(chunks):
                    m.d.comb += port.en[k].eq(take & (slot == r) & (bank == b) & (chunk == k))
        pixel_end = chunk == chunks - 1
        row_end = pixel_end & (x == win.width - 1)
        with m.If(take):
            m.d.sync += chunk.eq(Mux(pixel_end, 0, chunk + 1))
            with m.If(row_end):
                m.d.sync += [x.eq(0), bank.eq(0), addr.eq(0),
                             slot.eq(Mux(slot == win.slots - 1, 0, slot + 1))]
            with m.Elif(pixel_end):
                m.d.sync += [x.eq(x + 1), bank.eq(Mux(bank == win.banks - 1, 0, bank + 1))]
                with m.If(bank == win.banks - 1):
                    m.d.sync += addr.eq(addr + 1)
        return take & row_end

    def _reader(self, m: Module, reads, avail: Signal, advance: Signal, window) -> Value:
        """The issue stage: walk output pixels, address every bank of every slot, register the
        pixel's tap geometry into `window`. Returns the number of rows freed this cycle."""
        win = self.window
        (kh, kw), (sh, sw), (dh, dw) = win.kernel, win.strides, win.dilations
        top, left = win.pads[:2]
        slots, banks = win.slots, win.banks
        y_last = (win.out_height - 1) * sh - top
        x_last = (win.out_width - 1) * sw - left
        q_first, rho_first = divmod(-left, banks)
        y0 = Signal(range(-top, y_last + 1), init=-top)  # first padded row of the window
        x0 = Signal(range(-left, x_last + 1), init=-left)
        q = Signal(range(min(q_first, 0), x_last // banks + 2), init=q_first)  # x0 = q*B + rho
        rho = Signal(index_shape(banks), init=rho_first)
        vslot = Signal(index_shape(slots), init=-top % slots)  # slot of row y0 (mod R)

        lo = _clip(y0, win.height)
        need = _clip(y0 + win.span[0], win.height) - lo
        issue = Signal()
        m.d.comb += issue.eq((avail >= need) & advance)
        last_x, last_y = x0 == x_last, y0 == y_last
        freed = Signal(range(win.height + 1))
        with m.If(issue & last_x):
            m.d.comb += freed.eq(Mux(last_y, win.height, _clip(y0 + sh, win.height)) - lo)

        with m.If(issue):
            with m.If(last_x):
                step = Mux(last_y, (win.height - (win.out_height - 1) * sh) % slots, sh % slots)
                moved = vslot + step
                m.d.sync += [x0.eq(-left), q.eq(q_first), rho.eq(rho_first),
                             y0.eq(Mux(last_y, -top, y0 + sh)),
                             vslot.eq(Mux(moved >= slots, moved - slots, moved))]
            with m.Else():
                moved = rho + sw % banks
                carry = moved >= banks
                m.d.sync += [x0.eq(x0 + sw), rho.eq(Mux(carry, moved - banks, moved)),
                             q.eq(q + sw // banks + carry)]

        # Bank b holds the window's column kx with (rho + kx*dw) % B == b, if any.
        for b in range(banks):
            step = [next(((r + kx * dw) // banks for kx in range(kw)
                          if (r + kx * dw) % banks == b), 0) for r in range(banks)]
            for row in reads:
                m.d.comb += [row[b].addr.eq(q + lookup(step, rho)), row[b].en.eq(advance)]

        with m.If(advance):
            m.d.sync += [window.valid.eq(avail >= need), window.rho.eq(rho),
                         window.rows.eq(Cat(*((y0 + ky * dh >= 0) & (y0 + ky * dh < win.height)
                                              for ky in range(kh)))),
                         window.cols.eq(Cat(*((x0 + kx * dw >= 0) & (x0 + kx * dw < win.width)
                                              for kx in range(kw))))]
            for ky in range(kh):
                moved = vslot + ky * dh % slots
                m.d.sync += window.slots[ky].eq(Mux(moved >= slots, moved - slots, moved))
        return freed

    def _emitter(self, m: Module, reads, window, advance: Signal) -> None:
        """Assemble the window from the read registers (slot and bank rotation, padding) and
        send its beats; `advance` moves the window stage on after its last beat."""
        win, o, beats = self.window, self.o_stream, self.beats
        (kh, kw), dw = win.kernel, win.dilations[1]
        bits, pixel_bits = self.shape.width, win.channels * self.shape.width
        pad = Const(self.pad_value & ((1 << bits) - 1), bits)
        taps = []
        for ky in range(kh):
            words = [select([row[b].data for row in reads], window.slots[ky])
                     for b in range(win.banks)]
            for kx in range(kw):
                bank = lookup([(r + kx * dw) % win.banks for r in range(win.banks)], window.rho)
                tap = Signal(pixel_bits, name=f"tap_{ky}_{kx}")
                m.d.comb += tap.eq(Mux(window.rows[ky] & window.cols[kx],
                                       select(words, bank),
                                       Cat(*[pad] * win.channels)))
                taps.append(tap)

        def element(e: int) -> Value:
            if e == PAD:
                return pad
            tap, c = divmod(e, win.channels)
            return taps[tap][c * bits:(c + 1) * bits]

        beat = Signal(index_shape(beats.distinct))
        repeat = Signal(index_shape(beats.repeats))
        beat_last = beat == beats.distinct - 1
        last = beat_last & (repeat == beats.repeats - 1)
        out_advance = ~o.valid | o.ready
        m.d.comb += advance.eq(~window.valid | (out_advance & last))
        lanes = Value.cast(o.p.data)
        with m.If(out_advance):
            m.d.sync += [o.valid.eq(window.valid), o.p.rows.eq(window.rows),
                         o.p.cols.eq(window.cols)]
            for s in range(beats.lanes):
                column = [int(e) for e in beats.table[:, s]]
                value = element(column[0]) if len(set(column)) == 1 else \
                    select([element(e) for e in column], beat)
                m.d.sync += lanes[s * bits:(s + 1) * bits].eq(value)
            with m.If(window.valid):
                m.d.sync += beat.eq(Mux(beat_last, 0, beat + 1))
                with m.If(beat_last):
                    m.d.sync += repeat.eq(Mux(repeat == beats.repeats - 1, 0, repeat + 1))
