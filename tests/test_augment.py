"""Whole-batch augmentation (gluon_resnet.augment) as the one ArrayLoader applies it to every data set."""
import numpy as np
import pytest

from gluon_resnet.augment import Augment, random_crop, random_erase, random_flip
from gluon_resnet.data import ArrayLoader


def windows(image, pad):
    """Every crop of the original size from ``image`` zero-padded by ``pad``, and their mirror images."""
    h, w = image.shape[-2:]
    padded = np.pad(image, [(0, 0)] * (image.ndim - 2) + [(pad, pad), (pad, pad)])
    crops = [padded[..., t:t + h, s:s + w] for t in range(2 * pad + 1) for s in range(2 * pad + 1)]
    return crops + [c[..., ::-1] for c in crops]


@pytest.mark.parametrize("shape", [(6, 8, 8), (6, 3, 8, 8)])  # Fashion-MNIST and CIFAR layouts
def test_augmentation_only_shifts_and_mirrors_and_repeats_with_its_seed(shape):
    images = np.random.default_rng(0).integers(1, 256, shape, dtype=np.uint8)
    out = Augment(pad=2, flip=True)(images, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == np.uint8
    for image, augmented in zip(images, out):
        assert any((augmented == w).all() for w in windows(image, 2))
    np.testing.assert_array_equal(out, Augment(pad=2, flip=True)(images, np.random.default_rng(1)))
    assert not np.array_equal(out, images)


def test_each_image_gets_its_own_shift_and_flip():
    images = np.tile(np.arange(16, dtype=np.uint8).reshape(1, 4, 4) + 1, (64, 1, 1))
    crops = random_crop(images, 1, np.random.default_rng(0))
    assert len({c.tobytes() for c in crops}) > 5              # up to 9 shifts, drawn per image
    flipped = random_flip(images, np.random.default_rng(0))
    mirrored = [(f == images[0][:, ::-1]).all() for f in flipped]
    assert 16 < sum(mirrored) < 48                            # about half
    assert random_crop(images, 0, np.random.default_rng(0)) is images
    assert not Augment() and Augment(flip=True)


def test_loader_order_and_augmentation_repeat_per_epoch(small_real):
    Xtr, ytr = small_real[:2]
    make = lambda: ArrayLoader(Xtr, ytr, 100, shuffle=True, seed=5, augment=Augment(pad=2, flip=True))  # noqa
    a, b = make(), make()
    b.set_epoch(1)
    first_a = [x.asnumpy() for x, _ in a]        # epoch 0
    second_a = next(iter(a))[0].asnumpy()        # epoch 1
    np.testing.assert_array_equal(next(iter(b))[0].asnumpy(), second_a)
    assert not np.array_equal(first_a[0], second_a)
    plain = ArrayLoader(Xtr, ytr, 100, shuffle=True, seed=5)
    assert np.abs(plain.numpy_batch(np.sort(plain.order(0)[:100]))[0] - first_a[0]).sum() > 0


def test_loader_batches_channel_first_floats_for_both_layouts():
    labels = np.arange(10) % 10
    for images, channels in ((np.full((10, 5, 5), 255, np.uint8), 1), (np.full((10, 3, 5, 5), 255, np.uint8), 3)):
        X, y = next(iter(ArrayLoader(images, labels, 4, augment=Augment(pad=1, flip=True))))
        assert X.shape == (4, channels, 5, 5) and str(X.dtype) == "float32" and str(y.dtype) == "int32"
        assert float(X.max()) == 1.0


def _changed_box(before, after):
    """Bounding box (top, bottom, left, right) of the pixels that changed, or None."""
    rows, cols = np.nonzero(before != after)
    if rows.size == 0:
        return None
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def test_erasing_fills_one_rectangle_of_the_requested_size_and_leaves_the_rest():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
    kept = images.copy()
    out = random_erase(images, rng, p=1.0, area=(0.05, 0.3), aspect=0.5)
    np.testing.assert_array_equal(images, kept)  # the input batch is not modified
    for before, after in zip(images, out):
        top, bottom, left, right = _changed_box(before, after)
        h, w = bottom - top, right - left
        # noise equals the old pixel 1 time in 256, so nearly every pixel in the box changed
        assert (before != after)[top:bottom, left:right].mean() > 0.9
        assert 0.04 <= h * w / 784 <= 0.34             # the area range, give or take rounding
        assert 0.5 / 1.5 <= h / w <= 1.5 / 0.5           # the aspect range, give or take rounding


def test_erasing_touches_only_the_requested_share_of_images():
    rng = np.random.default_rng(2)
    images = np.zeros((4000, 28, 28), np.uint8)
    erased = (random_erase(images, rng, p=0.3) != 0).any(axis=(1, 2)).mean()
    assert 0.27 < erased < 0.33
    assert not random_erase(images, rng, p=0.0).any()


def test_erasing_colour_images_erases_the_same_rectangle_in_every_channel():
    rng = np.random.default_rng(3)
    out = random_erase(np.zeros((50, 3, 32, 32), np.uint8), rng, p=1.0)
    changed = out != 0
    # a pixel inside the rectangle is noise in all channels (each is 0 only 1 time in 256)
    assert (changed.any(axis=1) == changed.all(axis=1)).mean() > 0.99


def test_augment_erases_after_crop_and_flip_and_only_when_asked():
    assert not Augment() and Augment(erase=0.5) and "erase=0.5" in repr(Augment(erase=0.5))
    images = np.full((50, 28, 28), 9, np.uint8)
    rng = np.random.default_rng(0)
    assert (Augment(pad=0, flip=True)(images, rng) == 9).all()
    assert (Augment(erase=1.0)(images, rng) != 9).any(axis=(1, 2)).all()
