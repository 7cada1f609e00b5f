"""Whole-batch augmentation (gluon_resnet.augment) as the one ArrayLoader applies it to every data set."""
import numpy as np
import pytest

from gluon_resnet.augment import Augment, Mix, alternating_flip, cutmix, mixup, random_crop, random_erase, random_flip
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


@pytest.mark.parametrize("shape", [(9, 6, 7), (9, 3, 6, 7)])
def test_crop_cuts_the_window_its_draws_name(shape):
    """Image i is the window at (dy[i], dx[i]) of the padded image, the offsets being the generator's
    next two draws: so a seed gives the same crops whichever way they are cut (runs stay repeatable)."""
    images = np.random.default_rng(2).integers(0, 256, shape, dtype=np.uint8)
    pad, h, w = 2, *shape[-2:]
    draws = np.random.default_rng(7)
    dy, dx = draws.integers(0, 2 * pad + 1, size=9), draws.integers(0, 2 * pad + 1, size=9)
    out = random_crop(images, pad, np.random.default_rng(7))
    for image, crop, top, left in zip(images, out, dy, dx):
        padded = np.pad(image, [(0, 0)] * (image.ndim - 2) + [(pad, pad), (pad, pad)])
        np.testing.assert_array_equal(crop, padded[..., top:top + h, left:left + w])
    assert out.flags.c_contiguous and out.dtype == np.uint8


def test_each_image_gets_its_own_shift_and_flip():
    images = np.tile(np.arange(16, dtype=np.uint8).reshape(1, 4, 4) + 1, (64, 1, 1))
    crops = random_crop(images, 1, np.random.default_rng(0))
    assert len({c.tobytes() for c in crops}) > 5              # up to 9 shifts, drawn per image
    flipped = random_flip(images, np.random.default_rng(0))
    mirrored = [(f == images[0][:, ::-1]).all() for f in flipped]
    assert 16 < sum(mirrored) < 48                            # about half
    assert random_crop(images, 0, np.random.default_rng(0)) is images
    assert not Augment() and Augment(flip=True)


def test_alternating_flips_follow_the_index_and_the_epoch_not_the_generator():
    images = np.tile(np.arange(6, dtype=np.uint8).reshape(1, 2, 3), (8, 1, 1))
    ids = np.array([3, 10, 11, 20, 21, 22, 40, 41])
    flipped = [[(img == images[0][:, ::-1]).all() for img in alternating_flip(images, ids, e)] for e in range(3)]
    assert sum(flipped[0]) == 4 and flipped[0] == flipped[2]
    assert [a != b for a, b in zip(flipped[0], flipped[1])] == [True] * 8
    augment = Augment(flip="alternate")
    assert augment.needs_ids and not Augment(flip=True).needs_ids
    np.testing.assert_array_equal(augment(images, np.random.default_rng(0), ids=ids, epoch=1),
                                  augment(images, np.random.default_rng(9), ids=ids, epoch=1))
    with pytest.raises(ValueError, match="index and the epoch"):
        augment(images, np.random.default_rng(0))
    with pytest.raises(ValueError, match="flip is False, True or 'alternate'"):
        Augment(flip="sometimes")


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


def _labelled_constants(n, shape=(28, 28)):
    """``n`` images, image i filled with the value 10 * (i + 1), labelled i % 10."""
    values = 10 * (np.arange(n) + 1)
    images = (values.reshape(-1, *(1,) * len(shape)) * np.ones(shape)).astype(np.uint8)
    return images, np.arange(n) % 10, values


