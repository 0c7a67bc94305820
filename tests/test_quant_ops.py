"""Each golden kernel against an independent reference.

Convolutions and pools are recomputed by torch in float64 on integer-valued tensors (exact:
every sum here is far below 2^53), dot products and elementwise formulas with Python
integers and fractions.Fraction, layout operators by onnx's reference evaluator. The
requantizer itself is proven by hand vectors in test_quant_arith.py, so it is reused here,
and the kernels' in-place copy of it is compared with it. Every kernel also runs on narrow
storage dtypes (as the golden model stores tensors), and keeps its outputs out of the
scratch memory it reuses.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from quant import ir
from quant.arith import requantize
from quant.ops import KERNELS, kernel_for, linear
from quant.ops.checks import ContractError, WidthError
from quant.ops.dtypes import narrowest
from quant.ops.matmul import (FLOAT32_EXACT, FLOAT64_EXACT, channel_sums, dot_bound, exact_dtype, exact_matmul,
                              magnitude)
from quant.ops.requant import requantize_scratch
from quant.qtypes import signed_bits_for


def run_op(op: ir.Op, *inputs: np.ndarray) -> np.ndarray:
    return kernel_for(op)(op, *(np.asarray(x, np.int64) for x in inputs))


def round_half_up(num: int, den: int) -> int:
    return math.floor(Fraction(num, den) + Fraction(1, 2))


def clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


def random_requant(rng: np.random.Generator, channels: int, zero: int = 3,
                   qmin: int = -128, qmax: int = 127) -> ir.Requant:
    return ir.Requant(multiplier=rng.integers(2**13, 2**15, channels), shift=rng.integers(20, 26, channels),
                      zero_point=zero, qmin=qmin, qmax=qmax)


def acc_bits_for(weight: np.ndarray, bias: np.ndarray, x_max: int) -> np.ndarray:
    """SPEC's bound per output channel: sum|w_c| * max|x| + |b_c|, in Python ints."""
    sums = np.abs(weight).reshape(len(weight), -1).sum(axis=1)
    return np.array([signed_bits_for(int(s) * x_max + abs(int(b))) for s, b in zip(sums, bias)])


def requant_per_channel(acc: np.ndarray, rq: ir.Requant, shape: tuple[int, ...]) -> np.ndarray:
    return requantize(acc, rq.multiplier.reshape(shape), rq.shift.reshape(shape), rq.zero_point, rq.qmin, rq.qmax)


def to_torch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, np.float64))


def from_torch(t: torch.Tensor) -> np.ndarray:
    out = t.numpy()
    assert np.array_equal(out, np.round(out)), "float64 reference lost integrality"
    return out.astype(np.int64)


