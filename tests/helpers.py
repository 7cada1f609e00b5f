"""Helpers the tests import: the repo root and writers of small IDX files."""
import gzip
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def idx_bytes(array):
    """Encode a uint8 array as IDX."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx_set(folder, n_train=20, n_test=10, size=28, seed=0):
    """Write four small gzipped IDX files in Fashion-MNIST's names; return the arrays."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, array in arrays.items():
        (folder / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(array)))
    return arrays
