"""Shared digits data loading and the fixed train / calibration / test split.

Used by ``models/train_digits.py`` (bundled default model) and by the test
model zoo (``tests/zoo``).  Only build scripts and tests import this module;
the tool itself never does at run time (it reads the committed ``.npz`` files).

The split is deterministic (fixed seed, independent of the numpy global RNG):

* test:  360 images, disjoint from train and calibration;
* train: the remaining 1437 images;
* calib: 200 images taken from the train part (disjoint from test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 20240601
N_TEST = 360
N_CALIB = 200


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray  # float32 (N, 1, 8, 8), values in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_calib: np.ndarray
    y_calib: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: images scaled to [0, 1] as float32 (N,1,8,8), labels int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0)).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    return np.ascontiguousarray(x), y


def split_digits(seed: int = SPLIT_SEED) -> DigitsSplit:
    x, y = load_digits_arrays()
    perm = np.random.RandomState(seed).permutation(len(x))
    test_idx = np.sort(perm[:N_TEST])
    train_idx = np.sort(perm[N_TEST:])
    calib_idx = np.sort(perm[N_TEST : N_TEST + N_CALIB])
    return DigitsSplit(
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_calib=x[calib_idx],
        y_calib=y[calib_idx],
        x_test=x[test_idx],
        y_test=y[test_idx],
    )
