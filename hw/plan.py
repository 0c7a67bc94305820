"""Planning the accelerator: each integer op becomes one streaming engine; this module decides
every engine's fold (MAC layers) or lanes (the others) so the pipeline is balanced, and
estimates cycles, multipliers and memory. `hw.lower` builds what the plan says.

Streams carry a tensor as vectors cut into beats of lanes (docs/hardware.md): a (C, H, W)
tensor is H*W vectors of C elements (HWC order), a 1-D tensor one vector. Engines without
multipliers are sped up with lanes, which must divide the vector length so a sample is a
dense run of beats. The slowest engine (MAC or not, and the one-lane input and output
streams) sets the initiation interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hw.balance import DEFAULT_MULTIPLIERS, MacLayer, balance_for_budget, balance_for_target
from hw.fold import Fold, ceil_div
from quant import ir
from quant.errors import ModelError

SUPPORTED = (ir.Conv, ir.Gemm, ir.MaxPool, ir.AvgPool, ir.GlobalAvgPool, ir.Add, ir.Mul,
             ir.Affine, ir.Clamp, ir.Lut, ir.Concat, ir.Reshape, ir.ArgMax)
POOLS = (ir.MaxPool, ir.AvgPool)


@dataclass
class Stage:
    """One engine: its op, fold (MAC layers) or lanes, input lanes, and its cost."""

    op: ir.Op
    fold: Fold | None = None
    lanes: int = 1  # output lanes of an engine without a MAC array
    in_lanes: int = 1  # input lanes of a windowed engine (Conv, pools)
    cycles: int = 0  # per sample, steady state
    macs: int = 0
    weight_bits: int = 0  # ROM bits of weights and biases

    @property
    def multipliers(self) -> int:
        return self.fold.outputs * self.fold.inputs if self.fold else 0

    @property
    def out_lanes(self) -> int:
        return self.fold.outputs if self.fold else self.lanes


@dataclass
class Plan:
    stages: list[Stage]
    interval: int
    input_elements: int
    output_elements: int
    notes: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.stages)

    @property
    def multipliers(self) -> int:
        return sum(s.multipliers for s in self.stages)

    @property
    def ideal_cycles(self) -> int:
        return ceil_div(self.macs, max(self.multipliers, 1))

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.op.name == name)


def vector_length(shape: tuple[int, ...]) -> int:
    """Elements per stream vector: channels of a (C, H, W) tensor, else the last axis."""
    return shape[0] if len(shape) == 3 else shape[-1]


def mac_layer(graph: ir.IntGraph, op: ir.Conv | ir.Gemm) -> MacLayer:
    if isinstance(op, ir.Conv):
        c_out, c_group, kh, kw = op.weight.shape
        _, oh, ow = graph.tensors[op.outputs[0]].shape
        return MacLayer(op.name, oh * ow, c_out, c_group * kh * kw)
    n, k = op.weight.shape
    return MacLayer(op.name, math.prod(graph.tensors[op.outputs[0]].shape[:-1]), n, k)


def make_plan(graph: ir.IntGraph, *, multipliers: int | None = None, target: int | None = None,
              folds: dict[str, Fold] | None = None) -> Plan:
    """Folds and lanes for `graph`: balanced for a multiplier budget (default
    `DEFAULT_MULTIPLIERS`) or a target interval; `folds` fixes chosen layers' folds."""
    check_supported(graph)
    fixed = folds or {}
    unknown = sorted(set(fixed) - {op.name for op in graph.ops if isinstance(op, (ir.Conv, ir.Gemm))})
    if unknown:
        raise ModelError(f"fold overrides name layers that are not Conv or Gemm: {', '.join(unknown)}")
    layers = [mac_layer(graph, op) for op in graph.ops if isinstance(op, (ir.Conv, ir.Gemm))]
    free = [layer for layer in layers if layer.name not in fixed]
    floor = max([_elements(graph, graph.input), _elements(graph, graph.outputs[0])]
                + [_fastest(graph, op) for op in graph.ops]
                + [layer.cycles(fixed[layer.name]) for layer in layers if layer.name in fixed])
    if target is not None:
        balance = balance_for_target(free, max(target, floor))
    else:
        budget = (multipliers or DEFAULT_MULTIPLIERS) - sum(f.outputs * f.inputs for f in fixed.values())
        balance = balance_for_budget(free, budget, floor) if free else None
    chosen = {**(balance.folds if balance else {}), **fixed}
    interval = max([floor] + [layer.cycles(chosen[layer.name]) for layer in layers])
    stages = [_stage(graph, op, chosen.get(op.name), interval) for op in graph.ops]
    interval = max([interval] + [s.cycles for s in stages])
    return Plan(stages, interval, _elements(graph, graph.input), _elements(graph, graph.outputs[0]))


