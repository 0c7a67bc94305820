"""What makes an exported model acceptable: standard ONNX, default domain only, no float.

`float_values` walks every place a type can hide (graph inputs, outputs, value_info,
initializers, tensor and graph attributes, including Constant nodes and subgraphs) so the
"no floating point anywhere" promise is checked, not assumed.
"""
from __future__ import annotations

import onnx
from onnx import AttributeProto, TensorProto

from quant.errors import ModelError

FLOAT_TYPES = frozenset({
    TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16,
    TensorProto.COMPLEX64, TensorProto.COMPLEX128, TensorProto.FLOAT8E4M3FN,
    TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ,
    *(getattr(TensorProto, name) for name in ("FLOAT4E2M1", "FLOAT8E8M0") if hasattr(TensorProto, name)),
})


def float_values(model: onnx.ModelProto) -> list[str]:
    """Every place in `model` that holds or declares a floating-point value, described."""
    return _graph_floats(model.graph)


def _graph_floats(graph: onnx.GraphProto) -> list[str]:
    found = []
    for kind, infos in (("input", graph.input), ("output", graph.output), ("value_info", graph.value_info)):
        found += [f"{kind} '{info.name}'" for info in infos if _type_is_float(info.type)]
    found += [f"initializer '{t.name}'" for t in graph.initializer if t.data_type in FLOAT_TYPES]
    found += [f"sparse initializer '{t.values.name}'" for t in graph.sparse_initializer
              if t.values.data_type in FLOAT_TYPES]
    for node in graph.node:
        for attr in node.attribute:
            where = f"node '{node.name or node.op_type}' attribute '{attr.name}'"
            if attr.type in (AttributeProto.FLOAT, AttributeProto.FLOATS):
                found.append(where)
            tensors = [attr.t] if attr.type == AttributeProto.TENSOR else list(attr.tensors)
            if attr.type == AttributeProto.SPARSE_TENSOR:
                tensors.append(attr.sparse_tensor.values)
            tensors += [t.values for t in attr.sparse_tensors]
            found += [where for t in tensors if t.data_type in FLOAT_TYPES]
            if attr.type == AttributeProto.TYPE_PROTO and _type_is_float(attr.tp):
                found.append(where)
            for sub in [attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs):
                found += _graph_floats(sub)
    return found


def _type_is_float(tp: onnx.TypeProto) -> bool:
    """A tensor, sequence, optional or map type whose elements are floating point."""
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        return getattr(tp, kind).elem_type in FLOAT_TYPES
    if kind == "sequence_type":
        return _type_is_float(tp.sequence_type.elem_type)
    if kind == "optional_type":
        return _type_is_float(tp.optional_type.elem_type)
    if kind == "map_type":
        return _type_is_float(tp.map_type.value_type)
    return False


def check_integer_model(model: onnx.ModelProto, source: str) -> None:
    """Raise ModelError unless `model` is valid ONNX (full check), uses only the default
    domain, and holds no float anywhere, including every shape-inferred value."""
    domains = sorted({op.domain for op in model.opset_import if op.domain not in ("", "ai.onnx")}
                     | {n.domain for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if domains:
        raise ModelError(f"{source}: not a standard integer model: it uses operator domain(s) "
                         f"{', '.join(domains)}")
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ModelError(f"{source}: not a valid ONNX model ({_first_line(e)})") from None
    floats = float_values(inferred)
    if floats:
        more = f" and {len(floats) - 1} more" if len(floats) > 1 else ""
        raise ModelError(f"{source}: not an integer model: {floats[0]} is floating point{more}")


def _first_line(e: Exception) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__
