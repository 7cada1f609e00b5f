"""CIFAR-10: read the published batch files, serve NCHW batches, and make Fashion-MNIST CIFAR-shaped.

Where the files are looked for, in order:
  1. an explicit ``data_dir``;
  2. ``$MXNET_HOME/datasets/cifar10`` (Gluon's cache; ``~/.mxnet`` by default);
  3. otherwise the binary archive Gluon uses is downloaded into the folder of step 2.

Either published format is read: the binary one (``data_batch_1.bin`` ... ``test_batch.bin``,
each record a label byte then 3x32x32 pixel bytes) or the Python one (pickled dicts
``data_batch_1`` ... ``test_batch``), loose in the folder or in its ``cifar-10-batches-bin`` /
``cifar-10-batches-py`` subfolder.

Why not ``mxnet.gluon.data.vision.CIFAR10``, which fetches the same archive: it knows only the binary
format at one place, extracts the archive unfiltered (``tar.extractall``), and serves HWC arrays; here
both formats are read, a damaged file is named in one DataError, and batches stay NCHW uint8.
"""
import hashlib
import io
import os
import pickle
import tarfile
from collections import namedtuple
from pathlib import Path

import numpy as np

from .augment import Augment
from .data import balanced_split, dataset_dir, fetch, load_fashion_mnist, loaders
from .errors import DataError
from .files import atomic_write

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_STEMS = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_STEMS = ("test_batch",)
ARCHIVE_URL = ("https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"
               "gluon/dataset/cifar10/cifar-10-binary.tar.gz")
ARCHIVE_SHA1 = "fab780a1e191a7eda0f345501ccd62d20f7ed891"  # as mxnet.gluon.data.vision.CIFAR10 checks it
RECORD = 1 + 3 * 32 * 32
FIX = "download CIFAR-10 again (https://www.cs.toronto.edu/~kriz/cifar.html) or pass another data_dir"

CIFAR10 = namedtuple("CIFAR10", "train_images train_labels test_images test_labels")


def get_cifar10_labels(indices):
    """Text labels for CIFAR-10 class indices.

    >>> get_cifar10_labels([0, 9])
    ['airplane', 'truck']
    """
    return [CLASSES[int(i)] for i in indices]


def cifar_dir():
    """Gluon's dataset cache for CIFAR-10: ``$MXNET_HOME/datasets/cifar10``."""
    return dataset_dir("cifar10")


# ---------------------------------------------------------------------------- reading batches

def parse_binary_batch(payload, name="<bytes>"):
    """Decode binary-format records into (images uint8 (N, 3, 32, 32), labels uint8 (N,)).

    >>> images, labels = parse_binary_batch(bytes([7]) + bytes(3072))
    >>> images.shape, labels.tolist()
    ((1, 3, 32, 32), [7])
    """
    if len(payload) == 0 or len(payload) % RECORD:
        raise DataError(f"{name} holds {len(payload)} bytes, not a whole number of "
                        f"{RECORD}-byte CIFAR-10 records: {FIX}")
    records = np.frombuffer(payload, dtype=np.uint8).reshape(-1, RECORD)
    return _checked(records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0], name)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else (a batch file cannot run code)."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def parse_python_batch(payload, name="<bytes>"):
    """Decode a Python-format batch (a pickled dict with ``data`` and ``labels``)."""
    try:
        batch = _ArraysOnly(io.BytesIO(payload), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.uint8)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"{name} is not a CIFAR-10 Python batch ({err}): {FIX}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{name} holds data of shape {data.shape}, not (N, 3072): {FIX}")
    return _checked(data.reshape(-1, 3, 32, 32), labels, name)


def _checked(images, labels, name):
    if len(images) != len(labels):
        raise DataError(f"{name} has {len(images)} images but {len(labels)} labels: {FIX}")
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{name} has label {labels.max()}, but CIFAR-10 labels run 0-9: {FIX}")
    return images, labels


def read_batch(path):
    """Read one batch file of either format (``.bin`` is binary, anything else Python)."""
    path = Path(path)
    try:
        payload = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}; check the path and its permissions") from None
    parse = parse_binary_batch if path.suffix == ".bin" else parse_python_batch
    return parse(payload, name=str(path))


# ---------------------------------------------------------------------------- finding files

