"""Writing files so that a crash never leaves a half-written one: temporary name, then rename.

Every writer in the package goes through here: ``atomic_write`` for bytes or text, and
``replacing`` for writers that only take a file name (``Figure.savefig``, ``np.savez``,
``net.save_parameters``, ``nbformat.write``). On any error, a full disk included, the temporary
files are removed and the files already in place are left as they were.
"""
import contextlib
import os
import tempfile
from pathlib import Path


def _public(path):
    """Give a temporary file the mode a plain ``open()`` would (mkstemp makes it private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _flush_to_disk(path):
    with open(path, "rb+") as written:
        os.fsync(written.fileno())


@contextlib.contextmanager
def replacing(*paths):
    """Yield one temporary path per target (same folder, same suffix); rename them all at the end.

    The renames happen only once the block has finished and every file is on disk, so the
    targets change together or not at all (a kill between two renames aside)::

        with replacing("out/curves.png") as (tmp,):
            fig.savefig(tmp)
    """
    paths = [Path(p) for p in paths]
    temps = []
    try:
        for path in paths:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part" + path.suffix)
            os.close(fd)
            temps.append(tmp)
        yield temps
        for tmp in temps:
            _flush_to_disk(tmp)
            _public(tmp)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write(path, data):
    """Write ``data`` (bytes or str) to ``path`` via a temporary file in the same folder."""
    with replacing(path) as (tmp,):
        Path(tmp).write_bytes(data.encode() if isinstance(data, str) else data)
