"""Sliding windows as one Gather: the float-free im2col shared by Conv and the pools.

After spatial padding, each sample's (H, W) grid is flattened and one Gather with a
constant index map [OH*OW, kh*kw] picks every (strided, dilated) window:
index[oy*OW + ox, ky*kw + kx] = (oy*sh + ky*dh) * W + (ox*sw + kx*dw). Unlike ONNX Conv or
MaxPool this works for int64 values of any width and needs no float or 8-bit kernel.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quant.export.builder import Builder, reshape


def output_size(size: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
                dilations: tuple[int, int]) -> tuple[int, int]:
    """ONNX floor mode: O = floor((H - (k-1)*d - 1) / s) + 1 for an already padded H."""
    return tuple((h - (k - 1) * d - 1) // s + 1  # type: ignore[return-value]
                 for h, k, s, d in zip(size, kernel, strides, dilations))


def window_index(size: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
                 dilations: tuple[int, int]) -> np.ndarray:
    """[OH*OW, kh*kw] flat positions in a padded (H, W) grid of every window element."""
    oh, ow = output_size(size, kernel, strides, dilations)
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    rows = np.arange(oh).reshape(oh, 1, 1, 1) * sh + np.arange(kh).reshape(1, 1, kh, 1) * dh
    cols = np.arange(ow).reshape(1, ow, 1, 1) * sw + np.arange(kw).reshape(1, 1, 1, kw) * dw
    return (rows * size[1] + cols).reshape(oh * ow, kh * kw)  # [OH, OW, kh, kw] flattened


def pad_hw(b: Builder, x: str, pads: Sequence[int], value: int) -> str:
    """Pad the two spatial axes of NCHW `x` with `value`; `pads` is (top, left, bottom, right)."""
    top, left, bottom, right = pads
    if not any(pads):
        return x
    onnx_pads = b.const([0, 0, top, left, 0, 0, bottom, right], "pads")
    return b.node("Pad", [x, onnx_pads, b.const(value, "pad_value")], "padded")


def gather_windows(b: Builder, x: str, channels: int, size: tuple[int, int], index: np.ndarray) -> str:
    """[N, C, H, W] (already padded to `size`) -> [N, C, OH*OW, kh*kw] windows."""
    flat = reshape(b, x, (channels, size[0] * size[1]), "flat")
    return b.node("Gather", [flat, b.const(index, "window_index")], "windows", axis=2)
