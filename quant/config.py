"""Per-layer quantization settings from a TOML file.

    [layers."/conv1/Conv"]      # a node name of the model (quote names with dots or slashes)
    weight_bits = 4
    act_bits = 8

Only `layers` tables with the keys of `LayerOverride` are accepted, so a typo fails loudly
instead of being ignored. Whether each name is a node of the model is checked by
`quant.quantize`, which has the graph.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

from quant.errors import DataError
from quant.options import LayerOverride, check_bits

_KEYS = tuple(f.name for f in dataclasses.fields(LayerOverride))


def load_config(path: str | os.PathLike[str]) -> dict[str, LayerOverride]:
    """Parse a config file into per-layer overrides, keyed by node name."""
    path = Path(path)
    return {name: _override(path, name, table) for name, table in read_layers(path).items()}


def read_layers(path: str | os.PathLike[str]) -> dict[str, object]:
    """The `[layers.<node name>]` tables of a TOML file, unchecked (each reader checks its
    own keys: quantization settings here, folds in `intforge hw`)."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise DataError(f"{path}: not valid TOML: tables or arrays nested too deeply") from None
    for key in doc:
        if key != "layers":
            raise DataError(f"{path}: unknown key '{key}' (only [layers.<node name>] tables are allowed)")
    layers = doc.get("layers", {})
    if not isinstance(layers, dict):
        raise DataError(f"{path}: 'layers' must be a table of [layers.<node name>] tables")
    return layers


def _override(path: Path, name: str, table: object) -> LayerOverride:
    where = f"{path}: [layers.\"{name}\"]"
    if not isinstance(table, dict):
        raise DataError(f"{where} must be a table with keys {', '.join(_KEYS)}")
    for key, value in table.items():
        if key not in _KEYS:
            raise DataError(f"{where}: unknown key '{key}' (allowed: {', '.join(_KEYS)})")
        check_bits(f"{where} {key}", value)
    return LayerOverride(**table)

