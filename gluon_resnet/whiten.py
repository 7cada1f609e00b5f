"""A whitened first convolution (``train --whiten``): the fast-training CIFAR-10 nets' patch whitening.

The first convolution of a net sees ``k x k`` patches of the image: ``C * k * k`` numbers each (9 for a
3x3 convolution on Fashion-MNIST's one channel). Neighbouring pixels are strongly correlated, so most of
a patch's variance lies along a few directions. Here the first convolution's filters are set, once,
before training, to those directions, the principal components of the training images' patches, each
divided by the square root of its variance so that the filter outputs are uncorrelated and of unit
variance (a whitening), and each paired with its negative so that the ReLU after it lets through both
signs. The filters are then frozen: training moves every other weight. Page's and Jordan's fast CIFAR-10
nets (airbench) start this way, and it speeds up their first epochs.

In this package's nets a BatchNorm follows every convolution, and it rescales each output channel, so
the division by the square root only matters before it; what the BatchNorm cannot undo is that the
filters are fixed, decorrelated directions rather than learned ones.

    >>> import numpy as np
    >>> images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    >>> whitening_filters(images, channels=16).shape
    (16, 1, 3, 3)
"""
import numpy as np
from mxnet import initializer

from .errors import UserError


def patch_components(images, kernel=3, limit=10000, chunk=500, budget=2e7):
    """The principal components of the ``kernel x kernel`` patches of ``images`` (uint8, (N, H, W) or
    (N, C, H, W), read as [0, 1] like ``data.ArrayLoader``'s batches), from the first ``limit`` images:
    ``(variances, directions)``, variances descending, directions one per row, of length ``C * k * k``
    in the order of a convolution weight's ``(C, k, k)``. The patches are summed over chunks of
    ``chunk`` images, fewer where their patches would hold more than ``budget`` numbers (all of them
    at once would take gigabytes)."""
    images = images[:limit]
    if images.ndim == 3:
        images = images[:, None]
    dims = images.shape[1] * kernel * kernel
    per_image = (images.shape[2] - kernel + 1) * (images.shape[3] - kernel + 1) * dims
    chunk = max(1, min(chunk, int(budget // per_image)))
    total, outer, count = np.zeros(dims), np.zeros((dims, dims)), 0
    for begin in range(0, len(images), chunk):
        x = images[begin:begin + chunk].astype(np.float64) / 255.0
        windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))
        patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, dims)  # (N * H' * W', C * k * k)
        total += patches.sum(0)
        outer += patches.T @ patches
        count += len(patches)
    mean = total / count
    covariance = outer / count - np.outer(mean, mean)
    variances, vectors = np.linalg.eigh(covariance)  # ascending
    return variances[::-1], vectors[:, ::-1].T


def whitening_filters(images, channels, in_channels=None, kernel=3, eps=5e-4):
    """``channels`` filters of shape ``(C, kernel, kernel)`` for a first convolution: the leading
    ``channels // 2`` principal components of the patches of ``images``, each scaled by
    ``1 / sqrt(variance + eps)``, then the same filters negated. float32, ``(channels, C, k, k)``."""
    c = 1 if images.ndim == 3 else images.shape[1]
    if in_channels not in (None, c):
        raise UserError(f"--whiten: the first convolution reads {in_channels} channels, the images have {c}")
    pairs, dims = channels // 2, c * kernel * kernel
    if channels % 2 or pairs > dims:
        raise UserError(f"--whiten needs an even number of first-layer filters, at most twice the {dims} numbers "
                        f"of a {kernel}x{kernel}x{c} patch; this net's first convolution has {channels} "
                        "(--no-whiten trains it as it is)")
    variances, vectors = patch_components(images, kernel)
    half = vectors[:pairs] / np.sqrt(variances[:pairs, None] + eps)
    return np.concatenate([half, -half]).reshape(channels, c, kernel, kernel).astype(np.float32)


class Fixed(initializer.Initializer):
    """An initializer that writes one given array (for a Parameter's own ``init``)."""

    def __init__(self, value):
        super().__init__()  # no kwargs: dumps() stays JSON-able when a hybridized graph names it
        self.value = value

    def _init_weight(self, _, arr):
        arr[:] = self.value


def first_conv(net):
    """The first ``Conv2D`` of ``net`` in the order of its parameters."""
    from mxnet.gluon import nn

    def walk(block):
        if isinstance(block, nn.Conv2D):
            return block
        for child in block._children.values():
            found = walk(child)
            if found is not None:
                return found
        return None

    conv = walk(net)
    if conv is None:
        raise UserError("--whiten needs a net that starts with a convolution")
    return conv


def whiten_first_conv(net, images):
    """Give ``net``'s first convolution whitening filters of ``images`` (see the module) and freeze
    them: they are its initial weights (``net.initialize`` writes them; a resumed run loads the saved
    ones, the same numbers) and their gradients are never computed. Returns the filters."""
    conv = first_conv(net)
    channels, in_channels, kh, kw = conv.weight.shape
    if kh != kw or not in_channels:
        raise UserError(f"--whiten needs a square first convolution with known input channels; "
                        f"this net's is {conv.weight.shape}")
    filters = whitening_filters(images, channels, in_channels, kh)
    conv.weight.init = Fixed(filters)
    conv.weight.grad_req = "null"
    return filters
