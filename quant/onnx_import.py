"""Load an ONNX file (and its external data) into the float `Graph`.

Loading is the one place where untrusted bytes become arrays, so it is defensive: sizes are
checked against what the file *declares* before anything is allocated, external data may only
come from files inside the model's own folder (a model must not read /etc/passwd or
`../../secrets`), and non-finite weights are refused here rather than poisoning calibration.
So are opsets outside MIN_OPSET..MAX_OPSET and initializers defined twice. Everything else
about the graph's meaning (supported operators, one input, that it runs) is `verify`'s job.
"""
from __future__ import annotations

import math
import os
from pathlib import Path, PureWindowsPath
from typing import Any, Iterator

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor, uses_external_data

from quant.errors import ModelError
from quant.graph import Graph, Node, ValueInfo
from quant.intfile import DOMAIN as INT_DOMAIN

MAX_TENSOR_BYTES = 2 << 30
"""Refuse models whose tensors declare more than this many bytes in total (2 GiB)."""

MIN_OPSET = 11
"""The oldest default-domain opset accepted: the float graph is re-emitted for onnxruntime in
the forms opset 11 introduced (Clip and Pad take their bounds and pads as inputs)."""

MAX_OPSET = onnx.defs.onnx_opset_version()
"""The newest opset the installed onnx (and so shape inference and the checker) knows."""

_DEFAULT_DOMAINS = ("", "ai.onnx")


def load_model(path: str | os.PathLike) -> Graph:
    """Read `path` (an ONNX file, with external data beside it) as a float `Graph`."""
    path = Path(path)
    model = _read(path)
    _check_sizes(model, path)
    _load_external_data(model, path)
    return _to_graph(model, path)


# ---- reading -------------------------------------------------------------------------
def _read(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if not path.is_file():
        raise ModelError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: empty file (0 bytes), not an ONNX model")
    if path.stat().st_size > MAX_TENSOR_BYTES:
        raise ModelError(f"{path}: file is larger than {MAX_TENSOR_BYTES >> 30} GiB; refusing to load")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except DecodeError:
        raise ModelError(f"{path}: not an ONNX model (unreadable or truncated protobuf)") from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror})") from None
    if not model.graph.node:
        raise ModelError(f"{path}: empty graph (no nodes); is this an ONNX model?")
    if not model.graph.output:
        raise ModelError(f"{path}: graph has no outputs")
    return model


def _tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every dense tensor of `graph`: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for sub in [attr.g] if attr.HasField("g") else attr.graphs:
                yield from _tensors(sub)


def _check_sizes(model: onnx.ModelProto, path: Path) -> None:
    """Refuse absurd declared sizes before any array (or external file) is read."""
    total = 0
    for tensor in _tensors(model.graph):
        if any(d < 0 for d in tensor.dims):
            raise ModelError(f"{path}: tensor '{tensor.name}' has a negative dimension {list(tensor.dims)}")
        try:
            itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except KeyError:
            raise ModelError(f"{path}: tensor '{tensor.name}' has unknown data type {tensor.data_type}") from None
        size = math.prod(tensor.dims) * itemsize
        if uses_external_data(tensor):
            size = max(size, int(_external_info(tensor, path).length or 0))
        total += size
        if total > MAX_TENSOR_BYTES:
            raise ModelError(f"{path}: tensors exceed {MAX_TENSOR_BYTES >> 30} GiB "
                             f"(reached at tensor '{tensor.name}', shape {list(tensor.dims)}); refusing to load")


def _external_info(tensor: onnx.TensorProto, path: Path) -> ExternalDataInfo:
    try:
        return ExternalDataInfo(tensor)
    except ValueError as e:
        raise ModelError(f"{path}: tensor '{tensor.name}': bad external data entry ({e})") from None


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read external data, allowing only relative locations inside the model's folder."""
    folder = path.parent.resolve()
    for tensor in _tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        location = _external_info(tensor, path).location
        where = f"{path}: tensor '{tensor.name}': external data location '{location}'"
        if not location or Path(location).is_absolute() or PureWindowsPath(location).anchor:
            raise ModelError(f"{where} is not a relative path; refusing to load")
        try:
            target = (folder / location).resolve()
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
            raise ModelError(f"{where} cannot be resolved (a symlink loop?); refusing to load") from None
        if not target.is_relative_to(folder):
            raise ModelError(f"{where} is outside the model's folder; refusing to load")
        if not target.is_file():
            raise ModelError(f"{where}: no such file")
        try:
            load_external_data_for_tensor(tensor, str(folder))
        except (OSError, ValueError, onnx.checker.ValidationError) as e:
            raise ModelError(f"{where}: {str(e).splitlines()[0]}") from None


