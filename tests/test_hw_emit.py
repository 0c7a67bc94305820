# amaranth: UnusedElaboratable=no
"""Verilog emission: one named top module whose ports follow the block's stream signature."""
import re

import numpy as np

from hw.emit import verilog, write_verilog
from hw.fold import Fold
from sim.tb_dense import random_dense


def ports(text: str, module: str) -> dict[str, tuple[str, int]]:
    """{port: (direction, width)} of `module` in Amaranth's Verilog."""
    body = text[text.index(f"module {module}("):]
    body = body[:body.index("endmodule")]
    found = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body,
                                           re.MULTILINE):
        found[name] = (direction, int(msb or 0) + 1)
    return found


def test_dense_engine_verilog_has_stream_ports(tmp_path):
    engine, _ = random_dense(8, Fold(3, 4), outputs=10, inputs=20, seed=1)
    path = write_verilog(engine, tmp_path / "rtl" / "dense.v", name="dense_top")
    assert ports(path.read_text(), "dense_top") == {
        "clk": ("input", 1), "rst": ("input", 1),
        "i_stream__payload": ("input", 4 * 8), "i_stream__valid": ("input", 1),
        "i_stream__ready": ("output", 1),
        "o_stream__payload": ("output", 3 * 8), "o_stream__valid": ("output", 1),
        "o_stream__ready": ("input", 1),
    }


def test_weights_are_rom_initial_values():
    """The weights live in the Verilog as memory initial values, not as logic."""
    engine, _ = random_dense(4, Fold(1, 1), outputs=3, inputs=3, seed=2)
    text = verilog(engine)
    tiles = engine.mac.tiles.reshape(-1)  # 9 tiles of one signed(4) weight each
    assert "reg [3:0] weights [8:0];" in text
    pattern = r"weights\[(\d+)\] = 4'h([0-9a-f]);"
    initial = {int(i): int(v, 16) for i, v in re.findall(pattern, text)}
    assert initial == {i: int(w) & 0xF for i, w in enumerate(tiles)}
    assert np.any(tiles < 0) and len(set(tiles.tolist())) > 2
