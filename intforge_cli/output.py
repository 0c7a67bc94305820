"""How commands print: human lines first, and with --json one JSON object as the last line."""
from __future__ import annotations

import json
import math
from typing import Any


def print_json(result: dict[str, Any]) -> None:
    """One line of JSON; non-finite floats (an exact layer's infinite SQNR) become null."""
    print(json.dumps(_finite(result), allow_nan=False))


def percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.2f}%"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
