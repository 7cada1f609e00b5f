"""Writing files so that a crash never leaves a half-written one: temporary name, then rename."""
import os
import tempfile
from pathlib import Path


def _public(path):
    """Give a temporary file the mode a plain ``open()`` would (mkstemp makes it private)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write(path, data):
    """Write ``data`` (bytes or str) to ``path`` via a temporary file in the same folder."""
    path = Path(path)
    data = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        _public(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
