import gzip
import hashlib
import os

import numpy as np
import pytest

from helpers import idx_bytes, write_idx_set
from gluon_resnet import data
from gluon_resnet.errors import DataError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own MXNET_HOME so caches never leak between tests."""
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet_home"))


def test_real_files_have_the_published_shape_and_balance(fashion):
    assert fashion.train_images.shape == (60000, 28, 28)
    assert fashion.test_images.shape == (10000, 28, 28)
    assert fashion.train_images.dtype == np.uint8
    assert np.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels).tolist() == [1000] * 10


def test_text_labels_by_index():
    assert data.get_fashion_mnist_labels([0, 1, 9]) == ["t-shirt", "trouser", "ankle boot"]


def test_tiny_files_round_trip_and_cache(tmp_path):
    arrays = write_idx_set(tmp_path / "d")
    # the tiny files are not the published ones, so skip the checksum for this test
    got = {stem: data.read_idx_file(tmp_path / "d" / (stem + ".gz")) for stem in arrays}
    for stem, array in arrays.items():
        np.testing.assert_array_equal(got[stem], array)


def test_checksum_mismatch_names_the_file(tmp_path):
    write_idx_set(tmp_path / "d")
    with pytest.raises(DataError, match="train-images.*checksum"):
        data.load_fashion_mnist(tmp_path / "d")


def test_published_checksums_are_of_the_payload(tmp_path, monkeypatch):
    arrays = write_idx_set(tmp_path / "d")
    fake = {key: (stem, hashlib.sha1(idx_bytes(arrays[stem])).hexdigest())
            for key, (stem, _) in data.FILES.items()}
    monkeypatch.setattr(data, "FILES", fake)
    loaded = data.load_fashion_mnist(tmp_path / "d")
    np.testing.assert_array_equal(loaded.test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert (data.cache_dir() / data.CACHE_NAME).is_file()
    again = data.load_fashion_mnist(tmp_path / "d")  # now from the cache
    np.testing.assert_array_equal(again.train_images, loaded.train_images)


def test_wrong_magic_truncation_and_length_mismatch_are_caught():
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    with pytest.raises(DataError, match="magic"):
        data.parse_idx(b"\x00\x00\x09" + good[3:], "f")
    with pytest.raises(DataError, match="needs"):
        data.parse_idx(good[:-1], "f")
    with pytest.raises(DataError, match="header"):
        data.parse_idx(good[:6], "f")


def test_count_mismatch_between_images_and_labels(tmp_path, monkeypatch):
    arrays = write_idx_set(tmp_path / "d")
    labels = np.zeros(7, dtype=np.uint8)
    (tmp_path / "d" / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    arrays["train-labels-idx1-ubyte"] = labels
    monkeypatch.setattr(data, "FILES", {k: (s, None) for k, (s, _) in data.FILES.items()})
    with pytest.raises(DataError, match="7 labels but .* 20 images"):
        data.load_fashion_mnist(tmp_path / "d")


def test_missing_directory_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load_fashion_mnist(tmp_path / "nowhere")
    write_idx_set(tmp_path / "d")
    os.unlink(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="t10k-labels"):
        data.load_fashion_mnist(tmp_path / "d")


def test_loader_batches_cover_the_data_once_in_a_seeded_order():
    images = np.arange(10 * 4, dtype=np.uint8).reshape(10, 2, 2)
    labels = np.arange(10, dtype=np.uint8)
    loader = data.ArrayLoader(images, labels, batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 3
    batches = list(loader)
    X, y = batches[0]
    assert X.shape == (4, 1, 2, 2) and str(X.dtype) == "float32" and float(X.max()) <= 1.0
    seen = np.concatenate([b[1].asnumpy() for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    again = data.ArrayLoader(images, labels, batch_size=4, shuffle=True, seed=3)
    np.testing.assert_array_equal(again.order(0), loader.order(0))
    assert not np.array_equal(loader.order(0), loader.order(1))


def test_resize_is_done_once_in_batches():
    images = np.full((5, 28, 28), 200, dtype=np.uint8)
    out = data.resize_images(images, 96, chunk=2)
    assert out.shape == (5, 96, 96) and out.dtype == np.uint8 and (out == 200).all()


def test_d2l_style_loader_on_real_data():
    train_iter, test_iter = data.load_data_fashion_mnist(32, resize=64)
    X, y = next(iter(test_iter))
    assert X.shape == (32, 1, 64, 64) and y.shape == (32,)
    assert 0.0 <= float(X.min()) and float(X.max()) <= 1.0


def test_early_epochs_train_on_the_small_images_in_the_same_order(fashion):
    """Progressive resizing (--small-size): epochs before the switch yield the small copies of the very
    images, labels and flips a full-size epoch would; later epochs the full-size images."""
    from gluon_resnet.augment import Augment
    images, labels = data.balanced_subset(fashion.train_images, fashion.train_labels, 60)
    small = data.resize_images(images, 12)
    loader = lambda early: data.ArrayLoader(images, labels, 25, shuffle=True, seed=3,  # noqa: E731
                                            augment=Augment(flip=True), early=early)
    staged, full = loader((small, 2)), loader(None)
    for epoch in range(3):
        staged.set_epoch(epoch), full.set_epoch(epoch)
        for (Xs, ys), (Xf, yf) in zip(staged, full):
            np.testing.assert_array_equal(ys.asnumpy(), yf.asnumpy())
            if epoch < 2:
                assert Xs.shape[2:] == (12, 12) and Xf.shape[2:] == (28, 28)
                flipped = data.resize_images((Xf.asnumpy()[:, 0] * 255).round().astype(np.uint8), 12)
                assert np.abs(Xs.asnumpy()[:, 0] * 255 - flipped).max() <= 1  # the same image, mirrored alike
            else:
                np.testing.assert_array_equal(Xs.asnumpy(), Xf.asnumpy())
    with pytest.raises(ValueError, match="small images"):
        data.ArrayLoader(images, labels, 25, early=(small[:-1], 1))


def test_a_clean_finish_drops_the_crops_and_the_mixing_in_the_last_epochs(fashion):
    """--clean-epochs: the epochs before the finish are the augmented ones, batch for batch; the
    finish yields each image as it is or mirrored, with whole labels, in the same order."""
    from gluon_resnet.augment import Augment, Mix
    images, labels = data.balanced_subset(fashion.train_images, fashion.train_labels, 60)
    loader = lambda finish: data.ArrayLoader(images, labels, 20, shuffle=True, seed=5,  # noqa: E731
                                             augment=Augment(pad=1, flip=True), mix=Mix("mixup", 1.0),
                                             finish=finish)
    clean, mixed = loader((Augment(flip=True), 2)), loader(None)
    for epoch in range(3):
        clean.set_epoch(epoch), mixed.set_epoch(epoch)
        for take, (Xc, yc), (Xm, ym) in zip(clean.batch_indices(epoch), clean, mixed):
            if epoch < 2:
                np.testing.assert_array_equal(Xc.asnumpy(), Xm.asnumpy())
                np.testing.assert_array_equal(yc.asnumpy(), ym.asnumpy())
                continue
            raw = data.to_unit_floats(images[np.sort(take)])
            got = Xc.asnumpy()[:, 0]
            as_is, mirrored = (got == raw).all(axis=(1, 2)), (got == raw[..., ::-1]).all(axis=(1, 2))
            assert (as_is | mirrored).all() and as_is.any() and mirrored.any()
            assert yc.asnumpy().tolist() == labels[np.sort(take)].tolist()  # whole labels, not shares
            assert not np.array_equal(got, Xm.asnumpy()[:, 0])  # the augmented epoch would differ


def test_balanced_subset_takes_every_class_evenly(fashion):
    images, labels = data.balanced_subset(fashion.test_images, fashion.test_labels, 100)
    assert len(labels) == 100 and np.bincount(labels).tolist() == [10] * 10


def test_pixels_become_unit_floats_in_one_place():
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4) * 8 + 7  # 7 .. 255
    X, _ = data.ArrayLoader(images, np.zeros(2, np.int32), 2).numpy_batch(np.arange(2))
    unit = data.to_unit_floats(images[:, None])
    np.testing.assert_array_equal(X, unit)  # the loader's batches are exactly these floats
    assert unit.dtype == np.float32 and unit.min() == pytest.approx(7 / 255) and unit.max() == 1.0
    np.testing.assert_array_max_ulp(unit, (images[:, None] / 255).astype(np.float32), maxulp=1)
    with pytest.raises(TypeError, match="uint8"):
        data.to_unit_floats(unit)  # floats already scaled would be divided again


def test_fetch_announces_the_url_and_returns_its_bytes(tmp_path, capsys):
    source = tmp_path / "payload.bin"
    source.write_bytes(b"\x00\x01 some bytes")
    assert data.fetch(source.as_uri()) == b"\x00\x01 some bytes"
    assert capsys.readouterr().err == f"downloading {source.as_uri()}\n"
    with pytest.raises(OSError):
        data.fetch((tmp_path / "missing.bin").as_uri())
