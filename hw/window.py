"""The sliding-window generator: a line buffer that turns an HWC pixel stream into the windows
of a convolution or a pooling, one output pixel at a time, in raster order.

Window geometry and element order: `hw.window_geometry`. How the window leaves the block is a
`Beats` table: the conv engine cuts it into ceil(K/S) beats of S lanes repeated for each output
group, the depthwise conv and the pools use per-channel orders of the same elements.

Line buffer: one `Memory` of R rows x W pixels x C/L_in words of L_in elements (one input
beat a word), written in order (global input row k goes to row slot k mod R). Each output
beat reads its elements straight from it: one read port per distinct sequence of (tap, word)
that the lanes follow over a window's beats (lanes reading the same word share a port), so
the window is never held in registers and the buffer is deep enough for block RAM (synthesis
duplicates the memory per read port). R slots cover every pair of consecutive output rows
(`Window.slots`), so an output pixel can issue as soon as the previous one's beats are out, at
any stride, across row and sample ends.

A read port never addresses the word being written in the same cycle (the writer only fills
row slots no pixel reads), so what a collision would read does not matter; yosys, told nothing,
builds a read-old-data bypass (an address compare and a data register per port) that sits in
the iCE40 build's critical path, so the board builds declare collisions undefined for the
memory named `LINE_BUFFER` (`boards.build.prepare`).

Writer and reader meet on whole rows: `avail` counts the complete rows from the first row the
current output row uses. An output row starts once its rows are in; the writer takes a beat
while its row has a free slot; a row's slot frees when the last beat of its last pixel has
been read.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Const, Module, Mux, Shape, ShapeLike, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.shapes import bounds, index_shape
from hw.window_geometry import PAD, Beats, Window

LINE_BUFFER = "line_buffer"  # the line buffer memory's name (synthesis scripts select it)


def select(values: list, index: Value) -> Value:
    """values[index] as a tree of 2:1 multiplexers on the index bits: no multiplier (as
    `word_select` writes) and no case block (which Icarus leaves unevaluated while its inputs
    keep their initial values). An index past the end picks one of the values."""
    level, index = [Value.cast(v) for v in values], Value.cast(index)
    bit = 0
    while len(level) > 1:
        if bit == len(index):  # the index's missing high bits are zero
            return level[0]
        level = [Mux(index[bit], level[k + 1], level[k]) if k + 1 < len(level) else level[k]
                 for k in range(0, len(level), 2)]
        bit += 1
    return level[0]


def lookup(values: list[int], index: Value) -> Value:
    """values[index] for a list of non-negative constants (multiplexers, not a memory)."""
    width = max(max(values).bit_length(), 1)
    return select([Const(v, width) for v in values], index)




@dataclass(frozen=True)
class _Read:
    """What one line-buffer read port fetches on each of a window's distinct beats:
    (ky, kx, word of the pixel) or None where its lanes carry no element."""

    taps: tuple[tuple[int, int, int] | None, ...]


def read_ports(window: Window, beats: Beats, in_lanes: int) -> tuple[list[_Read], list[int | None]]:
    """The distinct read sequences of the lanes, and each lane's index into them (None for a
    lane that only ever carries padding)."""
    reads: dict[_Read, int] = {}
    lanes = []
    for column in beats.table.T:
        taps = []
        for e in column:
            if e == PAD:
                taps.append(None)
                continue
            tap, c = divmod(int(e), window.channels)
            taps.append((*divmod(tap, window.kernel[1]), c // in_lanes))
        lanes.append(None if all(t is None for t in taps)
                     else reads.setdefault(_Read(tuple(taps)), len(reads)))
    return list(reads), lanes


class WindowGenerator(wiring.Component):
    """HWC pixel stream in, windows out (see the module docstring for the order and storage).

    Input stream: `[L_in] x shape`, the (C, H, W) sample in HWC order, L_in | C. Output
    stream: `{data: [lanes] x shape, rows: kh bits, cols: kw bits}`, `beats.per_window` beats
    per output pixel; `rows`/`cols` flag the taps that lie inside the image (the rest hold
    `pad_value`), so a consumer can count real elements (AvgPool's divisor).

    Pipeline (`LATENCY` = 3 from issue to the first beat): issue (pixel counters) -> window
    register (the pixel's row starts, tap masks) -> read stage (the line buffer's read
    ports, each lane's padding flag and element of the word) -> output register. Block RAM
    data goes straight into a register (an ECP5 DP16KD without its output register takes
    ~4 ns from the clock). The window register advances when its last beat is read; ready on
    the input is a compare of one counter. Full-rate timing: `hw.window_geometry.full_rate_cycles`.
    """

    LATENCY = 3

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
        self.row_words = window.width * window.channels // in_lanes  # words per input row
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape, in_lanes))),
            "o_stream": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(shape, beats.lanes),
                "rows": window.kernel[0], "cols": window.kernel[1]}))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        win = self.window
        depth, words = win.slots * self.row_words, win.channels // self.in_lanes
        m.submodules[LINE_BUFFER] = buffer = Memory(
            shape=data.ArrayLayout(self.shape, self.in_lanes), depth=depth, init=[])
        reads, lane_reads = read_ports(win, self.beats, self.in_lanes)
        ports = [buffer.read_port(domain="sync") for _ in reads]

        # avail: complete rows counted from the current output row's first row `lo`; it drops
        # below zero when the reader skips rows (stride > kernel) that are still to come.
        avail = Signal(range(-(win.height + win.strides[0]), win.slots + 1))
        advance = Signal()  # the window register takes the next pixel
        window = Signal(data.StructLayout({  # the pixel whose beats are going out
            "valid": 1, "rows": win.kernel[0], "cols": win.kernel[1],
            # per ky, the word of pixel (row y0 + ky*dh, column x0): slot * row_words + x0 * words
            "starts": data.ArrayLayout(range(-win.pads[1] * words, depth + win.pads[3] * words),
                                       win.kernel[0]),
            "freed": range(win.height + 1)}))  # rows to free once its last beat is read
        # held: rows the writer may not overwrite, = avail + the rows the pixel in the window
        # register still reads (`window.freed`, left behind at its issue); a register of its
        # own so the input's ready is one compare.
        held = Signal(range(-(win.height + win.strides[0]), win.slots + 1))
        row_written = self._writer(m, buffer.write_port(), held)
        freed = self._reader(m, avail, advance, window)
        m.d.sync += [avail.eq(avail + row_written - freed),
                     held.eq(held + row_written - Mux(advance & window.valid, window.freed, 0))]
        self._emitter(m, ports, reads, lane_reads, window, advance)
        return m

    def _writer(self, m: Module, port, held: Value) -> Value:
        """Store each input beat at the next word (row after row, slot k mod R for row k);
        returns "a row ends now"."""
        win, i, row_words = self.window, self.i_stream, self.row_words
        depth = win.slots * row_words
        addr, col = Signal(index_shape(depth)), Signal(index_shape(row_words))
        m.d.comb += i.ready.eq(held < win.slots)
        take = i.valid & i.ready
        m.d.comb += [port.addr.eq(addr), port.data.eq(i.p), port.en.eq(take)]
        row_end = col == row_words - 1
        with m.If(take):
            m.d.sync += [col.eq(Mux(row_end, 0, col + 1)),
                         addr.eq(Mux(addr == depth - 1, 0, addr + 1))]
        return take & row_end

    def _reader(self, m: Module, avail: Signal, advance: Signal, window) -> Value:
        """The issue stage: walk output pixels and register each one's geometry into `window`.
        Returns the number of rows the reader leaves behind this cycle. Everything that
        depends on the output row or column alone (rows needed and freed, tap masks) is a
        constant table indexed by the pixel counters, so the issue decision is one compare."""
        win = self.window
        kh, (sh, sw), dh = win.kernel[0], win.strides, win.dilations[0]
        oh, ow, slots = win.out_height, win.out_width, win.slots
        words = win.channels // self.in_lanes
        rows = [win.bounds(0, oy) for oy in range(oh)]
        needs = [hi - lo for lo, hi in rows]
        frees = [(rows[oy + 1][0] if oy + 1 < oh else win.height) - lo
                 for oy, (lo, _) in enumerate(rows)]
        masks = [[win.inside(0, y) for y in range(oh)], [win.inside(1, x) for x in range(ow)]]
        oy, ox = Signal(index_shape(oh)), Signal(index_shape(ow))
        vslot = Signal(index_shape(slots), init=-win.pads[0] % slots)  # slot of row oy*sh - top
        left = -win.pads[1] * words
        column = Signal(range(left, (win.width + win.pads[3]) * words), init=left)  # x0 * words

        issue = Signal()
        m.d.comb += issue.eq((avail >= lookup(needs, oy)) & advance)
        last_x, last_y = ox == ow - 1, oy == oh - 1
        freed = Signal(range(win.height + 1))
        with m.If(issue & last_x):
            m.d.comb += freed.eq(lookup(frees, oy))

        with m.If(issue):
            with m.If(last_x):
                step = Mux(last_y, (win.height - (oh - 1) * sh) % slots, sh % slots)
                moved = vslot + step
                m.d.sync += [ox.eq(0), column.eq(left), oy.eq(Mux(last_y, 0, oy + 1)),
                             vslot.eq(Mux(moved >= slots, moved - slots, moved))]
            with m.Else():
                m.d.sync += [ox.eq(ox + 1), column.eq(column + sw * words)]

        bases = [r * self.row_words for r in range(slots)]
        with m.If(advance):
            m.d.sync += [window.valid.eq(issue), window.freed.eq(freed),
                         window.rows.eq(lookup(masks[0], oy)),
                         window.cols.eq(lookup(masks[1], ox))]
            for ky in range(kh):
                moved = vslot + ky * dh % slots
                m.d.sync += window.starts[ky].eq(
                    lookup(bases, Mux(moved >= slots, moved - slots, moved)) + column)
        return freed

    def _emitter(self, m: Module, ports, reads: list[_Read], lane_reads: list[int | None],
                 window, advance: Signal) -> None:
        """Address the read ports for the current beat (read stage: the ports' data registers
        and, beside them, each lane's padding flag and element of the word), pick each lane's
        element into the output register, and step through the beats; `advance` moves the
        window register on once its last beat is read."""
        win, o, beats, in_lanes = self.window, self.o_stream, self.beats, self.in_lanes
        (kh, kw), dw, words = win.kernel, win.dilations[1], win.channels // in_lanes
        bits = self.shape.width
        pad = Const(self.pad_value & ((1 << bits) - 1), bits)
        beat = Signal(index_shape(beats.distinct))
        repeat = Signal(index_shape(beats.repeats))
        beat_last = beat == beats.distinct - 1
        last = beat_last & (repeat == beats.repeats - 1)
        out_advance = ~o.valid | o.ready  # every beat stage moves on together
        m.d.comb += advance.eq(~window.valid | (out_advance & last))

        masks = [window.rows[ky] & window.cols[kx] for ky in range(kh) for kx in range(kw)]
        inside = []
        for read, port in zip(reads, ports):
            taps = [t or (0, 0, 0) for t in read.taps]
            start = select([window.starts[ky] for ky in range(kh)],
                           lookup([ky for ky, _, _ in taps], beat))
            offset = lookup([kx * dw * words + word for _, kx, word in taps], beat)
            m.d.comb += [port.addr.eq(start + offset), port.en.eq(out_advance)]
            inside.append(select(masks, lookup([ky * kw + kx for ky, kx, _ in taps], beat)))

        fetched = Signal(data.StructLayout({"valid": 1, "rows": kh, "cols": kw}))
        lanes = Value.cast(o.p.data)
        for s, k in enumerate(lane_reads):
            out = lanes[s * bits:(s + 1) * bits]
            if k is None:
                m.d.comb += out.eq(pad)
                continue
            column = [int(e) for e in beats.table[:, s]]
            padded = Signal(name=f"padded_{s}")
            element = Signal(index_shape(in_lanes), name=f"element_{s}")
            word = ports[k].data
            with m.If(out_advance):
                m.d.sync += [padded.eq(~inside[k] | lookup([int(e == PAD) for e in column], beat)),
                             element.eq(lookup([max(e, 0) % win.channels % in_lanes
                                                for e in column], beat)),
                             out.eq(Mux(padded, pad, select([word[j] for j in range(in_lanes)],
                                                            element)))]

        with m.If(out_advance):
            m.d.sync += [fetched.valid.eq(window.valid), fetched.rows.eq(window.rows),
                         fetched.cols.eq(window.cols), o.valid.eq(fetched.valid),
                         o.p.rows.eq(fetched.rows), o.p.cols.eq(fetched.cols)]
            with m.If(window.valid):
                m.d.sync += beat.eq(Mux(beat_last, 0, beat + 1))
                with m.If(beat_last):
                    m.d.sync += repeat.eq(Mux(repeat == beats.repeats - 1, 0, repeat + 1))
