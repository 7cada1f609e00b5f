"""The one atomic writer (gluon_resnet.files): whole files or none, a full disk included."""
import errno
import os

import pytest

from gluon_resnet import files
from helpers import full_disk_on


def test_atomic_write_replaces_text_and_bytes_and_leaves_no_temporary(tmp_path):
    files.atomic_write(tmp_path / "a.txt", "one")
    files.atomic_write(tmp_path / "a.txt", b"two")
    assert (tmp_path / "a.txt").read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["a.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it


def test_writers_that_take_a_file_name_keep_the_target_suffix(tmp_path):
    import numpy as np
    with files.replacing(tmp_path / "arrays.npz") as (tmp,):
        assert tmp.endswith(".npz") and os.path.dirname(tmp) == str(tmp_path)
        np.savez(tmp, x=np.arange(3))  # np.savez would add .npz to any other name
    assert np.load(tmp_path / "arrays.npz")["x"].tolist() == [0, 1, 2]
    assert os.listdir(tmp_path) == ["arrays.npz"]


@pytest.mark.parametrize("failing", ["b.json", "c.png"])
def test_a_full_disk_changes_none_of_a_group_and_leaves_no_temporary(tmp_path, monkeypatch, failing):
    names = ("a.zip", "b.json", "c.png")
    for name in names:
        (tmp_path / name).write_text("old " + name)
    monkeypatch.setattr(os, "fsync", full_disk_on(1, failing))
    with pytest.raises(OSError) as err:
        with files.replacing(*(tmp_path / n for n in names)) as temps:
            for tmp in temps:
                open(tmp, "w").write("new")
    assert err.value.errno == errno.ENOSPC
    assert sorted(os.listdir(tmp_path)) == list(names)
    assert all((tmp_path / n).read_text() == "old " + n for n in names)


def test_an_interrupt_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old")

    def killed(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
