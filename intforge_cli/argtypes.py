"""argparse types and option groups shared by commands, so that a bad value is a usage error
naming the flag (exit 2, one line) and every command spells a budget the same way."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _checked(convert: Callable[[str], float], valid: Callable[[float], bool],
             wanted: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and valid(value)):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}")
        return value
    return parse


positive = _checked(int, lambda v: v >= 1, "a positive integer")
"""A count of at least 1."""

probability = _checked(float, lambda v: 0.0 <= v < 1.0, "a number from 0 to below 1")
"""A probability in [0, 1): at 1 nothing would ever transfer."""

frequency = _checked(float, lambda v: v > 0, "a positive number of MHz")
"""A clock in MHz."""


def add_budget(parser: argparse.ArgumentParser, multipliers_help: str,
               target_help: str) -> None:
    """The mutually exclusive `--multipliers N` / `--target-cycles N` pair of `hw` and `board`."""
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--multipliers", type=positive, metavar="N", help=multipliers_help)
    budget.add_argument("--target-cycles", type=positive, metavar="N", help=target_help)
