"""Shared fixtures: paths to the data and third-party models that sit beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = SHARED / "data" / "mnist"
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"the MNIST test set is expected in {path} (shared/ beside the repository)")
    return path


@pytest.fixture(scope="session")
def third_party_dir() -> Path:
    path = SHARED / "models" / "third_party"
    if not path.is_dir():
        pytest.fail(f"third-party QONNX models are expected in {path} (shared/ beside the repository)")
    return path
