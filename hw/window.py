"""The sliding-window generator: a line buffer that turns an HWC pixel stream into the windows
of a convolution or a pooling, one output pixel at a time, in raster order.

Window element order is (ky, kx, c): element (ky*kw + kx)*C + c of pixel (oy, ox) is input
x[c, oy*sh - top + ky*dh, ox*sw - left + kx*dw], or the pad value where that lies outside the
image. Output size is ONNX floor mode. How the window leaves the block is a `Beats` table: the
conv engine cuts it into ceil(K/S) beats of S lanes repeated for each output group, the
depthwise conv and the pools use per-channel orders of the same elements.

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
from numbers import Integral

import numpy as np
from amaranth.hdl import Const, Module, Mux, Shape, ShapeLike, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fold import to_beats
from hw.shapes import bounds, index_shape
from quant.ops.windows import output_size

PAD = -1  # a `Beats` table entry for a lane that carries no window element
LINE_BUFFER = "line_buffer"  # the line buffer memory's name (synthesis scripts select it)


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

    def inside(self, axis: int, index: int) -> int:
        """Bit k set where tap k of output row (axis 0) or column (axis 1) `index` lies inside
        the image rather than in its padding."""
        size = (self.height, self.width)[axis]
        first = index * self.strides[axis] - self.pads[axis]
        return sum(1 << k for k in range(self.kernel[axis])
                   if 0 <= first + k * self.dilations[axis] < size)

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
    the input is a compare of one counter. Full-rate timing: `full_rate_cycles`.
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
