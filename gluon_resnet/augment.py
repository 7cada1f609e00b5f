"""Augmentation done on whole batches with numpy indexing: random crop with padding, horizontal flip.

Each call takes a uint8 batch, (B, H, W) or (B, C, H, W), and a ``numpy.random.Generator``; nothing
loops over samples in Python, so augmenting costs about as much as copying the batch. The same
functions serve Fashion-MNIST and CIFAR-10 (``Augment(pad=4, flip=True)`` is the classic CIFAR
recipe). Gluon's ``transforms.RandomResizedCrop``/``RandomFlipLeftRight`` work on one image at a
time, which is why these whole-batch versions exist.
"""
import numpy as np


def random_crop(images, pad, rng):
    """Zero-pad each image by ``pad`` pixels and cut a random window of the original size.

    >>> rng = np.random.default_rng(0)
    >>> random_crop(np.ones((3, 5, 5), np.uint8), 2, rng).shape
    (3, 5, 5)
    """
    if pad <= 0:
        return images
    n, (h, w), middle = len(images), images.shape[-2:], (1,) * (images.ndim - 3)  # middle: channels
    padded = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(pad, pad), (pad, pad)])
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    rows = (dy[:, None] + np.arange(h)).reshape(n, *middle, h, 1)
    cols = (dx[:, None] + np.arange(w)).reshape(n, *middle, 1, w)
    return np.take_along_axis(np.take_along_axis(padded, rows, axis=-2), cols, axis=-1)


def random_flip(images, rng, p=0.5):
    """Mirror a random half (probability ``p``) of the images left to right.

    >>> img = np.arange(4, dtype=np.uint8).reshape(1, 2, 2)
    >>> random_flip(img, np.random.default_rng(0), p=1.0)[0].tolist()
    [[1, 0], [3, 2]]
    """
    flip = rng.random(len(images)) < p
    out = images.copy()
    out[flip] = images[flip][..., ::-1]
    return out


class Augment:
    """Random crop (``pad`` pixels, 0 = off) then horizontal flip (``flip`` on/off) of a uint8 batch.

    An ``ArrayLoader``'s ``augment``: called with each training batch and the epoch's generator.
    """

    def __init__(self, pad=0, flip=False):
        self.pad, self.flip = pad, flip

    def __call__(self, images, rng):
        images = random_crop(images, self.pad, rng)
        return random_flip(images, rng) if self.flip else images

    def __bool__(self):
        return bool(self.pad or self.flip)

    def __repr__(self):
        return f"Augment(pad={self.pad}, flip={self.flip})"
