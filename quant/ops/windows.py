"""Sliding windows over padded NCHW tensors, shared by convolution and pooling."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad_hw(x: np.ndarray, pads: tuple[int, int, int, int], value: int) -> np.ndarray:
    """Pad the two spatial axes of NCHW `x`; `pads` is ONNX order (top, left, bottom, right)."""
    top, left, bottom, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
            dilations: tuple[int, int] = (1, 1)) -> np.ndarray:
    """A read-only view [N, C, OH, OW, kh, kw] of every (strided, dilated) window of an
    already padded NCHW tensor; OH = floor((H - (kh-1)*dh - 1) / sh) + 1 (ONNX floor mode)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    view = sliding_window_view(x, span, axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]
