"""Folding a layer onto a MAC array of P output channels x S input lanes.

A dense layer of N outputs x K inputs runs as G = ceil(N/P) output groups, each consuming the
input vector in J = ceil(K/S) beats of S lanes: G*J cycles per vector. Channels and lanes past
N and K are padding whose weights and biases are zero, so they add nothing to any accumulator.
Vectors cross streams as beats of lanes: element e of a vector is lane e % L of beat e // L.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Fold:
    """`outputs` (P) channels computed in parallel, each from `inputs` (S) lanes per cycle."""

    outputs: int
    inputs: int

    def __post_init__(self) -> None:
        for name in ("outputs", "inputs"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"Fold {name} must be a positive integer, not {value!r}")

    def groups(self, n: int) -> int:
        """G = ceil(N/P) output groups."""
        return ceil_div(n, self.outputs)

    def chunks(self, k: int) -> int:
        """J = ceil(K/S) input beats per vector."""
        return ceil_div(k, self.inputs)

    def weight_tiles(self, weight: np.ndarray) -> np.ndarray:
        """[N, K] -> [G*J, P, S]: tile g*J + j holds w[g*P + p, j*S + s], zero-padded."""
        n, k = weight.shape
        g, j = self.groups(n), self.chunks(k)
        padded = np.zeros((g * self.outputs, j * self.inputs), np.int64)
        padded[:n, :k] = weight
        return padded.reshape(g, self.outputs, j, self.inputs).transpose(0, 2, 1, 3).reshape(
            g * j, self.outputs, self.inputs)


def to_beats(values: np.ndarray, lanes: int, fill: int = 0) -> np.ndarray:
    """[..., L] -> [..., ceil(L/lanes), lanes], the last beat padded with `fill`."""
    values = np.asarray(values, np.int64)
    length = values.shape[-1]
    padded = np.full(values.shape[:-1] + (ceil_div(length, lanes) * lanes,), fill, np.int64)
    padded[..., :length] = values
    return padded.reshape(values.shape[:-1] + (-1, lanes))


def from_beats(beats: np.ndarray, length: int) -> np.ndarray:
    """[..., B, lanes] -> [..., length]: the inverse of `to_beats`, padding dropped."""
    beats = np.asarray(beats, np.int64)
    return beats.reshape(beats.shape[:-2] + (-1,))[..., :length]
