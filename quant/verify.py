"""Stage 1, verify: reject what later stages cannot handle, and reduce the graph to one input.

Every later stage assumes a DAG with unique names, operators from a fixed list with
supported attributes, constant weights, and exactly one float32 input. Checking all of that
here, and reporting *every* violation in one message, lets a user fix a model in one round
instead of discovering problems one stage (or one node) at a time.

Last, the graph must run: later stages run it in onnxruntime on zeros and on calibration
batches, so a graph whose declared shapes would need absurd memory is refused *before* anything
is allocated, and one onnxruntime cannot load or run (inconsistent shapes or types) is refused
here, naming the file, rather than failing with an onnxruntime traceback later.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from quant.errors import ModelError
from quant.graph import Graph, Node, ValueInfo

SUPPORTED = frozenset({
    "Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "MaxPool",
    "AveragePool", "GlobalAveragePool", "ReduceMean", "Add", "Sub", "Mul", "Div", "Concat",
    "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Pad", "Sigmoid", "HardSigmoid",
    "Tanh", "Softmax", "ArgMax", "Identity", "Dropout", "Constant", "Shape", "Gather", "Cast",
    "ConstantOfShape", "Slice",
})
"""Default-domain operators supported on any input."""

SUPPORTED_ML = frozenset({"ArrayFeatureExtractor"})
"""`ai.onnx.ml` operators supported (skl2onnx classifiers end in one)."""

SHAPE_OPS = frozenset({
    "Size", "Range", "Expand", "Tile", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
    "Not", "And", "Or", "Where", "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Pow", "Min", "Max", "Mod",
    "ReduceProd", "ReduceSum", "ReduceMin", "ReduceMax", "Split", "Sum",
})
"""Operators accepted only when they compute on constants and tensor shapes (foldable)."""

_ALLOWED_ATTRS: dict[str, dict[str, tuple]] = {
    "MaxPool": {"ceil_mode": (0,), "auto_pad": ("NOTSET",), "storage_order": (0,)},
    "AveragePool": {"ceil_mode": (0,), "auto_pad": ("NOTSET",), "dilations": ([1, 1],)},
    "Flatten": {"axis": (1,)},
    "Conv": {"auto_pad": ("NOTSET",)},
    "ArgMax": {"select_last_index": (0,)},
    "BatchNormalization": {"training_mode": (0,)},
}
"""Attribute values accepted (the first is the ONNX default)."""

_STATIC_OPERANDS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,), "BatchNormalization": (1, 2, 3, 4),
    "Reshape": (1,), "Slice": (1, 2, 3, 4), "Pad": (1, 2, 3), "Squeeze": (1,), "Unsqueeze": (1,),
    "ReduceMean": (1,), "Clip": (1, 2), "ConstantOfShape": (0,),
}
"""Operand positions that must be weights or shapes, not data (integer kernels bake them in)."""

MAX_ACTIVATION_BYTES = 1 << 30
"""Refuse graphs whose tensors, for one sample (or one batch of a static batch size), would
take more than this in total (1 GiB): calibration holds every tensor of a batch of samples."""

PROBE_BATCH = 2
"""Batch size of the zero run that proves the graph runs (not 1, which broadcasting could hide)."""

_ORT_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph,
               ort_state.NotImplemented, ort_state.RuntimeException, ort_state.EPFail)


def verify(graph: Graph, source: str = "model") -> Graph:
    """A verified copy of `graph`: DAG, unique names, supported ops, one float32 input, no dead code.

    Raises `ModelError` listing every problem found, each as `node 'name' (Op): problem`.
    """
    g = graph.copy()
    _raise(source, _structure_problems(g))
    try:
        g.toposort()
    except ValueError as e:
        raise ModelError(f"{source}: {e}") from None
    g.remove_unused()
    used = {name for node in g.nodes for name in node.inputs} | set(g.output_names())
    g.inputs = [v for v in g.inputs if v.name in used]
    _explicit_conv_pads(g)
    _raise(source, _operator_problems(g) + _input_problems(g))
    if len(g.inputs) > 1:
        _pack_inputs(g)
    _raise(source, _shape_problems(g.input) or _size_problems(g) or _run_problems(g))
    return g


def _raise(source: str, problems: list[str]) -> None:
    if problems:
        raise ModelError(f"{source}: " + "; ".join(problems))


# ---- structure -----------------------------------------------------------------------
def _structure_problems(g: Graph) -> list[str]:
    problems = []
    if not g.outputs:
        problems.append("the graph has no outputs")
    by_name: dict[str, Node] = {}
    for node in g.nodes:
        if node.name in by_name:
            problems.append(f"{node}: node name also used by {by_name[node.name]}")
        by_name.setdefault(node.name, node)

    sources: dict[str, str] = {}  # tensor -> what defines it
    for what, names in ([("graph input", [v.name]) for v in g.inputs]
                        + [("constant", [name]) for name in g.constants]
                        + [(str(node), node.outputs) for node in g.nodes]):
        for name in filter(None, names):
            if name in sources:
                problems.append(f"tensor '{name}' is defined twice: by {sources[name]} and by {what}")
            sources.setdefault(name, what)

    for node in g.nodes:
        problems += [f"{node}: input '{name}' is not produced by any node, graph input or constant"
                     for name in node.inputs if name and name not in sources]
    problems += [f"graph output '{name}' is not produced by any node, graph input or constant"
                 for name in g.output_names() if name not in sources]
    return problems


# ---- operators -----------------------------------------------------------------------
def _static_tensors(g: Graph) -> set[str]:
    """Tensors computed from constants and tensor shapes only (foldable before quantizing).
    Needs `g.nodes` in topological order."""
    static = set(g.constants)
    for node in g.nodes:
        if node.op in ("Shape", "Size") or all(name in static for name in node.inputs if name):
            static.update(node.outputs)
    return static


def _operator_problems(g: Graph) -> list[str]:
    static = _static_tensors(g)
    problems = [p for p in (_operator_problem(node, static) for node in g.nodes) if p]
    for node in g.nodes:
        for attr, allowed in _ALLOWED_ATTRS.get(node.op, {}).items():
            value = _text(node.attrs.get(attr, allowed[0]))
            if value not in allowed:
                problems.append(f"{node}: attribute {attr}={value!r} is not supported (only {allowed[0]!r})")
        problems += [f"{node}: input '{name}' must be a constant, not computed from graph data"
                     for i, name in enumerate(node.inputs)
                     if i in _STATIC_OPERANDS.get(node.op, ()) and name and name not in static]
    return problems


def _operator_problem(node: Node, static: set[str]) -> str | None:
    default_domain = node.domain in ("", "ai.onnx")
    if (default_domain and node.op in SUPPORTED) or (node.domain == "ai.onnx.ml" and node.op in SUPPORTED_ML):
        return None
    if not default_domain:
        return f"{node}: unsupported operator in domain '{node.domain}'"
    if node.op not in SHAPE_OPS:
        return f"{node}: unsupported operator"
    if all(name in static for name in node.inputs if name):
        return None
    return f"{node}: supported only on constants and shapes, not on graph data"


def _explicit_conv_pads(g: Graph) -> None:
    """Rewrite Conv auto_pad VALID/SAME_* as explicit `pads` where the shapes are known;
    Convs left with auto_pad are reported by `_operator_problems`."""
    convs = [n for n in g.nodes if n.op == "Conv" and _text(n.attrs.get("auto_pad", "NOTSET")) != "NOTSET"]
    shapes = _inferred_shapes(g) if convs else {}
    for node in convs:
        weight = g.constants.get(node.inputs[1]) if len(node.inputs) > 1 else None
        kernel = node.attrs.get("kernel_shape") or (list(weight.shape[2:]) if weight is not None else [])
        spatial = shapes.get(node.inputs[0], ())[2:]
        pads = _auto_pads(node, kernel, spatial) if kernel else None
        if pads is not None:
            del node.attrs["auto_pad"]
            node.attrs["pads"] = pads


def _auto_pads(node: Node, kernel: list[int], spatial: tuple[int | None, ...]) -> list[int] | None:
    """ONNX: out = ceil(in / stride); total = max(0, (out - 1)*stride + (k - 1)*dilation + 1 - in);
    SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning."""
    mode = _text(node.attrs["auto_pad"])
    if mode == "VALID":
        return [0] * (2 * len(kernel))
    if mode not in ("SAME_UPPER", "SAME_LOWER") or len(spatial) != len(kernel) or None in spatial:
        return None
    strides = node.attrs.get("strides", [1] * len(kernel))
    dilations = node.attrs.get("dilations", [1] * len(kernel))
    totals = [max(0, (math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)
              for n, s, k, d in zip(spatial, strides, kernel, dilations)]
    small, big = [t // 2 for t in totals], [t - t // 2 for t in totals]
    return small + big if mode == "SAME_UPPER" else big + small


def _inferred_shapes(g: Graph) -> dict[str, tuple[int | None, ...]]:
    """Static tensor shapes from ONNX shape inference (None for unknown dimensions)."""
    model = onnx.shape_inference.infer_shapes(g.to_onnx())
    shapes = {}
    for info in (*model.graph.input, *model.graph.value_info):
        if info.type.tensor_type.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                      for d in info.type.tensor_type.shape.dim)
    return shapes


def _text(value: object) -> object:
    """Attribute strings may still be bytes in hand-built graphs."""
    return value.decode() if isinstance(value, bytes) else value


# ---- inputs --------------------------------------------------------------------------
def _input_problems(g: Graph) -> list[str]:
    if not g.inputs:
        return ["no graph output depends on a graph input"]
    problems = [f"graph input '{v.name}': dtype {np.dtype(v.dtype)} is not supported (only float32)"
                for v in g.inputs if np.dtype(v.dtype) != np.float32]
    if len(g.inputs) > 1:
        problems += [f"graph input '{v.name}': shape {_shape_text(v.shape)} cannot be packed with the "
                     "other inputs (needs a batch dimension and static other dimensions)"
                     for v in g.inputs if len(v.shape) < 1 or None in v.shape[1:]]
        batches = {v.shape[0] for v in g.inputs if v.shape and v.shape[0] is not None}
        if len(batches) > 1:
            problems.append("graph inputs " + ", ".join(f"'{v.name}'" for v in g.inputs)
                            + f" have different batch sizes {sorted(batches)}")
    return problems


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def _pack_inputs(g: Graph) -> None:
    """Replace the inputs by one float32 input (N, total): input i is
    Reshape(Slice(x, [offset_i], [offset_i + size_i], axes=[1]), [-1, *shape_i[1:]]),
    concatenated in graph-input order. The Reshape output keeps the old input's name."""
    packed = g.fresh_name("x")
    axes = _int64_constant(g, f"{packed}_pack_axes", [1])
    offset = 0
    for v in g.inputs:
        size = math.prod(v.shape[1:])
        start = _int64_constant(g, f"{v.name}_pack_start", [offset])
        end = _int64_constant(g, f"{v.name}_pack_end", [offset + size])
        shape = _int64_constant(g, f"{v.name}_pack_shape", [-1, *v.shape[1:]])
        flat = g.fresh_name(f"{v.name}_packed")
        g.nodes.append(Node("Slice", g.fresh_name(f"{v.name}_unpack_slice"), [packed, start, end, axes], [flat]))
        g.nodes.append(Node("Reshape", g.fresh_name(f"{v.name}_unpack_reshape"), [flat, shape], [v.name]))
        offset += size
    batch = {v.shape[0] for v in g.inputs}
    g.inputs = [ValueInfo(packed, (batch.pop() if len(batch) == 1 else None, offset), np.dtype(np.float32))]
    g.toposort()


