"""The float graph: a small, mutable mirror of an ONNX graph that passes can rewrite.

Verify and Prepare work on this structure; it converts back to ONNX (`to_onnx`) so that
onnxruntime can run every stage of the float graph as the independent reference.
Operator names are ONNX op_type strings here on purpose: the float graph *is* ONNX.
The integer graph (`quant.ir`) is where operators become classes.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

DEFAULT_OPSET = 17


@dataclass
class Activation:
    """A clamp fused into its producer: y = min(max(x, low), high) (ReLU, ReLU6, Clip)."""

    low: float
    high: float


@dataclass
class Node:
    """One ONNX node. `attrs` holds plain Python values (int, float, str, lists, ndarray)."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    activation: Activation | None = None

    def __str__(self) -> str:
        return f"node '{self.name}' ({self.op})"

    @property
    def preactivation(self) -> str:
        """The tensor holding the output before the fused activation (the output itself when
        there is none); `Graph.to_onnx` exposes it under this name."""
        return f"{self.outputs[0]}__preact" if self.activation is not None else self.outputs[0]


@dataclass
class ValueInfo:
    """A graph input or output: name, shape (ints; None for a free dimension) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


@dataclass
class Graph:
    """A float graph: nodes in any order, constants by name, one or more inputs and outputs."""

    nodes: list[Node]
    constants: dict[str, np.ndarray]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    opset: int = DEFAULT_OPSET
    name: str = "graph"
    extra_opsets: dict[str, int] = field(default_factory=dict)

    # ---- queries -----------------------------------------------------------------
    @property
    def input(self) -> ValueInfo:
        """The single input of a verified graph."""
        assert len(self.inputs) == 1, "graph has not been reduced to one input"
        return self.inputs[0]

    def producers(self) -> dict[str, Node]:
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    users.setdefault(name, []).append(node)
        return users

    def output_names(self) -> list[str]:
        return [v.name for v in self.outputs]

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def toposort(self) -> None:
        """Order nodes so every node follows its producers (stable: keeps the original order
        among independent nodes, so results are deterministic). Raises ValueError on a cycle."""
        produced_by = self.producers()
        state: dict[int, int] = {}  # 1 = visiting, 2 = done
        ordered: list[Node] = []
        for root in self.nodes:
            stack: list[tuple[Node, Iterator[str]]] = [(root, iter(root.inputs))]
            if state.get(id(root)) == 2:
                continue
            state[id(root)] = 1
            while stack:
                node, pending = stack[-1]
                for name in pending:
                    dep = produced_by.get(name)
                    if dep is None or state.get(id(dep)) == 2:
                        continue
                    if state.get(id(dep)) == 1:
                        raise ValueError(f"cycle through tensor '{name}' at {dep}")
                    state[id(dep)] = 1
                    stack.append((dep, iter(dep.inputs)))
                    break
                else:
                    stack.pop()
                    state[id(node)] = 2
                    ordered.append(node)
        self.nodes = ordered

    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    # ---- edits -------------------------------------------------------------------
    def rename_tensor(self, old: str, new: str) -> None:
        """Make every consumer (and graph output) of `old` read `new` instead."""
        for node in self.nodes:
            node.inputs = [new if name == old else name for name in node.inputs]
        for out in self.outputs:
            if out.name == old:
                out.name = new

    def remove_unused(self) -> None:
        """Drop nodes and constants that no graph output depends on."""
        produced_by = self.producers()
        needed: set[str] = set()
        stack = self.output_names()
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            node = produced_by.get(name)
            if node is not None:
                stack.extend(n for n in node.inputs if n)
        self.nodes = [n for n in self.nodes if any(o in needed for o in n.outputs)]
        self.constants = {k: v for k, v in self.constants.items() if k in needed}

    def fresh_name(self, base: str) -> str:
        """A tensor or node name not yet used in the graph."""
        used = set(self.constants) | {v.name for v in self.inputs} | {
            n for node in self.nodes for n in (*node.outputs, node.name)}
        name, i = base, 1
        while name in used:
            name, i = f"{base}_{i}", i + 1
        return name

    # ---- ONNX --------------------------------------------------------------------
    def to_onnx(self, extra_outputs: list[str] | None = None) -> onnx.ModelProto:
        """An ONNX model computing this graph; fused activations become Clip nodes again.

        `extra_outputs` exposes intermediate tensors as graph outputs (calibration, taps).
        """
        nodes = []
        for node in self.nodes:
            outs = [node.preactivation, *node.outputs[1:]]
            nodes.append(helper.make_node(node.op, node.inputs, outs, name=node.name,
                                          domain=node.domain or None, **_onnx_attrs(node.attrs)))
            if node.activation is not None:
                act = node.activation
                low = f"{node.name}__act_low"
                high = f"{node.name}__act_high"
                nodes.append(helper.make_node("Constant", [], [low], name=low,
                                              value=numpy_helper.from_array(np.array(act.low, np.float32), low)))
                nodes.append(helper.make_node("Constant", [], [high], name=high,
                                              value=numpy_helper.from_array(np.array(min(act.high, 3.0e38), np.float32), high)))
                nodes.append(helper.make_node("Clip", [outs[0], low, high], [node.outputs[0]],
                                              name=f"{node.name}__act"))
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in self.constants.items()]
        inputs = [_value_info(v) for v in self.inputs]
        outputs = [_value_info(v) for v in self.outputs]
        known = {v.name for v in self.outputs}
        for name in extra_outputs or []:
            if name not in known:
                outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None))
                known.add(name)
        graph = helper.make_graph(nodes, self.name, inputs, outputs, inits)
        opsets = [helper.make_opsetid("", self.opset)] + [
            helper.make_opsetid(dom, ver) for dom, ver in sorted(self.extra_opsets.items())]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="intforge")
        model.ir_version = min(model.ir_version, 8)
        return model


def _value_info(v: ValueInfo) -> onnx.ValueInfoProto:
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(v.dtype))
    shape = [d if d is not None else "N" for d in v.shape]
    return helper.make_tensor_value_info(v.name, elem, shape)


def _onnx_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.ndarray):
            value = numpy_helper.from_array(value)
        out[key] = value
    return out
