"""A lever that lost (docs/frontier.md): BatchNorm statistics re-estimated on clean training images.

A net trained with random erasing keeps BatchNorm running statistics of erased images, and the test
images have no erased patches. This script scores each run as saved, then re-estimates every BN
layer's mean and variance over all 60,000 training images and their mirror images (no erasing),
and scores it again with the run's mirror-image TTA:

    .venv/bin/python docs/bn_recalibration.py runs/levers/wd2e4-35-s0 runs/levers/wd2e4-35-s1

MXNet updates the running statistics in the backward pass (momentum m: new = m * old + (1 - m) *
batch), so each batch runs forward and backward with the statistics set to zero, and its own
statistics are read back as running / (1 - m); the estimate is their mean over the batches.
"""
import sys

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
import numpy as onp
from mxnet import autograd, gluon, np

from gluon_resnet.data import ArrayLoader, load_fashion_mnist
from gluon_resnet.loop import accuracy_sums
from gluon_resnet.run import read_run


def batchnorms(block):
    found = [block] if isinstance(block, gluon.nn.BatchNorm) else []
    return found + [bn for child in block._children.values() for bn in batchnorms(child)]


def recalibrate(net, images, batch_size=500):
    layers = [(bn.running_mean, bn.running_var, bn._kwargs["momentum"]) for bn in batchnorms(net)]
    sums, batches = [[0.0, 0.0] for _ in layers], 0
    for X, _ in ArrayLoader(images, onp.zeros(len(images), "int32"), batch_size):
        for view in (X, X[:, :, :, ::-1]):
            for mean, var, _ in layers:
                mean.set_data(np.zeros(mean.shape))
                var.set_data(np.zeros(var.shape))
            with autograd.record():
                out = net(view).sum()
            out.backward()
            for total, (mean, var, m) in zip(sums, layers):
                total[0] = total[0] + mean.data() / (1 - m)
                total[1] = total[1] + var.data() / (1 - m)
            batches += 1
    for total, (mean, var, _) in zip(sums, layers):
        mean.set_data(total[0] / batches)
        var.set_data(total[1] / batches)


def main(directories):
    data = load_fashion_mnist()
    test = ArrayLoader(data.test_images, data.test_labels, 500)
    for directory in directories:
        record = read_run(directory)
        net = record.load_net(hybridize=False)
        correct, seen = accuracy_sums(net, test, [mx.cpu()], record.settings.tta)
        recalibrate(net, data.train_images)
        again, _ = accuracy_sums(net, test, [mx.cpu()], record.settings.tta)
        print(f"{directory}: as saved {correct / seen:.4f}, BN re-estimated on clean images {again / seen:.4f}",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
