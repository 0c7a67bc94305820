"""From a tensor's observed statistics to its quantization range (stage 3's arithmetic half).

Every histogram method here chooses a clipping threshold t for the magnitude |x|, from a
histogram of |x| over [0, amax] (amax = max|x| seen). The range is then the observed range
clipped to [-t, t]:

    low = min(0, max(min_x, -t)),    high = max(0, min(max_x, t))

so a non-negative tensor (after ReLU) gets [0, t], a symmetric one [-t, t], and a skewed one
keeps its short side as observed instead of wasting levels on values that never occur (the
quantizer places the zero point). A range always contains 0, so that real 0 is exact.

Why a histogram of |x| and not a signed one over [min, max]: the methods (TensorRT's entropy
calibration in particular) are defined on magnitudes, and a |x| histogram gives all its bins
to magnitudes, where a signed histogram would spend half of them on a side that may be empty.
The sign information the range needs is in min and max.

Exact zeros (ReLU outputs are often half zeros) are counted apart: 0 is exact at every
threshold, so the entropy and MSE searches ignore them; the percentile counts them, as
np.percentile does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.errors import DataError
from quant.options import CalibMethod

_EMPTY = 1e-4  # counts Q gives an empty bin that receives clipped outliers (see entropy)
_MSE_ROWS = 128  # candidate thresholds evaluated at once by the MSE search (bounds memory)


@dataclass(frozen=True)
class Range:
    """A real interval [low, high] to quantize a tensor over; low <= 0 <= high."""

    low: float
    high: float


@dataclass
class TensorStats:
    """What calibration saw of one tensor: its extremes and, for the histogram methods, a
    histogram of |x| over [0, amax] (`counts`, int64) and how many of the values in its
    first bin are exact zeros (`zeros`)."""

    low: float
    high: float
    counts: np.ndarray | None = None
    zeros: int = 0

    @property
    def amax(self) -> float:
        return max(-self.low, self.high, 0.0)

    @property
    def edges(self) -> np.ndarray:
        """Bin edges of `counts`: len(counts) + 1 values from 0 to amax."""
        assert self.counts is not None, "statistics were collected without a histogram"
        return np.linspace(0.0, self.amax, len(self.counts) + 1)


def tensor_range(stats: TensorStats, method: CalibMethod, percentile: float = 99.99,
                 bits: int = 8) -> Range:
    """The range of one tensor by `method`; `bits` is the activation width the entropy and
    MSE searches assume (unsigned for a non-negative tensor, signed otherwise)."""
    if method is CalibMethod.MINMAX or stats.amax == 0.0:
        return Range(min(stats.low, 0.0), max(stats.high, 0.0))
    assert stats.counts is not None, "histogram methods need statistics with a histogram"
    levels = 1 << (bits if stats.low >= 0 else bits - 1)
    if method is CalibMethod.PERCENTILE:
        t = percentile_threshold(stats.counts, stats.amax, percentile)
    elif method is CalibMethod.ENTROPY:
        t = entropy_threshold(_without_zeros(stats), stats.amax, levels)
    else:
        t = mse_threshold(_without_zeros(stats), stats.amax, levels - 1)
    return Range(min(0.0, max(stats.low, -t)), max(0.0, min(stats.high, t)))


def check_percentile(percentile: float) -> None:
    if not 0.0 < percentile <= 100.0:
        raise DataError(f"percentile must be in (0, 100], not {percentile!r}")


def _without_zeros(stats: TensorStats) -> np.ndarray:
    counts = stats.counts.astype(np.int64)
    counts[0] -= stats.zeros
    return counts


def percentile_threshold(counts: np.ndarray, amax: float, percentile: float) -> float:
    """The right edge of the bin holding the `percentile`-th percentile of |x|: at least that
    fraction of the values lies inside [0, t], and t is within one bin of the exact value."""
    check_percentile(percentile)
    cum = np.cumsum(counts)
    i = int(np.searchsorted(cum, cum[-1] * (percentile / 100.0), side="left"))
    return float(np.linspace(0.0, amax, len(counts) + 1)[min(i, len(counts) - 1) + 1])


def entropy_threshold(counts: np.ndarray, amax: float, levels: int) -> float:
    """TensorRT's 8-bit calibration (Migacz, GTC 2017), for every threshold t = edge[i] with
    i >= levels (a finer grid than the histogram's bins cannot be judged by it):

    - P = counts[:i], with the outliers sum(counts[i:]) added to P[i-1] (clipping);
    - Q = counts[:i] (without the outliers) merged into `levels` equal groups (bin j in group
      floor(j*levels/i), so the remainder is spread instead of piled on the last level), each
      group's mass spread evenly over the bins where P > 0 (as in MXNet and onnxruntime);
    - KL(P/sum P || Q/sum Q); the smallest wins (ties: the largest t).

    Q = 0 where P > 0 happens only when the last group is empty yet receives outliers; there
    Q gets `_EMPTY` counts (onnxruntime's smoothing constant), so clipping a few outliers into
    empty space costs little instead of being forbidden.

    Evaluated in closed form with prefix sums, for all i at once:
    KL = (sum_j P_j log P_j - sum_g PG_g log(Q_g / nz_g)) / T + log(sum Q / T), with T the
    total, Q_g the group sums of counts, PG_g of P, and nz_g the count of P > 0 in group g.
    """
    h = np.asarray(counts, np.float64)
    n = len(h)
    q = min(levels, n)
    total = h.sum()
    i = np.arange(q, n + 1)  # candidate thresholds, one per row
    cum = np.concatenate([[0.0], np.cumsum(h)])
    nonzero = np.concatenate([[0], np.cumsum(h > 0)])
    hlogh = np.concatenate([[0.0], np.cumsum(_xlogx(h))])
    # group g holds bins [ceil(g*i/q), ceil((g+1)*i/q)), i.e. the j with floor(j*q/i) == g
    bounds = -((-np.arange(q + 1)[None, :] * i[:, None]) // q)
    group_q = cum[bounds[:, 1:]] - cum[bounds[:, :-1]]
    group_nz = nonzero[bounds[:, 1:]] - nonzero[bounds[:, :-1]]
    outliers = total - cum[i]
    last = h[i - 1] + outliers
    group_p = group_q.copy()
    group_p[:, -1] += outliers
    group_nz[:, -1] += (h[i - 1] == 0) & (outliers > 0)
    group_q = np.where((group_q == 0) & (group_p > 0), _EMPTY, group_q)
    q_total = group_q.sum(axis=1)
    with np.errstate(divide="ignore"):
        log_q = np.where(group_p > 0, np.log(group_q) - np.log(np.maximum(group_nz, 1)), 0.0)
    cross = (group_p * log_q).sum(axis=1)
    kl = (hlogh[i - 1] + _xlogx(last) - cross) / total + np.log(q_total / total)
    kl = np.where(cum[i] > 0, kl, np.inf)
    best = len(kl) - 1 - int(np.argmin(kl[::-1]))
    return float(np.linspace(0.0, amax, n + 1)[i[best]])


def mse_threshold(counts: np.ndarray, amax: float, steps: int) -> float:
    """The threshold t = edge[k] minimizing the expected squared error of quantizing |x| to
    the grid {0, d, ..., steps*d}, d = t/steps, values above t saturating at t. Values are
    taken as uniform inside their bin, so both errors are exact integrals over each bin:
    rounding inside [0, t] via the antiderivative of the squared sawtooth, and clipping
    above t via E[(x - t)^2] = (c - t)^2 + w^2/12 for a bin of center c and width w."""
    h = np.asarray(counts, np.float64)
    n = len(h)
    edges = np.linspace(0.0, amax, n + 1)
    width = amax / n
    centers = (edges[:-1] + edges[1:]) / 2
    k = np.arange(1, n + 1)  # candidate t = edges[k]; bins k.. are clipped

    def tail(v: np.ndarray) -> np.ndarray:
        return np.concatenate([np.cumsum(v[::-1])[::-1], [0.0]])[k]

    t = edges[k]
    clip = (tail(h * (centers ** 2 + width ** 2 / 12)) - 2 * t * tail(h * centers)
            + t ** 2 * tail(h))
    rounding = np.concatenate([_rounding_error(h, edges, k[start:start + _MSE_ROWS], steps)
                               for start in range(0, n, _MSE_ROWS)])
    return float(t[int(np.argmin(rounding + clip))])


def _rounding_error(h: np.ndarray, edges: np.ndarray, k: np.ndarray, steps: int) -> np.ndarray:
    """For each t = edges[k]: sum over bins j < k of h[j] * E[(x - d*round(x/d))^2], x uniform
    in bin j, d = t/steps. The antiderivative of the squared sawtooth from -d/2 to x is
    d^3 * (m/12 + ((r - 1/2)^3 + 1/8) / 3) with x/d + 1/2 = m + r, m integer, 0 <= r < 1."""
    top = int(k.max())
    d = (edges[k] / steps)[:, None]
    u = edges[None, :top + 1] / d + 0.5
    whole = np.floor(u)
    r = u - whole
    antiderivative = d ** 3 * (whole / 12 + ((r - 0.5) ** 3 + 0.125) / 3)
    per_bin = np.diff(antiderivative, axis=1) / (edges[1] - edges[0])
    inside = np.arange(top)[None, :] < k[:, None]
    return (np.where(inside, per_bin, 0.0) * h[None, :top]).sum(axis=1)


def _xlogx(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)
