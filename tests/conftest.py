"""Shared fixtures: paths to the test data kept in the repository (``tests/data``, see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
THIRD_PARTY_FILES = ("tfc_2w2a_qonnx.onnx", "tfc_w1a2_finn_onnx.onnx")


def _require(folder: Path, names: tuple[str, ...], what: str) -> Path:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        pytest.fail(f"{what} is expected in {folder} (part of the repository); missing: {', '.join(missing)}")
    return folder


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _require(DATA / "mnist", MNIST_FILES, "the MNIST test set")


@pytest.fixture(scope="session")
def third_party_dir() -> Path:
    return _require(DATA / "third_party", THIRD_PARTY_FILES, "the third-party QONNX models")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Keep ``--dist loadgroup`` (make test) grouping by ``xdist_group``: pytest-xdist 3.8 names a
    grouped test ``<nodeid>@<group>`` by writing the item's ``_nodeid``, which pytest 9.2 no longer
    reads (its node ids are structured: pytest-xdist issue 1386). Without this, a module's fixture
    that its group shares (the explore sweep, the stitched builds) ran on both workers."""
    if not getattr(config.option, "loadgroup", False):  # set on xdist's workers under --dist loadgroup
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # an older pytest reads _nodeid itself
        return
    for item in items:
        suffixed = item.__dict__.get("_nodeid")
        if isinstance(suffixed, str) and suffixed != item.nodeid and hasattr(item, "_id"):
            item._id = NodeId.parse(suffixed)
