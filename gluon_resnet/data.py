"""Fashion-MNIST: find the four IDX files, verify them, decode once, cache, and serve batches.

Where the files are looked for, in order:
  1. an explicit ``data_dir`` (``--data-dir``);
  2. ``$MXNET_HOME/datasets/fashion-mnist`` (Gluon's cache; ``~/.mxnet`` by default);
  3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist`` package);
  4. otherwise the upstream files are downloaded into the cache of step 2.

The checksums are of the decompressed payload, so re-compressed copies (Debian's) pass.
Decoded arrays are cached next to the cache of step 2, keyed by the source files' size and
modification time, so a second load takes a fraction of a second.
"""
import gzip
import hashlib
import math
import os
import sys
import urllib.request
import zipfile
import zlib
from collections import namedtuple
from pathlib import Path

import mxnet as mx
import numpy as np

from .errors import DataError
from .files import replacing

FILES = {
    "train_images": ("train-images-idx3-ubyte", "b9bd999c0106c9b8b4b0cefce58c9a6060f27095"),
    "train_labels": ("train-labels-idx1-ubyte", "4bccf37222e01638381eaa326bf730337a597267"),
    "test_images": ("t10k-images-idx3-ubyte", "880056926db704f9f713097915f99da346f5b1d1"),
    "test_labels": ("t10k-labels-idx1-ubyte", "958122e8b4b97fd4e71eca2d08ef754ed77c3ad9"),
}
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
TEXT_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")
CACHE_NAME = "decoded-v1.npz"
FashionMNIST = namedtuple("FashionMNIST", "train_images train_labels test_images test_labels")


def get_fashion_mnist_labels(indices):
    """Text labels for integer class indices.

    >>> get_fashion_mnist_labels([0, 9])
    ['t-shirt', 'ankle boot']
    """
    return [TEXT_LABELS[int(i)] for i in indices]


def dataset_dir(name):
    """Gluon's cache folder for a data set: ``$MXNET_HOME/datasets/NAME`` (``~/.mxnet`` by default).

    An ``MXNET_HOME`` that names a file, or is not an absolute path, is a DataError.
    """
    home = os.environ.get("MXNET_HOME", "").strip()
    if not home:
        return Path.home() / ".mxnet" / "datasets" / name
    home = Path(home).expanduser()
    if not home.is_absolute() or (home.exists() and not home.is_dir()):
        why = "is not an absolute path" if not home.is_absolute() else "is a file, not a folder"
        raise DataError(f"MXNET_HOME={os.environ['MXNET_HOME']!r} {why}: unset it (the cache is then "
                        "~/.mxnet) or set it to a folder's full path")
    return home / "datasets" / name


def cache_dir():
    """Gluon's dataset cache for Fashion-MNIST: ``$MXNET_HOME/datasets/fashion-mnist``."""
    return dataset_dir("fashion-mnist")


def fix_for(path):
    """What to do about a bad data file, which depends on where it lives.

    >>> fix_for("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    'reinstall it with apt-get install --reinstall dataset-fashion-mnist'
    """
    folder = Path(path).parent
    if folder == SYSTEM_DIR:
        return "reinstall it with apt-get install --reinstall dataset-fashion-mnist"
    if folder == cache_dir():
        return "delete it and run again to download a fresh copy"
    return (f"replace it with the published file from {DEFAULT_URL}, "
            "or leave out --data-dir to use the installed copy")


def _bad(name, problem):
    """The DataError for file ``name``: what is wrong with it, then the fix."""
    return DataError(f"{name} {problem}: {fix_for(name)}")


# ---------------------------------------------------------------------------- IDX reading

def parse_idx(payload, name="<bytes>"):
    """Decode an IDX byte string into a uint8 array, checking its header against its length.

    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist()
    [7, 8, 9]
    """
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] != 0x08:
        raise _bad(name, "is not an IDX file of unsigned bytes (wrong magic number)")
    ndim = payload[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(payload) < header:
        raise _bad(name, "has a truncated IDX header")
    dims = [int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)  # Python ints: a forged header cannot overflow
    if len(payload) != expected:
        raise _bad(name, f"holds {len(payload)} bytes but its header {tuple(dims)} needs {expected}")
    return np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)


