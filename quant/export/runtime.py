"""Run an exported integer model in onnxruntime (CPU), optionally exposing inner tensors.

The session keeps onnxruntime's default graph optimizations: the check should exercise the
model the way a user will deploy it (the tests also run it with optimizations disabled).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
from onnx import TensorProto, helper

from quant.errors import DataError, ModelError

_ORT_LOAD_ERRORS = (ort_state.Fail, ort_state.InvalidGraph, ort_state.InvalidArgument,
                    ort_state.InvalidProtobuf, ort_state.NotImplemented)


def run_onnx(model: onnx.ModelProto, xq: np.ndarray, extra_outputs: Sequence[str] = ()
             ) -> dict[str, np.ndarray]:
    """{output name: int64 array} for the integer input batch `xq` (any integer dtype).

    `extra_outputs` names inner int64 tensors (IR tensor names) to return as well; they are
    added as graph outputs to a copy of `model`, so `model` itself is not changed.
    """
    if len(model.graph.input) != 1:
        raise ModelError(f"the ONNX model has {len(model.graph.input)} inputs; an integer export has one")
    (input_info,) = model.graph.input
    xq = np.asarray(xq)
    if not np.issubdtype(xq.dtype, np.integer):
        raise DataError(f"input '{input_info.name}' must be an integer array, not {xq.dtype}")
    sample = tuple(d.dim_value for d in input_info.type.tensor_type.shape.dim[1:])
    if xq.ndim != len(sample) + 1 or xq.shape[1:] != sample:
        raise DataError(f"input '{input_info.name}' must have shape (N, {', '.join(map(str, sample))}), "
                        f"not {xq.shape}")
    try:
        session = ort.InferenceSession(_with_outputs(model, extra_outputs).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except _ORT_LOAD_ERRORS as e:
        reason = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ModelError(f"onnxruntime cannot load the ONNX model: {reason}") from None
    names = [out.name for out in session.get_outputs()]
    values = session.run(names, {input_info.name: xq.astype(np.int64)})
    return dict(zip(names, values))


def _with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    extra = [name for name in names if name not in {out.name for out in model.graph.output}]
    if not extra:
        return model
    produced = {out for node in model.graph.node for out in node.output}
    missing = [name for name in extra if name not in produced]
    if missing:
        raise ModelError(f"the ONNX model has no tensor named '{missing[0]}'; was it exported "
                         f"from this integer graph?")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.INT64, None) for name in extra)
    return copy
