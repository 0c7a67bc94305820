"""Choosing every layer's fold so the dataflow pipeline is balanced.

In a streaming pipeline every layer works on a different sample at once, so the initiation
interval (cycles between consecutive samples) is the slowest layer's cycles per sample.
A MAC layer of `repeat` x [N outputs x K inputs] dot products folded onto P x S multipliers
takes `repeat * ceil(N/P) * ceil(K/S)` cycles (a dense layer: repeat = 1; a convolution:
repeat = output pixels (x groups), K = the window). Layers without multipliers take
`ceil(elements / lanes)` cycles and are sped up with lanes, which cost no multipliers.

Given a budget of multipliers, the balance is the smallest interval T whose cheapest folds
(for each layer, the fewest P*S that reach T) fit the budget; given a target T, it is those
cheapest folds directly. Both searches are exact over the fold grid, not heuristics.
"""
from __future__ import annotations

from dataclasses import dataclass

from hw.fold import Fold, ceil_div
from quant.errors import ModelError

DEFAULT_MULTIPLIERS = 8  # the DSP blocks of an iCE40UP5K


@dataclass(frozen=True)
class MacLayer:
    """`repeat` independent [outputs x inputs] dot-product sets per sample."""

    name: str
    repeat: int
    outputs: int
    inputs: int

    @property
    def macs(self) -> int:
        return self.repeat * self.outputs * self.inputs

    def cycles(self, fold: Fold) -> int:
        return self.repeat * fold.groups(self.outputs) * fold.chunks(self.inputs)

    def cheapest(self, interval: int) -> Fold | None:
        """The fold with the fewest multipliers P*S whose cycles are <= `interval` (ties: fewer
        padded lanes, then smaller P), or None when even a fully parallel layer is slower."""
        best: tuple[int, int, int, int] | None = None
        for groups in range(1, self.outputs + 1):
            p = ceil_div(self.outputs, groups)
            if ceil_div(self.outputs, p) != groups:
                continue
            chunks = interval // (self.repeat * groups)
            if chunks < 1:
                continue
            s = ceil_div(self.inputs, min(chunks, self.inputs))
            key = (p * s, p * groups * s * ceil_div(self.inputs, s), p, s)
            best = key if best is None or key < best else best
        return None if best is None else Fold(best[2], best[3])


@dataclass(frozen=True)
class Balance:
    """Folds per MAC layer and the resulting interval and multiplier count."""

    folds: dict[str, Fold]
    interval: int
    multipliers: int


def balance_for_budget(layers: list[MacLayer], budget: int, floor: int = 1) -> Balance:
    """The smallest interval (>= `floor`, the slowest layer without multipliers) whose
    cheapest folds use at most `budget` multipliers."""
    if budget < len(layers):
        raise ModelError(f"a budget of {budget} multipliers cannot give each of the "
                         f"{len(layers)} MAC layers one")
    high = max([floor] + [layer.cycles(Fold(1, 1)) for layer in layers])
    low = max(floor, ceil_div(sum(layer.macs for layer in layers), budget))
    low = min(low, high)
    while low < high:
        mid = (low + high) // 2
        if _cost(layers, mid) <= budget:
            high = mid
        else:
            low = mid + 1
    return balance_for_target(layers, low)


def balance_for_target(layers: list[MacLayer], interval: int) -> Balance:
    """The cheapest folds that make every MAC layer take at most `interval` cycles."""
    folds = {}
    for layer in layers:
        fold = layer.cheapest(interval)
        if fold is None:
            raise ModelError(f"layer '{layer.name}' cannot reach {interval} cycles per sample even "
                             f"fully parallel ({layer.repeat} cycles at least)")
        folds[layer.name] = fold
    achieved = max([1] + [layer.cycles(folds[layer.name]) for layer in layers])
    return Balance(folds, achieved, sum(f.outputs * f.inputs for f in folds.values()))


def _cost(layers: list[MacLayer], interval: int) -> float:
    total = 0
    for layer in layers:
        fold = layer.cheapest(interval)
        if fold is None:
            return float("inf")
        total += fold.outputs * fold.inputs
    return total
