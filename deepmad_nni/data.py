"""Image classification data without torchvision: numpy arrays in, :class:`ImageData` out.

Stable API (used by the tuner trials, the Optuna loop and the comparison scripts)::

    data = load_dataset("fashion-mnist", train_size=10000, test_size=2000, resolution=14, val_fraction=0.1)
    data.x_train, data.y_train      # float32 (N, C, H, W) normalised with the training mean/std; int64 labels
    data.x_val, data.y_val          # carved from the training set when val_fraction > 0 (else empty)
    data.x_test, data.y_test        # the dataset's own test split
    data.x_eval, data.y_eval        # what to select architectures on: validation if any, else test
    data.num_classes, data.in_channels, data.resolution

Datasets (``DATASETS``):

* ``"fashion-mnist"``: 60k/10k 28x28 grey images from the Debian package ``dataset-fashion-mnist``
  (``apt-get install -y dataset-fashion-mnist``; files ``/usr/share/datasets/fashion-mnist/*-idx*-ubyte.gz``),
  or the same four files in ``data_dir``.
* ``"digits"``: scikit-learn's ``load_digits`` (1797 8x8 images; 20% held out as test with ``seed``).
  Tiny: for tests.
* ``"cifar10"``: the python pickle batches (``data_batch_1..5``, ``test_batch``) in ``data_dir``
  (the folder ``cifar-10-batches-py`` or its parent).  Pickles execute code when loaded: only point it
  at files you trust.

Options of every loader: ``train_size`` / ``test_size`` (random subsets drawn with ``seed``),
``resolution`` (integer-factor average pooling down, e.g. 28 -> 14, or nearest repeat up),
``val_fraction`` (share of the kept training images held out as validation).
"""
from __future__ import annotations

import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                       "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_MNIST_APT = "apt-get update && apt-get install -y dataset-fashion-mnist"
DATASETS = ("fashion-mnist", "digits", "cifar10")


@dataclass(frozen=True)
class ImageData:
    """Train / validation / test arrays of one dataset (see the module docstring)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def x_eval(self) -> np.ndarray:
        return self.x_val if len(self.x_val) else self.x_test

    @property
    def y_eval(self) -> np.ndarray:
        return self.y_val if len(self.y_val) else self.y_test

    @property
    def eval_split(self) -> str:
        return "val" if len(self.x_val) else "test"

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}, train={len(self.x_train)}, val={len(self.x_val)}, test={len(self.x_test)}, "
                f"shape={tuple(self.x_train.shape[1:])}, num_classes={self.num_classes})")


# ---------------------------------------------------------------- readers (raw uint8/float arrays, NCHW)

def read_idx(path) -> np.ndarray:
    """An idx file (optionally gzip-compressed): magic 0 0 dtype ndim, big-endian dims, then the data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{str(path)!r} is not an idx file (bad magic number).")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{str(path)!r} has an unknown idx data type 0x{raw[2]:02x}.")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{str(path)!r} holds {data.size} values, but its header says {tuple(dims)}.")
    return data.reshape(tuple(dims))


def read_fashion_mnist(data_dir=None):
    """(x_train, y_train, x_test, y_test) as uint8 (N, 1, 28, 28) and labels."""
    root = Path(data_dir) if data_dir is not None else Path(os.environ.get("DEEPMAD_FASHION_MNIST", FASHION_MNIST_DIR))
    out = []
    for split in ("train", "test"):
        images, labels = (root / name for name in FASHION_MNIST_FILES[split])
        for p in (images, labels):
            if not p.is_file():
                hint = (f"Install the Debian package: `{FASHION_MNIST_APT}`" if data_dir is None else
                        "Put the four Fashion-MNIST idx .gz files there or leave data_dir unset to use the "
                        f"Debian package (`{FASHION_MNIST_APT}`)")
                raise FileNotFoundError(f"Fashion-MNIST file {str(p)!r} not found (data_dir={data_dir!r}). {hint}.")
        out += [read_idx(images)[:, None], read_idx(labels).astype(np.int64)]
    return tuple(out)


def read_cifar10(data_dir):
    """(x_train, y_train, x_test, y_test) as uint8 (N, 3, 32, 32) from the python pickle batches."""
    if data_dir is None:
        raise ValueError("data_dir must name the folder of CIFAR-10's python batches (cifar-10-batches-py), "
                         "but got None.")
    root = Path(data_dir)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    train_files = sorted(root.glob("data_batch_*"))
    test_file = root / "test_batch"
    if not train_files or not test_file.is_file():
        raise FileNotFoundError(f"data_dir must hold CIFAR-10's data_batch_1..5 and test_batch, but {str(root)!r} "
                                f"has {sorted(p.name for p in root.iterdir()) if root.is_dir() else 'nothing'}.")

    def batch(path):
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return x, np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(p) for p in train_files]
    x_test, y_test = batch(test_file)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test


