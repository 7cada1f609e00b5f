"""Helpers the tests import: the repo root, the training command line, writers of small IDX files."""
import errno
import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


# A run small enough for tests: 200 real images at 16x16, 5 batches of 40 per epoch.
TINY = ["--subset", "200", "--batch-size", "40", "--resize", "16", "--quiet"]


def train_cli(*args, popen=False):
    """``python -m gluon_resnet.train ARGS`` in a subprocess (a Popen with ``popen=True``)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "gluon_resnet.train", *map(str, args)]
    if popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def fails(capsys, *argv):
    """Run the training ``main`` in-process; check exit 2 and one ``error:`` line; return that line."""
    from gluon_resnet import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(list(map(str, argv)))
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def full_disk_on(call, name):
    """A stand-in for ``os.fsync`` that fails with ENOSPC ("No space left on device") on the
    ``call``-th file whose name contains ``name``, as a disk that fills up mid-write does."""
    real, seen = os.fsync, []

    def fsync(fd):
        if name in os.readlink(f"/proc/self/fd/{fd}"):
            seen.append(fd)
            if len(seen) == call:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)
    return fsync


def epoch_rows(epochs, seconds=1.0):
    """``epochs`` history rows shaped as ``loop.train`` returns them."""
    return [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.5, "test_acc": 0.5, "examples_per_sec": 100.0,
             "seconds": seconds} for e in range(1, epochs + 1)]


def save_run(folder, net, settings, history, trainer=None, environment=None):
    """Write the run folder ``folder`` as training does after epoch ``history[-1]``: through
    ``run.Saver``, the one writer of the checkpoint's meta. Returns the trainer it saved."""
    from gluon_resnet import loop, run

    trainer = trainer or loop.make_trainer(net)
    with run.RunFolder(folder, resuming=True) as taken:
        run.Saver(taken, settings, environment or {})(net, trainer, history)
    return trainer