def read_payload(path):
    """The decompressed bytes of an IDX file, gzipped or not."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}; check the path and its permissions") from None
    if not raw:
        raise _bad(path, "is empty (an interrupted copy or download?)")
    if raw[:2] != b"\x1f\x8b":
        if path.suffix == ".gz":
            raise _bad(path, "is not a gzip file")
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error):
        raise _bad(path, "is a truncated or damaged gzip file") from None


def read_idx_file(path, sha1=None):
    """Read, decode and verify (payload sha1) one IDX file.

    The structure is checked first, so a broken file gets the most specific message.
    """
    payload = read_payload(path)
    array = parse_idx(payload, name=str(path))
    if sha1 is not None and hashlib.sha1(payload).hexdigest() != sha1:
        raise _bad(path, "does not match the published Fashion-MNIST checksum")
    return array


# ---------------------------------------------------------------------------- finding files

def _file_in(directory, stem):
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def files_in(directory):
    """The four files in ``directory`` as a dict, or None when any is missing."""
    found = {key: _file_in(Path(directory), stem) for key, (stem, _) in FILES.items()}
    return None if None in found.values() else found


def locate(data_dir=None, download=True):
    """Find the four files, downloading them into the cache as a last resort."""
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.exists():
            raise DataError(f"--data-dir {data_dir} does not exist: give the folder that holds "
                            "the four Fashion-MNIST IDX files")
        if not data_dir.is_dir():
            raise DataError(f"--data-dir {data_dir} is a file, not a folder: give the folder that "
                            "holds the four Fashion-MNIST IDX files")
        found = files_in(data_dir)
        if found is None:
            missing = [s for s, _ in FILES.values() if _file_in(data_dir, s) is None]
            raise DataError(f"{data_dir} lacks {', '.join(m + '.gz' for m in missing)}: "
                            "put the four Fashion-MNIST IDX files there")
        return found
    for directory in (cache_dir(), SYSTEM_DIR):
        found = files_in(directory)
        if found:
            return found
    if not download:
        raise DataError(f"Fashion-MNIST not found in {cache_dir()} or {SYSTEM_DIR}: "
                        "apt-get install dataset-fashion-mnist, or pass --data-dir")
    return download_fashion_mnist(cache_dir())


def download_fashion_mnist(directory, base_url=None):
    """Fetch the four .gz files into ``directory``, each verified before it is renamed into place."""
    base_url = base_url or os.environ.get("GLUON_RESNET_DATA_URL", DEFAULT_URL)
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create {directory} to download Fashion-MNIST ({err.strerror}): "
                        "set MXNET_HOME to a writable folder or pass --data-dir") from None
    for stem, sha1 in FILES.values():
        target = directory / (stem + ".gz")
        if target.is_file():
            continue
        _download_one(base_url.rstrip("/") + "/" + stem + ".gz", target, sha1)
    return files_in(directory)


def fetch(url):
    """The bytes at ``url``, announced on stderr: the one downloader of Fashion-MNIST and CIFAR-10.
    Raises OSError (offline, not found) or ValueError (a malformed URL); the caller says what to do."""
    print(f"downloading {url}", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def _download_one(url, target, sha1):
    """Download ``url`` to a temporary name, verify it, then rename it to ``target``."""
    try:
        payload = fetch(url)
        with replacing(target) as (tmp,):
            Path(tmp).write_bytes(payload)
            read_idx_file(tmp, sha1)  # raises before anything is renamed into place
    except DataError:
        raise DataError(f"the file downloaded from {url} is damaged or not Fashion-MNIST: try again, "
                        "or apt-get install dataset-fashion-mnist, or pass --data-dir") from None
    except (OSError, ValueError) as err:
        raise DataError(f"Fashion-MNIST is not installed and downloading {url} failed ({err}): "
                        "apt-get install dataset-fashion-mnist, or pass --data-dir") from None


# ---------------------------------------------------------------------------- decoded cache

def _cache_key(found):
    parts = []
    for key in FILES:
        st = os.stat(found[key])
        parts.append(f"{os.path.realpath(found[key])}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _read_cache(path, key):
    """The cached arrays, or None when the cache is absent, stale or damaged (then it is rebuilt)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as cached:
            if str(cached["key"]) != key:
                return None  # the source files changed: rebuild quietly
            data = FashionMNIST(*(cached[name] for name in FashionMNIST._fields))
        check_arrays(data, {name: path for name in FILES})
        return data
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError):
        print(f"note: the decoded-data cache {path} is damaged; rebuilding it from the "
              "source files", file=sys.stderr)
        return None


