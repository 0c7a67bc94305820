"""Stream plumbing between layer engines: stream order, join, fork, register slice, FIFO, lane
regrouping.

Stream order: a per-sample tensor of shape (C, H, W) crosses a stream in HWC order (pixels
in raster order, channels fastest); any other rank in its natural order. The flattened
sample is cut into beats of L lanes: element e is lane e % L of beat e // L, the last beat
padded (`hw.fold.to_beats`).

Handshake rules every block here keeps (AXI-Stream's): a valid never waits for a ready (it
depends on registers and upstream valids only), so ready may depend combinationally on
valid and on downstream ready without creating a loop.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Shape, ShapeLike, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.fold import ceil_div
from hw.shapes import index_shape


def stream_axes(rank: int) -> tuple[int, ...]:
    """The sample axes from slowest to fastest on a stream: (1, 2, 0) for (C, H, W)."""
    return (1, 2, 0) if rank == 3 else tuple(range(rank))


def to_stream_order(x: np.ndarray) -> np.ndarray:
    """[N, *shape] -> [N, elements], each sample flattened in stream order (HWC for 3-D)."""
    x = np.asarray(x)
    return x.transpose((0, *(a + 1 for a in stream_axes(x.ndim - 1)))).reshape(len(x), -1)


def from_stream_order(flat: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """[N, elements] in stream order -> [N, *shape] (the inverse of `to_stream_order`)."""
    axes = stream_axes(len(shape))
    ordered = np.asarray(flat).reshape((len(flat), *(shape[a] for a in axes)))
    return ordered.transpose((0, *(axes.index(a) + 1 for a in range(len(shape)))))


def input_names(count: int) -> list[str]:
    """Port names of a block's input streams: `i_stream` alone, else `i0_stream`, `i1_stream`,
    ... in the order of the operator's inputs (outputs likewise: `o_stream` or `o<k>_stream`)."""
    return ["i_stream"] if count == 1 else [f"i{k}_stream" for k in range(count)]


def join(m: Module, streams: Sequence[stream.Interface], advance: Value) -> Value:
    """Take one beat from every stream at once: each `ready` is `advance` and every valid, so
    no stream gives a beat until all have one. Returns "all valid"."""
    valid = Signal()
    m.d.comb += valid.eq(Cat(*(s.valid for s in streams)).all())
    for s in streams:
        m.d.comb += s.ready.eq(advance & valid)
    return valid


def skip_depths(absorbed: int, latency: int) -> tuple[int, int]:
    """(depth to finish, depth for full rate) of the `StreamFifo` on the short path of a
    residual: a `Fork` whose two branches meet again at a join (Add, Mul, Concat), one of
    them through a long path.

    `absorbed` (A): beats the long path takes before it emits the first beat that meets the
    skip path's oldest (a whole vector for a block that stores one; 1 for a plain pipeline).
    `latency` (Λ): cycles from the fork giving a beat to the long path presenting its match at
    the join, at full rate.
    To finish, A - 1 (at least 1): the skip FIFO must hold what the fork gives while the long
    path has nothing out yet, and the fork's per-branch valid lets the long branch take the
    A-th beat while the FIFO is full. With fewer, the fork stops for good (deadlock).
    For full rate, Λ + 1: the Λ beats forked while one crosses the long path, plus the one
    written in the cycle the join takes the oldest (SyncFIFOBuffered refuses a write when
    full even in a cycle it is read). In between, everything finishes, with stalls.
    """
    return max(absorbed - 1, 1), latency + 1


class Fork(wiring.Component):
    """One input stream to `outputs` consumers (`o0_stream`, `o1_stream`, ...), each of which
    takes every beat; the input beat is consumed once every branch has taken it.

    Per-branch valid: branch k shows the beat while it has not taken it yet
    (`o_k.valid = i.valid & ~taken[k]`), so a fast branch is not held back by a slow one for
    the current beat, and no valid depends on any ready. `i.ready` = every branch has taken
    the beat or takes it now (combinational from the branches' ready). No register on the
    data path: latency 0.
    """

    def __init__(self, shape: ShapeLike, outputs: int = 2):
        if outputs < 2:
            raise ValueError(f"Fork outputs must be >= 2, not {outputs}")
        self.outputs = outputs
        ports = {"i_stream": In(stream.Signature(shape))}
        ports |= {f"o{k}_stream": Out(stream.Signature(shape)) for k in range(outputs)}
        super().__init__(ports)

    def branches(self) -> list[stream.Interface]:
        return [getattr(self, f"o{k}_stream") for k in range(self.outputs)]

    def elaborate(self, platform) -> Module:
        m = Module()
        i, branches = self.i_stream, self.branches()
        taken = Signal(self.outputs)
        for k, o in enumerate(branches):
            m.d.comb += [o.valid.eq(i.valid & ~taken[k]), o.p.eq(i.p)]
        m.d.comb += i.ready.eq((taken | Cat(*(o.ready for o in branches))).all())
        with m.If(i.valid & i.ready):
            m.d.sync += taken.eq(0)
        with m.Elif(i.valid):
            for k, o in enumerate(branches):
                with m.If(o.ready):
                    m.d.sync += taken[k].eq(1)
        return m


