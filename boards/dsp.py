"""Which multipliers get the FPGA's DSP blocks, and the yosys commands that put the rest in logic.

yosys maps every `$mul` it can onto DSP blocks, with no limit (iCE40 `synth_ice40 -dsp`;
ECP5 `synth_ecp5`), so a design with more multipliers than blocks fails in nextpnr ("no BELs
remaining"). Here the multipliers are read from the design's RTLIL (the `$mul` cells Amaranth
emitted), each one's DSP cost is counted the way yosys' `mul2dsp` splits it (`Family`), the
blocks go to the multipliers that would cost the most logic per block, and every other `$mul`
is marked for logic.

The synthesis runs in two parts (`split_synthesis`): up to its `coarse` label (reading the
cell library, the hierarchy check and, on iCE40, `proc` and `flatten`), then `proc` (ECP5's
`begin` stops before it, and `booth` skips a module that still has processes), then the
marked cells are taken out of the DSP mapping, then the rest. A marked multiplier of at least
4 x 4 bits becomes a radix-4 Booth multiplier in logic (yosys' `booth`: about 30% fewer LUTs
than the plain array, e.g. 141 instead of 197 iCE40 LUTs for 9 x 8 bits, 713 instead of 982
for 21 x 16). A narrower one is retyped `$__soft_mul`: yosys' own soft-multiplier path, which
the DSP mapping skips and which `synth_<family>` renames back to `$mul` for `alumacc`
afterwards. (`hierarchy -check` rejects that type, hence the split.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MARK = "intforge_soft_mul"
SPLIT_LABEL = "coarse"


@dataclass(frozen=True)
class Family:
    """mul2dsp's limits for one FPGA family: operands up to `a_max` x `b_max` bits fit one
    block; narrower than `a_min`/`b_min` bits, or a product narrower than `y_min`, stays in
    logic; wider operands are cut into slices of `a_max` (then `b_max`) bits."""

    name: str
    a_max: int
    b_max: int
    a_min: int = 2
    b_min: int = 2
    y_min: int = 0

    def blocks(self, a: int, b: int, y: int, *, top: bool = True) -> int:
        """DSP blocks yosys uses for an a x b -> y bit multiplier (0: it stays in logic)."""
        if top and a < b:  # mul2dsp puts the wider operand on A (only for the original $mul)
            a, b = b, a
        if a < self.a_min or b < self.b_min or y < self.y_min:
            return 0
        if a > self.a_max:
            slices, last = (a - 1) // self.a_max, a - (a - 1) // self.a_max * self.a_max
            return (slices * self.blocks(self.a_max, b, min(y, b + self.a_max), top=False)
                    + self.blocks(last, b, b + last, top=False))
        if b > self.b_max:
            slices, last = (b - 1) // self.b_max, b - (b - 1) // self.b_max * self.b_max
            return (slices * self.blocks(a, self.b_max, min(y, a + self.b_max), top=False)
                    + self.blocks(a, last, a + last, top=False))
        return 1


ICE40 = Family("ice40", a_max=16, b_max=16, y_min=11)  # SB_MAC16, synth_ice40 -dsp
ECP5 = Family("ecp5", a_max=18, b_max=18)  # MULT18X18D, synth_ecp5


@dataclass(frozen=True)
class Multiplier:
    """One `$mul` cell of the RTLIL: its module, cell name, operand and product widths, and
    for a multiplication by a constant (a per-tensor requantizer's M, an Add's input scale,
    an index times a width) which operand is the constant ("A" or "B") and its one bits."""

    module: str
    cell: str
    a_width: int
    b_width: int
    y_width: int
    constant: tuple[str, int] | None = None

    @property
    def selector(self) -> str:
        """The cell in yosys' selection syntax (public module names lose their backslash)."""
        return f"{self.module.removeprefix(chr(92))}/{self.cell}"

    @property
    def logic_cost(self) -> int:
        """Bit products to add up in logic, roughly what the multiplier costs there: a x b, or
        for a constant, the other operand's width times the constant's one bits."""
        if self.constant is None:
            return self.a_width * self.b_width
        port, ones = self.constant
        return (self.b_width if port == "A" else self.a_width) * ones