def _int64_constant(g: Graph, base: str, values: list[int]) -> str:
    name = g.fresh_name(base)
    g.constants[name] = np.array(values, np.int64)
    return name


# ---- running -------------------------------------------------------------------------
def _shape_problems(v: ValueInfo) -> list[str]:
    if not v.shape:
        return [f"graph input '{v.name}' has no batch dimension (it is a scalar)"]
    if None in v.shape[1:]:
        return [f"graph input '{v.name}': shape {_shape_text(v.shape)} has a free dimension other "
                "than the batch (calibration needs every other dimension fixed)"]
    return []


def _size_problems(g: Graph) -> list[str]:
    """Refuse absurd sizes before anything runs. Sizes come from ONNX shape inference (which
    reads constant shapes and pads); a free batch counts as one sample, and a dimension that
    inference cannot resolve as 1 (the zero run of `_run_problems` stays bounded anyway: an
    allocation onnxruntime cannot make is an error it reports, not a crash)."""
    model = g.to_onnx()
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, ValueError):
        pass  # onnxruntime names the inconsistency in _run_problems; declared sizes still count
    sizes: dict[str, tuple[int, list[int]]] = {}
    for info in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        tensor_type = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor_type.shape.dim]
        if any(d < 0 for d in dims):
            return [f"tensor '{info.name}' has a negative dimension in its shape {dims}"]
        sizes[info.name] = (math.prod(dims) * _itemsize(tensor_type.elem_type), dims)
    total = sum(size for size, _ in sizes.values())
    if total <= MAX_ACTIVATION_BYTES:
        return []
    name, (_, dims) = max(sizes.items(), key=lambda item: item[1][0])
    unit = "sample" if g.input.shape[0] is None else f"batch of {g.input.shape[0]}"
    return [f"its tensors would take {total / (1 << 30):.4g} GiB for one {unit} (the largest is "
            f"'{name}' of shape {dims}), more than {MAX_ACTIVATION_BYTES >> 30} GiB; refusing to run it"]


