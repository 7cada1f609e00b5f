"""Checkpoints: one zip file per run, replaced atomically after every epoch and verified on load.

``DIR/checkpoint.zip`` holds ``params`` (``net.save_parameters``), ``trainer.states``
(``trainer.save_states``: momentum buffers and the optimizer) and ``meta.json`` (epoch, config,
history, seed, and the sha256 of the other two members). It is written to a temporary name in
``DIR`` and renamed into place, so a kill at any moment leaves the previous checkpoint or the new
one, never a mixture; loading re-checks every hash, so a damaged file is refused, not half-used.
"""
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

from .errors import UserError
from .files import _public, atomic_write  # noqa: F401  (atomic_write is part of this interface)

CHECKPOINT = "checkpoint.zip"
FORMAT = 1


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _dump(save, suffix):
    """Bytes that ``save(filename)`` writes (MXNet's savers only take file names)."""
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    try:
        save(tmp)
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def save_checkpoint(directory, net, trainer, meta):
    """Write ``DIR/checkpoint.zip`` from the network, the trainer and a JSON-able ``meta`` dict."""
    members = {"params": _dump(net.save_parameters, ".params"),
               "trainer.states": _dump(trainer.save_states, ".states")}
    meta = dict(meta, format=FORMAT, sha256={k: _sha256(v) for k, v in members.items()})
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            with zipfile.ZipFile(out, "w") as zf:
                for name, data in members.items():
                    zf.writestr(name, data)
                zf.writestr("meta.json", json.dumps(meta, indent=1))
            out.flush()
            os.fsync(out.fileno())
        _public(tmp)
        os.replace(tmp, Path(directory) / CHECKPOINT)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
            members = {name: zf.read(name) for name in meta["sha256"]}
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError):
        raise UserError(damaged) from None
    if any(_sha256(members[k]) != v for k, v in meta["sha256"].items()):
        raise UserError(damaged)
    return meta, members


def _load(load, data, suffix):
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        load(tmp)
    finally:
        os.unlink(tmp)


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


def load_model(directory, ctx=None, hybridize=True):
    """The trained network of a run folder, ready to predict: ``net = load_model("runs/fast")``."""
    import mxnet as mx

    from .models import get_model

    meta, members = read_checkpoint(directory)
    config = meta["config"]
    net = get_model(config["model"], num_classes=config.get("num_classes", 10),
                    imperative=config.get("imperative", False))
    restore(net, members, ctx or mx.cpu(), where=str(Path(directory) / CHECKPOINT))
    if hybridize and not config.get("imperative", False):
        net.hybridize(static_alloc=True, static_shape=True)
    return net


def export_model(net, prefix, input_shape, ctx=None):
    """Write ``PREFIX-symbol.json`` and ``PREFIX-0000.params`` for deployment (``HybridBlock.export``).

    The graph is traced on one zero batch of ``input_shape``; both files are renamed into place
    only once both are written. Reload with ``load_exported(prefix)``.
    """
    import mxnet as mx

    prefix = Path(prefix)
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.np.zeros(input_shape, ctx=ctx or mx.cpu()))
    with tempfile.TemporaryDirectory(dir=prefix.parent, prefix=".export-") as tmp:
        net.export(os.path.join(tmp, prefix.name), epoch=0)
        names = [f"{prefix.name}-symbol.json", f"{prefix.name}-0000.params"]
        for name in names:
            _public(os.path.join(tmp, name))
            os.replace(os.path.join(tmp, name), prefix.parent / name)
    return [prefix.parent / name for name in names]


def load_exported(prefix, ctx=None):
    """The exported network as a ``gluon.SymbolBlock``, independent of this package's classes."""
    import warnings

    import mxnet as mx
    from mxnet import gluon

    with warnings.catch_warnings():  # "cannot decide type for data": it is float32, set at first call
        warnings.simplefilter("ignore", UserWarning)
        return gluon.SymbolBlock.imports(f"{prefix}-symbol.json", ["data"], f"{prefix}-0000.params",
                                         ctx=ctx or mx.cpu())


# ---------------------------------------------------------------------------- the rest of a run folder

def environment(ctxs):
    """Where a run happened: versions, threads, devices and the machine's load when it started."""
    import platform

    import mxnet as mx
    import numpy

    from .runtime import usable_cpus

    return {"python": platform.python_version(), "mxnet": mx.__version__, "numpy": numpy.__version__,
            "platform": platform.platform(), "usable_cpus": usable_cpus(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "devices": [str(c) for c in ctxs], "load_average": list(os.getloadavg())}


def write_metrics(directory, config, env, history, finished):
    """``DIR/metrics.json``: the per-epoch rows, the config and the environment (atomic)."""
    body = {"config": config, "environment": env, "history": history, "finished": finished}
    atomic_write(Path(directory) / "metrics.json", json.dumps(body, indent=1) + "\n")


def write_curves(directory, history, title=None):
    """``DIR/curves.png``: train loss, train and test accuracy per epoch, as d2l draws them."""
    from .plots import plot_history, save_figure

    save_figure(plot_history(history, title=title), Path(directory) / "curves.png")
