"""The checkpoint file format, and nothing else: one zip per run, verified on load.

``checkpoint.zip`` holds ``params`` (``net.save_parameters``), ``trainer.states``
(``trainer.save_states``: momentum buffers, the optimizer and its learning-rate schedule) and
``meta.json``: ``format`` (``FORMAT``), the sha256 of the other two members, and the meta dict the
writer hands in (``run.Saver`` writes it and ``run.read_run`` is its only reader). Loading checks
the format and every hash, so a damaged or foreign file is refused, not half-used. The run folder
replaces the file atomically after every epoch (``run.Saver``, through ``files.replacing``).
"""
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

from .errors import UserError

CHECKPOINT = "checkpoint.zip"
FORMAT = 2  # 2: meta.json names the model ({"name", "num_classes", "imperative"}) for load_model


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _dump(save, suffix):
    """Bytes that ``save(filename)`` writes (MXNet's savers only take file names)."""
    with tempfile.TemporaryDirectory(prefix="gluon_resnet-") as folder:
        path = os.path.join(folder, "member" + suffix)
        save(path)
        return Path(path).read_bytes()


def _load(load, data, suffix):
    """Hand ``data`` to ``load(filename)`` (MXNet's loaders only take file names)."""
    with tempfile.TemporaryDirectory(prefix="gluon_resnet-") as folder:
        path = os.path.join(folder, "member" + suffix)
        Path(path).write_bytes(data)
        load(path)


def checkpoint_bytes(net, trainer, meta):
    """The whole checkpoint zip of ``net``, ``trainer`` and a JSON-able ``meta`` dict, in memory."""
    members = {"params": _dump(net.save_parameters, ".params"),
               "trainer.states": _dump(trainer.save_states, ".states")}
    meta = dict(meta, format=FORMAT, sha256={k: _sha256(v) for k, v in members.items()})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("meta.json", json.dumps(meta, indent=1))
    return buffer.getvalue()


def read_checkpoint(directory):
    """``(meta, members)`` of ``DIR/checkpoint.zip`` after checking it whole; UserError if not."""
    path = Path(directory) / CHECKPOINT
    if not Path(directory).is_dir():
        raise UserError(f"{directory} is not a folder: give the --out folder of an earlier run")
    if not path.is_file():
        raise UserError(f"{directory} holds no checkpoint ({CHECKPOINT}): give the --out folder "
                        "of a run that finished at least one epoch")
    damaged = f"{path} is damaged or half-written; it cannot be used (train again with another --out)"
    try:
        with zipfile.ZipFile(path) as zf:
            if zf.testzip() is not None:
                raise UserError(damaged)
            meta = json.loads(zf.read("meta.json"))
            if meta.get("format") != FORMAT:
                raise UserError(f"{path} is in checkpoint format {meta.get('format')}, but this version of "
                                f"gluon_resnet reads format {FORMAT}: train again, or use the version that wrote it")
            members = {name: zf.read(name) for name in meta["sha256"]}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, AttributeError):
        raise UserError(damaged) from None
    if any(_sha256(members[k]) != v for k, v in meta["sha256"].items()):
        raise UserError(damaged)
    return meta, members


def restore(net, members, ctx, where="the checkpoint"):
    """Load the checkpoint's parameters into an already built ``net``; UserError if they do not fit."""
    try:
        _load(lambda f: net.load_parameters(f, ctx=ctx), members["params"], ".params")
    except (AssertionError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"the parameters in {where} do not fit this network ({first[:160]})") from None


def restore_trainer(trainer, members):
    """Load momentum buffers and optimizer state into a trainer whose parameters are restored."""
    _load(trainer.load_states, members["trainer.states"], ".states")
