"""Datasets: the .npz files a user gives for calibration, evaluation and comparison.

Format: an .npz archive holding `x`, N samples of the model's per-sample input shape (any
real numeric dtype, converted to float32), and optionally `y`, N integer class labels.
Everything is checked here, up front, so that a bad file fails with one line naming it
instead of deep inside onnxruntime or the quantizer.
"""
from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from quant.errors import DataError

_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive; an empty one

MAX_ARRAY_BYTES = 8 << 30
"""The largest array read from a data file (8 GiB): more is refused before allocating it."""


@dataclass(frozen=True)
class Dataset:
    """Checked samples: `x` float32 (N, *sample shape), `y` int64 (N,) or None; `source` names
    the file in error messages."""

    x: np.ndarray
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.x)

    def check_labels(self, classes: int) -> None:
        """Raise DataError unless every label is a class index 0..classes-1 of a model that
        scores `classes` classes (any other label would silently count as a wrong prediction)."""
        if self.y is None:
            return
        bad = self.y[(self.y < 0) | (self.y >= classes)]
        if len(bad):
            raise DataError(f"{self.source}: y has label {int(bad[0])}, but the model scores "
                            f"{classes} classes (labels 0 to {classes - 1})")

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
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if magic == _NPY_MAGIC:  # numpy reads a whole .npy at once: refuse it before that
        raise DataError(f"{path}: not an .npz archive (it holds a single array; save x and y "
                        f"with numpy.savez)")
    if not magic.startswith(_ZIP_MAGICS):  # anything else numpy would try to unpickle
        raise DataError(f"{path}: not an .npz archive")
    try:
        loaded = np.load(path, allow_pickle=False)
    except _READ_ERRORS:
        raise DataError(f"{path}: not an .npz archive") from None
    with loaded:
        arrays = {}
        for key in ("x", "y"):
            if key in loaded.files:
                _check_member(loaded, key, path)
                try:
                    arrays[key] = loaded[key]
                except _READ_ERRORS:
                    raise DataError(f"{path}: array '{key}' is unreadable or holds Python "
                                    f"objects; only numeric arrays are accepted") from None
        return arrays, list(loaded.files)


def _check_member(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> None:
    """Read the member's .npy header only, and refuse before numpy allocates the array it
    declares: a header that is not .npy, or that declares more bytes than the member holds
    (a few bytes can declare terabytes), or more than MAX_ARRAY_BYTES (a zip bomb)."""
    name = f"{key}.npy" if f"{key}.npy" in npz.zip.namelist() else key
    where = f"{path}: array '{key}'"
    try:
        with npz.zip.open(name) as member:
            version = np.lib.format.read_magic(member)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read_header(member)
            data_bytes = npz.zip.getinfo(name).file_size - member.tell()
    except _READ_ERRORS:
        raise DataError(f"{where} is not a readable .npy array") from None
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects; only numeric arrays are accepted")
    declared = math.prod(shape) * dtype.itemsize
    if declared > MAX_ARRAY_BYTES or declared != data_bytes:
        raise DataError(f"{where} declares shape {shape} of {dtype} ({declared} bytes) but holds "
                        f"{data_bytes} bytes (at most {MAX_ARRAY_BYTES >> 30} GiB are accepted)")


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
    if y.dtype == np.uint64 and int(y.max()) > np.iinfo(np.int64).max:
        raise DataError(f"{source}: y has label {int(y.max())}, too large for int64")
    return y.astype(np.int64)
