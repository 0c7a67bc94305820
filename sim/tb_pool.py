"""The pool engines' stimulus: random `ir.MaxPool` / `ir.AvgPool` ops built as the quantizer
builds them, and engines for a graph's pools. Running and checking is `sim.tb_conv2d`'s
(`check_engine`, `check_full_rate_cycles`), against the golden pool kernels."""
from __future__ import annotations

import numpy as np

from hw.layers.pool import AvgPoolEngine, MaxPoolEngine
from quant import ir
from quant.qtypes import IntType, signed_bits_for
from sim.tb_conv2d import padded_taps
from sim.vectors import random_requant


def random_maxpool(*, kernel: tuple[int, int], itype: IntType, strides: tuple[int, int] = (1, 1),
                   pads: tuple[int, int, int, int] = (0, 0, 0, 0),
                   dilations: tuple[int, int] = (1, 1), name: str = "maxpool") -> ir.MaxPool:
    """A MaxPool padded with the type's qmin, as the quantizer emits it."""
    return ir.MaxPool(name=name, inputs=["x"], outputs=["y"], kernel=kernel, strides=strides,
                      pads=pads, dilations=dilations, pad_value=itype.qmin)


def window_counts(shape: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
                  pads: tuple[int, int, int, int]) -> np.ndarray:
    """[OH, OW] real elements per window, counted on an image of ones padded with zeros."""
    ones = np.ones((1, 1, *shape), np.int64)
    return padded_taps(ones, kernel, strides, pads, (1, 1), 0).sum(axis=0)[0, 0]


def random_avgpool(rng: np.random.Generator, *, in_shape: tuple[int, int, int],
                   kernel: tuple[int, int], in_type: IntType, out_type: IntType,
                   strides: tuple[int, int] = (1, 1),
                   pads: tuple[int, int, int, int] = (0, 0, 0, 0),
                   count_include_pad: bool = False, pow2: bool = False,
                   name: str = "avgpool") -> ir.AvgPool:
    """An AvgPool with a random input zero point and scale ratio s_in/s_out in [1/4, 2], one
    requantizer per distinct divisor (S = ratio / divisor), and the proven accumulator width
    kh*kw * max|x - z|."""
    zero = int(rng.integers(in_type.qmin, in_type.qmax, endpoint=True))
    if count_include_pad:
        divisors = np.array([kernel[0] * kernel[1]], np.int64)
    else:
        divisors = np.unique(window_counts(in_shape[1:], kernel, strides, pads)).astype(np.int64)
    ratio = 2.0 ** rng.uniform(-2, 1)
    peak = max(zero - in_type.qmin, in_type.qmax - zero)
    return ir.AvgPool(name=name, inputs=["x"], outputs=["y"], kernel=kernel, strides=strides,
                      pads=pads, count_include_pad=count_include_pad, input_zero_point=zero,
                      divisors=divisors,
                      requant=random_requant(ratio / divisors, out_type, rng, pow2=pow2),
                      acc_bits=signed_bits_for(kernel[0] * kernel[1] * peak))


def random_max_engine(itype: IntType, *, in_shape: tuple[int, int, int], lanes: int = 1,
                      in_lanes: int = 1, **layer) -> MaxPoolEngine:
    """A MaxPool engine for `layer`'s kernel, strides, pads, dilations (`random_maxpool`)."""
    return MaxPoolEngine(random_maxpool(itype=itype, **layer), in_shape=in_shape, itype=itype,
                         lanes=lanes, in_lanes=in_lanes)


def random_avg_engine(in_type: IntType, out_type: IntType, *, in_shape: tuple[int, int, int],
                      lanes: int = 1, in_lanes: int = 1, seed: int = 0,
                      **layer) -> AvgPoolEngine:
    """An AvgPool engine for `layer`'s kernel, strides, pads, count_include_pad, pow2
    (`random_avgpool`)."""
    op = random_avgpool(np.random.default_rng(seed), in_shape=in_shape, in_type=in_type,
                        out_type=out_type, **layer)
    return AvgPoolEngine(op, in_shape=in_shape, in_type=in_type, out_type=out_type, lanes=lanes,
                         in_lanes=in_lanes)


def graph_pool(graph: ir.IntGraph, op: ir.MaxPool | ir.AvgPool, lanes: int = 1,
               in_lanes: int = 1) -> MaxPoolEngine | AvgPoolEngine:
    """The engine of one pool of an integer graph, shaped and typed by the graph's tensors."""
    source = graph.tensors[op.inputs[0]]
    if isinstance(op, ir.MaxPool):
        return MaxPoolEngine(op, in_shape=source.shape, itype=source.itype, lanes=lanes,
                             in_lanes=in_lanes)
    return AvgPoolEngine(op, in_shape=source.shape, in_type=source.itype,
                         out_type=graph.tensors[op.outputs[0]].itype, lanes=lanes,
                         in_lanes=in_lanes)
