"""A Relu or constant Clip after a MaxPool moves in front of it and fuses into the MaxPool's
producer: clamp(maxpool(x)) = maxpool(clamp(x)).

Exact: a clamp is monotone, so it commutes with taking a maximum (MaxPool's padding never
wins a maximum in either order). Applies when the MaxPool reads an op that absorbs clamps
(see `fuse_activation`), and each of the producer and the MaxPool feeds only the next.
"""
from __future__ import annotations

from quant.graph import Node
from quant.passes import clamp
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    found = _found(view, node)
    return found is not None and clamp.merged(found[1], *found[2]) is not None


def transform(view: View, node: Node) -> None:
    found = _found(view, node)
    assert found is not None
    pool, producer, (low, high) = found
    producer.activation = clamp.merged(producer, low, high)
    view.absorb(pool, node)


def _found(view: View, node: Node) -> tuple[Node, Node, tuple[float, float]] | None:
    """(MaxPool, its producer, clamp bounds) for a clamp node reading a lone MaxPool output."""
    found = clamp.bounds(view, node)
    pool = view.producer(node.inputs[0]) if found else None
    if found is None or pool is None or pool.op != "MaxPool" or pool.activation is not None:
        return None
    if any(view.is_used(out) for out in pool.outputs[1:]) or view.sole_consumer(pool.outputs[0]) is not node:
        return None
    producer = clamp.absorber(view, pool.inputs[0])
    return None if producer is None else (pool, producer, found)
