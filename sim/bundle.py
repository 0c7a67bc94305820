"""Many independent accelerators in one simulation, so one Verilator build checks many graphs.

A Verilator build of one small fuzz accelerator costs 10-20 s, almost all of it C++ compiling,
against about 1 s to run it; whole-chain fuzzing (tests/test_fuzz_chain.py) therefore puts tens
of graphs behind one pair of streams. `Bundle` has the ports of a `hw.lower.Accelerator` (one
input stream, one output stream, one element per beat), so the in-design harness
(`sim.player.Harness`, `sim.runner.build_harness` / `run_harness`, `sim.network.build_for`) and
its random gaps and stalls apply unchanged.

Turns: accelerator k owns both streams from the cycle after accelerator k-1's turn ends until
it has taken its `samples * inputs_k` input beats and given its `samples * outputs_k` output
beats; then accelerator k+1's turn begins. One turn at a time (not overlapped) so that each
accelerator sees its stream as it would alone, idle before its first beat: its outputs, and at
full rate its cycles per sample, are its own (`simulate_bundle` splits the transcript by turn).
An accelerator that gives more output beats than its share shows none of the extra ones (a
lone run ignores them as well); one that gives fewer, or takes fewer inputs, stops the bundle,
which `simulate_bundle` reports as missing inputs and outputs of that accelerator.

Elements: the bundle's element is `signed(W)`, W wide enough for every accelerator's input and
output element (an unsigned n-bit element needs n + 1 bits). Accelerator k takes the low bits
of each input beat (its own element's bits, two's complement or not); its output element is
sign- or zero-extended to W, so every output beat is the element's integer value.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import reduce
from pathlib import Path

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.lower import Accelerator
from quant import ir
from sim.bench import Transcript
from sim.network import NetworkRun, build_for, compare, cycle_budget, expected_outputs, stimulus
from sim.player import HarnessCase
from sim.runner import run_harness


def _value_bits(shape: Shape) -> int:
    """Bits of a signed shape that holds every value of `shape`."""
    return shape.width + (not shape.signed)


def _element(port: stream.Interface) -> Shape:
    """The element shape of a one-lane stream (an `ArrayLayout` of one element)."""
    return Shape.cast(port.p.shape().elem_shape)


class Bundle(wiring.Component):
    """`accelerators` in turns behind one input and one output stream, each for `samples`
    samples (see the module docstring). `inputs` and `outputs` are beats per sample of all
    turns, as `sim.network.build_for` sizes the harness."""

    def __init__(self, accelerators: Sequence[Accelerator], samples: int):
        if not accelerators:
            raise ValueError(f"Bundle needs at least one accelerator, not {accelerators!r}")
        if not (isinstance(samples, int) and samples >= 1):
            raise ValueError(f"Bundle samples must be a positive integer, not {samples!r}")
        self.accelerators, self.samples = list(accelerators), samples
        self.inputs = sum(a.inputs for a in self.accelerators)
        self.outputs = sum(a.outputs for a in self.accelerators)
        self.in_shape = signed(max(_value_bits(_element(a.i_stream)) for a in self.accelerators))
        self.out_shape = signed(max(_value_bits(Shape.cast(a.out_shape)) for a in self.accelerators))
        super().__init__({"i_stream": In(stream.Signature(data.ArrayLayout(self.in_shape, 1))),
                          "o_stream": Out(stream.Signature(data.ArrayLayout(self.out_shape, 1)))})

    def elaborate(self, platform) -> Module:
        # And-or selection, not a Switch on `turn`: with a Switch, Icarus showed the
        # output's valid as X after reset while the selected accelerator's valid was 0 (a
        # case block not evaluated since time 0), and the X stuck in the counters.
        m = Module()
        i, o = self.i_stream, self.o_stream
        turn = Signal(range(len(self.accelerators) + 1))  # == len: every turn is over
        fed = Signal(range(self.samples * max(a.inputs for a in self.accelerators) + 1))
        given = Signal(range(self.samples * max(a.outputs for a in self.accelerators) + 1))
        fed_next, given_next = fed + (i.valid & i.ready), given + (o.valid & o.ready)
        ready, valid, payload, over = [], [], [], []
        for k, acc in enumerate(self.accelerators):
            m.submodules[f"acc{k}"] = acc
            feeds, gives = self.samples * acc.inputs, self.samples * acc.outputs
            mine = turn == k
            want_in, want_out = mine & (fed < feeds), mine & (given < gives)
            width = _element(acc.i_stream).width
            m.d.comb += [Value.cast(acc.i_stream.p).eq(Value.cast(i.p)[:width]),
                         acc.i_stream.valid.eq(i.valid & want_in),
                         acc.o_stream.ready.eq(o.ready & want_out)]
            ready.append(acc.i_stream.ready & want_in)
            valid.append(acc.o_stream.valid & want_out)
            element = Signal(self.out_shape, name=f"element{k}")  # sign- or zero-extended
            m.d.comb += element.eq(Mux(mine, acc.o_stream.p[0], 0))
            payload.append(element)
            over.append(mine & (fed_next == feeds) & (given_next == gives))
        m.d.comb += [i.ready.eq(Cat(*ready).any()), o.valid.eq(Cat(*valid).any()),
                     o.p[0].eq(reduce(operator.or_, payload))]
        with m.If(Cat(*over).any()):
            m.d.sync += [turn.eq(turn + 1), fed.eq(0), given.eq(0)]
        with m.Else():
            m.d.sync += [fed.eq(fed_next), given.eq(given_next)]
        return m


def turns(transcript: Transcript, bundle: Bundle) -> list[Transcript]:
    """The transcript of each accelerator's turn: its input stamps and its output beats and
    stamps (the run's total cycles in each)."""
    parts, fed, given = [], 0, 0
    for acc in bundle.accelerators:
        feeds, gives = bundle.samples * acc.inputs, bundle.samples * acc.outputs
        parts.append(Transcript(transcript.outputs[given:given + gives],
                                transcript.in_cycles[fed:fed + feeds],
                                transcript.out_cycles[given:given + gives], transcript.cycles))
        fed, given = fed + feeds, given + gives
    return parts


def simulate_bundle(bundle: Bundle, graphs: Sequence[ir.IntGraph], xqs: Sequence[np.ndarray],
                    simulator: str, work_dir: Path, *, gap: float = 0.0, stall: float = 0.0,
                    seed: int = 0, gap_stretch: int = 1, stall_stretch: int = 1, settle: int = 0,
                    build_dir: Path | None = None) -> list[NetworkRun]:
    """Stream `xqs[k]` (integer inputs, [samples, *input shape]) through accelerator k of the
    bundle (whose integer graph is `graphs[k]`) on `simulator`, all in one run, and compare
    each accelerator's outputs with its own golden model: one `NetworkRun` per accelerator,
    as `sim.network.simulate` gives for one alone (its `cycles` are the whole run's), with
    `inputs_left` the input beats of its share it never took (an unfinished turn stops every
    later one, whose outputs are then all missing). `settle`: cycles per sample are timed
    from the end of that sample on (`sim.network.compare`).
    `build_dir`: a harness built by `sim.network.build_for(bundle, bundle.samples, simulator)`
    (default: a quick build, `quick=True`, made for this run)."""
    if not len(graphs) == len(xqs) == len(bundle.accelerators):
        raise ValueError(f"simulate_bundle needs one graph and one input per accelerator "
                         f"({len(bundle.accelerators)}), not {len(graphs)} and {len(xqs)}")
    if any(len(xq) != bundle.samples for xq in xqs):
        raise ValueError(f"simulate_bundle inputs must have {bundle.samples} samples each, "
                         f"not {[len(xq) for xq in xqs]}")
    expected = [expected_outputs(graph, xq) for graph, xq in zip(graphs, xqs)]
    case = HarnessCase(inputs={"i_stream": [b for xq in xqs for b in stimulus(bundle.in_shape, xq)]},
                       outputs=sum(e.size for e in expected), gap=gap, stall=stall, seed=seed,
                       gap_stretch=gap_stretch, stall_stretch=stall_stretch,
                       max_cycles=cycle_budget(bundle.accelerators, bundle.samples, gap, stall,
                                               gap_stretch, stall_stretch))
    if build_dir is None:
        build_dir = build_for(bundle, bundle.samples, simulator, quick=True)
    transcript = run_harness(build_dir, simulator, case, work_dir)
    runs = []
    for part, want, acc in zip(turns(transcript, bundle), expected, bundle.accelerators):
        run = compare(part, want, bundle.out_shape, settle)
        run.inputs_left = bundle.samples * acc.inputs - len(part.in_cycles)
        runs.append(run)
    return runs
