"""The MAC array: P output channels x S input lanes of multiply-accumulate per cycle.

For a weight matrix w [N, K] and bias b [N] it computes acc[c] = b[c] + sum_k w[c, k] * x[k]
for every channel c, folded as `hw.fold.Fold` describes: the input stream brings the vector
x once per output group, J = ceil(K/S) beats of S lanes, and after each group's J beats
the array emits that group's P accumulators. G = ceil(N/P) groups take G*J input beats.

The accumulator width is the integer graph's proven `acc_bits`: every partial sum
b[c] + sum_{k<k'} w[c, k] x[k] is bounded by the same sum(|w[c]|) max|x| + |b[c]|, so no
register ever overflows (and two's complement wrap-around would cancel even if one did).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Shape, ShapeLike, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fold import Fold, to_beats
from hw.requant import requant_input
from hw.shapes import bounds, index_shape, range_shape


def adder_tree(terms: list):
    """A balanced sum of Amaranth values (depth ceil(log2 n) instead of n - 1)."""
    while len(terms) > 1:
        terms = [a + b for a, b in zip(terms[::2], terms[1::2])] + terms[len(terms) & ~1:]
    return terms[0]


class MacArray(wiring.Component):
    """acc = w @ x + b on a `fold.outputs` x `fold.inputs` array of multipliers.

    Input stream: `[S] x in_shape` per beat, the vector's J beats repeated for each of the G
    groups in order (the block counts beats and groups itself). Output stream:
    `{acc: [P] x signed(acc_bits), index: g}`, one beat per group, the requantizer's input.
    Weights and biases are ROMs; weights are stored at the narrowest width that holds them.
    With `per_lane`, each output lane p has its own S inputs (input `[P] x [S] x in_shape`,
    product w[p, s] * x[p][s]): grouped and depthwise convolutions, whose output channels
    read different input channels, then multiply no structural zeros.

    Pipeline (`LATENCY` = 5 cycles from a group's last input beat to its output):
    input register and weight ROM read; multiplier input registers; multiplier output
    registers; adder tree (with the bias ROM read); accumulator. Registered multiplier
    inputs and outputs let synthesis map each product onto a DSP block with its registers;
    the tree's own register keeps its carry chains and the accumulator's out of one cycle
    (an iCE40 build's critical path at S = 12). All stages advance together when the output
    is empty or being read.
    """

    LATENCY = 5

    def __init__(self, weight: np.ndarray, bias: np.ndarray, *, in_shape: ShapeLike,
                 acc_bits: int, fold: Fold, per_lane: bool = False):
        weight = np.asarray(weight, np.int64)
        bias = np.asarray(bias, np.int64).reshape(-1)
        if weight.ndim != 2 or bias.shape != weight.shape[:1]:
            raise ValueError(f"MacArray weight must be [N, K] and bias [N], not "
                             f"{list(weight.shape)} and {list(bias.shape)}")
        self.fold = fold
        self.acc_bits = acc_bits
        self.groups = fold.groups(weight.shape[0])
        self.chunks = fold.chunks(weight.shape[1])
        self.in_shape = Shape.cast(in_shape)
        self.weight_shape = range_shape(weight.reshape(-1))
        w_ends = (int(weight.min(initial=0)), int(weight.max(initial=0)))
        self.product_shape = range_shape([-1] + [a * b for a in bounds(in_shape) for b in w_ends])
        self.tiles = fold.weight_tiles(weight)  # [G*J, P, S]
        self.bias_tiles = to_beats(bias, fold.outputs)  # [G, P]
        self.per_lane = per_lane
        lanes = data.ArrayLayout(in_shape, fold.inputs)
        self.in_layout = data.ArrayLayout(lanes, fold.outputs) if per_lane else lanes
        super().__init__({
            "i_stream": In(stream.Signature(self.in_layout)),
            "o_stream": Out(stream.Signature(
                requant_input(acc_bits, fold.outputs, self.groups))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        p_out, s_in = self.fold.outputs, self.fold.inputs
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)

        # Stage 0: count beats (chunk, 0..J-1) and groups (0..G-1); tiles run 0..G*J-1.
        chunk = Signal(index_shape(self.chunks))
        group = Signal(index_shape(self.groups))
        tile = Signal(index_shape(len(self.tiles)))
        first, last = chunk == 0, chunk == self.chunks - 1
        with m.If(i.valid & advance):
            m.d.sync += [chunk.eq(Mux(last, 0, chunk + 1)),
                         tile.eq(Mux(tile == len(self.tiles) - 1, 0, tile + 1))]
            with m.If(last):
                m.d.sync += group.eq(Mux(group == self.groups - 1, 0, group + 1))

        tile_layout = data.ArrayLayout(data.ArrayLayout(self.weight_shape, s_in), p_out)
        m.submodules.weights = weights = Memory(
            shape=tile_layout, depth=len(self.tiles),
            init=[[[int(w) for w in row] for row in t] for t in self.tiles])
        w_port = weights.read_port(domain="sync")
        m.d.comb += [w_port.addr.eq(tile), w_port.en.eq(advance)]

        # Control travels beside the data: [valid, first, last, group] per stage.
        meta = data.StructLayout({"valid": 1, "first": 1, "last": 1,
                                  "group": index_shape(self.groups)})
        meta1, meta2, meta3, meta4 = (Signal(meta, name=f"meta{n}") for n in (1, 2, 3, 4))
        # Operand and product registers have no reset (the valid bits do), so synthesis can
        # put them inside the DSP block (iCE40's SB_MAC16 has no synchronous reset), which is
        # also what lets nextpnr time the multiplier.
        x1, x2 = (Signal(self.in_layout, name=f"x{n}", reset_less=True) for n in (1, 2))
        w2 = Signal(tile_layout, reset_less=True)
        product = Signal(data.ArrayLayout(data.ArrayLayout(self.product_shape, s_in), p_out),
                         reset_less=True)

        acc_layout = data.ArrayLayout(signed(self.acc_bits), p_out)
        total = Signal(acc_layout)  # the adder tree's sum of one beat's S products
        m.submodules.biases = biases = Memory(
            shape=acc_layout, depth=self.groups,
            init=[[int(b) for b in row] for row in self.bias_tiles])
        b_port = biases.read_port(domain="sync")
        m.d.comb += [b_port.addr.eq(meta3.group), b_port.en.eq(advance)]

        with m.If(advance):
            m.d.sync += [meta1.valid.eq(i.valid), meta1.first.eq(first), meta1.last.eq(last),
                         meta1.group.eq(group), x1.eq(i.p),
                         meta2.eq(meta1), x2.eq(x1), w2.eq(w_port.data),
                         meta3.eq(meta2), meta4.eq(meta3),
                         o.valid.eq(meta4.valid & meta4.last), o.p.index.eq(meta4.group)]
            for p in range(p_out):
                for s in range(s_in):
                    x = x2[p][s] if self.per_lane else x2[s]
                    m.d.sync += product[p][s].eq(x * w2[p][s])
                m.d.sync += total[p].eq(adder_tree([product[p][s] for s in range(s_in)]))
                with m.If(meta4.valid):
                    start = Mux(meta4.first, b_port.data[p], o.p.acc[p])
                    m.d.sync += o.p.acc[p].eq(start + total[p])
        return m
