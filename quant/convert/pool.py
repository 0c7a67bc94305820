"""Pooling: MaxPool moves integers (shared QParams); average pools sum, then requantize with
S = s_in / (count * s_out), one (M, n) per distinct window count."""
from __future__ import annotations

import numpy as np

from quant import ir
from quant.convert.context import Context, check_product_width, magnitude
from quant.errors import ModelError
from quant.graph import Node
from quant.qtypes import signed_bits_for


def _window(node: Node) -> dict:
    kernel = tuple(node.attrs["kernel_shape"])
    if len(kernel) != 2:
        raise ModelError(f"{node}: only 2-D pooling is supported, not kernel {kernel}")
    return dict(kernel=kernel, strides=tuple(node.attrs.get("strides", (1, 1))),
                pads=tuple(node.attrs.get("pads", (0, 0, 0, 0))))


def convert_maxpool(ctx: Context, node: Node) -> None:
    ctx.emit(ir.MaxPool(**ctx.io(node), **_window(node),
                        dilations=tuple(node.attrs.get("dilations", (1, 1))),
                        pad_value=ctx.qp(node.inputs[0]).itype.qmin))


def window_counts(size: int, kernel: int, stride: int, pad_begin: int, out: int) -> np.ndarray:
    """How many real (unpadded) input positions each output position's window covers, on one axis."""
    starts = np.arange(out) * stride - pad_begin
    return np.minimum(starts + kernel, size) - np.maximum(starts, 0)


def convert_avgpool(ctx: Context, node: Node) -> None:
    window = _window(node)
    include_pad = bool(node.attrs.get("count_include_pad", 0))
    (kh, kw), (sh, sw), (pt, pl, _, _) = window["kernel"], window["strides"], window["pads"]
    _, height, width = ctx.shapes[node.inputs[0]]
    _, out_h, out_w = ctx.shapes[node.outputs[0]]
    if include_pad:
        divisors = np.array([kh * kw], np.int64)
    else:
        counts = np.outer(window_counts(height, kh, sh, pt, out_h), window_counts(width, kw, sw, pl, out_w))
        divisors = np.unique(counts).astype(np.int64)
    x, y = ctx.qp(node.inputs[0]), ctx.qp(node.outputs[0])
    requant = ctx.requant(node, x.scale / (divisors * y.scale))
    acc_bits = signed_bits_for(kh * kw * magnitude(x))
    check_product_width(acc_bits, requant.multiplier, str(node))
    ctx.emit(ir.AvgPool(**ctx.io(node), **window, count_include_pad=include_pad,
                        input_zero_point=x.zero_point, divisors=divisors, requant=requant,
                        acc_bits=acc_bits))


def convert_global_avgpool(ctx: Context, node: Node) -> None:
    shape = ctx.shapes[node.inputs[0]]
    count = int(np.prod(shape[1:]))
    x, y = ctx.qp(node.inputs[0]), ctx.qp(node.outputs[0])
    requant = ctx.requant(node, np.array([x.scale / (count * y.scale)]))
    acc_bits = signed_bits_for(count * magnitude(x))
    check_product_width(acc_bits, requant.multiplier, str(node))
    ctx.emit(ir.GlobalAvgPool(**ctx.io(node), input_zero_point=x.zero_point, requant=requant,
                              acc_bits=acc_bits))
