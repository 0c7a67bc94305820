"""What every operator converter shares: the float graph, the chosen QParams, the shapes,
and the integer ops emitted so far."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from quant import ir
from quant.errors import ModelError, QuantizationError
from quant.graph import Graph, Node
from quant.options import QuantOptions, ScaleMode
from quant.qtypes import (MAX_SHIFT, MIN_SHIFT, QParams, multiplier_and_shift, pow2_shift,
                          signed_bits_for)


@dataclass
class Context:
    graph: Graph
    qparams: dict[str, QParams]
    shapes: dict[str, tuple[int, ...]]  # per-sample shapes (no batch axis)
    options: QuantOptions
    ops: list[ir.Op] = field(default_factory=list)
    alias: dict[str, str] = field(default_factory=dict)

    def tensor(self, name: str) -> str:
        """The integer tensor that carries float tensor `name` (Identity/Cast are aliases)."""
        while name in self.alias:
            name = self.alias[name]
        return name

    def qp(self, name: str) -> QParams:
        return self.qparams[name]

    def constant(self, node: Node, index: int, what: str) -> np.ndarray:
        """Input `index` of `node`, which must be a constant (a weight, a shape, ...)."""
        if index >= len(node.inputs) or not node.inputs[index]:
            raise ModelError(f"{node}: missing {what}")
        name = node.inputs[index]
        if not self.graph.is_constant(name):
            raise ModelError(f"{node}: {what} '{name}' must be a constant")
        return self.graph.constants[name]

    def optional_constant(self, node: Node, index: int) -> np.ndarray | None:
        if index >= len(node.inputs) or not node.inputs[index]:
            return None
        return self.constant(node, index, f"input {index}")

    def emit(self, op: ir.Op) -> None:
        self.ops.append(op)

    def io(self, node: Node) -> dict:
        """The name/inputs/outputs keywords of the integer op replacing `node`."""
        inputs = [self.tensor(n) for n in node.inputs if n and not self.graph.is_constant(n)]
        return {"name": node.name, "inputs": inputs, "outputs": [node.outputs[0]]}

    def output_bounds(self, node: Node) -> tuple[int, int]:
        """The clamp of the node's requantizer: the output type's range, narrowed by a fused
        activation (ReLU, ReLU6, Clip) quantized onto the output grid."""
        qp = self.qp(node.outputs[0])
        low, high = qp.itype.qmin, qp.itype.qmax
        if node.activation is not None:
            act = node.activation
            if math.isfinite(act.low):
                low = max(low, int(qp.quantize(np.array(act.low))))
            if math.isfinite(act.high):
                high = min(high, int(qp.quantize(np.array(act.high))))
        return low, high

    def requant(self, node: Node, scales: np.ndarray) -> ir.Requant:
        """One (M, n) per real scale, per the options' scale mode, with the node's clamp."""
        where = str(node)
        pairs = [self.multiplier(float(s), where) for s in np.ravel(scales)]
        low, high = self.output_bounds(node)
        return ir.Requant(multiplier=np.array([m for m, _ in pairs], np.int64),
                          shift=np.array([n for _, n in pairs], np.int64),
                          zero_point=self.qp(node.outputs[0]).zero_point, qmin=low, qmax=high)

    def multiplier(self, scale: float, where: str) -> tuple[int, int]:
        """(M, n) for a real scale. In pow2 mode every tensor scale is a power of two, so the
        ratios of Conv, Gemm, Add and Mul are too and need no multiplier; a ratio that is not
        (an average over 9 elements, say) keeps a dyadic multiplier rather than a wrong shift."""
        if self.options.scale is ScaleMode.POW2 and math.frexp(scale)[0] == 0.5:
            return pow2_shift(scale, where)
        return multiplier_and_shift(scale, self.options.mult_bits, where)

    def common_shift(self, max_ratio: float, where: str) -> int:
        """The largest shift n for which round(max_ratio * 2^n) still fits the multiplier
        width, so several multipliers A_i = round(ratio_i * 2^n) share one rounding shift."""
        if max_ratio <= 0:
            return MIN_SHIFT
        limit = 1 << (self.options.mult_bits - 1)
        shift = (self.options.mult_bits - 1) - math.frexp(max_ratio)[1]
        while round(max_ratio * 2.0 ** shift) >= limit:
            shift -= 1
        shift = min(shift, MAX_SHIFT)
        if shift < MIN_SHIFT:
            raise QuantizationError(f"{where}: rescale ratio {max_ratio:.3g} needs shift {shift}, "
                                    f"outside the supported range {MIN_SHIFT}..{MAX_SHIFT}")
        return shift


def check_product_width(acc_bits: int, multiplier: np.ndarray | int, where: str) -> None:
    """acc * M must fit the golden model's int64 (and the hardware's chosen width)."""
    mult_bits = signed_bits_for(int(np.max(np.abs(multiplier))))
    if acc_bits + mult_bits > 63:
        raise QuantizationError(f"{where}: accumulator of {acc_bits} bits times a {mult_bits}-bit "
                                "multiplier exceeds 63 bits; use fewer weight or activation bits")


def magnitude(qp: QParams) -> int:
    """Largest |q - z| over the type's range."""
    return max(qp.zero_point - qp.itype.qmin, qp.itype.qmax - qp.zero_point)
