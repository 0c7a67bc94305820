"""The golden model: run an integer graph on integer inputs with the numpy kernels.

A short interpreter loop, like onnx's ReferenceEvaluator: every op's output is checked
against its TensorSpec (type range and per-sample shape) so a kernel or quantizer bug is
caught at the op that caused it, and `taps=True` returns every tensor so two executions
(golden vs. ONNX export vs. RTL) can be compared layer by layer.

Between ops a tensor is kept in its type's storage dtype (`IntType.storage`, e.g. int8),
which its range check has just proven lossless, and dropped after its last reader: large
batches then touch an eighth of the fresh memory that int64 would (on large tensors,
page-faulting fresh memory costs more than the arithmetic). Results are int64.
"""
from __future__ import annotations

import functools

import numpy as np

from quant import ir
from quant.errors import DataError
from quant.ops import kernel_for
from quant.ops.checks import ContractError
from quant.ops.scratch import scratch
from quant.qtypes import IntType


def quantize_input(graph: ir.IntGraph, x: np.ndarray) -> np.ndarray:
    """q = clamp(floor(x / s + 1/2) + z, qmin, qmax) with the graph input's QParams.

    The float64 operations of `QParams.quantize`, in the same order (so the same bits; a
    test compares the two), done in place in scratch memory instead of five temporaries.
    """
    x = np.asarray(x)
    _check_shape(graph, x, "float input")
    qparams = graph.input_spec.qparams
    q = scratch("quantize_input", x.shape, np.float64)
    np.copyto(q, x, casting="unsafe")
    q /= qparams.scale
    q += 0.5
    np.floor(q, out=q)
    q += qparams.zero_point
    qmin, qmax, _ = _limits(qparams.itype)
    return np.clip(q, qmin, qmax, out=q).astype(np.int64)


def dequantize(graph: ir.IntGraph, name: str, q: np.ndarray) -> np.ndarray:
    """real = s * (q - z) with tensor `name`'s QParams."""
    if name not in graph.tensors:
        raise DataError(f"graph '{graph.name}' has no tensor named '{name}'")
    return graph.tensors[name].qparams.dequantize(q)


def run(graph: ir.IntGraph, xq: np.ndarray, taps: bool = False,
        batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Integer outputs of `graph` for the integer input batch `xq` (batch axis first).

    Returns {output name: int64 array}, or every tensor (input included) with `taps`.
    `batch_size` bounds memory by running the batch in chunks; the result is the same.
    """
    xq = _checked_input(graph, xq)
    if batch_size is None or len(xq) <= batch_size:
        return _run_batch(graph, xq, taps)
    if batch_size < 1:
        raise DataError(f"batch size must be positive, not {batch_size}")
    chunks = [_run_batch(graph, xq[i:i + batch_size], taps) for i in range(0, len(xq), batch_size)]
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def _run_batch(graph: ir.IntGraph, xq: np.ndarray, taps: bool) -> dict[str, np.ndarray]:
    env = {graph.input: xq}
    last_use = {} if taps else _last_uses(graph)
    for step, op in enumerate(graph.ops):
        out = kernel_for(op)(op, *(env[name] for name in op.inputs))
        env[op.outputs[0]] = _checked_output(graph, op, np.asarray(out))
        for name in set(op.inputs):  # an op may read one tensor twice (Add(x, x))
            if last_use.get(name) == step:
                del env[name]
    return {name: env[name].astype(np.int64) for name in (env if taps else graph.outputs)}


def _last_uses(graph: ir.IntGraph) -> dict[str, int]:
    """{tensor: index of the last op that reads it}, graph outputs excluded: a tensor is
    dropped after its last reader, so large batches reuse memory instead of growing it."""
    last = {name: step for step, op in enumerate(graph.ops) for name in op.inputs}
    for name in graph.outputs:
        last.pop(name, None)
    return last


def _checked_input(graph: ir.IntGraph, xq: np.ndarray) -> np.ndarray:
    xq = np.asarray(xq)
    if not np.issubdtype(xq.dtype, np.integer):
        raise DataError(f"input '{graph.input}' must be an integer array, not {xq.dtype}")
    _check_shape(graph, xq, "integer input")
    itype = graph.input_spec.itype
    qmin, qmax, storage = _limits(itype)
    if xq.size and (int(xq.min()) < qmin or int(xq.max()) > qmax):
        raise DataError(f"input '{graph.input}' values [{int(xq.min())}, {int(xq.max())}] are "
                        f"outside its type {itype} [{qmin}, {qmax}]")
    return xq.astype(storage, copy=False)  # kernels never write their inputs


def _check_shape(graph: ir.IntGraph, x: np.ndarray, what: str) -> None:
    shape = graph.input_spec.shape
    if x.shape[1:] != tuple(shape):
        raise DataError(f"{what} '{graph.input}' must have shape (N, {', '.join(map(str, shape))}), "
                        f"not {x.shape}")


def _checked_output(graph: ir.IntGraph, op: ir.Op, out: np.ndarray) -> np.ndarray:
    """`out` after checking its shape and range, in its type's storage dtype."""
    spec = graph.tensors[op.outputs[0]]
    if out.shape[1:] != tuple(spec.shape):
        raise ContractError(f"{_where(op)} has per-sample shape {out.shape[1:]}, its spec says {spec.shape}")
    qmin, qmax, storage = _limits(spec.itype)
    if out.size and (int(out.min()) < qmin or int(out.max()) > qmax):
        raise ContractError(f"{_where(op)} values [{int(out.min())}, {int(out.max())}] are outside "
                            f"its type {spec.itype} [{qmin}, {qmax}]")
    return out.astype(storage, copy=False)


def _where(op: ir.Op) -> str:
    return f"{type(op).__name__} '{op.name}' output '{op.outputs[0]}'"


@functools.lru_cache(maxsize=None)
def _limits(itype: IntType) -> tuple[int, int, np.dtype]:
    """(qmin, qmax, storage dtype) of a type, computed once per type."""
    return itype.qmin, itype.qmax, itype.storage
