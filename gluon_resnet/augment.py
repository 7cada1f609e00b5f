"""Augmentation done on whole batches with numpy indexing: random crop with padding, horizontal flip,
random erasing, and the two that mix pairs of images and their labels, CutMix and mixup.

Each call takes a uint8 batch, (B, H, W) or (B, C, H, W), and a ``numpy.random.Generator``; nothing
loops over samples in Python, so augmenting costs about as much as copying the batch. The same
functions serve Fashion-MNIST and CIFAR-10 (``Augment(pad=4, flip=True)`` is the classic CIFAR
recipe). Gluon's ``transforms.RandomResizedCrop``/``RandomFlipLeftRight`` work on one image at a
time, which is why these whole-batch versions exist. ``Mix`` (CutMix, mixup) also returns the
targets, one row of class shares per image, since a mixed image has two labels.
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
    n, (h, w) = len(images), images.shape[-2:]
    padded = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(pad, pad), (pad, pad)])
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    # Every window of the padded batch as a view, (N, [C,] 2p+1, 2p+1, H, W), then one gather of
    # each image's window: about 9x faster than two take_along_axis calls over the batch.
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(-2, -1))
    if images.ndim == 4:  # the window offsets next to the image axis, channels after them
        windows = np.moveaxis(windows, (-4, -3), (1, 2))
    return windows[np.arange(n), dy, dx]


def random_flip(images, rng, p=0.5):
    """Mirror a random half (probability ``p``) of the images left to right.

    >>> img = np.arange(4, dtype=np.uint8).reshape(1, 2, 2)
    >>> random_flip(img, np.random.default_rng(0), p=1.0)[0].tolist()
    [[1, 0], [3, 2]]
    """
    return _mirror(images, rng.random(len(images)) < p)


def alternating_flip(images, ids, epoch):
    """Mirror each image in every other epoch: image ``i`` is mirrored in epoch ``e`` when ``i + e`` is
    odd, so half of the training set is mirrored in each epoch and every image is seen both ways
    in any two epochs running. A derandomised ``random_flip`` (Jordan's airbench, 2024): at random,
    an image is shown the same way twice running in half of the epochs.

    >>> img = np.arange(4, dtype=np.uint8).reshape(1, 2, 2)
    >>> [alternating_flip(img, np.array([0]), e)[0, 0].tolist() for e in (0, 1, 2)]
    [[0, 1], [1, 0], [0, 1]]
    """
    return _mirror(images, (np.asarray(ids) + epoch) % 2 == 1)


def _mirror(images, which):
    """A copy of ``images`` with those where ``which`` is true mirrored left to right."""
    out = images.copy()
    out[which] = images[which][..., ::-1]
    return out


def _rectangles(images, top, bottom, left, right):
    """A boolean mask shaped for ``images``: true inside each image's rectangle (rows top..bottom-1,
    columns left..right-1), the same place in every channel of a (B, C, H, W) batch."""
    (h, w), c = images.shape[-2:], (slice(None),) + (None,) * (images.ndim - 3)
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < bottom[:, None, None])
              & (cols >= left[:, None, None]) & (cols < right[:, None, None]))
    return inside[c]


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
    inside = _rectangles(images, top, top + eh, left, left + ew)
    inside &= (rng.random(n) < p).reshape((n,) + (1,) * (images.ndim - 1))
    noise = rng.integers(0, 256, size=images.shape, dtype=images.dtype)
    return np.where(inside, noise, images)


class Augment:
    """Random crop (``pad`` pixels, 0 = off), horizontal flip (``flip``: False, True for a random
    half, ``"alternate"`` for ``alternating_flip``), then random erasing of a share ``erase`` of
    the images (0 = off), on a uint8 batch.

    An ``ArrayLoader``'s ``augment``: called with each training batch and the epoch's generator,
    and, when ``needs_ids`` is true (alternating flips), the batch's image indices and the epoch.
    """

    def __init__(self, pad=0, flip=False, erase=0.0):
        if flip not in (False, True, "alternate"):
            raise ValueError(f"flip is False, True or 'alternate', not {flip!r}")
        self.pad, self.flip, self.erase = pad, flip, erase

    @property
    def needs_ids(self):
        return self.flip == "alternate"

    def __call__(self, images, rng, ids=None, epoch=None):
        images = random_crop(images, self.pad, rng)
        if self.needs_ids:
            if ids is None or epoch is None:
                raise ValueError("alternating flips need each image's index and the epoch")
            images = alternating_flip(images, ids, epoch)
        elif self.flip:
            images = random_flip(images, rng)
        return random_erase(images, rng, self.erase) if self.erase else images

    def __bool__(self):
        return bool(self.pad or self.flip or self.erase)

    def __repr__(self):
        return f"Augment(pad={self.pad}, flip={self.flip!r}, erase={self.erase})"



def one_hot(labels, num_classes):
    """Rows of class shares: 1 at each label, 0 elsewhere (float32)."""
    return np.eye(num_classes, dtype=np.float32)[labels]


def _mixed_targets(labels, partner, keep, num_classes):
    """Each image's label with share ``keep``, its partner's with the rest."""
    keep = keep.astype(np.float32)[:, None]
    return keep * one_hot(labels, num_classes) + (1 - keep) * one_hot(labels[partner], num_classes)


def cutmix(images, labels, rng, p=1.0, num_classes=10):
    """Paste a random rectangle of another image of the batch into a share ``p`` of the images.

    CutMix (Yun et al., 2019): the rectangle has the image's proportions and covers a share of it
    drawn uniformly from [0, 1], around a centre anywhere in the image (what falls outside is cut
    off, so the share can end smaller). The target gives each of the two labels its share of the
    pixels. The partner of each image is another image of the same batch (a random permutation).
    Returns (images, targets), targets float32 (B, ``num_classes``).

    >>> images = np.stack([np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8)])
    >>> out, targets = cutmix(images, np.array([0, 1]), np.random.default_rng(1), num_classes=2)
    >>> bool(((out[:, None] == images[None]).all(axis=1) | (out == 0) | (out == 255)).all())
    True
    >>> np.allclose(targets[:, 1], (out == 255).mean(axis=(1, 2)))  # label shares = pixel shares
    True
    """
    n, (h, w) = len(images), images.shape[-2:]
    partner = rng.permutation(n)
    side = np.sqrt(rng.random(n))  # of the rectangle, as a share of the image's sides
    cy, cx = rng.random(n) * h, rng.random(n) * w
    top, bottom = (np.clip(np.round(cy + d * side * h / 2), 0, h).astype(int) for d in (-1, 1))
    left, right = (np.clip(np.round(cx + d * side * w / 2), 0, w).astype(int) for d in (-1, 1))
    bottom = np.where(rng.random(n) < p, bottom, top)  # the others get an empty rectangle
    inside = _rectangles(images, top, bottom, left, right)
    keep = 1 - inside.mean(axis=(-2, -1)).reshape(n)
    return np.where(inside, images[partner], images), _mixed_targets(labels, partner, keep, num_classes)


def mixup(images, labels, rng, p=1.0, num_classes=10):
    """Blend a share ``p`` of the images with another image of the batch, pixel by pixel.

    mixup (Zhang et al., 2018): image and target are ``lam`` of one example plus ``1 - lam`` of
    its partner, with ``lam`` drawn from Beta(1, 1), i.e. uniformly (the paper's CIFAR setting);
    the images stay uint8, rounded to the nearest level. Returns (images, targets) as ``cutmix``.

    >>> images = np.stack([np.zeros((2, 2), np.uint8), np.full((2, 2), 200, np.uint8)])
    >>> out, targets = mixup(images, np.array([0, 1]), np.random.default_rng(0), num_classes=2)
    >>> np.allclose(out.mean(axis=(1, 2)), 200 * targets[:, 1], atol=0.5)
    True
    """
    n = len(images)
    partner = rng.permutation(n)
    keep = np.where(rng.random(n) < p, rng.random(n), 1.0)
    share = keep.reshape((n,) + (1,) * (images.ndim - 1))
    blend = share * images + (1 - share) * images[partner]
    return np.round(blend).astype(images.dtype), _mixed_targets(labels, partner, keep, num_classes)


class Mix:
    """CutMix (``kind="cutmix"``) or mixup (``"mixup"``) on a share ``p`` of each batch: an
    ``ArrayLoader``'s ``mix``, called after ``Augment`` with the labels, returning the images and
    one row of class shares per image as the targets the loss reads (``loop.cross_entropy``)."""

    KINDS = {"cutmix": cutmix, "mixup": mixup}

    def __init__(self, kind, p, num_classes=10):
        if kind not in self.KINDS:
            raise ValueError(f"unknown mix {kind!r}: choose {' or '.join(self.KINDS)}")
        self.kind, self.p, self.num_classes = kind, p, num_classes

    def __call__(self, images, labels, rng):
        return self.KINDS[self.kind](images, labels, rng, self.p, self.num_classes)

    def __repr__(self):
        return f"Mix({self.kind!r}, p={self.p})"
