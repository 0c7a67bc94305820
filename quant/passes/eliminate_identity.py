"""Identity, inference-mode Dropout and a Cast to the type a tensor already has are removed.

Exact: each returns its input unchanged (Dropout only when its mask output is unused and
training_mode, if given, is a constant false).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from quant.graph import Node
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    return node.activation is None and _is_identity(view, node) and view.can_bypass(node)


def transform(view: View, node: Node) -> None:
    view.bypass(node)


def _is_identity(view: View, node: Node) -> bool:
    if node.op == "Identity":
        return True
    if node.op == "Dropout":
        training = view.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else np.array(False)
        return training is not None and not bool(training)
    if node.op == "Cast":
        return view.dtype(node.inputs[0]) == helper.tensor_dtype_to_np_dtype(node.attrs["to"])
    return False
