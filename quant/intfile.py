"""The integer model file: an `IntGraph` as an ONNX ModelProto, so that Netron can show it.

Layout (format version 1, opset domain `ai.intforge`):
- one node per operator, op_type = the `quant.ir` class name, in domain `ai.intforge`;
- integer arrays (weights, biases, multipliers, shifts, tables) are initializers named
  `<node>.<field>` and appended to the node's inputs after its data inputs, stored in the
  smallest of int8/int16/int32/int64 that holds them exactly (loaded back as int64);
- ints, bools and int tuples are node attributes; str and float fields are string attributes
  (floats as `repr`, which round-trips exactly); a nested dataclass such as `Requant` is
  flattened with its field name as prefix (`requant.zero_point`, `<node>.requant.shift`);
- every tensor's spec is a value_info (graph input, graph outputs, then the others) with its
  integer storage type and shape [N, ...]; its QParams are the doc_string, as canonical JSON
  `{"bits": 8, "scale": 0.0123, "signed": true, "zero_point": -3}` (floats exact by repr);
- `IntGraph.meta` is the model's metadata_props, sorted by key.
A loaded graph lists its tensors input first, then the outputs, then the others in their
saved order; so load -> save reproduces the file byte for byte.

The mapping is generic: it walks `dataclasses.fields` and `typing.get_type_hints` of each IR
class, so a new operator class needs no change here. The same graph always gives the same
bytes (every list is written in a fixed order).

Loading validates what every reader relies on, so that a damaged or hand-edited file is
refused on load, naming the file, and not met as a traceback in a command: `from_model`
checks the graph's structure and each op on its own (`_check_graph`), `load` also checks the
ops against the tensors around them (`_check_runs`).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import typing
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, helper, numpy_helper

from quant import evaluate, ir
from quant.atomic import atomic_write
from quant.errors import ModelError
from quant.ops.checks import ContractError
from quant.qtypes import MAX_SHIFT, MIN_SHIFT, IntType, QParams

DOMAIN = "ai.intforge"
VERSION = 1
_BASE_FIELDS = {f.name for f in dataclasses.fields(ir.Op)}
_CLASSES = {cls.__name__: cls for cls in ir.OP_CLASSES}
_STORAGE = (np.int8, np.int16, np.int32, np.int64)


def save(graph: ir.IntGraph, path: str | os.PathLike[str]) -> None:
    """Write `graph` to `path` atomically (never a partial file)."""
    data = to_model(graph).SerializeToString(deterministic=True)
    with atomic_write(path) as f:
        f.write(data)


def load(path: str | os.PathLike[str]) -> ir.IntGraph:
    """Read an integer model written by `save`; anything else raises a ModelError naming `path`."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read integer model {path}: {e.strerror}") from e
    try:
        model = onnx.load_from_string(data)
    except DecodeError as e:
        raise ModelError(f"{path} is not an ONNX file") from e
    graph = from_model(model, str(path))
    _check_runs(graph, str(path))
    return graph


# ---- IntGraph -> ModelProto ----------------------------------------------------------------

def to_model(graph: ir.IntGraph) -> onnx.ModelProto:
    """The ONNX form of `graph` (see the module docstring for the layout)."""
    nodes, inits = [], []
    for op in graph.ops:
        attrs, arrays = [], []
        for key, hint in _fields(type(op)):
            value = functools.reduce(getattr, key.split("."), op)
            if hint is np.ndarray:
                arrays.append(numpy_helper.from_array(_smallest(value), f"{op.name}.{key}"))
            else:
                kind, encode, _ = _codec(hint)
                attrs.append(helper.make_attribute(key, encode(value), attr_type=kind))
        node = helper.make_node(type(op).__name__, list(op.inputs) + [a.name for a in arrays],
                                list(op.outputs), name=op.name, domain=DOMAIN)
        node.attribute.extend(attrs)
        nodes.append(node)
        inits.extend(arrays)
    specs = [_value_info(name, graph.tensors[name]) for name in graph.tensors]
    by_name = {v.name: v for v in specs}
    ends = {graph.input, *graph.outputs}
    onnx_graph = helper.make_graph(
        nodes, graph.name, [by_name[graph.input]], [by_name[name] for name in graph.outputs],
        inits, value_info=[v for v in specs if v.name not in ends])
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid(DOMAIN, VERSION)],
                              producer_name="intforge", doc_string=f"intforge integer model, "
                              f"operators in domain {DOMAIN} (format version {VERSION})")
    model.ir_version = 8
    helper.set_model_props(model, dict(sorted(graph.meta.items())))
    return model


