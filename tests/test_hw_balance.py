"""Pipeline balancing: exact over the fold grid, checked against brute force."""
from __future__ import annotations

import itertools

import pytest

from hw.balance import MacLayer, balance_for_budget, balance_for_target
from hw.fold import Fold
from quant.errors import ModelError

DIGITS_CNN = [MacLayer("c1", 64, 8, 9), MacLayer("c2", 64, 8, 72), MacLayer("c3", 16, 16, 72),
              MacLayer("fc", 1, 10, 16)]
SMALL = [MacLayer("a", 4, 3, 5), MacLayer("b", 1, 6, 4), MacLayer("c", 2, 2, 7)]


def _brute_force_best_interval(layers: list[MacLayer], budget: int) -> int:
    """Every combination of folds (P <= N, S <= K) within the budget: the best interval."""
    options = [[Fold(p, s) for p in range(1, l.outputs + 1) for s in range(1, l.inputs + 1)] for l in layers]
    best = None
    for folds in itertools.product(*options):
        if sum(f.outputs * f.inputs for f in folds) <= budget:
            interval = max(l.cycles(f) for l, f in zip(layers, folds))
            best = interval if best is None else min(best, interval)
    return best


@pytest.mark.parametrize("budget", [3, 4, 6, 9, 14, 25])
def test_budget_balance_is_optimal(budget: int) -> None:
    got = balance_for_budget(SMALL, budget)
    assert got.multipliers <= budget
    assert got.interval == _brute_force_best_interval(SMALL, budget)
    assert got.interval == max(l.cycles(got.folds[l.name]) for l in SMALL)


def test_target_gives_the_cheapest_folds_reaching_it() -> None:
    for interval in (10, 20, 40, 80):
        got = balance_for_target(SMALL, interval)
        assert got.interval <= interval
        for layer in SMALL:
            cheapest = min(p * s for p in range(1, layer.outputs + 1) for s in range(1, layer.inputs + 1)
                           if layer.cycles(Fold(p, s)) <= interval)
            fold = got.folds[layer.name]
            assert fold.outputs * fold.inputs == cheapest


@pytest.mark.parametrize("budget", [16, 32, 64])
def test_digits_cnn_is_within_15_percent_of_ideal(budget: int) -> None:
    got = balance_for_budget(DIGITS_CNN, budget)
    ideal = -(-sum(l.macs for l in DIGITS_CNN) // got.multipliers)
    assert got.multipliers <= budget and got.interval <= 1.15 * ideal


def test_impossible_requests_are_refused() -> None:
    with pytest.raises(ModelError, match="cannot give each"):
        balance_for_budget(SMALL, 2)
    with pytest.raises(ModelError, match="cannot reach 1 cycles"):
        balance_for_target(SMALL, 1)
