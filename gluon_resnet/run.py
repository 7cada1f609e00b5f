"""The run folder (``--out DIR``): its one writer and its one reader.

After every epoch ``DIR`` gets ``checkpoint.zip`` (the format: ``checkpoint``), ``metrics.json``
(settings, environment, one row per epoch) and ``curves.png``, the three replaced together
(``Saver``): a full disk or a kill leaves the files of the last complete epoch as they were and no
temporary file behind. ``read_run(DIR)`` is the only reader of the checkpoint's meta: it returns a
``RunRecord`` that evaluate, predict, pretrained and ``--resume`` use. Also here: the folder's
lock (``RunFolder``), the settings a ``--resume`` continues with, and stop signals.
"""
import contextlib
import datetime
import errno
import fcntl
import json
import os
import platform
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mxnet as mx
import numpy
from mxnet.base import MXNetError

from . import checkpoint as ckpt
from .errors import UserError
from .files import replacing
from .models import get_model, hybridize_static
from .plots import plot_history
from .runtime import cpu_info, usable_cpus
from .settings import NUM_CLASSES, Settings


def model_spec(settings):
    """What ``get_model`` needs to build the run's network again (kept in the checkpoint)."""
    return {"name": settings.model, "num_classes": NUM_CLASSES, "imperative": settings.imperative}


# ---------------------------------------------------------------------------- the folder

class RunFolder:
    """``--out``: a writable folder, locked for this process (``flock``) until ``close()`` or exit.

    The lock is the operating system's, on the folder itself: it goes with the process, however
    the process ends (``kill -9`` too), and leaves no file behind.
    """

    def __init__(self, directory, resuming=False):
        self.path = path = Path(directory)
        if path.exists() and not path.is_dir():
            raise UserError(f"--out {directory} is a file, not a folder: choose another --out")
        try:
            path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
            self._lock = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise UserError(f"cannot write to --out {directory} ({err.strerror}): choose a writable folder") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise UserError(f"{directory} is in use by another run: wait for it to end or choose another --out") from None
        if not resuming and (path / ckpt.CHECKPOINT).exists():
            self.close()
            raise UserError(f"{directory} already holds a run: continue it with --resume {directory} "
                            "or choose another --out")

    def close(self):
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------- reading a run

@dataclass(frozen=True)
class RunRecord:
    """A saved run as ``read_run`` finds it: its settings, the network it names, its rows, its state.

    ``loop.train(hooks=Hooks(resume=record))`` continues it: ``history``, ``restore_net`` and
    ``restore_trainer`` are what the loop asks of a run to resume."""
    path: Path
    epoch: int            # the last complete epoch
    settings: Settings    # as the run was trained (its recipe; place settings at their defaults)
    model: dict           # {"name", "num_classes", "imperative"}: what get_model builds it from
    history: list         # one row per epoch, as loop.train returns them
    saved_utc: datetime.datetime
    environment: dict     # where it trained (metrics.json's; None if that file is unreadable)
    members: dict = field(repr=False)  # the checkpoint's parameter and trainer bytes

    @property
    def finished(self):
        return self.epoch >= self.settings.epochs

    @property
    def checkpoint(self):
        return self.path / ckpt.CHECKPOINT

    def restore_net(self, net, ctxs):
        ckpt.restore(net, self.members, ctxs, where=str(self.checkpoint))

    def restore_trainer(self, trainer):
        ckpt.restore_trainer(trainer, self.members)

    def load_net(self, ctx=None, hybridize=True):
        """The trained network, built from ``model`` alone, on ``ctx`` (default: the CPU)."""
        spec = self.model
        net = get_model(spec["name"], num_classes=spec["num_classes"], imperative=spec["imperative"])
        self.restore_net(net, ctx or mx.cpu())
        if hybridize and not spec["imperative"]:
            hybridize_static(net)
        return net


def read_run(directory):
    """The ``RunRecord`` of the run saved in ``directory``; a one-line UserError if there is none.

    Checkpoints written before the settings became one object read the same: their saved recipe
    is a dict, and settings it lacks take their defaults."""
    meta, members = ckpt.read_checkpoint(directory)
    path = Path(directory)
    saved = datetime.datetime.fromtimestamp((path / ckpt.CHECKPOINT).stat().st_mtime, datetime.timezone.utc)
    try:
        environment = json.loads((path / "metrics.json").read_text()).get("environment")
    except (OSError, ValueError, AttributeError):
        environment = None
    try:
        return RunRecord(path, meta["epoch"], Settings.from_recipe(meta["config"]), meta["model"],
                         meta["history"], saved, environment, members)
    except (KeyError, TypeError):
        raise UserError(f"{path / ckpt.CHECKPOINT} lacks the run's settings; it cannot be used "
                        "(train again with another --out)") from None


def load_model(directory, ctx=None, hybridize=True):
    """The trained network of a run folder, ready to predict: ``net = load_model("runs/fast")``."""
    return read_run(directory).load_net(ctx, hybridize)


# ---------------------------------------------------------------------------- resuming

