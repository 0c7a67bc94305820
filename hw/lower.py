"""Integer graph -> one streaming dataflow accelerator (`Accelerator`, an Amaranth component).

One engine per integer op, as `hw.plan` folds it; streams between them, re-cut by `Regroup`
where the producer's lanes differ from what the consumer takes; a `Fork` where a tensor has
several consumers, with a `StreamFifo` on every branch. Every engine's output goes through a
`RegisterSlice`, so no ready signal crosses more than one engine in a cycle (the FPGA
builds' Fmax); `latency` counts the slices.

Skip buffers (the short branch of a residual Add, Mul or Concat) are derived, not guessed: every
engine produces its outputs of a sample from that sample's inputs alone, so the long branch
never needs more than one whole sample of the forked tensor before it emits the element that
meets the skip branch's oldest one. A skip FIFO of one sample of beats can therefore never
deadlock the fork, and `latency` more beats (the pipeline latency of every engine, summed)
keep it at full rate (`hw.streams.skip_depths`). A branch that goes straight into a join
(a consumer with several inputs) needs no more of the tensor than the element it takes, so
when exactly one branch does not, that branch is the long one and gets a shallow FIFO, and
the direct ones a deep one. With several such branches (two convolutions of one tensor, or
the tensor also an output) which one needs more is not known here, so every branch gets a
deep FIFO: a shallow FIFO on a branch that needs less (a 1x1 projection shortcut beside a
chain of 3x3 convolutions) fills and stops the fork before the other branch has the rows it
needs, a deadlock.

Ports: `i_stream` takes the quantized input, one element per beat, in stream order (HWC for a
(C, H, W) input, see `hw.streams.to_stream_order`); `o_stream` gives the integer output, one
element per beat, in the same order.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.layers.add import AddEngine
from hw.layers.affine import AffineEngine
from hw.layers.argmax import ArgMaxEngine
from hw.layers.clamp import ClampEngine
from hw.layers.concat import ConcatEngine
from hw.layers.conv2d import ConvEngine
from hw.layers.dense import DenseEngine
from hw.layers.gap import GlobalAvgPoolEngine
from hw.layers.lut import LutEngine
from hw.layers.mul import MulEngine
from hw.layers.pool import AvgPoolEngine, MaxPoolEngine
from hw.plan import Plan, Stage, vector_length
from hw.shapes import shape_of
from hw.streams import Fork, Regroup, RegisterSlice, StreamFifo, input_names
from quant import ir
from quant.errors import ModelError

SHALLOW_FIFO = 4  # >= 3 keeps a StreamFifo at full rate


def _conv(graph, op, stage):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    return ConvEngine(op, in_shape=x.shape, in_type=x.itype, out_type=y.itype, fold=stage.fold,
                      in_lanes=stage.in_lanes)


def _gemm(graph, op, stage):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    return DenseEngine(op, in_type=x.itype, out_type=y.itype, fold=stage.fold)


def _maxpool(graph, op, stage):
    x = graph.tensors[op.inputs[0]]
    return MaxPoolEngine(op, in_shape=x.shape, itype=x.itype, lanes=stage.lanes, in_lanes=stage.in_lanes)


def _avgpool(graph, op, stage):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    return AvgPoolEngine(op, in_shape=x.shape, in_type=x.itype, out_type=y.itype,
                         lanes=stage.lanes, in_lanes=stage.in_lanes)


def _from_graph(engine) -> Callable:
    return lambda graph, op, stage: engine.from_graph(graph, op, stage.lanes)


ENGINES: dict[type[ir.Op], Callable] = {
    ir.Conv: _conv, ir.Gemm: _gemm, ir.MaxPool: _maxpool, ir.AvgPool: _avgpool,
    ir.GlobalAvgPool: _from_graph(GlobalAvgPoolEngine), ir.Add: _from_graph(AddEngine),
    ir.Mul: _from_graph(MulEngine), ir.Affine: _from_graph(AffineEngine),
    ir.Clamp: _from_graph(ClampEngine), ir.Lut: _from_graph(LutEngine),
    ir.Concat: _from_graph(ConcatEngine), ir.ArgMax: _from_graph(ArgMaxEngine),
}


def flatten_for_streams(graph: ir.IntGraph) -> ir.IntGraph:
    """The graph with each Gemm behind a Flatten of a (C, H, W) tensor reading its inputs in
    stream (HWC) order: its weight columns permuted, so the Flatten moves no data."""
    producers = {out: op for op in graph.ops for out in op.outputs}
    ops = []
    for op in graph.ops:
        source = producers.get(op.inputs[0])
        if isinstance(op, ir.Gemm) and isinstance(source, ir.Reshape):
            shape = graph.tensors[source.inputs[0]].shape
            if len(shape) == 3 and shape[1] * shape[2] > 1:
                order = np.arange(math.prod(shape)).reshape(shape).transpose(1, 2, 0).reshape(-1)
                op = dataclasses.replace(op, weight=op.weight[:, order])
        ops.append(op)
    for op in graph.ops:
        if isinstance(op, ir.Reshape):
            shape = graph.tensors[op.inputs[0]].shape
            users = [u for u in graph.ops if op.outputs[0] in u.inputs]
            if len(shape) == 3 and shape[1] * shape[2] > 1 and not all(isinstance(u, ir.Gemm) for u in users):
                raise ModelError(f"Reshape '{op.name}' of a {shape} tensor must feed Gemm layers only "
                                 "(the hardware streams HWC and folds the reorder into their weights)")
    return dataclasses.replace(graph, ops=ops)


@dataclasses.dataclass
class _Source:
    """A stream carrying a tensor: `lanes` per beat, vectors of `vector` elements."""

    stream: stream.Interface
    lanes: int
    vector: int


class Accelerator(wiring.Component):
    """The whole integer graph as one streaming pipeline (see the module docstring)."""

    def __init__(self, graph: ir.IntGraph, plan: Plan):
        self.graph = flatten_for_streams(graph)
        self.plan = plan
        self.inputs, self.outputs = plan.input_elements, plan.output_elements
        self.interval = plan.interval
        self.engines = {stage.op.name: ENGINES[type(stage.op)](self.graph, op, stage)
                        for stage, op in zip(plan.stages, self.graph.ops) if type(op) in ENGINES}
        self.latency = sum(getattr(engine, "latency", 0) + RegisterSlice.LATENCY
                           for engine in self.engines.values())
        in_type = self.graph.tensors[self.graph.input].itype
        last = self.engines.get(self._producer_name(self.graph.outputs[0]))
        out_shape = last.o_stream.p.shape().elem_shape if last is not None else shape_of(in_type)
        self.out_shape = out_shape
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape_of(in_type), 1))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(out_shape, 1))),
        })

    def _producer_name(self, tensor: str) -> str | None:
        return next((op.name for op in self.graph.ops if tensor in op.outputs), None)

    def elaborate(self, platform) -> Module:
        m = Module()
        graph = self.graph
        users: dict[str, list[ir.Op]] = {}
        for op in graph.ops:
            for name in op.inputs:
                users.setdefault(name, []).append(op)
        # (tensor, consumer) -> its streams, one per input of the consumer that reads the
        # tensor (two for a square, Mul(x, x)), taken in input order
        pending: dict[tuple[str, str], list[_Source]] = {}

        def publish(tensor: str, source: _Source) -> None:
            """Make `tensor` available to each of its users (through a Fork and FIFOs)."""
            consumers = users.get(tensor, [])
            if tensor in graph.outputs:
                consumers = consumers + [None]
            if len(consumers) == 1:
                pending[(tensor, _key(consumers[0]))] = [source]
                return
            payload = source.stream.p.shape()
            m.submodules[f"fork_{_safe(tensor)}"] = fork = Fork(payload, len(consumers))
            wiring.connect(m, source.stream, fork.i_stream)
            paths = [c for c in consumers if c is None or len(c.inputs) == 1]  # not a join
            long = paths[0] if len(paths) == 1 else None
            sample_beats = math.prod(graph.tensors[tensor].shape) // source.vector * math.ceil(
                source.vector / source.lanes)
            for k, (consumer, branch) in enumerate(zip(consumers, fork.branches())):
                depth = SHALLOW_FIFO if consumer is long else sample_beats + self.latency + 2
                m.submodules[f"skip_{_safe(tensor)}_{k}"] = fifo = StreamFifo(payload, depth)
                wiring.connect(m, branch, fifo.i_stream)
                pending.setdefault((tensor, _key(consumer)), []).append(
                    _Source(fifo.o_stream, source.lanes, source.vector))

        def take(tensor: str, consumer: ir.Op | None, lanes: int) -> stream.Interface:
            sources = pending[(tensor, _key(consumer))]
            source = sources.pop(0)
            if source.lanes == lanes and source.vector % lanes == 0:
                return source.stream
            elem = source.stream.p.shape().elem_shape
            suffix = f"_{len(sources)}" if sources else ""  # a second read of the tensor
            name = f"regroup_{_safe(tensor)}_{_key(consumer)}{suffix}"
            m.submodules[name] = regroup = Regroup(elem, length=source.vector,
                                                   lanes_in=source.lanes, lanes_out=lanes)
            wiring.connect(m, source.stream, regroup.i_stream)
            return regroup.o_stream

        publish(graph.input, _Source(wiring.flipped(self.i_stream), 1, vector_length(graph.tensors[graph.input].shape)))
        for stage, op in zip(self.plan.stages, graph.ops):
            out_vector = vector_length(graph.tensors[op.outputs[0]].shape)
            if isinstance(op, ir.Reshape):
                source = pending[(op.inputs[0], _key(op))].pop()
                if source.vector % source.lanes:
                    raise ModelError(f"Reshape '{op.name}': its input arrives in padded beats")
                publish(op.outputs[0], _Source(source.stream, source.lanes, out_vector))
                continue
            engine = self.engines[op.name]
            m.submodules[_safe(op.name)] = engine
            for port, tensor in zip(input_names(len(op.inputs)), op.inputs):
                wiring.connect(m, take(tensor, op, _input_lanes(op, stage)), getattr(engine, port))
            m.submodules[f"slice_{_safe(op.name)}"] = out = RegisterSlice(
                engine.o_stream.p.shape())
            wiring.connect(m, engine.o_stream, out.i_stream)
            publish(op.outputs[0], _Source(out.o_stream, stage.out_lanes, out_vector))
        wiring.connect(m, take(graph.outputs[0], None, 1), wiring.flipped(self.o_stream))
        return m


def _input_lanes(op: ir.Op, stage: Stage) -> int:
    if isinstance(op, ir.Gemm):
        return stage.fold.inputs
    if isinstance(op, (ir.Conv, ir.MaxPool, ir.AvgPool)):
        return stage.in_lanes
    return stage.lanes


def _key(consumer: ir.Op | None) -> str:
    return "output" if consumer is None else _safe(consumer.name)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_") or "t"