def _itemsize(elem: int) -> int:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)).itemsize
    except KeyError:  # UNDEFINED (not inferred) or a type numpy lacks: count 4 bytes
        return 4


def _run_problems(g: Graph) -> list[str]:
    """Run the graph once in onnxruntime, on zeros; its output shapes are then set to what it
    computes (onnxruntime accepts a wrong declared shape, with warnings on stderr at every run),
    and every output must keep the batch first (a per-sample accelerator cannot mix samples)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4  # errors come back as exceptions; keep stderr to one line
    batch = PROBE_BATCH if g.input.shape[0] is None else g.input.shape[0]
    x = np.zeros((batch, *g.input.shape[1:]), np.float32)
    outputs = [v for v in g.outputs if v.name != g.input.name]
    model = g.to_onnx()
    for info in model.graph.output:
        info.type.tensor_type.ClearField("shape")  # set from the run below
    try:
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        values = session.run([v.name for v in outputs], {g.input.name: x})
    except _ORT_ERRORS as e:
        return [f"onnxruntime cannot run the graph: {_first_line(e)}"]
    problems = []
    for v, value in zip(outputs, values):
        if g.input.shape[0] is not None:
            v.shape = value.shape
        elif value.ndim and value.shape[0] == batch:
            v.shape = (None, *value.shape[1:])
        else:
            problems.append(f"graph output '{v.name}' does not keep the batch as its first axis "
                            f"(shape {value.shape} for a batch of {batch})")
    return problems


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
