"""Sliding windows in numbers, no hardware: which input elements a window of a convolution or
a pooling covers (`Window`: kernel, strides, ONNX pads, dilations over a (C, H, W) input), how
its elements leave a generator in beats of lanes (`Beats`), and the full-rate cycle count of
`hw.window.WindowGenerator` (`full_rate_cycles`), which the planner and the tests use.

Window element order is (ky, kx, c): element (ky*kw + kx)*C + c of pixel (oy, ox) is input
x[c, oy*sh - top + ky*dh, ox*sw - left + kx*dw], or the pad value where that lies outside the
image. Output size is ONNX floor mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from hw.fold import to_beats
from quant.ops.windows import output_size

PAD = -1  # a `Beats` table entry for a lane that carries no window element


@dataclass(frozen=True)
class Window:
    """A kh x kw window with strides, ONNX pads (top, left, bottom, right) and dilations
    sliding over a (C, H, W) tensor."""

    channels: int
    height: int
    width: int
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        positive = {"channels": (self.channels,), "height": (self.height,), "width": (self.width,),
                    "kernel": self.kernel, "strides": self.strides, "dilations": self.dilations}
        for name, values in positive.items():
            if not all(isinstance(v, Integral) and v >= 1 for v in values):
                raise ValueError(f"Window {name} must be positive integers, not {values!r}")
        if len(self.pads) != 4 or min(self.pads) < 0:
            raise ValueError(f"Window pads must be 4 integers >= 0, not {self.pads!r}")
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(f"Window kernel {self.kernel} with dilations {self.dilations} must "
                             f"fit the padded {self.height}x{self.width} input")

    @property
    def shape(self) -> tuple[int, int, int]:
        """The input's (C, H, W)."""
        return self.channels, self.height, self.width

    @property
    def span(self) -> tuple[int, int]:
        """Dilated kernel height and width: (k-1)*d + 1."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations))

    @property
    def out_height(self) -> int:
        return output_size(self.height, self.pads[0], self.pads[2], self.kernel[0],
                           self.strides[0], self.dilations[0])

    @property
    def out_width(self) -> int:
        return output_size(self.width, self.pads[1], self.pads[3], self.kernel[1],
                           self.strides[1], self.dilations[1])

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def length(self) -> int:
        """Elements per window: kh*kw*C."""
        return self.taps * self.channels

    def element(self, ky: int, kx: int, c: int) -> int:
        """Index of tap (ky, kx), channel c in the window vector."""
        return (ky * self.kernel[1] + kx) * self.channels + c

    def bounds(self, axis: int, index: int) -> tuple[int, int]:
        """(lo, hi): output row (axis 0) or column (axis 1) `index` spans input rows or
        columns lo..hi-1 of the image (its padding excluded)."""
        size = (self.height, self.width)[axis]
        first = index * self.strides[axis] - self.pads[axis]
        return min(max(first, 0), size), min(max(first + self.span[axis], 0), size)

    def inside(self, axis: int, index: int) -> int:
        """Bit k set where tap k of output row (axis 0) or column (axis 1) `index` lies inside
        the image rather than in its padding."""
        size = (self.height, self.width)[axis]
        first = index * self.strides[axis] - self.pads[axis]
        return sum(1 << k for k in range(self.kernel[axis])
                   if 0 <= first + k * self.dilations[axis] < size)

    @property
    def slots(self) -> int:
        """R: rows held. Consecutive output rows n, n+1 (the last row of a sample and the first
        of the next included) read rows lo(n)..hi(n+1)-1 while both are in flight, so
        R = max(hi(n+1) - lo(n)) lets the next row's rows load during the current one; one
        spare row lets a writer that ran ahead keep going (see `full_rate_cycles`)."""
        rows = [self.bounds(0, oy) for oy in range(self.out_height)]
        steps = [hi - lo for (lo, _), (_, hi) in zip(rows, rows[1:])]
        steps.append(self.height + rows[0][1] - rows[-1][0])
        return max(steps) + 1


@dataclass(frozen=True, eq=False)
class Beats:
    """How each window leaves the generator: `table[b, s]` is the window element on lane s of
    the window's b-th distinct beat (or `PAD`); the distinct beats go out in order, the whole
    sequence `repeats` times (the MAC array reads the window once per output group)."""

    table: np.ndarray  # int64 [distinct beats, lanes]
    repeats: int = 1

    @classmethod
    def chunks(cls, length: int, lanes: int, repeats: int = 1) -> Beats:
        """The window vector as ceil(length/lanes) beats: element e on lane e % lanes of beat
        e // lanes, the last beat padded."""
        return cls(to_beats(np.arange(length), lanes, fill=PAD), repeats)

    @property
    def lanes(self) -> int:
        return self.table.shape[1]

    @property
    def distinct(self) -> int:
        return self.table.shape[0]

    @property
    def per_window(self) -> int:
        """T_pix: output beats (cycles at full rate) per output pixel."""
        return self.distinct * self.repeats


def full_rate_cycles(window: Window, per_window: int, in_lanes: int, samples: int) -> int:
    """Cycles from the first input beat to the last pixel's last beat leaving the issue stage,
    with input valid and output ready every cycle (add the block's latency for its last output).

    With Tw = W*C/L_in beats per input row, T_row = OW * T_pix cycles per output row and
    output rows m = 0..M-1 over all samples (M = samples*OH), row m may start once the rows up
    to hi(m) are in (at hi(m)*Tw, hi counted over the whole input) and the previous row is
    done, so the last one ends at max_m(hi(m)*Tw + (M - m)*T_row). At the term m = 0 this is
    hi(0)*Tw + samples*OH*OW*T_pix: when the output is the bottleneck every sample takes
    exactly OH*OW*T_pix cycles, the next sample's rows loading while the current one finishes.
    This assumes the writer is never held by a full buffer when a later row will wait for it;
    that is proven when every output row's new input rows load within the previous output row
    ((hi(m+1) - hi(m))*Tw <= T_row), and the tests assert the formula on every geometry they run.
    """
    t_in = window.width * window.channels // in_lanes
    t_row = window.out_width * per_window
    his = [s * window.height + window.bounds(0, oy)[1]
           for s in range(samples) for oy in range(window.out_height)]
    return max(hi * t_in + (len(his) - m) * t_row for m, hi in enumerate(his))