def _smallest(values: np.ndarray) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype.kind not in "iu":
        raise TypeError(f"integer model arrays must be integers, not {a.dtype}")
    for dtype in _STORAGE:
        info = np.iinfo(dtype)
        if a.size == 0 or (info.min <= a.min() and a.max() <= info.max):
            return a.astype(dtype)
    raise TypeError(f"integer array with range [{a.min()}, {a.max()}] does not fit int64")


def _codec(hint: Any) -> tuple[int, Callable[[Any], Any], Callable[[Any], Any]]:
    """How a field of type `hint` is an attribute: (attribute type, encode, decode)."""
    if hint is bool or hint is int:
        return AttributeProto.INT, int, hint
    if hint is float:
        return AttributeProto.STRING, lambda v: repr(float(v)), float
    if hint is str:
        return AttributeProto.STRING, str, str
    if typing.get_origin(hint) is tuple:
        return AttributeProto.INTS, lambda v: [int(i) for i in v], lambda v: tuple(int(i) for i in v)
    raise TypeError(f"intfile cannot store a field of type {hint!r}")


def _value_info(name: str, spec: ir.TensorSpec) -> onnx.ValueInfoProto:
    q = spec.qparams
    elem = helper.np_dtype_to_tensor_dtype(q.itype.storage)
    info = helper.make_tensor_value_info(name, elem, ["N", *spec.shape])
    info.doc_string = json.dumps({"bits": int(q.itype.bits), "scale": float(q.scale),
                                  "signed": bool(q.itype.signed), "zero_point": int(q.zero_point)},
                                 sort_keys=True)
    return info


# ---- ModelProto -> IntGraph ----------------------------------------------------------------

def from_model(model: onnx.ModelProto, source: str = "model") -> ir.IntGraph:
    """The IntGraph stored in `model`; `source` names the file in errors."""
    versions = {o.domain: o.version for o in model.opset_import}
    if DOMAIN not in versions or any(n.domain != DOMAIN for n in model.graph.node):
        raise ModelError(f"{source} is not an intforge integer model (it needs only "
                         f"'{DOMAIN}' operators)")
    if versions[DOMAIN] > VERSION:
        raise ModelError(f"{source} has integer model format version {versions[DOMAIN]}; "
                         f"this intforge reads version {VERSION}")
    g = model.graph
    if len(g.input) != 1:
        raise ModelError(f"{source}: an integer model has one input, not {len(g.input)}")
    inits = {t.name: t for t in g.initializer}
    tensors = {v.name: _spec(v, source) for v in (*g.input, *g.output, *g.value_info)}
    graph = ir.IntGraph(ops=[_op(node, inits, source) for node in g.node], tensors=tensors,
                        input=g.input[0].name, outputs=[v.name for v in g.output], name=g.name,
                        meta={p.key: p.value for p in model.metadata_props})
    _check_graph(graph, source)
    return graph


def _op(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto], source: str) -> ir.Op:
    where = f"{source}: node '{node.name}' ({node.op_type})"
    cls = _CLASSES.get(node.op_type)
    if cls is None:
        raise ModelError(f"{where}: unknown integer operator")
    attrs = {a.name: a for a in node.attribute}
    arrays = [key for key, hint in _fields(cls) if hint is np.ndarray]
    data = len(node.input) - len(arrays)
    if data < 0 or list(node.input[data:]) != [f"{node.name}.{key}" for key in arrays]:
        raise ModelError(f"{where}: inputs must end with its arrays {arrays}")
    values = {"name": node.name, "inputs": list(node.input[:data]), "outputs": list(node.output)}
    for key, hint in _fields(cls):
        if hint is np.ndarray:
            values[key] = _array(inits.get(f"{node.name}.{key}"), f"{where}: array '{key}'")
        elif key not in attrs:
            raise ModelError(f"{where}: missing attribute '{key}'")
        else:
            values[key] = _value(attrs[key], hint, f"{where}: attribute '{key}'")
    return _build(cls, values)


