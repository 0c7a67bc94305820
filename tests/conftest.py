"""Shared fixtures: the repository root, the bundled digits data, and the test model zoo."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from quant.data import Dataset, load_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def digits_calib() -> Dataset:
    """200 calibration images, x float32 (200, 1, 8, 8), y int64."""
    return load_dataset(REPO_ROOT / "models" / "digits_calib.npz")


@pytest.fixture(scope="session")
def digits_test() -> Dataset:
    """360 held-out test images, disjoint from the calibration set."""
    return load_dataset(REPO_ROOT / "models" / "digits_test.npz")


@pytest.fixture(scope="session")
def zoo_path() -> Callable[[str], Path]:
    """zoo_path("mlp") -> tests/models/mlp.onnx (see tests/models/README.md for the zoo)."""

    def path(name: str) -> Path:
        model = REPO_ROOT / "tests" / "models" / f"{name}.onnx"
        if not model.is_file():
            raise FileNotFoundError(f"{model} is missing; rebuild the zoo with "
                                    f"python tests/zoo/build_zoo.py")
        return model

    return path
