"""The exporter's driver: an IntGraph becomes one float-free, default-domain ONNX model.

Every tensor is int64, like the golden model: the input is the quantized integer input
`xq` as int64 (what `quantize_input` returns and `intforge run` writes), each IR tensor
keeps its name, and the outputs are the graph's integer outputs in order. Scales never
appear as tensors; they are recorded as text in the model's metadata, for people.
"""
from __future__ import annotations

import json

import onnx
from onnx import TensorProto, helper

from quant import ir
from quant.export.builder import Builder
from quant.export.registry import lowering_for

OPSET = 18  # ReduceMax and ReduceSum both take `axes` as an input from opset 18
IR_VERSION = 8  # the oldest IR version that carries opset 18, for the widest runtime support
BATCH = "N"


def export_onnx(graph: ir.IntGraph) -> onnx.ModelProto:
    """The integer ONNX model of `graph`: int64 input `graph.input` of shape (N, *sample
    shape), int64 outputs `graph.outputs`, computed with standard integer operators only."""
    b = Builder({name: spec.shape for name, spec in graph.tensors.items()})
    for op in graph.ops:
        b.scope = op.name
        b.bind(lowering_for(op)(op, b, *op.inputs), op.outputs[0])
    internal = [out for op in graph.ops for out in op.outputs if out not in graph.outputs]
    onnx_graph = helper.make_graph(
        b.nodes, graph.name,
        inputs=[_int64_info(graph, graph.input)],
        outputs=[_int64_info(graph, name) for name in graph.outputs],
        initializer=b.initializers,
        value_info=[_int64_info(graph, name) for name in internal],
        doc_string="Integer model exported by intforge: bit-exact to its golden model.")
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="intforge")
    helper.set_model_props(model, _metadata(graph))
    return model


def _int64_info(graph: ir.IntGraph, name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, [BATCH, *graph.tensors[name].shape])


def _metadata(graph: ir.IntGraph) -> dict[str, str]:
    """How to quantize the input and dequantize each output (real = scale * (q - zero_point)),
    plus the graph's own provenance, as JSON text."""
    qparams = {name: {"scale": graph.tensors[name].qparams.scale,
                      "zero_point": graph.tensors[name].qparams.zero_point,
                      "type": str(graph.tensors[name].itype)}
               for name in [graph.input, *graph.outputs]}
    return {"intforge.qparams": json.dumps(qparams, sort_keys=True),
            **{f"intforge.{key}": value for key, value in graph.meta.items()}}