def _fields(cls: type, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, type hint) of every stored field of class `cls`: all but `ir.Op`'s name,
    inputs and outputs, with nested dataclasses flattened (`requant.shift`)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not prefix and issubclass(cls, ir.Op) and f.name in _BASE_FIELDS:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", hints[f.name]


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """An instance of `cls` from the flat dotted `values`, nested dataclasses rebuilt."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _build(hints[f.name], values, f"{prefix}{f.name}.")
                  if dataclasses.is_dataclass(hints[f.name]) else values[prefix + f.name]
                  for f in dataclasses.fields(cls)})


def _array(tensor: onnx.TensorProto | None, where: str) -> np.ndarray:
    if tensor is None:
        raise ModelError(f"{where} is missing")
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        raise ModelError(f"{where} must be stored in the file, not as external data")
    try:
        a = numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as e:
        raise ModelError(f"{where}: data does not match its shape {list(tensor.dims)} ({e})") from None
    if a.dtype.kind not in "iu":
        raise ModelError(f"{where} must be integers, not {a.dtype}")
    return a.astype(np.int64)


def _value(attr: AttributeProto, hint: Any, where: str) -> Any:
    kind, _, decode = _codec(hint)
    if attr.type != kind:
        raise ModelError(f"{where} must be {AttributeProto.AttributeType.Name(kind)}, not "
                         f"{AttributeProto.AttributeType.Name(attr.type)}")
    value = helper.get_attribute_value(attr)
    try:
        value = decode(value.decode() if isinstance(value, bytes) else value)
    except ValueError as e:
        raise ModelError(f"{where}: {e}") from e
    arity = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and Ellipsis not in arity and len(value) != len(arity):
        raise ModelError(f"{where} must have {len(arity)} values, not {list(value)}")
    return value


def _spec(info: onnx.ValueInfoProto, source: str) -> ir.TensorSpec:
    where = f"{source}: tensor '{info.name}'"
    try:
        q = json.loads(info.doc_string)
        qparams = QParams(float(q["scale"]), int(q["zero_point"]),
                          IntType(int(q["bits"]), bool(q["signed"])))
    except (ValueError, TypeError, KeyError) as e:
        raise ModelError(f"{where} has no valid quantization parameters in its doc_string") from e
    if not (1 <= qparams.itype.bits <= 64 and math.isfinite(qparams.scale) and qparams.scale > 0):
        raise ModelError(f"{where} has invalid quantization parameters: {qparams.itype.bits} bits "
                         f"(1 to 64), scale {qparams.scale!r} (positive)")
    dims = info.type.tensor_type.shape.dim
    if not dims or any(not d.HasField("dim_value") or d.dim_value < 1 for d in dims[1:]):
        raise ModelError(f"{where} must have shape [N, fixed positive sizes...]")
    return ir.TensorSpec(tuple(int(d.dim_value) for d in dims[1:]), qparams)


# ---- validation ----------------------------------------------------------------------------

def _check_graph(graph: ir.IntGraph, source: str) -> None:
    """Ops in topological order, each reading tensors defined before it and defining new ones,
    every tensor with a spec, every graph output computed; each op's fields in range."""
    defined, names = {graph.input}, set()
    for op in graph.ops:
        where = f"{source}: node '{op.name}' ({type(op).__name__})"
        if op.name in names:
            raise ModelError(f"{where}: another node has the same name")
        names.add(op.name)
        for name in op.inputs:
            if name not in defined:
                raise ModelError(f"{where}: input '{name}' is not the graph input or the output "
                                 f"of an earlier node")
        if len(op.outputs) != 1 or op.outputs[0] in defined:
            raise ModelError(f"{where}: must define one new tensor, not {op.outputs}")
        defined.add(op.outputs[0])
        problem = _op_problem(op)
        if problem:
            raise ModelError(f"{where}: {problem}")
    for name in [*graph.outputs, *sorted(defined)]:
        if name not in defined:
            raise ModelError(f"{source}: graph output '{name}' is not computed by any node")
        if name not in graph.tensors:
            raise ModelError(f"{source}: tensor '{name}' has no type (value_info)")


