"""The run-time requantizer and the offline multiplier derivation, against hand-computed vectors.

Expected values are written literally with the arithmetic in a comment, or derived from an
independent formula (exact rationals via fractions.Fraction), never from quant.arith itself.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.arith import requantize, rounding_shift
from quant.errors import QuantizationError
from quant.qtypes import IntType, multiplier_and_shift, pow2_shift, signed_bits_for

WIDE = (-(1 << 40), 1 << 40)  # a clamp that never binds


def rq(acc: int, mult: int, shift: int, zero: int = 0, lo: int = WIDE[0], hi: int = WIDE[1]) -> int:
    return int(requantize(np.array(acc), mult, shift, zero, lo, hi))


@pytest.mark.parametrize(("acc", "mult", "shift", "expected"), [
    (3, 1, 1, 2),            # 3/2 = 1.5, a tie, rounds up to 2
    (-3, 1, 1, -1),          # -1.5, a tie, rounds toward +inf: -1
    (1, 1, 1, 1),            # 0.5 -> 1
    (-1, 1, 1, 0),           # -0.5 -> 0
    (6, 1, 2, 2),            # 6/4 = 1.5 -> 2
    (-6, 1, 2, -1),          # -1.5 -> -1
    (-7, 1, 2, -2),          # -1.75 -> -2
    (-5, 1, 2, -1),          # -1.25 -> -1
    (5, 3, 2, 4),            # 15/4 = 3.75 -> 4
    (-5, 3, 2, -4),          # -15/4 = -3.75 -> -4
    (100, 16384, 15, 50),    # 100 * 2^14 / 2^15 = 50 exactly
    (101, 16384, 15, 51),    # 50.5 -> 51
    (-101, 16384, 15, -50),  # -50.5 -> -50
    (1000, 26214, 18, 100),  # 26214000 / 262144 = 99.9985 -> 100
    (-1000, 26214, 18, -100),  # -99.9985 -> -100
    (2**31 - 1, 2**31 - 1, 40, 2**22),  # (2^62 - 2^32 + 1) / 2^40 = 2^22 - 2^-8 + 2^-40 -> 2^22
    (-(2**31), 2**31 - 1, 40, -(2**22)),  # -(2^62 - 2^31) / 2^40 = -2^22 + 2^-9 -> -2^22
])
def test_requantize_hand_vectors(acc, mult, shift, expected):
    assert rq(acc, mult, shift) == expected


@pytest.mark.parametrize(("acc", "zero", "lo", "hi", "expected"), [
    (1000, 0, -128, 127, 127),    # 500 saturates at qmax
    (-1000, 0, -128, 127, -128),  # -500 saturates at qmin
    (200, 50, -128, 127, 127),    # 100 + 50 = 150 > 127
    (-200, 50, -128, 127, -50),   # -100 + 50 = -50, inside
    (-4, 0, 0, 255, 0),           # -2 clamped by a ReLU folded into qmin = 0
    (-4, 10, 0, 255, 8),          # -2 + 10 = 8
    (511, 0, 0, 255, 255),        # (511 + 1) >> 1 = 256 > 255
    (509, 0, 0, 255, 255),        # 254.5 -> 255, exactly qmax
    (507, 0, 0, 6, 6),            # ReLU6-style qmax = 6
])
def test_requantize_zero_point_and_saturation(acc, zero, lo, hi, expected):
    assert rq(acc, 1, 1, zero, lo, hi) == expected


@pytest.mark.parametrize("shift", range(1, 41))
def test_rounding_shift_ties_and_neighbours(shift):
    half = 1 << (shift - 1)
    for k in (0, 1, 7, 1000, (1 << 20) - 1):
        tie = (k << shift) + half  # k + 1/2 exactly
        assert rq(tie, 1, shift) == k + 1  # ties go up
        assert rq(-tie, 1, shift) == -k  # -(k + 1/2) goes up to -k
        assert rq(tie - 1, 1, shift) == k  # just below the tie
        assert rq(-tie - 1, 1, shift) == -k - 1  # just below -(k + 1/2)
        assert rq(k << shift, 1, shift) == k  # exact multiples are untouched
        assert int(rounding_shift(np.array(tie), shift)) == k + 1


def test_requantize_per_channel_broadcast():
    acc = np.array([[10, 10, 10], [-10, -10, -10]])
    mult = np.array([1, 3, 5])
    shift = np.array([1, 2, 3])
    # 10/2 = 5; 30/4 = 7.5 -> 8; 50/8 = 6.25 -> 6; -5; -7.5 -> -7; -6.25 -> -6
    expected = np.array([[5, 8, 6], [-5, -7, -6]])
    np.testing.assert_array_equal(requantize(acc, mult, shift, 0, -128, 127), expected)


@settings(deadline=None)  # a shared, loaded machine must not turn slowness into a failure
@given(acc=st.integers(-(2**31), 2**31), mult=st.integers(1, 2**31 - 1), shift=st.integers(1, 62),
       zero=st.integers(-128, 127))
def test_requantize_is_exact_round_half_up(acc, mult, shift, zero):
    exact = math.floor(Fraction(acc * mult, 2**shift) + Fraction(1, 2)) + zero
    assert rq(acc, mult, shift, zero) == min(max(exact, WIDE[0]), WIDE[1])
    assert rq(acc, mult, shift, zero, -128, 127) == min(max(exact, -128), 127)


@pytest.mark.parametrize(("scale", "bits", "expected"), [
    (0.5, 16, (16384, 15)),        # frexp = (0.5, 0): M = 0.5 * 2^15 = 2^14, n = 15 - 0
    (0.75, 16, (24576, 15)),       # frexp = (0.75, 0): M = 0.75 * 2^15
    (1.0, 16, (16384, 14)),        # frexp = (0.5, 1): n = 15 - 1
    (3.0, 16, (24576, 13)),        # frexp = (0.75, 2)
    (0.1, 16, (26214, 18)),        # frexp = (0.8, -3): 0.8 * 32768 = 26214.4 -> 26214, n = 15 + 3
    (0.5, 32, (2**30, 31)),        # B = 32: M = 0.5 * 2^31
    (0.5 - 2**-18, 16, (16384, 15)),  # frexp = (1 - 2^-17, -1): M = 32767.75 -> 32768 = 2^15,
                                      # so M = 2^14 and e = 0: n = 15
    (2**-48, 16, (16384, 62)),     # frexp = (0.5, -47): n = 15 + 47 = 62, the largest shift
    (2**13, 16, (16384, 1)),       # frexp = (0.5, 14): n = 15 - 14 = 1, the smallest shift
])
def test_multiplier_and_shift_by_hand(scale, bits, expected):
    assert multiplier_and_shift(scale, bits, "layer") == expected


@pytest.mark.parametrize(("scale", "expected"), [
    (2**14, (32768, 1)),      # frexp (0.5, 15) -> M = 16384, n = 0: M * 2^1, n = 1
    (2**20, (2**21, 1)),      # n = -6: M = 16384 * 2^7 = 2^21, n = 1; (acc * 2^21 + 1) >> 1 = acc * 2^20
    (3 * 2**15, (3 * 2**16, 1)),  # frexp (0.75, 17): M = 24576, n = -2 -> 24576 * 8
])
def test_large_scales_move_into_the_multiplier(scale, expected):
    assert multiplier_and_shift(scale, 16, "layer") == expected
    mult, shift = expected
    acc = np.array([-7, -1, 0, 1, 5, 1000])
    np.testing.assert_array_equal(requantize(acc, mult, shift, 0, -2**62, 2**62), acc * int(scale))


@pytest.mark.parametrize("scale", [2**50, 2**-49, 2**-60, 0.0, -0.5, math.inf, math.nan])
def test_multiplier_and_shift_out_of_range_is_a_quantization_error(scale):
    # 2^50: frexp (0.5, 51) -> n = -36; 2^-49: (0.5, -48) -> n = 63; 2^-60 -> n = 74
    with pytest.raises(QuantizationError, match="^conv3: "):
        multiplier_and_shift(scale, 16, "conv3")


@pytest.mark.parametrize(("scale", "expected"), [
    (0.25, (1, 2)),       # -log2(0.25) = 2
    (2**-10, (1, 10)),
    (0.3, (1, 2)),        # -log2(0.3) = 1.74 -> 2
    (4.0, (8, 1)),        # n would be -2: M = 2^(1 - (-2)) = 8, n = 1, acc * 8 / 2 = 4 acc
])
def test_pow2_shift(scale, expected):
    assert pow2_shift(scale, "layer") == expected


def test_pow2_shift_out_of_range():
    with pytest.raises(QuantizationError, match="^fc: "):
        pow2_shift(2**-70, "fc")  # n = 70 > 62


def test_pow2_mode_is_a_plain_rounding_shift():
    # M = 1, n = 3: 12/8 = 1.5 -> 2; -12/8 = -1.5 -> -1; 11/8 = 1.375 -> 1
    np.testing.assert_array_equal(requantize(np.array([12, -12, 11]), 1, 3, 0, -128, 127), [2, -1, 1])


@pytest.mark.parametrize(("itype", "qmin", "qmax", "storage"), [
    (IntType(8, True), -128, 127, np.int8),
    (IntType(8, False), 0, 255, np.uint8),
    (IntType(4, True), -8, 7, np.int8),
    (IntType(2, False), 0, 3, np.uint8),
    (IntType(16, True), -32768, 32767, np.int16),
    (IntType(12, False), 0, 4095, np.uint16),
    (IntType(32, True), -(2**31), 2**31 - 1, np.int32),
    (IntType(33, True), -(2**32), 2**32 - 1, np.int64),
])
def test_int_type_ranges(itype, qmin, qmax, storage):
    assert (itype.qmin, itype.qmax, itype.storage) == (qmin, qmax, np.dtype(storage))


@pytest.mark.parametrize(("bound", "bits"), [
    (0, 2), (1, 2), (2, 3), (127, 8), (128, 9), (2**52 - 1, 53), (2**52, 54)])
def test_signed_bits_for(bound, bits):
    # [-127, 127] fits int8; 128 needs 9 bits; 2^52 - 1 fits [-2^52, 2^52 - 1] (53 bits)
    assert signed_bits_for(bound) == bits
