"""Datasets: the .npz files a user gives for calibration, evaluation and comparison.

Format: an .npz archive holding `x`, N samples of the model's per-sample input shape (any
real numeric dtype, converted to float32), and optionally `y`, N integer class labels.
Everything is checked here, up front, so that a bad file fails with one line naming it
instead of deep inside onnxruntime or the quantizer.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from quant.errors import DataError

_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class Dataset:
    """Checked samples: `x` float32 (N, *sample shape), `y` int64 (N,) or None; `source` names
    the file in error messages."""

    x: np.ndarray
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        """Raise DataError unless every sample has `shape` (a None dimension matches any size)."""
        sample = self.x.shape[1:]
        if len(sample) != len(shape) or any(d is not None and d != s for d, s in zip(shape, sample)):
            raise DataError(f"{self.source}: x has samples of shape {format_shape(sample)}, "
                            f"the model expects {format_shape(shape)}")


def load_dataset(path: str | os.PathLike[str], *, input_shape: Sequence[int | None] | None = None
                 ) -> Dataset:
    """Read and check an .npz dataset; `input_shape` is the model's per-sample input shape."""
    source = str(path)
    arrays, names = _read_npz(Path(path))
    x = _features(arrays.get("x"), names, source)
    dataset = Dataset(x, _labels(arrays.get("y"), len(x), source), source)
    if input_shape is not None:
        dataset.check_input_shape(input_shape)
    return dataset


def format_shape(shape: Sequence[int | None]) -> str:
    """(1, 8, 8) -> '1x8x8'; a free dimension shows as '?'."""
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except _READ_ERRORS:
        raise DataError(f"{path}: not an .npz archive") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an .npz archive (it holds a single array; save x and y "
                        f"with numpy.savez)")
    with loaded:
        arrays = {}
        for key in ("x", "y"):
            if key in loaded.files:
                try:
                    arrays[key] = loaded[key]
                except _READ_ERRORS:
                    raise DataError(f"{path}: array '{key}' is unreadable or holds Python "
                                    f"objects; only numeric arrays are accepted") from None
        return arrays, list(loaded.files)


def _features(x: np.ndarray | None, names: list[str], source: str) -> np.ndarray:
    if x is None:
        found = ", ".join(repr(n) for n in names) or "nothing"
        raise DataError(f"{source}: no array named 'x' (found {found})")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{source}: x must hold real numbers, not {x.dtype}")
    if x.ndim == 0 or x.size == 0:
        raise DataError(f"{source}: x is empty (shape {x.shape}); it needs at least one sample")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
        x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise DataError(f"{source}: x has {int(bad.sum())} NaN or infinite values as float32 "
                        f"(first in sample {first})")
    return x


def _labels(y: np.ndarray | None, n: int, source: str) -> np.ndarray | None:
    if y is None:
        return None
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{source}: y must hold integer class labels, not {y.dtype}")
    if y.shape != (n,):
        raise DataError(f"{source}: y has shape {y.shape}, expected ({n},): one label per sample of x")
    return y.astype(np.int64)