def resume(settings, given):
    """With ``--resume DIR``: ``(the saved run's settings, its RunRecord)``, else ``(settings, None)``.

    ``given`` names the recipe flags given on the command line: they must agree with the saved run,
    except ``--epochs N``, which lengthens a constant-rate run (``extended_epochs``), and
    ``--test-every N``, which changes only how often the test set is scored."""
    if not settings.resume:
        return settings, None
    where = settings.resume
    if settings.out and Path(settings.out).resolve() != Path(where).resolve():
        raise UserError("--resume writes back into the run's own folder; leave out --out")
    record = read_run(where)
    saved = record.settings
    free = {"epochs", "test_every"}
    clash = sorted(k for k in given if k not in free and getattr(settings, k) != getattr(saved, k))
    if clash:
        got = ", ".join(f"--{k.replace('_', '-')} {getattr(settings, k)} (saved: {getattr(saved, k)})"
                        for k in clash)
        raise UserError(f"{where} holds a {saved.model} run with other settings: {got}; "
                        "--resume continues a run with its own settings, so leave those flags out")
    epochs = saved.epochs
    if "epochs" in given and settings.epochs != saved.epochs:
        epochs = extended_epochs(saved, where, settings.epochs, record.epoch)
    if record.epoch >= epochs:
        more = (f" (--resume {where} --epochs N trains it on to epoch N)"
                if saved.schedule == "constant" else "")
        raise UserError(f"the run in {where} already finished its {epochs} epochs; nothing to resume{more}")
    test_every = settings.test_every if "test_every" in given else saved.test_every
    return saved.but(epochs=epochs, test_every=test_every, **dict(settings.place(), out=where)), record


def extended_epochs(saved, where, wanted, done):
    """``--resume DIR --epochs N``: a new length for a constant-rate run, or a one-line reason why not.

    A cosine or one-cycle schedule is drawn over the run's whole length, so changing it midway would
    change the rate of the epochs already trained; those runs keep their length.
    """
    if saved.schedule != "constant":
        raise UserError(f"--epochs {wanted}: the run in {where} follows a {saved.schedule} schedule drawn "
                        f"over its {saved.epochs} epochs, so its length cannot change; resume it without "
                        "--epochs, or start a new run")
    if wanted <= done:
        raise UserError(f"--epochs {wanted}: the run in {where} has already trained {done} epochs; "
                        f"ask for more than {done}")
    return wanted


# ---------------------------------------------------------------------------- saving each epoch

def environment(ctxs):
    """Where a run happened: versions, threads, devices, the CPU (``runtime.cpu_info``: model, cores,
    oneDNN's instruction set) and the machine's load when it started."""
    return {"cpu": cpu_info(), "python": platform.python_version(), "mxnet": mx.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(), "usable_cpus": usable_cpus(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "devices": [str(c) for c in ctxs], "load_average": list(os.getloadavg())}


class Saver:
    """``loop.train(hooks=Hooks(save=...))``: after each epoch, write the checkpoint, metrics.json and curves.png
    together; ``saved`` is the last epoch whose files are all in place (0: none yet)."""

    def __init__(self, folder, settings, env, saved=0):
        self.folder, self.settings, self.env, self.saved = folder, settings, env, saved

    def __call__(self, net, trainer, history):
        epoch, out, config = history[-1]["epoch"], self.folder.path, self.settings.recipe()
        meta = {"epoch": epoch, "model": model_spec(self.settings), "config": config, "history": history,
                "rng": {"seed": self.settings.seed, "next_epoch": epoch,
                        "note": "data order, augmentation and mx.random derive from (seed, epoch)"}}
        metrics = {"config": config, "environment": self.env, "history": history,
                   "finished": epoch >= self.settings.epochs}
        try:
            with replacing(out / ckpt.CHECKPOINT, out / "metrics.json", out / "curves.png") as (zipped, js, png):
                Path(zipped).write_bytes(ckpt.checkpoint_bytes(net, trainer, meta))
                Path(js).write_text(json.dumps(metrics, indent=1) + "\n")
                plot_history(history, title=f"{self.settings.model} on Fashion-MNIST").savefig(png, format="png")
        except (OSError, MXNetError) as err:  # MXNet's savers report a failed write as an MXNetError
            kept = (f"the files of epoch {self.saved} are intact; free some space, then resume with "
                    f"python -m gluon_resnet.train --resume {out}") if self.saved else "no epoch was saved"
            why = "the disk is full" if getattr(err, "errno", None) == errno.ENOSPC else \
                getattr(err, "strerror", None) or str(err).strip().splitlines()[-1]
            raise UserError(f"cannot save epoch {epoch} in {out} ({why}); {kept}") from None
        self.saved = epoch


# ---------------------------------------------------------------------------- stop signals

@contextlib.contextmanager
def sigterm_as_interrupt(caught):
    """Inside the block, SIGTERM and SIGINT stop the run like Ctrl-C; ``caught`` records the signal.

    The handler raises KeyboardInterrupt at once; should that land in a finalizer, where Python
    ignores it, the training loop raises it after the current batch (its ``should_stop`` reads
    ``caught``).
    """
    def handler(signum, frame):
        caught.append(signum)
        raise KeyboardInterrupt
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def interrupted(out, saved, caught):
    """Tell what survived a Ctrl-C / SIGTERM and how to go on; return the exit code (128 + signal)."""
    if not out:
        print("interrupted: nothing was saved (pass --out DIR to keep a checkpoint after every epoch)",
              file=sys.stderr)
    elif saved == 0:
        print(f"interrupted during epoch 1: no epoch finished, so {out} holds no checkpoint yet",
              file=sys.stderr)
    else:
        print(f"interrupted during epoch {saved + 1}: the checkpoint of epoch {saved} in {out} is "
              f"intact; resume with: python -m gluon_resnet.train --resume {out}", file=sys.stderr)
    return 128 + (caught[0] if caught else signal.SIGINT)