def _op_problem(op: ir.Op) -> str | None:
    """The first field of `op` out of its range, or whose shape disagrees with the op's
    channel count; None when all are fine. Rules go by field name, so they cover every class."""
    values = {key: functools.reduce(getattr, key.split("."), op) for key, _ in _fields(type(op))}
    at_least = {"shift": MIN_SHIFT, "requant.shift": MIN_SHIFT, "acc_bits": 1, "strides": 1,
                "dilations": 1, "kernel": 1, "group": 1, "divisors": 1, "pads": 0}
    for key, low in at_least.items():
        if key in values and np.any(np.asarray(values[key]) < low):
            return f"{key} {_show(values[key])} must be at least {low}"
    for key, high in (("shift", MAX_SHIFT), ("requant.shift", MAX_SHIFT), ("acc_bits", 64)):
        if key in values and np.any(np.asarray(values[key]) > high):
            return f"{key} {_show(values[key])} must be at most {high}"
    for low, high in (("qmin", "qmax"), ("requant.qmin", "requant.qmax"), ("low", "high")):
        if low in values and values[low] > values[high]:
            return f"{low} {values[low]} is above {high} {values[high]}"
    if "perm" in values and (sorted(values["perm"]) != list(range(len(values["perm"])))
                             or values["perm"][:1] != (0,)):
        return f"perm {values['perm']} must be a permutation that keeps the batch axis first"
    return _shape_problem(op, values)


def _shape_problem(op: ir.Op, values: dict[str, Any]) -> str | None:
    """Arrays that must agree: a Conv weight [C_out, C_in / group, kh, kw] or Gemm weight
    [C_out, K] with its C_out biases and accumulator widths, and a requantizer's multipliers
    and shifts, one per output channel (or one), per AvgPool divisor, or one for GlobalAvgPool."""
    channels = None
    if isinstance(op, (ir.Conv, ir.Gemm)):
        weight = values["weight"]
        if weight.ndim != (4 if isinstance(op, ir.Conv) else 2) or weight.shape[0] % values.get("group", 1):
            return f"weight of shape {weight.shape} does not fit a {type(op).__name__}"
        channels = weight.shape[0]
        for key in ("bias", "acc_bits"):
            if values[key].shape != (channels,):
                return f"{key} has shape {values[key].shape}, not ({channels},) like the weight"
    if "requant.shift" not in values:
        return None
    entries = {ir.AvgPool: (len(values.get("divisors", ())),), ir.GlobalAvgPool: (1,)}.get(
        type(op), (1, channels))
    multiplier, shift = values["requant.multiplier"], values["requant.shift"]
    if multiplier.shape != shift.shape or multiplier.ndim != 1 or len(shift) not in entries:
        return (f"requant multiplier {_show(multiplier)} and shift {_show(shift)} must have "
                f"{' or '.join(map(str, entries))} entries each")
    return None


def _show(value: Any) -> str:
    return str(value.tolist() if isinstance(value, np.ndarray) else value)


_RUN_ERRORS = (ValueError, IndexError, TypeError, ArithmeticError, ContractError)


def _check_runs(graph: ir.IntGraph, source: str) -> None:
    """Ops that disagree with the tensors around them (a weight for another input size, a spec
    shape its op does not compute, a table shorter than its input type's range) pass
    `_check_graph`. Tables are checked against their input type; for the rest, one sample of
    the input's zero point runs through the golden model, which checks every op's output
    against its spec, and any failure is the file's."""
    for op in graph.ops:
        if isinstance(op, (ir.Lut, ir.Softmax)):
            itype = graph.tensors[op.inputs[0]].itype
            table, low = (op.table, op.input_min) if isinstance(op, ir.Lut) else (op.exp_table, itype.qmin)
            if low > itype.qmin or len(table) < itype.qmax - low + 1:
                raise ModelError(f"{source}: node '{op.name}' ({type(op).__name__}): its table of "
                                 f"{len(table)} entries does not cover its {itype} input")
    spec = graph.input_spec
    x = np.full((1, *spec.shape), min(max(spec.qparams.zero_point, spec.itype.qmin), spec.itype.qmax))
    try:
        evaluate.run(graph, x)
    except _RUN_ERRORS as e:
        raise ModelError(f"{source}: the integer graph does not run: {str(e).splitlines()[0]}") from None
