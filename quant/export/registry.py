"""The ONNX lowerings, keyed by integer-IR class (never by an op_type string).

A lowering is `fn(op, b, *inputs) -> value`: it appends standard ONNX nodes to the builder
`b` that compute `op` from the ONNX values named `inputs`, and returns the name of the value
holding the op's output (the exporter then gives that value the IR tensor's name).
`quant.export` imports every lowering module, so `lowering_for` always sees the full table.
"""
from __future__ import annotations

from collections.abc import Callable

from quant import ir
from quant.errors import ModelError

Lowering = Callable[..., str]

LOWERINGS: dict[type[ir.Op], Lowering] = {}


def lowers(op_class: type[ir.Op]) -> Callable[[Lowering], Lowering]:
    """Register the decorated function as the ONNX lowering of `op_class` (once)."""

    def register(fn: Lowering) -> Lowering:
        if op_class in LOWERINGS:
            raise ValueError(f"two ONNX lowerings for {op_class.__name__}")
        LOWERINGS[op_class] = fn
        return fn

    return register


def lowering_for(op: ir.Op) -> Lowering:
    """The lowering of `op`'s class."""
    try:
        return LOWERINGS[type(op)]
    except KeyError:
        raise ModelError(f"{type(op).__name__} '{op.name}' has no ONNX export") from None
