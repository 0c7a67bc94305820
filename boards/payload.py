"""A stand-in accelerator for board builds until the whole-network lowering (hw/lower.py)
exists: an integer graph that is only Gemms (after at most one leading Reshape whose stream
order is the flat order), each on a `DenseEngine`, joined by a `Regroup` where one engine's
output lanes differ from the next one's input lanes. Folds come from `hw.balance` for a
multiplier budget (8: the iCE40UP5K's DSP blocks), so the chain is a balanced pipeline.
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.balance import DEFAULT_MULTIPLIERS, MacLayer, balance_for_budget
from hw.fold import Fold
from hw.layers.dense import DenseEngine
from hw.shapes import shape_of
from hw.streams import Regroup
from quant import ir
from quant.errors import ModelError


def _gemms(graph: ir.IntGraph) -> list[ir.Gemm]:
    ops = list(graph.ops)
    if ops and isinstance(ops[0], ir.Reshape):
        shape = graph.tensors[ops[0].inputs[0]].shape
        if len(shape) == 3 and shape[0] != 1:
            raise ModelError(f"Reshape '{ops[0].name}': flattening {shape} needs the HWC weight "
                             f"permutation of the full lowering, not this stand-in chain")
        ops = ops[1:]
    for op in ops:
        if not isinstance(op, ir.Gemm):
            raise ModelError(f"{type(op).__name__} '{op.name}': the stand-in dense chain takes "
                             f"only Gemm operators")
    if not ops:
        raise ModelError(f"graph '{graph.name}' has no Gemm for the dense chain")
    return ops


class DenseChain(wiring.Component):
    """The Gemms of `graph` in a row. `inputs`/`outputs`: elements per sample;
    `interval`: steady-state cycles per sample (the slowest engine's G*J)."""

    def __init__(self, graph: ir.IntGraph, multipliers: int = DEFAULT_MULTIPLIERS):
        gemms = _gemms(graph)
        layers = [MacLayer(op.name, 1, *op.weight.shape) for op in gemms]
        self.balance = balance_for_budget(layers, multipliers)
        self.engines = [DenseEngine(op, in_type=graph.tensors[op.inputs[0]].itype,
                                    out_type=graph.tensors[op.outputs[0]].itype,
                                    fold=self.balance.folds[op.name]) for op in gemms]
        self.regroups = {k: Regroup(shape_of(graph.tensors[gemms[k].outputs[0]].itype),
                                    length=a.outputs, lanes_in=a.fold.outputs,
                                    lanes_out=b.fold.inputs)
                         for k, (a, b) in enumerate(zip(self.engines, self.engines[1:]))
                         if a.fold.outputs != b.fold.inputs}
        self.inputs = self.engines[0].inputs
        self.outputs = self.engines[-1].outputs
        self.interval = self.balance.interval
        first, last = self.engines[0], self.engines[-1]
        super().__init__({
            "i_stream": In(stream.Signature(first.i_stream.p.shape())),
            "o_stream": Out(stream.Signature(last.o_stream.p.shape())),
        })

    @property
    def folds(self) -> list[Fold]:
        return [engine.fold for engine in self.engines]

    def elaborate(self, platform) -> Module:
        m = Module()
        wiring.connect(m, wiring.flipped(self.i_stream), self.engines[0].i_stream)
        for k, engine in enumerate(self.engines):
            m.submodules[f"dense{k}"] = engine
            if k + 1 == len(self.engines):
                continue
            target = self.engines[k + 1].i_stream
            if k in self.regroups:
                m.submodules[f"regroup{k}"] = regroup = self.regroups[k]
                wiring.connect(m, engine.o_stream, regroup.i_stream)
                wiring.connect(m, regroup.o_stream, target)
            else:
                wiring.connect(m, engine.o_stream, target)
        wiring.connect(m, self.engines[-1].o_stream, wiring.flipped(self.o_stream))
        return m
