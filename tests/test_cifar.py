"""The CIFAR-10 reader on tiny files written in the real formats, the loaders, and padding."""
import io
import pickle
import tarfile

import numpy as np
import pytest

from gluon_resnet import cifar
from gluon_resnet.errors import DataError

PER_BATCH = 4  # images per tiny batch file; the real files hold 10,000


def tiny_batches(seed=0):
    """Six (images NCHW uint8, labels) pairs: five train batches and the test batch."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (PER_BATCH, 3, 32, 32), dtype=np.uint8),
             rng.integers(0, 10, PER_BATCH, dtype=np.uint8)) for _ in range(6)]


def binary_bytes(images, labels):
    """Each record: the label byte, then the red, green and blue planes (row-major)."""
    return b"".join(bytes([int(label)]) + image.tobytes() for image, label in zip(images, labels))


def python_bytes(images, labels):
    """A pickled dict as the Python version ships it (protocol 2, bytes keys, rows of 3072)."""
    return pickle.dumps({b"batch_label": b"tiny", b"labels": [int(v) for v in labels],
                         b"data": images.reshape(len(images), -1)}, protocol=2)


def write_set(folder, batches, fmt="bin"):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (images, labels) in zip(cifar.TRAIN_STEMS + cifar.TEST_STEMS, batches):
        if fmt == "bin":
            (folder / (stem + ".bin")).write_bytes(binary_bytes(images, labels))
        else:
            (folder / stem).write_bytes(python_bytes(images, labels))


def expected(batches):
    return (np.concatenate([i for i, _ in batches[:5]]), np.concatenate([l for _, l in batches[:5]]),
            batches[5][0], batches[5][1])


@pytest.mark.parametrize("fmt, sub", [("bin", ""), ("bin", "cifar-10-batches-bin"),
                                      ("py", "cifar-10-batches-py")])
def test_reads_both_formats_loose_or_in_their_subfolder(tmp_path, fmt, sub):
    batches = tiny_batches()
    write_set(tmp_path / sub if sub else tmp_path, batches, fmt)
    data = cifar.load_cifar10(tmp_path)
    for got, want in zip(data, expected(batches)):
        np.testing.assert_array_equal(got, want)
    assert data.train_images.shape == (5 * PER_BATCH, 3, 32, 32) and data.train_images.dtype == np.uint8


def test_binary_records_keep_the_red_green_blue_plane_order():
    image = np.zeros((3, 32, 32), np.uint8)
    image[0, 0, 0], image[1, 0, 1], image[2, 31, 31] = 10, 20, 30
    images, labels = cifar.parse_binary_batch(bytes([3]) + image.tobytes())
    assert labels.tolist() == [3]
    assert (images[0, 0, 0, 0], images[0, 1, 0, 1], images[0, 2, 31, 31]) == (10, 20, 30)


def test_truncated_binary_file_is_a_one_line_data_error(tmp_path):
    write_set(tmp_path, tiny_batches())
    path = tmp_path / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="test_batch.bin holds .* not a whole number") as err:
        cifar.load_cifar10(tmp_path)
    assert "\n" not in str(err.value)


def test_label_out_of_range_is_rejected():
    with pytest.raises(DataError, match="label 12"):
        cifar.parse_binary_batch(bytes([12]) + bytes(3072))


def test_a_pickle_that_would_run_code_is_refused():
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        cifar.parse_python_batch(pickle.dumps({b"data": Evil()}), name="data_batch_1")


def test_explicit_folder_without_the_files_says_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 batch files"):
        cifar.load_cifar10(tmp_path)


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GLUON_RESNET_CIFAR_URL", (tmp_path / "nowhere.tar.gz").as_uri())
    with pytest.raises(DataError, match="downloading .* failed"):
        cifar.load_cifar10()
    assert not any(".part" in p.name for p in (tmp_path / "home").rglob("*"))


def test_download_unpacks_an_archive_into_the_cache(tmp_path, monkeypatch):
    batches = tiny_batches(seed=1)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for stem, (images, labels) in zip(cifar.TRAIN_STEMS + cifar.TEST_STEMS, batches):
            payload = binary_bytes(images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{stem}.bin")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GLUON_RESNET_CIFAR_URL", archive.as_uri())
    data = cifar.load_cifar10()
    np.testing.assert_array_equal(data.test_images, batches[5][0])
    assert (tmp_path / "home/datasets/cifar10/cifar-10-batches-bin/test_batch.bin").is_file()


def test_pad_to_centres_the_image_in_zeros():
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8) | 1
    padded = cifar.pad_to(images, 32)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], images)
    assert padded.sum(dtype=np.int64) == images.sum(dtype=np.int64)  # the border is all zeros
    assert cifar.pad_to(np.ones((1, 3, 30, 30), np.uint8), 32).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="do not fit"):
        cifar.pad_to(images, 27)


def test_cifar_batches_are_nchw_floats_and_an_epoch_repeats(tmp_path):
    batches = tiny_batches()
    write_set(tmp_path, batches)
    train, test = cifar.load_data_cifar10(8, data_dir=tmp_path, augment=True, seed=3)
    X, y = next(iter(test))
    assert X.shape == (4, 3, 32, 32) and str(X.dtype) == "float32" and str(y.dtype) == "int32"
    np.testing.assert_allclose(X.asnumpy(), batches[5][0] / 255, rtol=1e-6)
    first = [x.asnumpy() for x, _ in train]
    train.set_epoch(0)
    assert all((a == x.asnumpy()).all() for a, (x, _) in zip(first, train))
    assert len(first) == 3  # 20 images in batches of 8


def test_padded_fashion_mnist_is_cifar_shaped(fashion):
    train, test = cifar.load_data_padded_fashion_mnist(50, subset=100)
    X, y = next(iter(test))
    assert X.shape == (50, 1, 32, 32)
    X = X.asnumpy()
    assert X[:, :, :2].max() == 0 and X[:, :, :, 30:].max() == 0
    assert X[:, :, 2:30, 2:30].max() > 0.9
    assert sorted(np.unique(np.concatenate([yy.asnumpy() for _, yy in train]))) == list(range(10))
