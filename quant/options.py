"""Quantization options: what the user chooses, as typed values (never strings past the CLI)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from quant.errors import DataError

MIN_BITS = 2
MAX_BITS = 16


class ScaleMode(enum.Enum):
    """How a real rescale factor becomes integers."""

    DYADIC = "dyadic"  # integer multiplier M and rounding shift n
    POW2 = "pow2"  # all scales powers of two: M = 1, a pure rounding shift


class CalibMethod(enum.Enum):
    """How a tensor's observed statistics become its quantization range."""

    MINMAX = "minmax"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"
    MSE = "mse"


@dataclass(frozen=True)
class LayerOverride:
    """Per-layer settings from a config file; None keeps the global option."""

    weight_bits: int | None = None
    act_bits: int | None = None


@dataclass(frozen=True)
class QuantOptions:
    """Everything that decides the integer graph; the same options and data give the same bytes."""

    weight_bits: int = 8
    act_bits: int = 8
    scale: ScaleMode = ScaleMode.DYADIC
    per_channel: bool = True
    calibration: CalibMethod = CalibMethod.MINMAX
    mult_bits: int = 16
    output_bits: int = 16  # graph outputs: wider, so near-equal logits do not tie after rounding
    bias_correction: bool = True  # see quant.bias_correction
    layers: dict[str, LayerOverride] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_bits("weight_bits", self.weight_bits)
        check_bits("act_bits", self.act_bits)
        check_bits("output_bits", self.output_bits)
        for name, override in self.layers.items():
            for key in ("weight_bits", "act_bits"):
                value = getattr(override, key)
                if value is not None:
                    check_bits(f"layer '{name}' {key}", value)

    def weight_bits_for(self, layer: str) -> int:
        override = self.layers.get(layer)
        return override.weight_bits if override and override.weight_bits else self.weight_bits

    def act_bits_for(self, layer: str) -> int:
        override = self.layers.get(layer)
        return override.act_bits if override and override.act_bits else self.act_bits


def check_bits(what: str, bits: object) -> None:
    if not isinstance(bits, int) or isinstance(bits, bool) or not MIN_BITS <= bits <= MAX_BITS:
        raise DataError(f"{what} must be an integer from {MIN_BITS} to {MAX_BITS}, not {bits!r}")
