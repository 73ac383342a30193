"""Data loaders: idx and CIFAR pickle readers on files the tests write, digits, Fashion-MNIST when installed."""
import gzip
import pickle

import numpy as np
import pytest

from deepmad_nni import data as D


def write_idx(path, array):
    codes = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_read_idx_round_trip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(D.read_idx(tmp_path / "a.gz"), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an idx file"):
        D.read_idx(tmp_path / "bad")


def test_fashion_mnist_from_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 10)):
        images, labels = D.FASHION_MNIST_FILES[split]
        write_idx(tmp_path / images, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / labels, rng.integers(0, 10, n).astype(np.uint8))
    d = D.load_dataset("fashion-mnist", data_dir=tmp_path, resolution=14, val_fraction=0.25)
    assert d.x_train.shape == (30, 1, 14, 14) and d.x_val.shape == (10, 1, 14, 14) and d.x_test.shape == (10, 1, 14, 14)
    assert d.eval_split == "val" and d.x_eval is d.x_val
    assert abs(d.x_train.mean()) < 1e-4 and abs(d.x_train.std() - 1) < 1e-3


def test_missing_fashion_mnist_names_the_apt_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        D.load_fashion_mnist(data_dir=tmp_path)


@pytest.mark.skipif(not (D.FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_debian_package():
    x_train, y_train, x_test, y_test = D.read_fashion_mnist()
    assert x_train.shape == (60000, 1, 28, 28) and x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    d = D.load_fashion_mnist(train_size=500, test_size=100, resolution=7, seed=3)
    assert d.x_train.shape == (500, 1, 7, 7) and len(d.y_test) == 100 and d.eval_split == "test"


def write_cifar(root, n_per_batch=6):
    root.mkdir()
    rng = np.random.default_rng(1)
    batches = {}
    for name in ["data_batch_1", "data_batch_2", "test_batch"]:
        x = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, n_per_batch).tolist()
        with open(root / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": y, b"batch_label": name.encode()}, f)
        batches[name] = (x, y)
    return batches


def test_cifar10_from_pickled_batches(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    x_train, y_train, x_test, y_test = D.read_cifar10(tmp_path)  # the parent folder works too
    assert x_train.shape == (12, 3, 32, 32) and x_test.shape == (6, 3, 32, 32)
    x0 = batches["data_batch_1"][0][0]
    np.testing.assert_array_equal(x_train[0, 1].ravel(), x0[1024:2048])  # channel-major rows: R, G, B planes
    assert y_test.tolist() == batches["test_batch"][1]
    d = D.load_dataset("cifar10", data_dir=tmp_path / "cifar-10-batches-py", resolution=16, train_size=8)
    assert d.x_train.shape == (8, 3, 16, 16) and d.in_channels == 3 and d.resolution == 16
    with pytest.raises(FileNotFoundError, match="data_batch"):
        D.read_cifar10(tmp_path / "nowhere")


def test_digits_and_resize():
    d = D.load_digits(resolution=16, seed=0)
    assert d.x_train.shape[1:] == (1, 16, 16) and len(d.y_train) + len(d.y_test) == 1797
    assert d.num_classes == 10 and set(np.unique(d.y_train)) == set(range(10))
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(D.resize(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert D.resize(x, 8).shape == (1, 1, 8, 8)
    a, b = D.load_digits(train_size=100, seed=5), D.load_digits(train_size=100, seed=5)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, D.load_digits(train_size=100, seed=6).y_train)


@pytest.mark.parametrize("kwargs, name", [({"resolution": 5}, "resolution"), ({"train_size": 0}, "train_size"),
                                          ({"train_size": 10**6}, "train_size"), ({"val_fraction": 1.0}, "val_fraction"),
                                          ({"test_size": 2.5}, "test_size")])
def test_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        D.load_digits(**kwargs)
    with pytest.raises(ValueError, match="dataset"):
        D.load_dataset("mnist-ish")
