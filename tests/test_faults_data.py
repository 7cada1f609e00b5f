"""Broken data files end in one line, exit code 2, and nothing lost: issue 6's data faults.

Each fault is made from a copy of the real files (or a tiny IDX set whose checksums are
patched into ``data.FILES``), then fed to the train CLI or the reader. Every test checks the
message names the file and a fix, and that every file in the folder is byte-for-byte as before.
"""
import gzip
import hashlib
import shutil

import numpy as np
import pytest

from helpers import idx_bytes, write_idx_set
from gluon_resnet import data, files, train
from gluon_resnet.errors import DataError

FIX_WORDS = ("replace it", "reinstall", "delete it", "give the folder", "put the four", "MXNET_HOME")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """MXNET_HOME in a temporary folder, so the user's own cache is never read or written."""
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet_home"))


@pytest.fixture
def real_copy(tmp_path):
    """A folder holding copies of the four real .gz files."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    for path in data.files_in(data.SYSTEM_DIR).values():
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture
def tiny_verified(tmp_path, monkeypatch):
    """A tiny IDX set whose payload checksums stand in for the published ones."""
    folder = tmp_path / "tiny"
    arrays = write_idx_set(folder)
    fake = {key: (stem, hashlib.sha1(idx_bytes(arrays[stem])).hexdigest())
            for key, (stem, _) in data.FILES.items()}
    monkeypatch.setattr(data, "FILES", fake)
    return folder, arrays


def hashes(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def rewrite_payload(path, change):
    """Replace the gzipped payload of ``path`` by ``change(payload)``."""
    payload = bytearray(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(bytes(change(payload))))


def set_byte(index, value):
    def change(payload):
        payload[index] = value
        return payload
    return change


def train_fails(folder, capsys):
    """Run the train CLI in-process on ``folder``; return its one stderr line after exit code 2."""
    with pytest.raises(SystemExit) as stop:
        train.main(["--data-dir", str(folder), "--epochs", "1", "--subset", "100"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert any(word in err[0] for word in FIX_WORDS), err[0]
    return err[0]


LABELS = "t10k-labels-idx1-ubyte.gz"
FAULTS = {  # name: (how to break the copy, what the message must say)
    "truncated gzip": (lambda f: f.joinpath("t10k-images-idx3-ubyte.gz").write_bytes(
        f.joinpath("t10k-images-idx3-ubyte.gz").read_bytes()[:50_000]),
        "t10k-images-idx3-ubyte.gz is a truncated or damaged gzip file"),
    "not gzip": (lambda f: f.joinpath(LABELS).write_text("<html>404 Not Found</html>"),
                 LABELS + " is not a gzip file"),
    "empty file": (lambda f: f.joinpath(LABELS).write_bytes(b""), LABELS + " is empty"),
    "wrong magic": (lambda f: rewrite_payload(f / LABELS, set_byte(2, 0x0D)),
                    LABELS + " is not an IDX file of unsigned bytes (wrong magic number)"),
    "dims vs bytes": (lambda f: rewrite_payload(f / LABELS, lambda p: p[:-3]),
                      LABELS + " holds 10005 bytes but its header (10000,) needs 10008"),
    "checksum": (lambda f: rewrite_payload(f / LABELS, set_byte(500, 3)),
                 LABELS + " does not match the published Fashion-MNIST checksum"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_broken_real_file_is_named_with_its_fix(fault, real_copy, capsys):
    breaks, says = FAULTS[fault]
    breaks(real_copy)
    before = hashes(real_copy)
    line = train_fails(real_copy, capsys)
    assert says in line and "replace it with the published file" in line
    assert hashes(real_copy) == before


def test_missing_folder_file_instead_of_folder_and_missing_file(tmp_path, real_copy, capsys):
    assert "does not exist" in train_fails(tmp_path / "typo", capsys)
    (tmp_path / "a_file").write_text("x")
    assert "is a file, not a folder" in train_fails(tmp_path / "a_file", capsys)
    (real_copy / "train-labels-idx1-ubyte.gz").unlink()
    before = hashes(real_copy)
    assert "lacks train-labels-idx1-ubyte.gz" in train_fails(real_copy, capsys)
    assert hashes(real_copy) == before


def test_image_and_label_counts_that_differ(tiny_verified, monkeypatch, capsys):
    folder, arrays = tiny_verified
    labels = np.zeros(7, dtype=np.uint8)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    stem, _ = data.FILES["train_labels"]
    fake = dict(data.FILES, train_labels=(stem, hashlib.sha1(idx_bytes(labels)).hexdigest()))
    monkeypatch.setattr(data, "FILES", fake)
    before = hashes(folder)
    line = train_fails(folder, capsys)
    assert "train-labels-idx1-ubyte.gz has 7 labels but" in line and "has 20 images" in line
    assert hashes(folder) == before


def test_subprocess_prints_one_line_and_no_traceback(run_cli, real_copy):
    FAULTS["wrong magic"][0](real_copy)
    before = hashes(real_copy)
    out = run_cli("gluon_resnet.train", "--data-dir", real_copy, "--epochs", "1", "--subset", "100",
                  env={"MXNET_HOME": str(real_copy.parent / "home")})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith("error: ") and "wrong magic number" in out.stderr
    assert hashes(real_copy) == before


@pytest.mark.parametrize("damage", [b"", b"not a zip file at all", "truncate", "wrong arrays"])
def test_corrupt_cache_is_rebuilt_and_sources_untouched(damage, tiny_verified, capsys):
    folder, arrays = tiny_verified
    first = data.load_fashion_mnist(folder)
    cache = data.cache_dir() / data.CACHE_NAME
    if damage == "truncate":
        cache.write_bytes(cache.read_bytes()[:200])
    elif damage == "wrong arrays":  # right key, so only the shape check can notice
        with np.load(cache) as good:
            fields = dict(good)
        fields["train_images"] = fields["train_images"][:, :5]
        np.savez(cache, **fields)
    else:
        cache.write_bytes(damage)
    before = hashes(folder)
    again = data.load_fashion_mnist(folder)
    assert "decoded-data cache" in capsys.readouterr().err
    for name in data.FashionMNIST._fields:
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert hashes(folder) == before
    with np.load(cache) as rebuilt:  # the cache is whole again
        np.testing.assert_array_equal(rebuilt["train_images"], first.train_images)


def test_cache_folder_that_cannot_be_created_falls_back(tiny_verified, tmp_path, monkeypatch, capsys):
    # Tests run as root, for whom chmod-read-only folders are still writable; a folder
    # under a regular file cannot be created by anyone, so it stands in for a read-only one.
    folder, arrays = tiny_verified
    (tmp_path / "plain_file").write_text("x")
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "plain_file" / "mxnet"))
    loaded = data.load_fashion_mnist(folder)
    np.testing.assert_array_equal(loaded.train_labels, arrays["train-labels-idx1-ubyte"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("note: cannot write the decoded-data cache")


def test_cache_write_refused_by_permissions_leaves_nothing(tiny_verified, monkeypatch, capsys):
    # As root no folder refuses a write, so the refusal is simulated where the file is created.
    folder, _ = tiny_verified

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    data.load_fashion_mnist(folder)
    assert "Permission denied" in capsys.readouterr().err
    assert list(data.cache_dir().iterdir()) == []


def test_ctrl_c_while_writing_the_cache_leaves_no_partial_file(tiny_verified, monkeypatch):
    folder, _ = tiny_verified

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(data.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.load_fashion_mnist(folder)
    assert list(data.cache_dir().iterdir()) == []


def test_no_files_anywhere_and_cache_not_creatable(tmp_path, monkeypatch):
    (tmp_path / "plain_file").write_text("x")
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "plain_file" / "mxnet"))
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "not_installed")
    with pytest.raises(DataError, match="cannot create .* set MXNET_HOME to a writable folder"):
        data.load_fashion_mnist()


def offline(url, timeout):
    raise data.urllib.error.URLError("Temporary failure in name resolution")


def wrong_file(url, timeout):
    import io

    return io.BytesIO(gzip.compress(b"\0\0\x08\x01\0\0\0\x01x"))  # a valid IDX, but not the data


@pytest.mark.parametrize("fetch, says", [(offline, "downloading .*train-images.* failed .*name resolution"),
                                         (wrong_file, "downloaded from .*train-images.* is damaged")])
def test_failed_download_leaves_nothing_behind(fetch, says, tmp_path, monkeypatch):
    """Offline, or served the wrong file: one DataError, and no file (whole or partial) in the cache."""
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "not_installed")
    monkeypatch.setattr(data.urllib.request, "urlopen", fetch)
    with pytest.raises(DataError, match=says):
        data.load_fashion_mnist()
    assert list(data.cache_dir().iterdir()) == []


def test_fuzz_random_bytes_raise_data_error_or_decode_consistently():
    rng = np.random.default_rng(6)
    for trial in range(3000):
        n = int(rng.integers(0, 40))
        blob = bytearray(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        if trial % 2 and n >= 4:  # half the trials get a valid magic, to reach the dims checks
            blob[:3] = b"\0\0\x08"
            blob[3] = int(rng.integers(0, 4))
        try:
            array = data.parse_idx(bytes(blob), "fuzz")
        except DataError as err:
            assert str(err).startswith("fuzz ")
        else:
            assert 4 + 4 * array.ndim + array.size == len(blob)


def test_fuzz_damaged_files_never_pass_verification(tmp_path):
    """Damaged files raise DataError; the only ones that load are those whose payload is intact."""
    rng = np.random.default_rng(7)
    original = rng.integers(0, 256, (3, 5, 5), dtype=np.uint8)
    good = idx_bytes(original)
    sha1 = hashlib.sha1(good).hexdigest()
    for trial in range(400):
        zipped = trial % 2 == 1
        path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if zipped else ""))
        blob = bytearray(gzip.compress(good) if zipped else good)
        cut = int(rng.integers(0, len(blob)))
        how = (trial // 2) % 4
        if how == 0:
            blob = blob[:cut]                              # truncation
        elif how == 1:
            blob[cut] ^= 1 << int(rng.integers(0, 8))      # one flipped bit
        elif how == 2:
            blob = blob[:cut] + rng.bytes(int(rng.integers(1, 9))) + blob[cut:]  # junk inserted
        else:
            blob = bytearray(rng.bytes(len(blob)))         # noise of the same length
        path.write_bytes(bytes(blob))
        try:
            array = data.read_idx_file(path, sha1)
        except DataError as err:
            assert str(err).startswith(str(path)) or str(path) in str(err)
        else:  # e.g. a flipped bit in the gzip header's timestamp: the data itself is intact
            np.testing.assert_array_equal(array, original)