def torch_pad(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> torch.Tensor:
    top, left, bottom, right = pads
    return F.pad(to_torch(x), (left, right, top, bottom), value=value)


def test_every_ir_class_has_exactly_one_kernel():
    assert set(KERNELS) == set(ir.OP_CLASSES)


def test_unknown_op_class_has_no_kernel():
    class Mystery(ir.Op):
        pass

    with pytest.raises(NotImplementedError, match="Mystery 'm'"):
        kernel_for(Mystery(name="m", inputs=[], outputs=[]))


# ---------------------------------------------------------------------------- Conv, Gemm

CONV_CASES = {
    # name: (N, C_in, H, W, C_out, kernel, strides, pads (t, l, b, r), dilations, group, signed input)
    "3x3_same": (2, 3, 7, 7, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    "stride2_asym_pads": (2, 3, 8, 7, 4, (3, 3), (2, 2), (0, 1, 2, 0), (1, 1), 1, True),
    "dilation2": (1, 2, 9, 9, 3, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1, False),
    "rect_kernel_mixed": (2, 2, 7, 9, 3, (2, 3), (2, 1), (1, 0, 0, 2), (1, 2), 1, True),
    "groups2": (2, 4, 6, 6, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, True),
    "depthwise": (2, 5, 6, 6, 5, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5, False),
    "depthwise_x2_stride2": (1, 3, 7, 7, 6, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 3, True),
    "pointwise": (3, 4, 5, 5, 7, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, False),
    # geometries of the flat padded grid (quant.ops.windows.unroll): output rows wider than
    # W + max(left, right), padding taller than the kernel, a window larger than the image
    "pointwise_wide_pads": (2, 2, 5, 6, 3, (1, 1), (1, 1), (2, 3, 2, 1), (1, 1), 1, True),
    "pads_beyond_kernel": (1, 1, 3, 4, 2, (2, 2), (1, 1), (3, 0, 3, 1), (1, 1), 1, False),
    "kernel_over_image": (2, 2, 2, 2, 3, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, True),
    "stride2_dilation2_asym": (2, 3, 9, 10, 4, (3, 2), (2, 1), (1, 2, 0, 1), (2, 2), 1, False),
    "stride_1x2": (1, 2, 6, 9, 3, (2, 3), (1, 2), (0, 1, 1, 0), (1, 1), 1, True),
    "groups3_x2_dilated": (2, 6, 7, 7, 6, (3, 3), (1, 1), (2, 1, 2, 1), (2, 1), 3, True),
}


def conv_case(case: str, n: int | None = None) -> tuple[ir.Conv, np.ndarray, np.ndarray]:
    """(op, x, expected output) of a CONV_CASES entry, expected from torch in float64."""
    batch, c_in, h, w, c_out, kernel, strides, pads, dilations, group, signed = CONV_CASES[case]
    rng = np.random.default_rng(sorted(CONV_CASES).index(case))
    lo, hi = (-128, 127) if signed else (0, 255)
    zero = int(rng.integers(lo, hi + 1))
    x = rng.integers(lo, hi + 1, (n or batch, c_in, h, w))
    weight = rng.integers(-127, 128, (c_out, c_in // group) + kernel)
    bias = rng.integers(-5000, 5000, c_out)
    op = ir.Conv(name="c", inputs=["x"], outputs=["y"], weight=weight, bias=bias,
                 requant=random_requant(rng, c_out), strides=strides, pads=pads, dilations=dilations,
                 group=group, pad_value=zero, acc_bits=acc_bits_for(weight, bias, max(-lo, hi)))
    ref = F.conv2d(torch_pad(x, pads, zero), to_torch(weight), stride=strides, dilation=dilations, groups=group)
    acc = from_torch(ref) + bias[:, None, None]
    return op, x, requant_per_channel(acc, op.requant, (-1, 1, 1))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_torch(case):
    op, x, expected = conv_case(case)
    np.testing.assert_array_equal(run_op(op, x), expected)
    storage = np.int8 if x.min() < 0 else np.uint8  # how the golden model stores the input
    np.testing.assert_array_equal(kernel_for(op)(op, x.astype(storage)), expected)


@pytest.mark.parametrize("case", ["3x3_same", "stride2_dilation2_asym", "groups3_x2_dilated"])
def test_conv_in_chunks_of_images_matches_torch(case, monkeypatch):
    op, x, expected = conv_case(case, n=7)
    per_image = x[0].size * op.weight.shape[2] * op.weight.shape[3] * 4  # float32 unrolled bytes
    monkeypatch.setattr(linear, "CHUNK_BYTES", 3 * per_image)  # chunks of 3, 3 and 1 images
    np.testing.assert_array_equal(run_op(op, x), expected)


def test_conv_width_check_reads_the_values_not_the_worst_case():
    op, x, expected = conv_case("3x3_same")
    dots = from_torch(F.conv2d(torch_pad(x, op.pads, op.pad_value), to_torch(op.weight)))
    reached = signed_bits_for(int(np.abs(dots + op.bias[:, None, None]).max()))
    assert reached < op.acc_bits.min()  # random data stays below the worst case
    op.acc_bits = np.full_like(op.acc_bits, reached)  # true for these values, not provable from weights
    np.testing.assert_array_equal(run_op(op, x), expected)
    op.acc_bits -= 1
    with pytest.raises(WidthError, match=f"^Conv 'c': channel .* not fit its proven {reached - 1} signed bits"):
        run_op(op, x)


def reference_conv(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Unpadded stride-1 convolution in int64 numpy (exact below 2^63), windows by numpy."""
    windows = np.lib.stride_tricks.sliding_window_view(x, weight.shape[2:], axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", windows, weight)


@pytest.mark.parametrize(("limit", "dtypes"), [(FLOAT32_EXACT, [np.float32, np.float64, np.int64]),
                                               (FLOAT64_EXACT, [np.float64, np.int64])])
def test_conv_dtypes_agree_on_large_values_near_their_exactness_limit(limit, dtypes, monkeypatch):
    rng = np.random.default_rng(limit.bit_length())
    k = 2 * 3 * 3  # terms per dot product
    x_max = math.isqrt((limit - 1) // k) + 1  # k * (x_max - 1)^2 < limit
    x = rng.integers(-x_max + 1, x_max, (3, 2, 5, 5))
    weight = rng.integers(-x_max + 1, x_max, (4, 2, 3, 3))
    x[0, :, :3, :3], weight[0] = x_max - 1, x_max - 1  # one accumulator is the bound itself
    bound = dot_bound(magnitude(x), channel_sums(weight))
    assert limit // 2 < bound < limit and exact_dtype(bound) == dtypes[0]
    expected = reference_conv(x, weight)
    assert expected[0, 0, 0, 0] == bound
    rq = ir.Requant(multiplier=np.full(4, 2), shift=np.ones(4, np.int64), zero_point=0, qmin=-(2**62), qmax=2**62)
    op = ir.Conv(name="big", inputs=["x"], outputs=["y"], weight=weight, bias=np.zeros(4, np.int64), requant=rq,
                 strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1, pad_value=0,
                 acc_bits=np.full(4, signed_bits_for(bound)))
    for dtype in dtypes:  # every exact dtype gives the same bits, M = 2, n = 1 passes acc through
        monkeypatch.setattr(linear, "exact_dtype", lambda _, dtype=dtype: np.dtype(dtype))
        np.testing.assert_array_equal(run_op(op, x), expected, err_msg=str(dtype))


def test_gemm_matches_python_dot_products():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (3, 20))
    weight = rng.integers(-127, 128, (5, 20))
    bias = rng.integers(-3000, 3000, 5)
    rq = ir.Requant(multiplier=rng.integers(2**13, 2**15, 5), shift=rng.integers(18, 24, 5),
                    zero_point=-7, qmin=-128, qmax=127)
    op = ir.Gemm(name="fc", inputs=["x"], outputs=["y"], weight=weight, bias=bias, requant=rq,
                 acc_bits=acc_bits_for(weight, bias, 128))
    expected = [[clamp(round_half_up((sum(int(a) * int(b) for a, b in zip(row, weight[c])) + int(bias[c]))
                                     * int(rq.multiplier[c]), 2 ** int(rq.shift[c])) - 7, -128, 127)
                 for c in range(5)] for row in x]
    np.testing.assert_array_equal(run_op(op, x), expected)


def test_gemm_on_the_last_axis_of_3d_input():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (2, 3, 6))
    weight = rng.integers(-127, 128, (4, 6))
    bias = np.zeros(4, np.int64)
    rq = ir.Requant(multiplier=np.array([1]), shift=np.array([1]), zero_point=0, qmin=-(2**20), qmax=2**20)
    op = ir.Gemm(name="fc", inputs=["x"], outputs=["y"], weight=weight, bias=bias, requant=rq,
                 acc_bits=acc_bits_for(weight, bias, 255))
    acc = np.einsum("ntk,ck->ntc", x, weight)  # int64 einsum, exact
    np.testing.assert_array_equal(run_op(op, x), (acc + 1) >> 1)  # M = 1, n = 1: round half up of acc/2


def python_matmul(x: np.ndarray, weight: np.ndarray) -> list[list[int]]:
    return [[sum(int(a) * int(b) for a, b in zip(row, col)) for col in weight] for row in x]


def test_float64_and_int64_matmul_agree_just_below_2_53():
    rng = np.random.default_rng(3)
    x = rng.integers(-(2**25) + 1, 2**25, (6, 4))
    x[0, 0] = 2**25 - 1
    weight = rng.integers(-(2**26) + 1, 2**26, (3, 4))
    weight[0, :] = 2**26 - 1
    bound = dot_bound(magnitude(x), channel_sums(weight))  # (2^28 - 4) * (2^25 - 1): just below 2^53
    assert 2**52 < bound < FLOAT64_EXACT
    assert exact_dtype(bound) == np.float64
    exact = python_matmul(x, weight)
    np.testing.assert_array_equal(exact_matmul(x, weight.T, np.dtype(np.float64)).astype(np.int64), exact)
    np.testing.assert_array_equal(exact_matmul(x, weight.T, np.dtype(np.int64)).astype(np.int64), exact)


def test_float32_matmul_is_exact_just_below_2_24():
    rng = np.random.default_rng(12)
    x = rng.integers(-(2**10) + 1, 2**10, (50, 4))
    x[0] = 2**10 - 1
    weight = rng.integers(-(2**12) + 1, 2**12, (7, 4))
    weight[0] = 2**12 - 1  # row 0 times column 0 is the bound itself, every partial sum large
    bound = dot_bound(magnitude(x), channel_sums(weight))  # 4 * (2^12 - 1) * (2^10 - 1): just below 2^24
    assert 2**23 < bound < FLOAT32_EXACT
    assert exact_dtype(bound) == np.float32
    exact = python_matmul(x, weight)
    assert exact[0][0] == bound
    np.testing.assert_array_equal(exact_matmul(x, weight.T, np.dtype(np.float32)).astype(np.int64), exact)


@pytest.mark.parametrize(("limit", "narrow", "wide"), [(FLOAT32_EXACT, np.float32, np.float64),
                                                       (FLOAT64_EXACT, np.float64, np.int64)])
def test_wider_path_is_taken_at_the_exactness_limit(limit, narrow, wide):
    x = np.array([[limit, 1]])
    weight = np.array([[1, 1]])
    assert int(np.matmul(x.astype(narrow), weight.T.astype(narrow))[0, 0]) == limit  # narrow loses the 1
    bound = dot_bound(magnitude(x), channel_sums(weight))
    assert bound >= limit and exact_dtype(bound) == wide
    assert int(exact_matmul(x, weight.T, exact_dtype(bound))[0, 0]) == limit + 1


def test_matmul_beyond_int64_is_a_width_error():
    with pytest.raises(WidthError, match="partial sums up to 9223372036854775808 do not fit int64"):
        exact_dtype(dot_bound(2**62, channel_sums(np.array([[2]]))))


def test_magnitude_of_the_most_negative_int64():
    assert magnitude(np.array([-(2**63), 5])) == 2**63  # numpy's abs would wrap to -2^63
    assert magnitude(np.zeros((0, 3), np.int64)) == 0


@pytest.mark.parametrize("weight_bits", [26, 30])  # accumulator bound below / above 2^53
def test_conv_with_wide_accumulator_is_exact(weight_bits):
    rng = np.random.default_rng(weight_bits)
    x = rng.integers(2**21, 2**22, (1, 2, 3, 3))  # same-signed terms: |acc| near its bound
    weight = rng.integers(2 ** (weight_bits - 1), 2**weight_bits, (2, 2, 2, 2)) * np.array([1, -1]).reshape(2, 1, 1, 1)
    bias = np.array([12345, -54321])
    acc_bits = acc_bits_for(weight, bias, 2**22)
    assert (acc_bits.max() <= 53) == (weight_bits == 26)
    # M = 2, n = 1: y = (2*acc + 1) >> 1 = acc, so every accumulator bit reaches the output
    rq = ir.Requant(multiplier=np.array([2, 2]), shift=np.array([1, 1]), zero_point=0,
                    qmin=-(2**62), qmax=2**62)
    op = ir.Conv(name="wide", inputs=["x"], outputs=["y"], weight=weight, bias=bias, requant=rq,
                 strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1, pad_value=0, acc_bits=acc_bits)
    expected = np.zeros((1, 2, 2, 2), np.int64)
    for c, i, j in np.ndindex(2, 2, 2):
        expected[0, c, i, j] = sum(int(x[0, k, i + di, j + dj]) * int(weight[c, k, di, dj])
                                   for k, di, dj in np.ndindex(2, 2, 2)) + int(bias[c])
    np.testing.assert_array_equal(run_op(op, x), expected)
    in_float = F.conv2d(to_torch(x), to_torch(weight)).numpy() + bias[:, None, None]
    assert np.array_equal(in_float, expected) == (weight_bits == 26)  # float64 alone fails above 2^53


def narrow_gemm(acc_bits: list[int], multiplier: list[int]) -> ir.Gemm:
    return ir.Gemm(name="fc1", inputs=["x"], outputs=["y"], weight=np.array([[1, 1], [100, 100]]),
                   bias=np.zeros(2, np.int64), acc_bits=np.array(acc_bits),
                   requant=ir.Requant(multiplier=np.array(multiplier), shift=np.array([8, 8]),
                                      zero_point=0, qmin=-128, qmax=127))


def test_width_check_fires_on_an_understated_accumulator():
    # acc = [200, 20000]: 200 fits 9 signed bits, 20000 needs 16 (2^14 <= 20000 < 2^15)
    run_op(narrow_gemm([9, 16], [1, 1]), np.array([[100, 100]]))
    with pytest.raises(WidthError, match=r"^Gemm 'fc1': channel 1 accumulator 20000 .* 15 signed bits"):
        run_op(narrow_gemm([9, 15], [1, 1]), np.array([[100, 100]]))


def test_width_check_fires_when_the_multiplier_product_overflows_int64():
    # 48 accumulator bits + 17 multiplier bits (2^16) > 63
    with pytest.raises(WidthError, match="^Gemm 'fc1': channel 1 accumulator of 48 bits times multiplier 65536"):
        run_op(narrow_gemm([40, 48], [2**20, 2**16]), np.array([[100, 100]]))


def test_width_error_is_an_assertion_error():
    assert issubclass(WidthError, AssertionError) and issubclass(ContractError, AssertionError)


def test_product_check_looks_at_each_channel_when_the_extremes_do_not_fit():
    # the widest accumulator (50 bits) and the largest multiplier (41 bits) are on different
    # channels: 50 + 2 and 10 + 41 both fit 63 bits
    rng = np.random.default_rng(13)
    x = rng.integers(-100, 100, (4, 2))
    gemm = ir.Gemm(name="fc", inputs=["x"], outputs=["y"], weight=np.array([[3, -2], [1, 1]]),
                   bias=np.array([7, -9]), acc_bits=np.array([50, 10]),
                   requant=ir.Requant(multiplier=np.array([2, 2**40]), shift=np.array([1, 41]),
                                      zero_point=0, qmin=-(2**20), qmax=2**20))
    acc = x @ gemm.weight.T + gemm.bias
    np.testing.assert_array_equal(run_op(gemm, x), requantize(acc, gemm.requant.multiplier,
                                                              gemm.requant.shift, 0, -(2**20), 2**20))


# ---------------------------------------------------------------------------- pools

POOL_CASES = {
    # name: (kernel, strides, pads (t, l, b, r), dilations)
    "2x2_s2": ((2, 2), (2, 2), (0, 0, 0, 0), (1, 1)),
    "3x3_s2_p1": ((3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "2x2_p1": ((2, 2), (1, 1), (1, 1, 1, 1), (1, 1)),
    "asym": ((3, 2), (1, 2), (0, 1, 2, 0), (1, 1)),
    "dilated": ((2, 2), (1, 1), (0, 0, 1, 1), (2, 2)),
}


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_matches_torch(case):
    kernel, strides, pads, dilations = POOL_CASES[case]
    x = np.random.default_rng(4).integers(-128, 128, (2, 3, 7, 8))
    op = ir.MaxPool(name="mp", inputs=["x"], outputs=["y"], kernel=kernel, strides=strides, pads=pads,
                    dilations=dilations, pad_value=-128)
    expected = F.max_pool2d(torch_pad(x, pads, -128), kernel, strides, dilation=dilations)
    np.testing.assert_array_equal(run_op(op, x), from_torch(expected))


@pytest.mark.parametrize("include_pad", [False, True])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if POOL_CASES[c][3] == (1, 1)])
def test_avg_pool_matches_torch(case, include_pad):
    kernel, strides, pads, _ = POOL_CASES[case]
    rng = np.random.default_rng(5)
    zero = 11
    x = rng.integers(0, 256, (2, 3, 7, 8))
    window_sum = {"kernel_size": kernel, "stride": strides, "divisor_override": 1}
    acc = from_torch(F.avg_pool2d(torch_pad(x - zero, pads, 0), **window_sum))
    counts = from_torch(F.avg_pool2d(torch_pad(np.ones((1, 1, 7, 8)), pads, 0), **window_sum))[0, 0]
    if include_pad:
        counts = np.full_like(counts, kernel[0] * kernel[1])
    divisors = np.array(sorted(set(counts.ravel().tolist())))
    rq = ir.Requant(multiplier=rng.integers(2**14, 2**15, len(divisors)), shift=rng.integers(15, 19, len(divisors)),
                    zero_point=0, qmin=0, qmax=255)
    op = ir.AvgPool(name="ap", inputs=["x"], outputs=["y"], kernel=kernel, strides=strides, pads=pads,
                    count_include_pad=include_pad, input_zero_point=zero, divisors=divisors, requant=rq,
                    acc_bits=signed_bits_for(255 * kernel[0] * kernel[1]))
    position = {int(d): i for i, d in enumerate(divisors)}
    index = np.vectorize(position.__getitem__)(counts)
    expected = requantize(acc, rq.multiplier[index], rq.shift[index], 0, 0, 255)
    np.testing.assert_array_equal(run_op(op, x), expected)


def test_avg_pool_without_the_needed_divisor_is_a_contract_error():
    op = ir.AvgPool(name="ap", inputs=["x"], outputs=["y"], kernel=(2, 2), strides=(1, 1), pads=(1, 1, 1, 1),
                    count_include_pad=False, input_zero_point=0, divisors=np.array([2, 4]),
                    requant=ir.Requant(multiplier=np.array([1, 1]), shift=np.array([1, 2]), zero_point=0,
                                       qmin=0, qmax=255), acc_bits=12)
    with pytest.raises(ContractError, match=r"^AvgPool 'ap': window counts \[1\]"):
        run_op(op, np.ones((1, 1, 3, 3)))


def test_global_avg_pool_matches_torch():
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, (2, 4, 5, 6))
    rq = ir.Requant(multiplier=np.array([27307]), shift=np.array([19]), zero_point=-3, qmin=-128, qmax=127)
    op = ir.GlobalAvgPool(name="gap", inputs=["x"], outputs=["y"], input_zero_point=-5, requant=rq,
                          acc_bits=signed_bits_for(133 * 30))
    acc = from_torch(to_torch(x + 5).sum(dim=(2, 3), keepdim=True))
    expected = [[[[clamp(round_half_up(int(a) * 27307, 2**19) - 3, -128, 127)]] for a in row[:, 0, 0]]
                for row in acc]
    np.testing.assert_array_equal(run_op(op, x), expected)


# ---------------------------------------------------------------------------- elementwise

def test_add_matches_fractions_with_broadcasting():
    rng = np.random.default_rng(7)
    a = rng.integers(-128, 128, (2, 3, 2, 2))
    b = rng.integers(0, 256, (2, 3, 1, 1))
    op = ir.Add(name="add", inputs=["a", "b"], outputs=["y"], zero_a=-4, zero_b=9, mult_a=21000, mult_b=-9000,
                shift=15, zero_point=2, qmin=-128, qmax=127, acc_bits=signed_bits_for(132 * 21000 + 247 * 9000))
    expected = np.zeros(a.shape, np.int64)
    for idx in np.ndindex(a.shape):
        acc = (int(a[idx]) + 4) * 21000 + (int(b[idx[:2] + (0, 0)]) - 9) * -9000
        expected[idx] = clamp(round_half_up(acc, 2**15) + 2, -128, 127)
    np.testing.assert_array_equal(run_op(op, a, b), expected)


def test_mul_matches_fractions():
    rng = np.random.default_rng(8)
    a = rng.integers(-128, 128, (3, 10))
    b = rng.integers(0, 256, (3, 10))
    op = ir.Mul(name="gate", inputs=["a", "b"], outputs=["y"], zero_a=5, zero_b=0, multiplier=19661, shift=22,
                zero_point=-1, qmin=-128, qmax=127, acc_bits=signed_bits_for(133 * 255))
    expected = [[clamp(round_half_up((int(p) - 5) * int(q) * 19661, 2**22) - 1, -128, 127) for p, q in zip(ra, rb)]
                for ra, rb in zip(a, b)]
    np.testing.assert_array_equal(run_op(op, a, b), expected)


def test_affine_per_channel_matches_fractions():
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (2, 3, 2, 2))
    scale = np.array([1000, -2000, 3000]).reshape(3, 1, 1)
    offset = np.array([-70000, 5, 123456]).reshape(3, 1, 1)
    op = ir.Affine(name="bn", inputs=["x"], outputs=["y"], input_zero_point=17, scale=scale, offset=offset,
                   shift=13, zero_point=-20, qmin=-128, qmax=127,
                   acc_bits=signed_bits_for(255 * 3000 + 123456))
    expected = np.zeros(x.shape, np.int64)
    for n, c, i, j in np.ndindex(x.shape):
        acc = (int(x[n, c, i, j]) - 17) * int(scale[c, 0, 0]) + int(offset[c, 0, 0])
        expected[n, c, i, j] = clamp(round_half_up(acc, 2**13) - 20, -128, 127)
    np.testing.assert_array_equal(run_op(op, x), expected)


def test_clamp():
    op = ir.Clamp(name="relu6", inputs=["x"], outputs=["y"], low=3, high=9)
    np.testing.assert_array_equal(run_op(op, np.array([[-5, 3, 4, 9, 10]])), [[3, 3, 4, 9, 9]])


def test_lut_reads_table_at_x_minus_input_min():
    table = np.arange(16) * 3 - 20  # a 4-bit signed input: x in [-8, 7]
    op = ir.Lut(name="tanh", inputs=["x"], outputs=["y"], table=table, input_min=-8)
    x = np.array([[-8, -1, 0, 7]])
    # x - (-8) = [0, 7, 8, 15] -> [0*3-20, 7*3-20, 8*3-20, 15*3-20]
    np.testing.assert_array_equal(run_op(op, x), [[-20, 1, 4, 25]])
    with pytest.raises(ContractError, match=r"^Lut 'tanh': index range \[0, 16\]"):
        run_op(op, np.array([[-8, 8]]))


# ---------------------------------------------------------------------------- classifier heads

def softmax_op(table: list[int], out_range: int, qmax: int, axis: int = -1) -> ir.Softmax:
    return ir.Softmax(name="sm", inputs=["x"], outputs=["y"], axis=axis, exp_table=np.array(table),
                      out_range=out_range, qmax=qmax)


@pytest.mark.parametrize(("x", "out_range", "qmax", "expected"), [
    ([[0, 0]], 16, 15, [[8, 8]]),            # e = [8, 8], S = 16: (8*16 + 8) // 16 = 8
    ([[3, 2, 0]], 16, 15, [[10, 5, 1]]),     # e = [8, 4, 1], S = 13: 128/13 = 9.85, 64/13 = 4.92, 16/13 = 1.23
    ([[2, 1, 1]], 18, 255, [[9, 5, 5]]),     # e = [8, 4, 4], S = 16: 144/16 = 9, 72/16 = 4.5 (tie up)
    ([[5]], 16, 15, [[15]]),                 # e = [8], S = 8: 128/8 = 16 capped at qmax = 15
    ([[1, 1], [3, 0]], 16, 255, [[8, 8], [14, 2]]),  # row 2: e = [8, 1], S = 9: 128/9 = 14.2, 16/9 = 1.8
])
def test_softmax_hand_vectors(x, out_range, qmax, expected):
    # exp_table for 2-bit inputs: d in [-3, 0] reads table[d + 3]; exp(0) = 8
    np.testing.assert_array_equal(run_op(softmax_op([1, 2, 4, 8], out_range, qmax), np.array(x)), expected)


@pytest.mark.parametrize(("shape", "axis"), [((4, 10), -1), ((2, 5, 3, 3), 1)])
def test_softmax_matches_fractions_with_a_real_exp_table(shape, axis):
    rng = np.random.default_rng(10)
    s_in = 0.07
    table = [round(2**15 * math.exp(s_in * d)) for d in range(-255, 1)]  # 8-bit input: d in [-255, 0]
    x = rng.integers(-128, 128, shape)
    op = softmax_op(table, 256, 255, axis)
    moved = np.moveaxis(x, axis, -1)
    expected = np.zeros(moved.shape, np.int64)
    for idx in np.ndindex(moved.shape[:-1]):
        row = [int(v) for v in moved[idx]]
        e = [table[v - max(row) + 255] for v in row]
        expected[idx] = [min(round_half_up(ei * 256, sum(e)), 255) for ei in e]
    np.testing.assert_array_equal(run_op(op, x), np.moveaxis(expected, -1, axis))


def test_softmax_needs_a_positive_exp_zero():
    with pytest.raises(ContractError, match=r"^Softmax 'sm': exp_table\[-1\]"):
        run_op(softmax_op([1, 0], 16, 15), np.array([[0, 1]]))


@pytest.mark.parametrize(("keepdims", "expected"), [(False, [1, 0, 1]), (True, [[1], [0], [1]])])
def test_argmax_picks_the_first_maximum(keepdims, expected):
    op = ir.ArgMax(name="am", inputs=["x"], outputs=["y"], axis=1, keepdims=keepdims)
    x = np.array([[1, 5, 5, 2], [7, 7, 7, 7], [-3, -1, -2, -1]])
    np.testing.assert_array_equal(run_op(op, x), expected)


# ---------------------------------------------------------------------------- layout ops vs onnx

def onnx_reference(op_type: str, inputs: dict[str, np.ndarray], **attrs) -> np.ndarray:
    """Run one ONNX node with onnx's reference evaluator on int64 inputs (in the given order)."""
    node = helper.make_node(op_type, list(inputs), ["out"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(k, TensorProto.INT64, None)
                                            for k in inputs],
                              [helper.make_tensor_value_info("out", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ReferenceEvaluator(model).run(None, {k: np.asarray(v, np.int64) for k, v in inputs.items()})[0]


X = np.random.default_rng(11).integers(-128, 128, (2, 3, 4, 5))


def test_concat_matches_onnx():
    other = X[:, :2] + 1
    op = ir.Concat(name="cat", inputs=["a", "b"], outputs=["y"], axis=1)
    np.testing.assert_array_equal(run_op(op, X, other), onnx_reference("Concat", {"a": X, "b": other}, axis=1))


def test_reshape_matches_onnx():
    op = ir.Reshape(name="flat", inputs=["x"], outputs=["y"], shape=(60,))
    np.testing.assert_array_equal(run_op(op, X), onnx_reference("Reshape", {"x": X, "s": np.array([2, 60])}))


def test_transpose_matches_onnx():
    op = ir.Transpose(name="t", inputs=["x"], outputs=["y"], perm=(0, 2, 3, 1))
    np.testing.assert_array_equal(run_op(op, X), onnx_reference("Transpose", {"x": X}, perm=[0, 2, 3, 1]))
    with pytest.raises(ContractError, match="^Transpose 't': perm"):
        run_op(ir.Transpose(name="t", inputs=["x"], outputs=["y"], perm=(1, 0, 2, 3)), X)


def test_pad_matches_onnx():
    pads = (0, 1, 0, 2, 0, 2, 1, 0)  # begins of N, C, H, W then ends
    op = ir.Pad(name="pad", inputs=["x"], outputs=["y"], pads=pads, value=-7)
    expected = onnx_reference("Pad", {"x": X, "p": np.array(pads), "v": np.array(-7)})
    np.testing.assert_array_equal(run_op(op, X), expected)


def test_slice_matches_onnx():
    starts, ends, axes = (1, -3, 0), (3, 2**62, 2), (1, 3, 2)
    op = ir.Slice(name="sl", inputs=["x"], outputs=["y"], starts=starts, ends=ends, axes=axes)
    expected = onnx_reference("Slice", {"x": X, "s": np.array(starts), "e": np.array(ends), "a": np.array(axes)})
    np.testing.assert_array_equal(run_op(op, X), expected)


def test_gather_matches_onnx():
    table = np.array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    idx = np.array([3, 0, 9, 9])
    op = ir.Gather(name="labels", inputs=["i"], outputs=["y"], table=table)
    np.testing.assert_array_equal(run_op(op, idx), onnx_reference("Gather", {"t": table, "i": idx}, axis=0))
    with pytest.raises(ContractError, match=r"^Gather 'labels': index range \[-1, 3\]"):
        run_op(op, np.array([-1, 3]))


# ---------------------------------------------------------------------------- storage dtypes, scratch memory

def kernel_cases() -> dict[str, tuple[ir.Op, list[np.ndarray]]]:
    """One op of every class with int64 inputs whose values fit a narrow dtype, chosen so that
    arithmetic in that dtype would overflow (x - z, window sums, table offsets, pads)."""
    rng = np.random.default_rng(14)
    i8, u8 = rng.integers(-128, 128, (3, 4, 5, 6)), rng.integers(0, 256, (3, 4, 5, 6))
    rq = ir.Requant(multiplier=np.array([20000]), shift=np.array([18]), zero_point=-3, qmin=-128, qmax=127)
    conv, conv_x, _ = conv_case("depthwise_x2_stride2")
    table = np.arange(256) * 5 - 600
    return {
        "conv": (conv, [conv_x]),
        "gemm": (ir.Gemm(name="fc", inputs=["x"], outputs=["y"], weight=rng.integers(-127, 128, (3, 6)),
                         bias=np.array([5, -5, 0]), acc_bits=np.array([20, 20, 20]),
                         requant=ir.Requant(multiplier=np.array([30000] * 3), shift=np.array([20] * 3),
                                            zero_point=0, qmin=-128, qmax=127)), [i8]),
        "max_pool": (ir.MaxPool(name="mp", inputs=["x"], outputs=["y"], kernel=(3, 3), strides=(2, 1),
                                pads=(1, 1, 1, 1), dilations=(1, 1), pad_value=-1), [u8]),
        "avg_pool": (ir.AvgPool(name="ap", inputs=["x"], outputs=["y"], kernel=(3, 3), strides=(1, 1),
                                pads=(1, 1, 1, 1), count_include_pad=True, input_zero_point=200,
                                divisors=np.array([9]), requant=rq, acc_bits=13), [u8]),
        "global_avg_pool": (ir.GlobalAvgPool(name="gap", inputs=["x"], outputs=["y"], input_zero_point=-100,
                                             requant=rq, acc_bits=14), [i8]),
        "add": (ir.Add(name="add", inputs=["a", "b"], outputs=["y"], zero_a=100, zero_b=-100, mult_a=300,
                       mult_b=-200, shift=9, zero_point=1, qmin=-128, qmax=127, acc_bits=19), [i8, u8]),
        "mul": (ir.Mul(name="mul", inputs=["a", "b"], outputs=["y"], zero_a=-128, zero_b=255, multiplier=300,
                       shift=15, zero_point=0, qmin=0, qmax=255, acc_bits=18), [i8, u8]),
        "affine": (ir.Affine(name="bn", inputs=["x"], outputs=["y"], input_zero_point=250,
                             scale=np.array([3, -4, 5, 6]).reshape(4, 1, 1),
                             offset=np.array([1, 2, 3, 4]).reshape(4, 1, 1),
                             shift=3, zero_point=0, qmin=-128, qmax=127, acc_bits=12), [u8]),
        "clamp": (ir.Clamp(name="relu", inputs=["x"], outputs=["y"], low=-1000, high=100), [i8]),
        "lut": (ir.Lut(name="lut", inputs=["x"], outputs=["y"], table=table, input_min=-128), [i8]),
        "softmax": (ir.Softmax(name="sm", inputs=["x"], outputs=["y"], axis=1,
                               exp_table=np.arange(1, 257), out_range=256, qmax=255), [i8]),
        "argmax": (ir.ArgMax(name="am", inputs=["x"], outputs=["y"], axis=1, keepdims=False), [i8]),
        "gather": (ir.Gather(name="g", inputs=["i"], outputs=["y"], table=table), [u8]),
        "concat": (ir.Concat(name="cat", inputs=["a", "b"], outputs=["y"], axis=1), [i8, i8[:, :2]]),
        "reshape": (ir.Reshape(name="r", inputs=["x"], outputs=["y"], shape=(20, 6)), [i8]),
        "transpose": (ir.Transpose(name="t", inputs=["x"], outputs=["y"], perm=(0, 3, 1, 2)), [i8]),
        "pad": (ir.Pad(name="p", inputs=["x"], outputs=["y"], pads=(0, 0, 1, 2, 0, 1, 0, 0), value=300), [u8]),
        "slice": (ir.Slice(name="s", inputs=["x"], outputs=["y"], starts=(1,), ends=(3,), axes=(2,)), [i8]),
    }


def test_kernel_cases_cover_every_ir_class():
    assert {type(op) for op, _ in kernel_cases().values()} == set(ir.OP_CLASSES)


@pytest.mark.parametrize("case", kernel_cases())
def test_kernels_give_the_same_values_for_narrow_storage_dtypes(case):
    op, inputs = kernel_cases()[case]
    wide = run_op(op, *inputs)
    narrow = [x.astype(np.int8 if x.min() < 0 else np.uint8) for x in inputs]
    np.testing.assert_array_equal(kernel_for(op)(op, *narrow), wide)


@pytest.mark.parametrize("case", kernel_cases())
def test_kernel_outputs_survive_later_calls(case):
    """Kernels keep temporaries in reused scratch memory (quant.ops.scratch); an output must
    never be part of it."""
    op, inputs = kernel_cases()[case]
    first = run_op(op, *inputs)
    kept = first.copy()
    for shift in (1, 7):  # the same shapes again, other values
        run_op(op, *[np.roll(x, shift) for x in inputs])
    np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize("shape", [(6, 50), (3, 4, 5, 6)])
def test_in_place_requantizer_matches_the_contract(shape):
    rng = np.random.default_rng(15)
    channels = shape[0]
    acc = rng.integers(-(2**40), 2**40, shape)
    acc.flat[:4] = [0, -1, 2**40 - 1, -(2**40)]
    shift = rng.integers(1, 22, channels).reshape((-1,) + (1,) * (len(shape) - 1))
    shift.flat[:2] = [1, 21]
    mult = rng.integers(1, 2**21, channels).reshape(shift.shape)
    acc[0].flat[:3] = [(2 * k + 1) << (int(shift.flat[0]) - 1) for k in (-3, 0, 2)]  # ties at M = 1
    mult.flat[0] = 1
    for qmin, qmax in [(-128, 127), (0, 255), (-(2**15), 2**15 - 1), (-(2**62), 2**62)]:
        expected = requantize(acc, mult, shift, 5, qmin, qmax)
        got = requantize_scratch(acc.copy(), mult, shift, 5, qmin, qmax)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == narrowest(qmin, qmax)
        assert np.iinfo(got.dtype).min <= qmin and qmax <= np.iinfo(got.dtype).max


@pytest.mark.parametrize(("low", "high", "dtype"), [(-128, 127, np.int8), (0, 255, np.uint8), (-1, 255, np.int16),
                                                    (0, 2**16, np.int32), (-(2**31), 2**31, np.int64)])
def test_narrowest_dtype(low, high, dtype):
    assert narrowest(low, high) == np.dtype(dtype)