def _write_cache(path, key, data):
    """Save the decoded arrays atomically; a cache that cannot be written is only a slower next load."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as (tmp,):
            np.savez(tmp, key=np.array(key), **data._asdict())
    except OSError as err:
        print(f"note: cannot write the decoded-data cache {path} ({err.strerror or err}); "
              "set MXNET_HOME to a writable folder to make later loads faster", file=sys.stderr)


def check_arrays(data, found):
    """Images must be (N, 28, 28) and labels (N,) with N equal in each split."""
    for split in ("train", "test"):
        images, labels = getattr(data, split + "_images"), getattr(data, split + "_labels")
        image_file, label_file = found[split + "_images"], found[split + "_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise _bad(image_file, f"holds an array of shape {images.shape}, not 28x28 images")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise _bad(label_file, f"holds an array of shape {labels.shape}, not a list of labels")
        if len(images) != len(labels):
            raise _bad(label_file, f"has {len(labels)} labels but {image_file} has "
                                   f"{len(images)} images")


def load_fashion_mnist(data_dir=None, use_cache=True, download=True):
    """The whole data set as uint8 arrays: images (N, 28, 28), labels (N,).

    Verified against the published checksums the first time, then read from the cache.
    """
    found = locate(data_dir, download=download)
    key = _cache_key(found)
    cache = cache_dir() / CACHE_NAME
    if use_cache:
        data = _read_cache(cache, key)
        if data is not None:
            return data
    data = FashionMNIST(**{name: read_idx_file(found[name], FILES[name][1]) for name in FILES})
    check_arrays(data, found)
    if use_cache:
        _write_cache(cache, key, data)
    return data


# ---------------------------------------------------------------------------- batches

def resize_images(images, size, chunk=4096):
    """Bilinear resize of uint8 (N, H, W) images to (N, size, size), in chunks, done once."""
    if size is None or images.shape[1:] == (size, size):
        return images
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        batch = mx.nd.array(images[start:start + chunk, :, :, None], dtype=np.uint8)
        out[start:start + chunk] = mx.nd.image.resize(batch, size=(size, size)).asnumpy()[..., 0]
    return out


def to_unit_floats(images):
    """uint8 pixels (0-255) as float32 in [0, 1], the networks' input scale: the one place it is done.
    (A product with float32(1/255), as training has always scaled them: within one float32 step of /255.)

    >>> to_unit_floats(np.array([0, 255], dtype=np.uint8)).tolist()
    [0.0, 1.0]
    """
    if images.dtype != np.uint8:  # floats would be scaled twice
        raise TypeError(f"to_unit_floats takes uint8 pixels, not {images.dtype}")
    return images.astype(np.float32) * np.float32(1 / 255)


class ArrayLoader:
    """Batches ``(X, y)`` from in-memory uint8 images (N, H, W) or (N, C, H, W): X float32
    (B, C, H, W) in [0, 1] (C = 1 for (N, H, W)), y int32. Every data set's batches come from here.

    The epoch's order (and its augmentation) comes from ``(seed, epoch)`` alone, so a resumed run
    sees the same batches. ``augment`` is a callable ``(uint8 batch, numpy Generator) -> batch``,
    e.g. ``gluon_resnet.augment.Augment(pad=2, flip=True)``, applied to each whole batch (one with
    a true ``needs_ids`` also gets ``ids=``, the batch's indices into ``images``, and ``epoch=``). ``mix``
    (``gluon_resnet.augment.Mix``: CutMix or mixup) then mixes pairs of images, and y becomes
    float32 (B, classes), each row the shares of the labels of the image's mixed pixels.
    ``early=(small_images, n)`` trains the first ``n`` epochs on ``small_images``, the same images
    at a lower resolution, in the same order (progressive resizing: cheaper steps while training
    is still coarse). ``finish=(augment, epoch)`` trains from (0-based) ``epoch`` on with that
    ``augment`` instead (e.g. mirror images only) and no ``mix``: a clean finish on images like
    the test images.

    Ours rather than ``gluon.data.DataLoader``: that one transforms and stacks one sample at a
    time in Python (``python -m gluon_resnet.bench`` measures the difference), and its order does not
    follow from ``(seed, epoch)``, which resuming a run needs.
    """

    def __init__(self, images, labels, batch_size, shuffle=False, seed=0, drop_last=False,
                 augment=None, mix=None, early=None, finish=None):
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        if early is not None and len(early[0]) != len(images):
            raise ValueError("early's small images are not as many as the images")
        self.images, self.labels = images, labels.astype(np.int32)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.augment, self.mix, self.early, self.finish = augment, mix, early, finish
        self.epoch = 0

    def __len__(self):
        whole, rest = divmod(len(self.images), self.batch_size)
        return whole if (self.drop_last or rest == 0) else whole + 1

    def order(self, epoch):
        """Indices of the examples in the given epoch."""
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def batch_indices(self, epoch):
        """The index array of every batch of ``epoch``, in order (what a shard would slice)."""
        idx = self.order(epoch)
        return [idx[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]

    def set_epoch(self, epoch):
        """Make the next pass over the loader be epoch ``epoch`` (0-based), e.g. on resume."""
        self.epoch = epoch

    def images_of(self, epoch):
        """The images epoch ``epoch`` trains on: the small ones of ``early`` in its first epochs."""
        return self.early[0] if self.early is not None and epoch < self.early[1] else self.images

    def transforms_of(self, epoch):
        """``(augment, mix)`` of epoch ``epoch``: ``finish``'s augment and no mix in its last epochs."""
        if self.finish is not None and epoch is not None and epoch >= self.finish[1]:
            return self.finish[0], None
        return self.augment, self.mix

    def numpy_batch(self, take, rng=None, epoch=None):
        """One batch as numpy arrays: float32 images (B, C, H, W) in [0, 1] and int32 labels (with
        ``mix``: float32 label shares, (B, classes)); ``epoch`` picks the images (``images_of``)
        and their augmentation (``transforms_of``)."""
        images = (self.images if epoch is None else self.images_of(epoch))[take]
        labels = self.labels[take]
        augment, mix = self.transforms_of(epoch)
        if augment and rng is not None:
            ids = {"ids": take, "epoch": epoch or 0} if getattr(augment, "needs_ids", False) else {}
            images = augment(images, rng, **ids)
        if mix and rng is not None:
            images, labels = mix(images, labels, rng)
        images = images[:, None] if images.ndim == 3 else images
        return to_unit_floats(images), labels

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 1]) if (self.augment or self.mix) else None
        for take in self.batch_indices(self.epoch):
            X, y = self.numpy_batch(np.sort(take), rng, self.epoch)
            yield mx.np.array(X), mx.np.array(y, dtype=y.dtype)
        self.epoch += 1