@dataclass(frozen=True)
class DspPlan:
    """The multipliers on DSP blocks (`hard`, `blocks` of them) and those in logic (`soft`;
    `displaced` of them would have taken a block, the rest are too narrow for one)."""

    hard: tuple[Multiplier, ...]
    soft: tuple[Multiplier, ...]
    blocks: int
    displaced: int


_MODULE = re.compile(r"^module (\S+)$")
_CELL = re.compile(r"^\s*cell \$mul (\S+)$")
_PARAM = re.compile(r"^\s*parameter \\(\w+) (\S+)$")
_CONNECT = re.compile(r"^\s*connect \\([AB]) (.+)$")
_CONSTANT = re.compile(r"^\d+'([01xz]+)$")


def multipliers(rtlil: str) -> list[Multiplier]:
    """Every `$mul` cell of an RTLIL text, in order."""
    found: list[Multiplier] = []
    module, cell, params, constant = "", None, {}, None
    for line in rtlil.splitlines():
        if match := _MODULE.match(line):
            module = match.group(1)
        elif match := _CELL.match(line):
            cell, params, constant = match.group(1), {}, None
        elif cell is None:
            continue
        elif match := _PARAM.match(line):
            params[match.group(1)] = int(match.group(2))
        elif match := _CONNECT.match(line):
            if bits := _CONSTANT.match(match.group(2).strip()):
                constant = (match.group(1), bits.group(1).count("1"))
        elif line.strip() == "end":
            found.append(Multiplier(module, cell, params["A_WIDTH"], params["B_WIDTH"],
                                    params["Y_WIDTH"], constant))
            cell = None
    return found


def plan_dsps(cells: list[Multiplier], family: Family, available: int) -> DspPlan:
    """Give the `available` blocks to the multipliers that save the most logic per block
    (e.g. a requantizer's 21 x 16 bits, 2 blocks, before an 8 x 8 MAC product, 1 block);
    the others go to logic. A product by 0 or a power of two is a shift and takes none."""
    def cost(m: Multiplier) -> int:
        if m.constant is not None and m.constant[1] <= 1:
            return 0  # times 0 or a power of two: yosys makes it a shift
        return family.blocks(m.a_width, m.b_width, m.y_width)

    candidates = sorted((m for m in cells if cost(m) > 0),
                        key=lambda m: (-m.logic_cost / cost(m), m.module, m.cell))
    hard, used = [], 0
    for m in candidates:
        if used + cost(m) <= available:
            hard.append(m)
            used += cost(m)
    chosen = set(hard)
    soft = tuple(m for m in cells if m not in chosen)
    return DspPlan(tuple(hard), soft, used, sum(cost(m) > 0 for m in soft))


def split_synthesis(synth: str, synth_opts: str, top: str, soft: tuple[Multiplier, ...]
                    ) -> tuple[str, str]:
    """(yosys commands to run after reading the design, options for the main `synth`
    command): mark the `soft` cells, synthesize up to `SPLIT_LABEL`, `proc`, turn the marked
    cells into Booth logic or retype them `$__soft_mul`, and let the main command run from
    `SPLIT_LABEL` on."""
    commands = [f"setattr -set {MARK} 1 {' '.join(m.selector for m in soft)}"] if soft else []
    commands += [f"{synth} {synth_opts} -top {top} -run begin:{SPLIT_LABEL}",
                 "proc -latches error",
                 f"booth a:{MARK}",
                 f"chtype -set $__soft_mul t:$mul a:{MARK} %i"]
    return "\n".join(commands), f"{synth_opts} -run {SPLIT_LABEL}:"