class RegisterSlice(wiring.Component):
    """A stream register with no combinational path through it (a two-entry skid buffer):
    the output (valid, payload) and the input's ready are registers, so the ready of an
    all-stages-advance pipeline stops here instead of rippling through every engine of the
    accelerator in one cycle (on an FPGA that chain, not any datapath, set the Fmax).

    Full rate: a beat in and out every cycle. `LATENCY` = 1. While the output is held, one
    more beat goes into the skid register, and the input is not ready until it drains.
    """

    LATENCY = 1

    def __init__(self, shape: ShapeLike):
        self.shape = shape
        super().__init__({"i_stream": In(stream.Signature(shape)),
                          "o_stream": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        # Payload registers need no reset (the valid bits have one).
        skid, out = (Signal(self.shape, reset_less=True, name=n) for n in ("skid", "out"))
        skid_valid = Signal()
        m.d.comb += [i.ready.eq(~skid_valid), o.p.eq(out)]
        with m.If(~o.valid | o.ready):
            m.d.sync += [o.valid.eq(i.valid | skid_valid), out.eq(Mux(skid_valid, skid, i.p)),
                         skid_valid.eq(0)]
        with m.Elif(i.valid & ~skid_valid):
            m.d.sync += [skid.eq(i.p), skid_valid.eq(1)]
        return m


class StreamFifo(wiring.Component):
    """A FIFO of `depth` beats between two streams (`amaranth.lib.fifo.SyncFIFOBuffered`:
    block-RAM friendly, registered output).

    A beat written into an empty FIFO can be read two cycles later (LATENCY = 2; depth 1,
    a single register, one cycle). Full rate (a beat in and out every cycle) needs
    depth >= 3: depth 1 alternates full and empty, and depth 2's one memory word cannot be
    written and read in the same cycle. Both ports' valid/ready are registered: a FIFO also
    cuts the combinational ready chain of the pipelines it joins.
    """

    LATENCY = 2

    def __init__(self, shape: ShapeLike, depth: int):
        if depth < 1:
            raise ValueError(f"StreamFifo depth must be >= 1, not {depth}")
        self.depth = depth
        self.fifo = SyncFIFOBuffered(width=Shape.cast(shape).width, depth=depth)
        super().__init__({"i_stream": In(stream.Signature(shape)),
                          "o_stream": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.fifo = fifo = self.fifo
        i, o = self.i_stream, self.o_stream
        m.d.comb += [fifo.w_data.eq(Value.cast(i.p)), fifo.w_en.eq(i.valid),
                     i.ready.eq(fifo.w_rdy),
                     Value.cast(o.p).eq(fifo.r_data), o.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(o.ready)]
        return m


class Regroup(wiring.Component):
    """Re-cuts a vector of `length` elements from beats of `lanes_in` lanes into beats of
    `lanes_out` lanes (input padding dropped, output's last beat padded).

    A buffer of `lanes_in + lanes_out - 1` elements: each cycle the output register takes
    the buffer's first `lanes_out` elements (fewer at the end of a vector) if it holds them,
    and the input beat is accepted if its elements fit behind what stays. In steady state a
    vector takes max(ceil(length/lanes_in), ceil(length/lanes_out)) cycles.
    `LATENCY` = 2: an accepted beat is in the buffer the next cycle and in the output register
    the one after.
    """

    LATENCY = 2

    def __init__(self, shape: ShapeLike, *, length: int, lanes_in: int, lanes_out: int):
        if min(length, lanes_in, lanes_out) < 1:
            raise ValueError(f"Regroup length and lanes must be >= 1, not {length}, "
                             f"{lanes_in} and {lanes_out}")
        self.shape = shape
        self.length = length
        self.lanes_in, self.lanes_out = lanes_in, lanes_out
        self.beats_in, self.beats_out = ceil_div(length, lanes_in), ceil_div(length, lanes_out)
        self.capacity = lanes_in + lanes_out - 1
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape, lanes_in))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(shape, lanes_out))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        width = Shape.cast(self.shape).width
        cap = self.capacity
        buffer = Signal(cap * width)
        count = Signal(range(cap + 1))

        # Elements per beat: all lanes, except in a vector's last beat.
        in_beat, out_beat = Signal(index_shape(self.beats_in)), Signal(index_shape(self.beats_out))
        in_last, out_last = in_beat == self.beats_in - 1, out_beat == self.beats_out - 1
        arriving = Mux(in_last, self.length - (self.beats_in - 1) * self.lanes_in, self.lanes_in)
        needed = Mux(out_last, self.length - (self.beats_out - 1) * self.lanes_out,
                     self.lanes_out)

        advance = ~o.valid | o.ready
        emit = advance & (count >= needed)
        kept = Signal(range(cap + 1))
        m.d.comb += [kept.eq(count - Mux(emit, needed, 0)),
                     i.ready.eq(kept + arriving <= cap)]
        accept = i.valid & i.ready

        # The elements that stay move to the front; the accepted ones go right behind them.
        shifted = buffer >> (Mux(emit, needed, 0) * width)
        incoming = Value.cast(i.p) << (kept * width)
        merged = [Mux(slot < kept, shifted.word_select(slot, width),
                      incoming.word_select(slot, width)) for slot in range(cap)]
        m.d.sync += [buffer.eq(Cat(*merged)),
                     count.eq(kept + Mux(accept, arriving, 0))]
        with m.If(accept):
            m.d.sync += in_beat.eq(Mux(in_last, 0, in_beat + 1))
        with m.If(emit):
            m.d.sync += [Value.cast(o.p).eq(buffer[:self.lanes_out * width]), o.valid.eq(1),
                         out_beat.eq(Mux(out_last, 0, out_beat + 1))]
        with m.Elif(advance):
            m.d.sync += o.valid.eq(0)
        return m
