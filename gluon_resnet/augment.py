"""Augmentation done on whole batches with numpy indexing: random crop with padding, horizontal flip,
random erasing.

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


def random_erase(images, rng, p=0.5, area=(0.02, 0.4), aspect=0.3):
    """Fill one random rectangle of a random share ``p`` of the images with random pixel values.

    Random erasing (Zhong et al., 2017): the rectangle covers a share of the image drawn from
    ``area``, its height/width ratio lies between ``aspect`` and ``1 / aspect`` (log-uniform), and
    it lies wholly inside the image; with channels, all of them are erased at the same place. The
    net has to recognise a garment from the parts it can still see.

    >>> out = random_erase(np.zeros((4, 8, 8), np.uint8), np.random.default_rng(0), p=1.0)
    >>> out.shape, bool((out != 0).any(axis=(1, 2)).all())
    ((4, 8, 8), True)
    """
    n, (h, w) = len(images), images.shape[-2:]
    share = rng.uniform(*area, size=n) * h * w
    ratio = np.exp(rng.uniform(np.log(aspect), -np.log(aspect), size=n))
    eh = np.clip(np.round(np.sqrt(share * ratio)), 1, h).astype(int)
    ew = np.clip(np.round(np.sqrt(share / ratio)), 1, w).astype(int)
    top = (rng.random(n) * (h - eh + 1)).astype(int)
    left = (rng.random(n) * (w - ew + 1)).astype(int)
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))
    inside &= (rng.random(n) < p)[:, None, None]
    if images.ndim == 4:
        inside = inside[:, None]  # the same rectangle in every channel
    noise = rng.integers(0, 256, size=images.shape, dtype=images.dtype)
    return np.where(inside, noise, images)


class Augment:
    """Random crop (``pad`` pixels, 0 = off), horizontal flip (``flip`` on/off), then random erasing
    of a share ``erase`` of the images (0 = off), on a uint8 batch.

    An ``ArrayLoader``'s ``augment``: called with each training batch and the epoch's generator.
    """

    def __init__(self, pad=0, flip=False, erase=0.0):
        self.pad, self.flip, self.erase = pad, flip, erase

    def __call__(self, images, rng):
        images = random_crop(images, self.pad, rng)
        images = random_flip(images, rng) if self.flip else images
        return random_erase(images, rng, self.erase) if self.erase else images

    def __bool__(self):
        return bool(self.pad or self.flip or self.erase)

    def __repr__(self):
        return f"Augment(pad={self.pad}, flip={self.flip}, erase={self.erase})"