def balanced_subset(images, labels, n):
    """The first ``n`` examples taken round-robin over the classes (so every class appears)."""
    if n is None or n >= len(labels):
        return images, labels
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    keep = np.sort(np.lexsort((np.arange(len(labels)), rank))[:n])
    return images[keep], labels[keep]


def balanced_split(data, n):
    """``data`` (train and test images and labels) cut to ``n`` class-balanced examples of each split."""
    return type(data)(*balanced_subset(data.train_images, data.train_labels, n),
                      *balanced_subset(data.test_images, data.test_labels, n))


def loaders(data, batch_size, seed=0, augment=None, mix=None, early=None, finish=None):
    """Train (shuffled by ``seed``, ``augment``-ed and ``mix``-ed; ``early``, ``finish``: see
    ``ArrayLoader``) and test ``ArrayLoader``s of a data set's arrays."""
    return (ArrayLoader(data.train_images, data.train_labels, batch_size, shuffle=True, seed=seed,
                        augment=augment, mix=mix, early=early, finish=finish),
            ArrayLoader(data.test_images, data.test_labels, batch_size))


def load_data_fashion_mnist(batch_size, resize=None, data_dir=None, seed=0, subset=None,
                            augment=None, mix=None, early=None, finish=None):
    """Train and test batch iterables, as d2l's function of the same name returns.

    ``subset=N`` keeps N class-balanced training images and N test images, for quick runs;
    ``augment`` and ``mix`` (see ``ArrayLoader``) apply to the training batches only.
    ``early=(size, n)``: the first ``n`` epochs train on the images resized to ``size`` x ``size``;
    ``finish=(augment, epoch)``: from ``epoch`` on, that augment replaces ``augment`` and ``mix``.
    """
    data = balanced_split(load_fashion_mnist(data_dir), subset)
    small = (resize_images(data.train_images, early[0]), early[1]) if early else None
    data = data._replace(train_images=resize_images(data.train_images, resize),
                         test_images=resize_images(data.test_images, resize))
    return loaders(data, batch_size, seed, augment, mix, small, finish)
