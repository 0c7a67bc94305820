"""What a rewrite pass sees, and the few edits that passes share.

A pass is a module with two functions, in the style of hls4ml's optimizer passes:

    match(view, node) -> bool       does the rewrite apply at `node`? (no side effects)
    transform(view, node) -> None   rewrite the graph in place, exactly on float values

`View` wraps the graph being rewritten with the lookups passes need. Producers and consumers
are indexed once per rewrite (`changed` drops the index; the View's own edits call it).
Tensor shapes are probed once and cached across rewrites: every rewrite is exact, so a tensor
keeps its shape for as long as its name lives, and only a name a pass has just created
triggers a new probe.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from quant.graph import Graph, Node
from quant.passes import shapes


class Pass(Protocol):
    """A rewrite pass (a module with these two functions)."""

    def match(self, view: "View", node: Node) -> bool: ...

    def transform(self, view: "View", node: Node) -> None: ...


class View:
    """The graph under rewrite plus lookups: producers, consumers, constants, shapes."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._info: dict[str, shapes.TensorInfo] = {}
        self._links: tuple[dict[str, Node], dict[str, list[Node]]] | None = None

    def changed(self) -> None:
        """Forget the producer/consumer index after the graph's nodes were edited."""
        self._links = None

    def _index(self) -> tuple[dict[str, Node], dict[str, list[Node]]]:
        if self._links is None:
            self._links = (self.graph.producers(), self.graph.consumers())
        return self._links

    # ---- lookups -----------------------------------------------------------------
    def const(self, name: str) -> np.ndarray | None:
        return self.graph.constants.get(name)

    def producer(self, name: str) -> Node | None:
        return self._index()[0].get(name)

    def consumers(self, name: str) -> list[Node]:
        return self._index()[1].get(name, [])

    def is_output(self, name: str) -> bool:
        return name in self.graph.output_names()

    def is_used(self, name: str) -> bool:
        return bool(name) and (self.is_output(name) or bool(self.consumers(name)))

    def sole_consumer(self, name: str) -> Node | None:
        """The one node reading `name`, if exactly one does and it is not a graph output."""
        users = self.consumers(name)
        return users[0] if len(users) == 1 and not self.is_output(name) else None

    def shape(self, name: str) -> shapes.Shape | None:
        """Static dimensions as ints, dimensions that follow the batch as None."""
        value = self.const(name)
        if value is not None:
            return value.shape
        info = self._lookup(name)
        return info.shape if info else None

    def dtype(self, name: str) -> np.dtype | None:
        value = self.const(name)
        if value is not None:
            return value.dtype
        info = self._lookup(name)
        return info.dtype if info else None

    def _lookup(self, name: str) -> shapes.TensorInfo | None:
        if name not in self._info:
            self._info = shapes.infer(self.graph)
        return self._info.get(name)

    # ---- edits -------------------------------------------------------------------
    def add_constant(self, base: str, value: np.ndarray) -> str:
        """Store `value` under a fresh name (never overwrite: weights may be shared)."""
        name = self.graph.fresh_name(base)
        self.graph.constants[name] = np.asarray(value)
        return name

    def insert_before(self, node: Node, new: Node) -> None:
        at = next(i for i, n in enumerate(self.graph.nodes) if n is node)
        self.graph.nodes.insert(at, new)
        self.changed()

    def remove(self, node: Node) -> None:
        self.graph.nodes = [n for n in self.graph.nodes if n is not node]
        self.changed()

    def absorb(self, into: Node, node: Node) -> None:
        """Delete `node`, which reads `into`'s first output, and let `into` produce `node`'s
        output under its name (the caller has made `into` compute it)."""
        self.remove(node)
        into.outputs[0] = node.outputs[0]
        self.changed()

    def can_bypass(self, node: Node, source: str | None = None) -> bool:
        """Whether `bypass` may remove `node` (its other outputs must be unused)."""
        if any(self.is_used(out) for out in node.outputs[1:]):
            return False
        source, out = source or node.inputs[0], node.outputs[0]
        return not self.is_output(out) or (self.producer(source) is not None and not self.is_output(source))

    def bypass(self, node: Node, source: str | None = None) -> None:
        """Remove `node`, whose first output equals its input `source` (default: the first);
        a graph output keeps its name by renaming the input's producer instead."""
        source, out = source or node.inputs[0], node.outputs[0]
        self.remove(node)
        if self.is_output(out):
            producer = self.producer(source)
            assert producer is not None
            producer.outputs = [out if name == source else name for name in producer.outputs]
            self.graph.rename_tensor(source, out)
        else:
            self.graph.rename_tensor(out, source)
        self.changed()