def check_supported(graph: ir.IntGraph) -> None:
    bad = [f"{type(op).__name__} '{op.name}'" for op in graph.ops if not isinstance(op, SUPPORTED)]
    if bad:
        raise ModelError(f"no hardware engine yet for: {', '.join(bad)}")
    if len(graph.outputs) != 1:
        raise ModelError(f"the accelerator has one output stream; the model has {len(graph.outputs)} "
                         f"outputs ({', '.join(graph.outputs)})")


def _elements(graph: ir.IntGraph, name: str) -> int:
    return math.prod(graph.tensors[name].shape)


def _fastest(graph: ir.IntGraph, op: ir.Op) -> int:
    """The fewest cycles per sample an engine without multipliers can reach (all lanes)."""
    if isinstance(op, (ir.Conv, ir.Gemm, ir.Reshape)):
        return 1
    out = graph.tensors[op.outputs[0]].shape
    source = graph.tensors[op.inputs[0]].shape
    if isinstance(op, POOLS):
        return out[1] * out[2]
    return max(math.prod(source) // vector_length(source), math.prod(out) // vector_length(out))


def _lanes_for(length: int, beats_per_lane_count, interval: int) -> int:
    """The smallest divisor L of `length` with beats_per_lane_count(L) <= interval."""
    for lanes in range(1, length + 1):
        if length % lanes == 0 and beats_per_lane_count(lanes) <= interval:
            return lanes
    return length


def _stage(graph: ir.IntGraph, op: ir.Op, fold: Fold | None, interval: int) -> Stage:
    source = graph.tensors[op.inputs[0]].shape
    out = graph.tensors[op.outputs[0]].shape
    if isinstance(op, (ir.Conv, ir.Gemm)):
        layer = mac_layer(graph, op)
        stage = Stage(op, fold=fold, cycles=layer.cycles(fold), macs=layer.macs,
                      weight_bits=_rom_bits(op))
        if isinstance(op, ir.Conv):
            pixels = source[1] * source[2]
            stage.in_lanes = _lanes_for(source[0], lambda l: pixels * source[0] // l, interval)
        return stage
    if isinstance(op, ir.Reshape):
        return Stage(op)
    if isinstance(op, POOLS):
        pixels_out, pixels_in = out[1] * out[2], source[1] * source[2]
        lanes = _lanes_for(out[0], lambda l: pixels_out * ceil_div(out[0], l), interval)
        in_lanes = _lanes_for(source[0], lambda l: pixels_in * source[0] // l, interval)
        return Stage(op, lanes=lanes, in_lanes=in_lanes, cycles=pixels_out * out[0] // lanes)
    length = vector_length(source)
    if isinstance(op, ir.Concat):
        length = math.gcd(*(vector_length(graph.tensors[n].shape) for n in op.inputs))
    elements = max(math.prod(source), math.prod(out)) if not isinstance(op, ir.Concat) else math.prod(out)
    lanes = _lanes_for(length, lambda l: elements // l, interval)
    return Stage(op, lanes=lanes, cycles=ceil_div(elements, lanes))


def _rom_bits(op: ir.Conv | ir.Gemm) -> int:
    """Weights at the narrowest signed width holding them, plus biases likewise."""
    def width(values: np.ndarray) -> int:
        peak = int(np.max(np.abs(values))) if values.size else 0
        return max(peak.bit_length() + 1, 2)
    return op.weight.size * width(op.weight) + op.bias.size * width(op.bias)

