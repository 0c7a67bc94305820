"""Stage 4: a prepared, calibrated float graph becomes a fully integer graph.

Nodes are converted in topological order by the converters in `quant.convert`; every
activation's QParams come from `quant.qassign` (which makes scales agree where SPEC
requires); weights, biases, multipliers, shifts, tables and accumulator widths are fixed
here, offline. Nothing in the result needs a float at inference.
"""
from __future__ import annotations

import json

import numpy as np

from quant import ir
from quant.ranges import Range
from quant.convert import CONVERTERS
from quant.convert.context import Context
from quant.errors import ModelError
from quant.float_run import run_float
from quant.graph import Graph
from quant.options import QuantOptions
from quant.qassign import assign_qparams


def quantize(graph: Graph, ranges: dict[str, Range], options: QuantOptions) -> ir.IntGraph:
    """The integer graph of a prepared float `graph`, given calibrated `ranges` per tensor."""
    unknown = sorted(set(options.layers) - {node.name for node in graph.nodes})
    if unknown:
        raise ModelError(f"config names layers that are not in the model: {', '.join(unknown)}")
    unsupported = [str(node) for node in graph.nodes if node.op not in CONVERTERS]
    if unsupported:
        raise ModelError(f"not supported by the quantizer: {'; '.join(unsupported)}")
    ctx = Context(graph=graph, qparams=assign_qparams(graph, ranges, options),
                  shapes=infer_shapes(graph), options=options)
    for node in graph.nodes:
        CONVERTERS[node.op](ctx, node)
    names = [graph.input.name] + [out for op in ctx.ops for out in op.outputs]
    tensors = {name: ir.TensorSpec(ctx.shapes[name], ctx.qparams[name]) for name in names}
    return ir.IntGraph(ops=ctx.ops, tensors=tensors, input=graph.input.name,
                       outputs=[ctx.tensor(name) for name in graph.output_names()],
                       name=graph.name, meta={"options": describe(options)})


def infer_shapes(graph: Graph) -> dict[str, tuple[int, ...]]:
    """Per-sample shape of every tensor, read off one float run on a zero sample (exact, and
    it agrees with what onnxruntime does with the original model)."""
    sample = np.zeros((1, *graph.input.shape[1:]), dtype=np.float32)
    names = [out for node in graph.nodes for out in node.outputs if out]
    values = run_float(graph, sample, outputs=names)
    shapes = {name: tuple(int(d) for d in values[name].shape[1:]) for name in names}
    shapes[graph.input.name] = tuple(int(d) for d in sample.shape[1:])
    return shapes


def describe(options: QuantOptions) -> str:
    """Options as canonical JSON, recorded in the integer model for people and provenance."""
    return json.dumps({
        "weight_bits": options.weight_bits, "act_bits": options.act_bits,
        "scale": options.scale.value, "per_channel": options.per_channel,
        "calibration": options.calibration.value, "mult_bits": options.mult_bits,
        "output_bits": options.output_bits, "bias_correction": options.bias_correction,
        "layers": {name: {k: v for k, v in vars(o).items() if v is not None}
                   for name, o in sorted(options.layers.items())},
    }, sort_keys=True)