def test_cutmix_pastes_one_rectangle_of_one_partner_and_shares_the_labels_by_area():
    images, labels, values = _labelled_constants(20)
    out, targets = cutmix(images, labels, np.random.default_rng(4), p=1.0)
    assert out.shape == images.shape and out.dtype == np.uint8 and targets.shape == (20, 10)
    np.testing.assert_allclose(targets.sum(axis=1), 1, rtol=1e-6)
    pasted_some = 0
    for i, (before, after) in enumerate(zip(images, out)):
        box = _changed_box(before, after)
        if box is None:  # the partner was the image itself, or the rectangle fell outside
            assert targets[i, labels[i]] == pytest.approx(1)
            continue
        top, bottom, left, right = box
        inside = after[top:bottom, left:right]
        assert len(np.unique(inside)) == 1 and inside[0, 0] in values  # one rectangle from one image
        partner = int(np.flatnonzero(values == inside[0, 0])[0])
        share = (bottom - top) * (right - left) / after.size
        expected = np.zeros(10)
        expected[labels[i]] += 1 - share
        expected[labels[partner]] += share
        np.testing.assert_allclose(targets[i], expected, atol=1e-6)
        pasted_some += 1
    assert pasted_some >= 15


def test_cutmix_and_mixup_mix_only_the_requested_share_and_repeat_with_their_seed():
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (2000, 6, 6), dtype=np.uint8), rng.integers(0, 10, 2000)
    for mix in (cutmix, mixup):
        out, targets = mix(images, labels, np.random.default_rng(5), p=0.3)
        changed = (out != images).any(axis=(1, 2))
        assert 0.25 < changed.mean() < 0.33  # a share 0.3 (less rectangles too small to hold a pixel)
        mixed = targets.max(axis=1) < 1 - 1e-6  # those with a partner of another label
        assert 0.2 < mixed.mean() < 0.3 and (mixed & ~changed).mean() < 0.01
        again = mix(images, labels, np.random.default_rng(5), p=0.3)
        np.testing.assert_array_equal(again[0], out)
        no_mix, one_hot = mix(images, labels, np.random.default_rng(5), p=0.0)
        np.testing.assert_array_equal(no_mix, images)
        np.testing.assert_array_equal(one_hot.argmax(axis=1), labels)


def test_mixup_blends_pixels_in_the_proportion_of_the_targets():
    images, labels, values = _labelled_constants(10, (4, 4))
    out, targets = mixup(images, labels, np.random.default_rng(6), p=1.0)
    # each image is a * value_i + (1 - a) * value_partner with a = its own label's share
    recovered = targets @ values[:10]  # labels 0..9 are the images 0..9 here
    np.testing.assert_allclose(out[:, 0, 0], recovered, atol=0.5)
    assert (out == out[:, :1, :1]).all()  # the same blend over the whole image


def test_cutmix_on_colour_images_pastes_the_same_rectangle_in_every_channel():
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (30, 3, 16, 16), dtype=np.uint8)
    out, _ = Mix("cutmix", 1.0)(images, np.arange(30) % 10, rng)
    changed = out != images
    assert (changed.any(axis=1) == changed.all(axis=1)).mean() > 0.98  # random pixels rarely match
    with pytest.raises(ValueError, match="choose cutmix or mixup"):
        Mix("blend", 0.5)


def test_a_mixing_loader_yields_label_shares_after_augmenting_and_the_plain_one_does_not_change(small_real):
    Xtr, ytr = small_real[:2]
    mixing = ArrayLoader(Xtr, ytr, 100, shuffle=True, seed=5, augment=Augment(flip=True), mix=Mix("cutmix", 0.5))
    X, y = next(iter(mixing))
    assert str(y.dtype) == "float32" and y.shape == (100, 10)
    np.testing.assert_allclose(y.asnumpy().sum(axis=1), 1, rtol=1e-5)
    order = np.sort(mixing.order(0)[:100])
    assert (y.asnumpy().argmax(axis=1) == ytr[order]).mean() > 0.7  # most images keep most of themselves
    plain = ArrayLoader(Xtr, ytr, 100, shuffle=True, seed=5, augment=Augment(flip=True))
    assert str(next(iter(plain))[1].dtype) == "int32"
