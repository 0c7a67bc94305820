"""Accumulates the nodes and int64 constants of the exported ONNX graph.

Every value the builder creates is int64 (the golden model's type), so no lowering can
introduce a float tensor by accident: constants go through `np.int64` and are shared when
equal. Value names are `<op name>/<hint>`, made unique and never colliding with an
IR tensor name, so a reader can tell which integer op each ONNX node belongs to.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper


class Builder:
    """The growing ONNX graph; `scope` (the current IR op's name) prefixes new value names.

    `shapes` holds the per-sample shape of every IR tensor, which lowerings need to build
    index maps and reshapes; IR tensor names are never reused for new values.
    """

    def __init__(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.shapes = shapes
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.scope = "graph"
        self._names = set(shapes)
        self._consts: dict[tuple[tuple[int, ...], bytes], str] = {}
        self._producers: dict[str, onnx.NodeProto] = {}

    def const(self, value: Any, hint: str = "c") -> str:
        """An int64 initializer holding `value` (equal constants are stored once)."""
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"{self.scope}/{hint}: constants must be integers, not {array.dtype}")
        array = np.ascontiguousarray(array, np.int64)
        key = (array.shape, array.tobytes())
        if key not in self._consts:
            name = self._fresh(hint)
            self.initializers.append(numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]

    def node(self, op_type: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        """Append one default-domain node; returns the name of its single output."""
        out = self._fresh(hint)
        node = helper.make_node(op_type, list(inputs), [out], name=out, **attrs)
        self.nodes.append(node)
        self._producers[out] = node
        return out

    def bind(self, value: str, name: str) -> None:
        """Give `value`, the last result of a lowering, the IR tensor name `name`.

        A value computed by a node is renamed in place; anything else (a graph input or
        another op's output passed through unchanged) is copied by an Identity node.
        """
        node = self._producers.pop(value, None)
        if node is None:
            self.nodes.append(helper.make_node("Identity", [value], [name], name=name))
            return
        node.output[0] = name
        node.name = name
        for other in self.nodes:
            for i, inp in enumerate(other.input):
                if inp == value:
                    other.input[i] = name

    def _fresh(self, hint: str) -> str:
        base = f"{self.scope}/{hint}"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name


def reshape(b: Builder, x: str, sample_shape: Sequence[int], hint: str = "reshaped") -> str:
    """Reshape every sample of `x` to `sample_shape`; 0 keeps the batch axis whatever its size."""
    return b.node("Reshape", [x, b.const([0, *sample_shape], "shape")], hint)
