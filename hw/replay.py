"""A double-buffered vector store that replays each vector a fixed number of times.

A folded layer reads its input vector once per output group, but the producer sends it once.
This block stores a vector of `beats` beats in one bank while it replays the previous vector
`repeats` times from the other, so loading never stalls the consumer: in steady state it emits
one beat per cycle, `repeats * beats` cycles per vector, whenever `repeats >= 1`.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, ShapeLike, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.shapes import index_shape


class Replay(wiring.Component):
    """Input: a vector as `beats` payloads; output: the same `beats` payloads `repeats` times.

    Two banks of `beats` words. The writer fills the bank it owns and hands it over when the
    vector's last beat arrives; the reader replays a full bank and hands it back after the last
    beat of the last repeat. A bank's full flag is the only shared state, set by the writer and
    cleared by the reader, never in the same cycle for the same bank. `LATENCY` = 1: the
    memory's registered read port is the output register.
    """

    LATENCY = 1

    def __init__(self, shape: ShapeLike, *, beats: int, repeats: int):
        if beats < 1 or repeats < 1:
            raise ValueError(f"Replay beats and repeats must be >= 1, not {beats} and {repeats}")
        self.beats = beats
        self.repeats = repeats
        super().__init__({"i_stream": In(stream.Signature(shape)),
                          "o_stream": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        m.submodules.store = store = Memory(shape=i.p.shape(), depth=2 * self.beats, init=[])
        w_port = store.write_port()
        r_port = store.read_port(domain="sync")
        full = Signal(2)

        w_bank, w_beat = Signal(), Signal(index_shape(self.beats))
        m.d.comb += [i.ready.eq(~full.bit_select(w_bank, 1)),
                     w_port.addr.eq(Mux(w_bank, self.beats, 0) + w_beat),
                     w_port.data.eq(i.p), w_port.en.eq(i.valid & i.ready)]
        w_last = w_beat == self.beats - 1
        with m.If(i.valid & i.ready):
            m.d.sync += w_beat.eq(Mux(w_last, 0, w_beat + 1))
            with m.If(w_last):
                m.d.sync += [full.bit_select(w_bank, 1).eq(1), w_bank.eq(~w_bank)]

        r_bank, r_beat = Signal(), Signal(index_shape(self.beats))
        repeat = Signal(index_shape(self.repeats))
        advance = ~o.valid | o.ready
        issue = full.bit_select(r_bank, 1) & advance
        m.d.comb += [r_port.addr.eq(Mux(r_bank, self.beats, 0) + r_beat), r_port.en.eq(advance),
                     o.p.eq(r_port.data)]
        with m.If(advance):
            m.d.sync += o.valid.eq(full.bit_select(r_bank, 1))
        r_last, repeat_last = r_beat == self.beats - 1, repeat == self.repeats - 1
        with m.If(issue):
            m.d.sync += r_beat.eq(Mux(r_last, 0, r_beat + 1))
            with m.If(r_last):
                m.d.sync += repeat.eq(Mux(repeat_last, 0, repeat + 1))
                with m.If(repeat_last):
                    m.d.sync += [full.bit_select(r_bank, 1).eq(0), r_bank.eq(~r_bank)]
        return m