def find_batches(directory):
    """The train and test batch paths under ``directory`` as (train list, test list), or None."""
    directory = Path(directory)
    for folder in (directory, directory / "cifar-10-batches-bin", directory / "cifar-10-batches-py"):
        for suffix in (".bin", ""):
            paths = [folder / (stem + suffix) for stem in TRAIN_STEMS + TEST_STEMS]
            if all(p.is_file() for p in paths):
                return paths[:len(TRAIN_STEMS)], paths[len(TRAIN_STEMS):]
    return None


def download_cifar10(directory, url=None):
    """Fetch Gluon's binary archive into memory (``data.fetch``), check its sha1, and write its files into ``directory``.

    Each file is written through ``files.atomic_write``, so an interrupted download leaves whole
    files or none; members that would land outside ``directory`` are refused (``tarfile.data_filter``).
    """
    url = url or os.environ.get("GLUON_RESNET_CIFAR_URL", ARCHIVE_URL)
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        payload = fetch(url)
        if url == ARCHIVE_URL and hashlib.sha1(payload).hexdigest() != ARCHIVE_SHA1:
            raise ValueError("the archive does not match its published sha1")
        with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
            for member in tar.getmembers():
                member = tarfile.data_filter(member, str(directory))
                if member.isfile():
                    (directory / member.name).parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(directory / member.name, tar.extractfile(member).read())
    except (OSError, ValueError, tarfile.TarError) as err:
        raise DataError(f"CIFAR-10 is not in {directory} and downloading {url} failed ({err}): "
                        "put the CIFAR-10 batch files there or pass data_dir") from None
    return find_batches(directory)


def load_cifar10(data_dir=None, download=True):
    """The whole of CIFAR-10 as uint8 arrays: images (N, 3, 32, 32), labels (N,)."""
    directory = Path(data_dir) if data_dir is not None else cifar_dir()
    found = find_batches(directory)
    if found is None and (data_dir is not None or not download):
        raise DataError(f"no CIFAR-10 batch files (data_batch_1..5 and test_batch, .bin or "
                        f"Python format) in {directory}: put them there or pass another data_dir")
    if found is None:
        found = download_cifar10(directory)
        if found is None:
            raise DataError(f"the archive unpacked into {directory} lacks the CIFAR-10 batch files: {FIX}")
    train, test = ([read_batch(p) for p in paths] for paths in found)
    return CIFAR10(np.concatenate([i for i, _ in train]), np.concatenate([l for _, l in train]),
                   np.concatenate([i for i, _ in test]), np.concatenate([l for _, l in test]))


# ---------------------------------------------------------------------------- shaping and batches

def pad_to(images, size):
    """Zero-pad uint8 images (N, H, W) or (N, C, H, W) evenly to ``size`` x ``size``.

    >>> pad_to(np.ones((2, 28, 28), np.uint8), 32).shape
    (2, 32, 32)
    """
    height, width = images.shape[-2:]
    if height > size or width > size:
        raise ValueError(f"images of {height}x{width} do not fit in {size}x{size}")
    top, left = (size - height) // 2, (size - width) // 2
    spec = [(0, 0)] * (images.ndim - 2) + [(top, size - height - top), (left, size - width - left)]
    return np.pad(images, spec)


def load_data_cifar10(batch_size, data_dir=None, subset=None, augment=True, seed=0, download=True):
    """CIFAR-10 train and test ``ArrayLoader``s; ``subset=N`` keeps N class-balanced images of each.

    ``augment=True``: the classic CIFAR augmentation, pad by 4, crop back at random, flip half.
    """
    data = balanced_split(load_cifar10(data_dir, download=download), subset)
    return loaders(data, batch_size, seed, Augment(pad=4, flip=True) if augment else None)


def load_data_padded_fashion_mnist(batch_size, size=32, subset=None, augment=False, seed=0, data_dir=None):
    """Fashion-MNIST zero-padded from 28x28 to ``size`` x ``size``: CIFAR-shaped, one channel."""
    data = balanced_split(load_fashion_mnist(data_dir), subset)
    padded = CIFAR10(pad_to(data.train_images, size), data.train_labels, pad_to(data.test_images, size),
                     data.test_labels)
    return loaders(padded, batch_size, seed, Augment(pad=4, flip=True) if augment else None)