def read_digits(seed: int = 0):
    """(x_train, y_train, x_test, y_test): scikit-learn's 8x8 digits (values 0..16), 20% held out as test."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = d.images.astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 5
    test, train = perm[:n_test], perm[n_test:]
    return x[train], y[train], x[test], y[test]


# ---------------------------------------------------------------- transforms

def resize(x: np.ndarray, resolution: int) -> np.ndarray:
    """Square NCHW images to ``resolution``: average pooling by an integer factor, or nearest repeat up."""
    r = x.shape[2]
    if resolution == r:
        return x
    if resolution < r and r % resolution == 0:
        f = r // resolution
        n, c = x.shape[:2]
        return x.reshape(n, c, resolution, f, resolution, f).mean(axis=(3, 5))
    if resolution > r and resolution % r == 0:
        f = resolution // r
        return x.repeat(f, axis=2).repeat(f, axis=3)
    raise ValueError(f"resolution must divide or be a multiple of the images' {r}, but got {resolution}.")


def _subset(x, y, size, rng, name):
    if size is None:
        return x, y
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{name} must be a positive integer or None, but got {size!r}.")
    if size > len(y):
        raise ValueError(f"{name} must be at most the {len(y)} images available, but got {size}.")
    idx = rng.permutation(len(y))[:size]
    return x[idx], y[idx]


def prepare(name, x_train, y_train, x_test, y_test, *, num_classes, train_size=None, test_size=None,
            resolution=None, val_fraction=0.0, seed=0) -> ImageData:
    """Subsets, validation split, resize and per-channel normalisation (training statistics)."""
    if not (isinstance(val_fraction, (int, float)) and 0 <= val_fraction < 1):
        raise ValueError(f"val_fraction must be in [0, 1), but got {val_fraction!r}.")
    if resolution is not None and (not isinstance(resolution, (int, np.integer)) or resolution < 1):
        raise ValueError(f"resolution must be a positive integer or None, but got {resolution!r}.")
    rng = np.random.default_rng(seed)
    x_train, y_train = _subset(x_train, y_train, train_size, rng, "train_size")
    x_test, y_test = _subset(x_test, y_test, test_size, rng, "test_size")
    n_val = int(round(val_fraction * len(y_train)))
    if val_fraction > 0 and not 1 <= n_val < len(y_train):
        raise ValueError(f"val_fraction={val_fraction} leaves no validation or no training images of {len(y_train)}.")
    perm = rng.permutation(len(y_train))
    val, train = perm[:n_val], perm[n_val:]
    arrays = [x_train[train], x_train[val], x_test]
    arrays = [a.astype(np.float32) for a in arrays]
    if resolution is not None:
        arrays = [resize(a, int(resolution)) for a in arrays]
    mean = arrays[0].mean(axis=(0, 2, 3), keepdims=True)
    std = arrays[0].std(axis=(0, 2, 3), keepdims=True) + 1e-6
    xt, xv, xs = [np.ascontiguousarray((a - mean) / std, dtype=np.float32) for a in arrays]
    return ImageData(name, xt, y_train[train], xv, y_train[val], xs, y_test, num_classes)


def load_fashion_mnist(*, data_dir=None, **options) -> ImageData:
    """Fashion-MNIST (see the module docstring for ``data_dir`` and ``options``)."""
    return prepare("fashion-mnist", *read_fashion_mnist(data_dir), num_classes=10, **options)


def load_digits(*, seed: int = 0, **options) -> ImageData:
    """scikit-learn's 8x8 digits, 10 classes."""
    return prepare("digits", *read_digits(seed), num_classes=10, seed=seed, **options)


def load_cifar10(data_dir, **options) -> ImageData:
    """CIFAR-10 from its python batches in ``data_dir``."""
    return prepare("cifar10", *read_cifar10(data_dir), num_classes=10, **options)


def load_dataset(name: str, *, data_dir=None, **options) -> ImageData:
    """Dispatch on ``name`` in ``DATASETS``; ``options`` as in :func:`prepare`."""
    if name == "fashion-mnist":
        return load_fashion_mnist(data_dir=data_dir, **options)
    if name == "digits":
        return load_digits(**options)
    if name == "cifar10":
        return load_cifar10(data_dir, **options)
    raise ValueError(f"dataset must be one of {DATASETS}, but got {name!r}.")
