"""Window access over NCHW tensors for convolution and pooling, in few and long numpy calls.

numpy pays per contiguous run it touches, and a window row of an 8x8 image is only 8
values long. So both pooling and convolution work on a flat padded buffer, where shifting
every window by one kernel tap is shifting one long slice: pooling reduces along rows and
then columns with whole-buffer ufunc calls (`window_reduce`), convolution unrolls each
tap of each channel as one long run (`unroll`). Both buffers are scratch memory
(`quant.ops.scratch`): callers copy what they return.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.ops.checks import ContractError
from quant.ops.scratch import scratch


def output_size(size: int, before: int, after: int, kernel: int, stride: int, dilation: int) -> int:
    """ONNX floor mode: O = floor((size + before + after - (k-1)*d - 1) / s) + 1."""
    return (size + before + after - (kernel - 1) * dilation - 1) // stride + 1


def window_reduce(ufunc: np.ufunc, x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
                  pads: tuple[int, int, int, int], dilations: tuple[int, int], pad_value: int,
                  dtype: np.dtype, where: str) -> np.ndarray:
    """ufunc.reduce (np.add or np.maximum) over every window of NCHW `x` padded with
    `pad_value`, computed in `dtype`: a view [N, C, OH, OW] of scratch memory.

    The padded images lie one after another in a flat buffer F, Wp = left + W + right
    apart per row. A window reduction is separable: R[j] = reduce_kx F[j + kx*dw], then
    S[j] = reduce_ky R[j + ky*dh*Wp], and output (n, c, oy, ox) is S at the window's top-left
    element (plane (n, c), row oy*sh, column ox*sw). That is kw - 1 + kh - 1 ufunc calls on
    contiguous slices of the whole batch; positions whose windows would cross a row or plane
    edge are computed too, and never read.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    top, left, bottom, right = pads
    n, c, h, w = x.shape
    oh, ow = output_size(h, top, bottom, kh, sh, dh), output_size(w, left, right, kw, sw, dw)
    if oh < 1 or ow < 1:
        raise ContractError(f"{where}: window {kernel} does not fit the padded {h}x{w} input")
    hp, wp = top + h + bottom, left + w + right
    if n * c == 0:
        return np.empty((n, c, oh, ow), dtype)
    flat = scratch("window_reduce.flat", (n * c * hp * wp,), dtype)
    padded = flat.reshape(n, c, hp, wp)
    if any(pads):
        padded.fill(pad_value)
    padded[:, :, top:top + h, left:left + w] = x
    rows = _shifted_reduce(ufunc, flat, kw, dw, "window_reduce.rows")
    windows = _shifted_reduce(ufunc, rows, kh, dh * wp, "window_reduce.windows")
    step = windows.itemsize  # numpy checks that these strides stay inside `windows`
    return np.ndarray((n, c, oh, ow), dtype, windows, 0,
                      (c * hp * wp * step, hp * wp * step, sh * wp * step, sw * step))


def _shifted_reduce(ufunc: np.ufunc, values: np.ndarray, count: int, shift: int, slot: str) -> np.ndarray:
    """out[j] = ufunc.reduce(values[j + k*shift] for k < count), for every j it is defined."""
    if count == 1:
        return values
    length = len(values) - (count - 1) * shift
    out = ufunc(values[:length], values[shift:shift + length], out=scratch(slot, (length,), values.dtype))
    for k in range(2, count):
        ufunc(out, values[k * shift:k * shift + length], out=out)
    return out


@dataclass(frozen=True)
class Unrolled:
    """A convolution input unrolled for one matmul: `cols[c*kh*kw + ky*kw + kx, j]` is the
    input value under tap (ky, kx) of channel c at grid column j. The grid is (N, OH, GW):
    GW >= OW columns per output row, of which the first OW are outputs and the rest are
    discarded (`outputs`)."""

    cols: np.ndarray  # [C*kh*kw, N*OH*GW]
    grid: tuple[int, int, int]  # (N, OH, GW)
    out_width: int  # OW

    def outputs(self, values: np.ndarray) -> np.ndarray:
        """[..., N*OH*GW] grid values -> the view [..., N, OH, OW] of the real outputs."""
        return values.reshape(values.shape[:-1] + self.grid)[..., :self.out_width]


def unroll(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
           pads: tuple[int, int, int, int], dilations: tuple[int, int], pad_value: int,
           dtype: np.dtype, where: str) -> Unrolled:
    """im2col of NCHW `x` (as `dtype`, in scratch memory: the caller must not return it)
    through a flat padded buffer, where tap (ky, kx) of output (n, oy, ox) reads one
    address: F[c, n*P*Q + (oy*sh + ky*dh)*Q + ox*sw + kx*dw].

    Each channel's images are stored one after another in F[c], rows Q = W + max(left, right)
    apart (at least OW, so every output column is on the grid) and images P*Q apart with
    P = H + max(top, bottom); image (n, r, s) sits at base + n*P*Q + r*Q + s, base = top*Q +
    left, and every other element of F is `pad_value`. A window row that starts up to `left`
    columns before its image row reads the previous row's last columns >= W, and one up to
    `right` columns after it reads this row's columns W..Q-1: padding either way, so one
    padding column set serves both sides; the same holds for rows between images, and
    `base` covers the top-left padding of the first image. With unit column stride the grid
    rows are Q wide (GW = Q), so a tap of a channel over a whole image is one contiguous run
    of OH*Q values; the Q - OW extra columns per row read into later rows and are discarded.
    An unpadded 1x1 convolution with unit strides reads F as it is.
    """
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    top, left, bottom, right = pads
    n, c, h, w = x.shape
    oh = output_size(h, top, bottom, kh, sh, dh)
    ow = output_size(w, left, right, kw, sw, dw)
    if oh < 1 or ow < 1:
        raise ContractError(f"{where}: window {kernel} does not fit the padded {h}x{w} input")
    pitch = max(w + max(left, right), ow)  # Q
    rows = h + max(top, bottom)  # P
    image = rows * pitch
    base = top * pitch + left
    gw = pitch if sw == 1 else ow
    last_read = ((n - 1) * image + (oh - 1) * sh * pitch + (gw - 1) * sw
                 + (kh - 1) * dh * pitch + (kw - 1) * dw)
    flat = scratch("unroll.flat", (c, max(base + n * image, last_read + 1)), dtype)
    pointwise = (kh, kw, sh, sw) == (1, 1, 1, 1) and not any(pads)  # F holds the images and nothing else
    if not pointwise:
        flat.fill(pad_value)
    flat[:, base:base + n * image].reshape(c, n, rows, pitch)[:, :, :h, :w] = x.transpose(1, 0, 2, 3)
    if pointwise:  # the unrolled input is F itself
        return Unrolled(flat, (n, oh, gw), ow)
    step = flat.itemsize  # numpy checks that these strides stay inside `flat`
    view = np.ndarray((c, kh, kw, n, oh, gw), dtype, flat, 0,
                      (flat.strides[0], dh * pitch * step, dw * step, image * step, sh * pitch * step, sw * step))
    cols = scratch("unroll.cols", (c * kh * kw, n * oh * gw), dtype)
    np.copyto(cols.reshape(view.shape), view)
    return Unrolled(cols, (n, oh, gw), ow)