# ---- conversion ----------------------------------------------------------------------
def _to_graph(model: onnx.ModelProto, path: Path) -> Graph:
    opsets = {o.domain: o.version for o in model.opset_import}
    default = [v for d, v in opsets.items() if d in _DEFAULT_DOMAINS]
    if INT_DOMAIN in opsets:
        raise ModelError(f"{path}: this is an intforge integer model, not a float ONNX model")
    if not default:
        raise ModelError(f"{path}: the model imports no default ONNX opset")
    if not MIN_OPSET <= default[0] <= MAX_OPSET:
        raise ModelError(f"{path}: ONNX opset {default[0]} is not supported "
                         f"(only opsets {MIN_OPSET} to {MAX_OPSET})")
    proto = model.graph
    if proto.sparse_initializer:
        raise ModelError(f"{path}: sparse initializer '{proto.sparse_initializer[0].values.name}' is not supported")

    initializers: set[str] = set()
    for t in proto.initializer:
        if t.name in initializers:
            raise ModelError(f"{path}: initializer '{t.name}' is defined twice")
        initializers.add(t.name)
    constants = {t.name: _array(t, path) for t in proto.initializer}
    nodes = []
    for node_proto, name in zip(proto.node, _node_names(proto.node)):
        node = _node(node_proto, name, path)
        if node.op == "Constant" and node.domain == "":
            out = node.outputs[0]
            if out in constants:
                raise ModelError(f"{path}: tensor '{out}' is defined twice (initializer and {node})")
            constants[out] = _constant_value(node, path)
        else:
            nodes.append(node)
    for name, value in constants.items():
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise ModelError(f"{path}: constant tensor '{name}' contains NaN or Inf")

    infos = _ValueInfos(model, path)
    return Graph(
        nodes=nodes,
        constants=constants,
        inputs=[infos.get(v) for v in proto.input if v.name not in initializers],
        outputs=[infos.get(v) for v in proto.output],
        opset=default[0],
        name=proto.name or "graph",
        extra_opsets={d: v for d, v in opsets.items() if d not in _DEFAULT_DOMAINS},
    )


def _node_names(protos: Any) -> list[str]:
    """Node names, with `<op>_<index>` (made unique) for unnamed nodes, deterministically."""
    used = {p.name for p in protos if p.name}
    names = []
    for index, p in enumerate(protos):
        name, k = p.name, 1
        if not name:
            name = base = f"{p.op_type}_{index}"
            while name in used:
                name, k = f"{base}_{k}", k + 1
            used.add(name)
        names.append(name)
    return names


def _node(proto: onnx.NodeProto, name: str, path: Path) -> Node:
    node = Node(proto.op_type, name, list(proto.input), list(proto.output),
                domain="" if proto.domain in _DEFAULT_DOMAINS else proto.domain)
    try:
        node.attrs = {a.name: _plain(helper.get_attribute_value(a)) for a in proto.attribute}
    except (ValueError, TypeError) as e:
        raise ModelError(f"{path}: {node}: unreadable attribute ({e})") from None
    return node


def _plain(value: Any) -> Any:
    """Attribute values as plain Python: tensors -> ndarray, bytes -> str, lists elementwise."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _constant_value(node: Node, path: Path) -> np.ndarray:
    if "value" in node.attrs:
        return np.asarray(node.attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in node.attrs:
            return np.array(node.attrs[key], dtype)
    raise ModelError(f"{path}: {node}: unsupported constant attribute(s) {sorted(node.attrs)}")


def _array(tensor: onnx.TensorProto, path: Path) -> np.ndarray:
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as e:
        raise ModelError(f"{path}: tensor '{tensor.name}' data does not match its shape "
                         f"{list(tensor.dims)} ({e})") from None


class _ValueInfos:
    """Graph input/output types; falls back to ONNX shape inference when a file omits them."""

    def __init__(self, model: onnx.ModelProto, path: Path) -> None:
        self._model, self._path = model, path
        self._inferred: dict[str, onnx.ValueInfoProto] | None = None

    def get(self, info: onnx.ValueInfoProto) -> ValueInfo:
        if not _is_complete(info):
            info = self._infer().get(info.name, info)
        if not _is_complete(info):
            raise ModelError(f"{self._path}: graph input/output '{info.name}' has no tensor type and shape")
        tensor_type = info.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
        if any(d is not None and d < 0 for d in shape):
            raise ModelError(f"{self._path}: graph input/output '{info.name}' has a negative "
                             f"dimension in its shape {list(shape)}")
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
        except KeyError:
            raise ModelError(f"{self._path}: graph input/output '{info.name}' has unknown element "
                             f"type {tensor_type.elem_type}") from None
        return ValueInfo(info.name, shape, dtype)

    def _infer(self) -> dict[str, onnx.ValueInfoProto]:
        if self._inferred is None:
            try:
                graph = onnx.shape_inference.infer_shapes(self._model).graph
            except (onnx.shape_inference.InferenceError, ValueError) as e:
                raise ModelError(f"{self._path}: shape inference failed ({str(e).splitlines()[0]})") from None
            self._inferred = {v.name: v for v in (*graph.input, *graph.output)}
        return self._inferred


def _is_complete(info: onnx.ValueInfoProto) -> bool:
    return (info.type.HasField("tensor_type") and info.type.tensor_type.elem_type != 0
            and info.type.tensor_type.HasField("shape"))
