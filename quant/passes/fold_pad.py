"""A zero Pad in front of a Conv (torch's ZeroPad2d + Conv) becomes the Conv's own padding.

Exact: a Conv pads with zeros, so Pad(x, p) followed by Conv(pads=q) sees the same input as
Conv(x, pads=p+q). The same holds for AveragePool only with count_include_pad=1 and
ceil_mode=0, where padded zeros count in the divisor either way. Only non-negative pads on
the spatial axes (not batch or channel) and mode "constant" with value 0 qualify.
"""
from __future__ import annotations

import numpy as np

from quant.graph import Node
from quant.passes.base import View


def match(view: View, node: Node) -> bool:
    if node.attrs.get("auto_pad", "NOTSET") != "NOTSET":
        return False
    if node.op == "AveragePool":
        if node.attrs.get("count_include_pad", 0) != 1 or node.attrs.get("ceil_mode", 0) != 0:
            return False
    elif node.op != "Conv":
        return False
    pad = view.producer(node.inputs[0])
    return pad is not None and _spatial_pads(view, pad) is not None


def transform(view: View, node: Node) -> None:
    pad = view.producer(node.inputs[0])
    assert pad is not None
    extra = _spatial_pads(view, pad)
    assert extra is not None
    own = node.attrs.get("pads", [0] * len(extra))
    node.attrs["pads"] = [int(a + b) for a, b in zip(own, extra)]
    node.inputs = [pad.inputs[0], *node.inputs[1:]]


def _spatial_pads(view: View, pad: Node) -> list[int] | None:
    """The spatial pads [x1_begin, x2_begin, ..., x1_end, ...] of a zero constant Pad, or None."""
    if pad.op != "Pad" or pad.activation is not None or pad.attrs.get("mode", "constant") != "constant":
        return None
    if view.graph.opset < 11:
        pads, value = np.array(pad.attrs.get("pads", []), np.int64), np.array(pad.attrs.get("value", 0.0))
    else:
        pads = view.const(pad.inputs[1])
        value = view.const(pad.inputs[2]) if len(pad.inputs) > 2 and pad.inputs[2] else np.array(0.0)
        if pads is not None and len(pad.inputs) > 3 and pad.inputs[3]:
            pads = _expand_axes(view, pad, pads)
    if pads is None or value is None or np.any(value != 0):
        return None
    rank = len(pads) // 2
    begin, end = pads[:rank], pads[rank:]
    if rank < 3 or np.any(pads < 0) or np.any(begin[:2] != 0) or np.any(end[:2] != 0):
        return None
    return [*begin[2:].tolist(), *end[2:].tolist()]


def _expand_axes(view: View, pad: Node, pads: np.ndarray) -> np.ndarray | None:
    """Pads over all axes from the opset-18 form that lists only some `axes`."""
    axes, shape = view.const(pad.inputs[3]), view.shape(pad.inputs[0])
    if axes is None or shape is None:
        return None
    rank, full = len(shape), np.zeros(2 * len(shape), np.int64)
    for i, axis in enumerate(axes.tolist()):
        full[axis % rank], full[axis % rank + rank] = pads[i], pads[i + len(axes)]
    return full
