"""Shared fixtures: the repo root on the path of subprocesses, small real subsets, tiny IDX files."""
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT


@pytest.fixture(scope="session")
def fashion():
    """The real Fashion-MNIST (the Makefile installs it); every test that needs it says so."""
    import gluon_resnet
    return gluon_resnet.load_fashion_mnist()


@pytest.fixture(scope="session")
def small_real(fashion):
    """A class-balanced slice of the real data: 2,000 train and 1,000 test images."""
    def take(images, labels, per_class):
        idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
        return images[idx], labels[idx]
    return take(fashion.train_images, fashion.train_labels, 200) + \
        take(fashion.test_images, fashion.test_labels, 100)


@pytest.fixture
def run_cli(tmp_path):
    """Run ``python -m MODULE ARGS`` in a subprocess with this checkout first on the path."""
    def run(module, *args, timeout=600, env=None, cwd=None):
        full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
        return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=full_env, cwd=cwd or tmp_path)
    return run
