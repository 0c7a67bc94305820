"""The designs of the RTL matrix (`tests/test_rtl_matrix.py`, docs/hardware-matrix.md): every
hardware block at widths 4 and 8 on two fold settings, each a DUT bound to its own bench's
golden check (`sim.tb_*`), so one test runs any of them on any simulator.

Designs are small (a few channels, images of at most 6 x 6) so that the matrix's builds stay
quick. Width 4 takes power-of-two requantizers (with ReLU where the block has one), width 8
dyadic multipliers. Every design draws its weights and stimulus from its own seed, so no two
of them emit the same Verilog (and no two test workers build in one folder).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from amaranth.lib import wiring

from hw.fold import Fold
from hw.layers.add import AddEngine
from hw.layers.affine import AffineEngine
from hw.layers.argmax import ArgMaxEngine
from hw.layers.clamp import ClampEngine
from hw.layers.concat import ConcatEngine
from hw.layers.gap import GlobalAvgPoolEngine
from hw.layers.lut import LutEngine
from hw.layers.mul import MulEngine
from hw.mac import MacArray
from hw.requant import Requantizer
from hw.shapes import shape_of
from quant import ir
from quant.qtypes import IntType
from sim.bench import Transcript
from sim.tb_conv2d import check_engine, random_conv_engine, tensors
from sim.tb_dense import check_dense, random_dense
from sim.tb_elementwise import (check_op, random_add, random_affine, random_clamp, random_gap,
                                random_lut, random_mul, samples_of)
from sim.tb_mac import check_mac
from sim.tb_pool import random_avg_engine, random_max_engine
from sim.tb_requant import check_requant
from sim.vectors import operands, random_gemm, random_requant

SHAPE = (6, 2, 3)  # (C, H, W) of the elementwise blocks: 36 elements
SAMPLES = 5  # per elementwise run; one more vector for the MAC engines
IMAGES = 4  # per conv and pool run: all max, all min, alternating, random


@dataclass(frozen=True)
class Design:
    """A block to simulate and its check: `check(run, gap=, stall=, seed=)` sends the stimulus
    through `run` and asserts every output equals the golden kernel's (the message names the
    block, sample, output index, expected and actual value)."""

    dut: wiring.Component
    check: Callable[..., Transcript]


Builder = Callable[[int, object, int], Design]  # (bits, fold setting, seed) -> Design


@dataclass(frozen=True)
class Block:
    """How to build a block, and its two fold settings by label."""

    build: Builder
    settings: dict[str, object]


def seed_of(label: str) -> int:
    """A stable seed per design label (Python's `hash` of a str changes between runs)."""
    return zlib.crc32(label.encode())


def types(bits: int) -> tuple[IntType, IntType]:
    return IntType(bits, True), IntType(bits, False)


# --- MAC engines: fold (P, S) ----------------------------------------------------------------

def requantizer(bits: int, lanes: int, seed: int) -> Design:
    """7 channels of accumulators of 3*bits bits, scaled so the outputs reach both clamps."""
    rng = np.random.default_rng(seed)
    channels, acc_bits, out_type = 7, 3 * bits, IntType(bits, True)
    scales = 2.0 ** rng.uniform(bits - acc_bits - 1, bits - acc_bits + 2, size=channels)
    rq = random_requant(scales, out_type, rng, pow2=bits == 4, relu=bits == 4)
    block = Requantizer(rq, acc_bits=acc_bits, out_type=out_type, lanes=lanes, channels=channels)
    acc = operands(IntType(acc_bits, True), 40, lanes, rng)
    index = rng.integers(0, block.groups, size=len(acc))
    return Design(block, partial(check_requant, block, channels, acc, index))


def mac_array(bits: int, fold: Fold, seed: int) -> Design:
    """5 x 7 weights; unsigned inputs at width 4, signed at width 8."""
    rng = np.random.default_rng(seed)
    in_type = IntType(bits, bits == 8)
    op = random_gemm(rng, outputs=5, inputs=7, in_type=in_type, weight_bits=bits,
                     out_type=IntType(bits, True), name="mac")
    mac = MacArray(op.weight, op.bias, in_shape=shape_of(in_type),
                   acc_bits=int(max(op.acc_bits)), fold=fold)
    return Design(mac, partial(check_mac, mac, op, operands(in_type, SAMPLES + 1, 7, rng)))


def dense(bits: int, fold: Fold, seed: int) -> Design:
    engine, x = random_dense(bits, fold, outputs=6, inputs=9, pow2=bits == 4, relu=bits == 4,
                             seed=seed, samples=SAMPLES + 1)
    return Design(engine, partial(check_dense, engine, x))


def conv(layer: dict) -> Builder:
    """A Conv2d builder for `layer`; the setting is (fold, input lanes)."""

    def build(bits: int, setting: tuple[Fold, int], seed: int) -> Design:
        fold, in_lanes = setting
        engine, x = random_conv_engine(bits, fold, in_lanes=in_lanes, seed=seed, samples=IMAGES,
                                       **layer)
        return Design(engine, partial(check_engine, engine, x))

    return build


# --- the other engines: lanes ----------------------------------------------------------------

def maxpool(bits: int, setting: tuple[int, int], seed: int) -> Design:
    """2x3 window, strides (2, 1), asymmetric padding; signed int4 or unsigned int8."""
    lanes, in_lanes = setting
    itype = IntType(bits, bits == 4)
    engine = random_max_engine(itype, in_shape=(4, 5, 6), kernel=(2, 3), strides=(2, 1),
                               pads=(1, 1, 0, 1), lanes=lanes, in_lanes=in_lanes)
    x = tensors(itype, IMAGES, engine.window.shape, np.random.default_rng(seed))
    return Design(engine, partial(check_engine, engine, x))


def avgpool(bits: int, setting: tuple[int, int], seed: int) -> Design:
    """3x3 window, stride 2, padding not counted (divisors 4, 6, 9); signed int4 to unsigned,
    or unsigned int8 to signed."""
    lanes, in_lanes = setting
    in_type, out_type = IntType(bits, bits == 4), IntType(bits, bits != 4)
    engine = random_avg_engine(in_type, out_type, in_shape=(4, 5, 5), kernel=(3, 3),
                               strides=(2, 2), pads=(1, 1, 1, 1), lanes=lanes,
                               in_lanes=in_lanes, seed=seed, pow2=bits == 4)
    x = tensors(in_type, IMAGES, engine.window.shape, np.random.default_rng(seed))
    return Design(engine, partial(check_engine, engine, x))


def _elementwise(engine: wiring.Component, op: ir.Op, xs: list[np.ndarray]) -> Design:
    return Design(engine, partial(check_op, engine, op, xs))


def global_avg_pool(bits: int, lanes: int, seed: int) -> Design:
    rng = np.random.default_rng(seed)
    signed, unsigned = types(bits)
    shape = (4, 2, 3)
    op = random_gap(rng, shape, unsigned, signed, pow2=bits == 4)
    engine = GlobalAvgPoolEngine(op, shape=shape, in_type=unsigned, out_type=signed, lanes=lanes)
    return _elementwise(engine, op, [samples_of(unsigned, SAMPLES, shape, rng)])


def _two_operands(engine_class: type, make_op: Callable[..., ir.Op], bits: int, lanes: int,
                  seed: int) -> Design:
    """A two-input elementwise block on a signed and an unsigned operand (the second one's
    samples reversed, so the operands differ), power-of-two scales at width 4."""
    rng = np.random.default_rng(seed)
    signed, unsigned = types(bits)
    op = make_op(rng, (signed, unsigned), signed, pow2=bits == 4)
    engine = engine_class(op, in_types=(signed, unsigned), out_type=signed, lanes=lanes)
    return _elementwise(engine, op, [samples_of(signed, SAMPLES, SHAPE, rng),
                                     samples_of(unsigned, SAMPLES, SHAPE, rng, reverse=True)])


def add(bits: int, lanes: int, seed: int) -> Design:
    """A residual Add, with ReLU at width 4."""
    return _two_operands(AddEngine, partial(random_add, relu=bits == 4), bits, lanes, seed)


def mul(bits: int, lanes: int, seed: int) -> Design:
    return _two_operands(MulEngine, random_mul, bits, lanes, seed)


def concat(bits: int, lanes: int, seed: int) -> Design:
    """Channel concat of (2, 2, 3) and (4, 2, 3)."""
    rng = np.random.default_rng(seed)
    signed, _ = types(bits)
    shapes = [(2, 2, 3), (4, 2, 3)]
    op = ir.Concat(name="concat", inputs=["a", "b"], outputs=["y"], axis=1)
    engine = ConcatEngine(op, shapes=shapes, itype=signed, lanes=lanes)
    return _elementwise(engine, op, [samples_of(signed, SAMPLES, s, rng) for s in shapes])


def lut(bits: int, lanes: int, seed: int) -> Design:
    rng = np.random.default_rng(seed)
    signed, unsigned = types(bits)
    op = random_lut(rng, signed, unsigned)
    engine = LutEngine(op, in_type=signed, out_type=unsigned, lanes=lanes)
    return _elementwise(engine, op, [samples_of(signed, SAMPLES, SHAPE, rng)])


def affine(bits: int, lanes: int, seed: int) -> Design:
    """Per-channel gains and offsets (a folded BatchNorm)."""
    rng = np.random.default_rng(seed)
    signed, unsigned = types(bits)
    op = random_affine(rng, unsigned, signed, (SHAPE[0], 1, 1), pow2=bits == 4)
    engine = AffineEngine(op, shape=SHAPE, in_type=unsigned, out_type=signed, lanes=lanes)
    return _elementwise(engine, op, [samples_of(unsigned, SAMPLES, SHAPE, rng)])


def clamp(bits: int, lanes: int, seed: int) -> Design:
    rng = np.random.default_rng(seed)
    signed, _ = types(bits)
    op = random_clamp(rng, signed)
    engine = ClampEngine(op, itype=signed, lanes=lanes)
    return _elementwise(engine, op, [samples_of(signed, SAMPLES, SHAPE, rng)])


def argmax(bits: int, lanes: int, seed: int) -> Design:
    """Vectors of 9 with ties: all equal, equal maxima in different beats and in one beat."""
    rng = np.random.default_rng(seed)
    signed, _ = types(bits)
    x = samples_of(signed, SAMPLES + 2, (9,), rng)
    x[4] = 1
    x[5, [2, 8]] = signed.qmax
    x[6, [0, 1]] = signed.qmax
    op = ir.ArgMax(name="argmax", inputs=["x"], outputs=["y"], axis=1, keepdims=False)
    engine = ArgMaxEngine(op, shape=(9,), in_type=signed, lanes=lanes)
    return _elementwise(engine, op, [x])


def _folds(*folds: Fold) -> dict[str, Fold]:
    return {f"P{f.outputs}S{f.inputs}": f for f in folds}


def _lanes(*lanes: int) -> dict[str, int]:
    return {f"L{n}": n for n in lanes}


def _conv_settings(*settings: tuple[Fold, int]) -> dict[str, tuple[Fold, int]]:
    return {f"P{f.outputs}S{f.inputs}-in{n}": (f, n) for f, n in settings}


def _pool_settings(*settings: tuple[int, int]) -> dict[str, tuple[int, int]]:
    return {f"L{n}-in{i}": (n, i) for n, i in settings}


BLOCKS: dict[str, Block] = {
    "requant": Block(requantizer, _lanes(1, 3)),
    "mac": Block(mac_array, _folds(Fold(2, 3), Fold(4, 8))),
    "dense": Block(dense, _folds(Fold(1, 2), Fold(4, 4))),
    "conv2d": Block(conv(dict(in_shape=(3, 5, 4), out_channels=4, kernel=(3, 3),
                              pads=(1, 1, 1, 1), name="conv2d")),
                    _conv_settings((Fold(2, 3), 1), (Fold(4, 9), 3))),
    "conv2d-grouped": Block(conv(dict(in_shape=(4, 4, 5), out_channels=6, kernel=(2, 3),
                                      strides=(1, 2), pads=(1, 0, 0, 1), group=2,
                                      name="grouped")),
                            _conv_settings((Fold(2, 3), 1), (Fold(3, 6), 4))),
    "conv2d-depthwise": Block(conv(dict(in_shape=(4, 5, 5), out_channels=4, kernel=(3, 3),
                                        strides=(2, 2), pads=(1, 1, 1, 1), group=4,
                                        name="depthwise")),
                              _conv_settings((Fold(2, 3), 1), (Fold(4, 9), 4))),
    "maxpool": Block(maxpool, _pool_settings((1, 1), (2, 4))),
    "avgpool": Block(avgpool, _pool_settings((1, 1), (2, 4))),
    "gap": Block(global_avg_pool, _lanes(1, 4)),
    "add": Block(add, _lanes(2, 5)),
    "concat": Block(concat, _lanes(1, 2)),
    "lut": Block(lut, _lanes(2, 5)),
    "mul": Block(mul, _lanes(2, 5)),
    "affine": Block(affine, _lanes(2, 5)),
    "clamp": Block(clamp, _lanes(2, 5)),
    "argmax": Block(argmax, _lanes(2, 4)),
}


def labels() -> list[tuple[str, int, str]]:
    """(block, bits, setting) of every design in the matrix."""
    return [(name, bits, setting) for name, block in BLOCKS.items() for bits in (4, 8)
            for setting in block.settings]


def design(name: str, bits: int, setting: str) -> Design:
    """The design labelled (block `name`, width `bits`, fold `setting`), seeded by its label."""
    block = BLOCKS[name]
    return block.build(bits, block.settings[setting], seed_of(f"{name}-{bits}-{setting}"))
