"""Float ONNX node -> integer op converters, one module per operator family.

This table is the single place where the quantizer names ONNX operators.
"""
from __future__ import annotations

from typing import Callable

from quant.convert import elementwise, head, linear, movement, pool
from quant.convert.context import Context
from quant.graph import Node

CONVERTERS: dict[str, Callable[[Context, Node], None]] = {
    "Conv": linear.convert_conv,
    "Gemm": linear.convert_gemm,
    "MatMul": linear.convert_gemm,
    "Add": elementwise.convert_add,
    "Sub": elementwise.convert_add,
    "Mul": elementwise.convert_mul,
    "Relu": elementwise.convert_clamp,
    "Clip": elementwise.convert_clamp,
    "Sigmoid": elementwise.convert_lut,
    "Tanh": elementwise.convert_lut,
    "HardSigmoid": elementwise.convert_lut,
    "LeakyRelu": elementwise.convert_lut,
    "MaxPool": pool.convert_maxpool,
    "AveragePool": pool.convert_avgpool,
    "GlobalAveragePool": pool.convert_global_avgpool,
    "Reshape": movement.convert_reshape,
    "Transpose": movement.convert_transpose,
    "Pad": movement.convert_pad,
    "Slice": movement.convert_slice,
    "Concat": movement.convert_concat,
    "Identity": movement.convert_alias,
    "Cast": movement.convert_alias,
    "Softmax": head.convert_softmax,
    "ArgMax": head.convert_argmax,
    "Gather": head.convert_gather,
    "ArrayFeatureExtractor": head.convert_gather,
}
