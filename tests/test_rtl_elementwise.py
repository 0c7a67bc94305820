# amaranth: UnusedElaboratable=no
"""Add, Lut, Concat and GlobalAvgPool as Verilog on Icarus and Verilator (the in-design
harness, `sim.runner.run_fast`), bit-exact against the golden kernels, with the same cycle
formulas as on Amaranth's simulator and with gaps (independent per input) and backpressure."""
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hw.layers.add import AddEngine
from hw.layers.concat import ConcatEngine
from hw.layers.gap import GlobalAvgPoolEngine
from hw.layers.lut import LutEngine
from quant import ir
from quant.qtypes import IntType
from sim import runner
from sim.tb_elementwise import (check_cycles, check_op, random_add, random_gap, random_lut,
                                samples_of)

SAMPLES = 6
SHAPE = (6, 2, 3)


def add_design(rng):
    """int8 residual Add, 3 lanes: a signed and an unsigned input, 12 beats per sample."""
    int8, uint8 = IntType(8, True), IntType(8, False)
    op = random_add(rng, (int8, uint8), int8)
    engine = AddEngine(op, in_types=(int8, uint8), out_type=int8, lanes=3)
    xs = [samples_of(int8, SAMPLES, SHAPE, rng), samples_of(uint8, SAMPLES, SHAPE, rng,
                                                            reverse=True)]
    return engine, op, xs, 12, engine.latency


def lut_design(rng):
    """int4 -> uint4 table, 1 lane: 36 beats per sample."""
    int4, uint4 = IntType(4, True), IntType(4, False)
    op = random_lut(rng, int4, uint4)
    engine = LutEngine(op, in_type=int4, out_type=uint4, lanes=1)
    return engine, op, [samples_of(int4, SAMPLES, SHAPE, rng)], 36, engine.latency


def concat_design(rng):
    """int8 channel concat of (2, 2, 3) and (4, 2, 3), 2 lanes: 18 beats per sample."""
    int8 = IntType(8, True)
    shapes = [(2, 2, 3), (4, 2, 3)]
    op = ir.Concat(name="concat", inputs=["a", "b"], outputs=["y"], axis=1)
    engine = ConcatEngine(op, shapes=shapes, itype=int8, lanes=2)
    xs = [samples_of(int8, SAMPLES, s, rng) for s in shapes]
    return engine, op, xs, 18, engine.latency


def gap_design(rng):
    """uint4 -> int4 global average pool of (6, 2, 3), 2 lanes: 18 beats per sample."""
    uint4, int4 = IntType(4, False), IntType(4, True)
    op = random_gap(rng, SHAPE, uint4, int4)
    engine = GlobalAvgPoolEngine(op, shape=SHAPE, in_type=uint4, out_type=int4, lanes=2)
    return engine, op, [samples_of(uint4, SAMPLES, SHAPE, rng)], 18, engine.latency


DESIGNS: dict[str, Callable] = {"add": add_design, "lut": lut_design, "concat": concat_design,
                                "gap": gap_design}


@pytest.mark.parametrize("simulator", runner.SIMULATORS)
@pytest.mark.parametrize("design", DESIGNS)
def test_rtl_matches_golden(design, simulator, tmp_path: Path):
    engine, op, xs, beats, latency = DESIGNS[design](np.random.default_rng(len(design)))

    def run(folder: str):
        return lambda case: runner.run_fast(engine, simulator, case, tmp_path / folder)

    transcript = check_op(engine, op, xs, run("full-rate"))
    check_cycles(op.name, transcript, SAMPLES * beats + latency,
                 f"{SAMPLES} samples x {beats} beats + latency {latency}")
    check_op(engine, op, xs, run("gaps"), gap=0.4, stall=0.4, seed=7)
