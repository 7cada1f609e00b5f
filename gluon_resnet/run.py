"""The run folder (``--out DIR``): the recipe that defines a run, the folder itself (locked while a
run uses it), the point a ``--resume`` continues from, saving after each epoch, and stop signals.

After every epoch ``DIR`` gets ``checkpoint.zip`` (see ``checkpoint``), ``metrics.json`` (config,
environment, one row per epoch) and ``curves.png``, the three replaced together: a full disk or a
kill leaves the files of the last complete epoch as they were and no temporary file behind.
"""
import contextlib
import errno
import fcntl
import json
import os
import platform
import signal
import sys
import tempfile
from pathlib import Path

import mxnet as mx
import numpy
from mxnet.base import MXNetError

from . import checkpoint as ckpt
from .errors import UserError
from .files import replacing
from .plots import plot_history
from .runtime import cpu_info, usable_cpus

# A preset fills in defaults; flags given on the command line still win.
PRESETS = {
    "lesson": dict(model="resnet18_d2l", resize=96, lr=0.05, batch_size=256, epochs=10),
    # one epoch of one-cycle SGD: 88.6 % test accuracy in 5.3 minutes on 2 idle CPU cores
    "quick": dict(model="resnet18_d2l", resize=None, lr=0.05, batch_size=128, epochs=1,
                  momentum=0.9, wd=5e-4, schedule="onecycle", label_smoothing=0.1),
    # a small ResNet (6x the throughput of resnet18_d2l at 28x28), 9 one-cycle epochs, mirror images in
    # training and at test time: 93.4 % test accuracy in about 9 minutes on 2 idle CPU cores (README: Results)
    "fast": dict(model="fmnist_resnet8", resize=None, lr=0.1, batch_size=128, epochs=9,
                 momentum=0.9, wd=5e-4, schedule="onecycle", label_smoothing=0.1, flip=True, tta=True),
    # fast for 20 epochs, what fits 10 minutes on a 2-core Zen 4: 93.9 % over 3 seeds, 13.4 minutes
    # on a 2-core Zen 3. Erasing, Nesterov, zero-init and no decay on BN did not add to it over 3 seeds
    # (README: `--preset best`)
    "best": dict(model="fmnist_resnet8", resize=None, lr=0.1, batch_size=128, epochs=20,
                 momentum=0.9, wd=5e-4, schedule="onecycle", label_smoothing=0.1, flip=True, tta=True),
}
DEFAULTS = dict(model="resnet18_d2l", epochs=10, batch_size=256, lr=0.05, resize=None,
                optimizer="sgd", momentum=0.0, wd=0.0, schedule="constant", warmup_epochs=0,
                label_smoothing=0.0, crop_pad=0, flip=False, tta=False, subset=None, seed=0, imperative=False,
                erase=0.0, ema=0.0, tta_shifts=0, zero_init=False, wd_bn_bias=True)
# What defines a run (saved with it; --resume refuses flags that change it).
RECIPE = tuple(DEFAULTS)
NUM_CLASSES = 10  # Fashion-MNIST


def recipe(args):
    """The settings that define a run, as saved in its checkpoint and metrics.json."""
    return {key: getattr(args, key) for key in RECIPE}


def model_spec(config):
    """What ``get_model`` needs to build the run's network again (kept in the checkpoint)."""
    return {"name": config["model"], "num_classes": NUM_CLASSES, "imperative": config["imperative"]}


def build_net(config):
    """The run's network, not yet initialised: ``model_spec``'s, with ``zero_init`` (the last BN
    scale of each block starts at 0) and ``wd_bn_bias=False`` (no weight decay on BN and biases)."""
    from .models import ARCHITECTURES, exclude_from_weight_decay, get_model

    spec, zero_init = model_spec(config), config["zero_init"]
    no_blocks = UserError(f"--zero-init needs a registry ResNet with post-activation blocks (BasicBlock, "
                          f"Bottleneck); {spec['name']} has none: leave out --zero-init")
    if zero_init and spec["name"] not in ARCHITECTURES:
        raise no_blocks
    net = get_model(spec["name"], num_classes=spec["num_classes"], imperative=spec["imperative"],
                    **({"zero_init": True} if zero_init else {}))
    if zero_init and not net.blocks():
        raise no_blocks
    if not config["wd_bn_bias"]:
        exclude_from_weight_decay(net)
    return net


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


# ---------------------------------------------------------------------------- resuming

class ResumePoint:
    """A saved run as ``loop.train(resume=...)`` continues it: its rows and its saved state."""

    def __init__(self, directory):
        self.meta, self._members = ckpt.read_checkpoint(directory)
        self.history, self.epoch = self.meta["history"], self.meta["epoch"]
        self._where = f"{directory}/{ckpt.CHECKPOINT}"

    def restore_net(self, net, ctxs):
        ckpt.restore(net, self._members, ctxs, where=self._where)

    def restore_trainer(self, trainer):
        ckpt.restore_trainer(trainer, self._members)


def resume_point(args):
    """With ``--resume DIR``: adopt the saved settings and return its ``ResumePoint``; else None."""
    if not args.resume:
        return None
    if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise UserError("--resume writes back into the run's own folder; leave out --out")
    point = ResumePoint(args.resume)
    saved = point.meta["config"]
    clash = sorted(k for k in args.given if k != "epochs" and getattr(args, k) != saved.get(k))
    if clash:
        got = ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)} (saved: {saved.get(k)})" for k in clash)
        raise UserError(f"{args.resume} holds a {saved['model']} run with other settings: {got}; "
                        "--resume continues a run with its own settings, so leave those flags out")
    wanted = args.epochs if "epochs" in args.given else None
    for key in RECIPE:
        setattr(args, key, saved.get(key, DEFAULTS[key]))
    if wanted is not None and wanted != args.epochs:
        args.epochs = extended_epochs(args, wanted, point.epoch)
    if point.epoch >= args.epochs:
        more = (f" (--resume {args.resume} --epochs N trains it on to epoch N)"
                if args.schedule == "constant" else "")
        raise UserError(f"the run in {args.resume} already finished its {args.epochs} epochs; "
                        f"nothing to resume{more}")
    args.out = args.resume
    return point


def extended_epochs(args, wanted, done):
    """``--resume DIR --epochs N``: a new length for a constant-rate run, or a one-line reason why not.

    A cosine or one-cycle schedule is drawn over the run's whole length, so changing it midway would
    change the rate of the epochs already trained; those runs keep their length.
    """
    if args.schedule != "constant":
        raise UserError(f"--epochs {wanted}: the run in {args.resume} follows a {args.schedule} schedule drawn "
                        f"over its {args.epochs} epochs, so its length cannot change; resume it without "
                        "--epochs, or start a new run")
    if wanted <= done:
        raise UserError(f"--epochs {wanted}: the run in {args.resume} has already trained {done} epochs; "
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
    """``loop.train(save=...)``: after each epoch, write the checkpoint, metrics.json and curves.png
    together; ``saved`` is the last epoch whose files are all in place (0: none yet)."""

    def __init__(self, folder, config, env, saved=0):
        self.folder, self.config, self.env, self.saved = folder, config, env, saved

    def __call__(self, net, trainer, history):
        epoch, out = history[-1]["epoch"], self.folder.path
        meta = {"epoch": epoch, "model": model_spec(self.config), "config": self.config, "history": history,
                "rng": {"seed": self.config["seed"], "next_epoch": epoch,
                        "note": "data order, augmentation and mx.random derive from (seed, epoch)"}}
        metrics = {"config": self.config, "environment": self.env, "history": history,
                   "finished": epoch >= self.config["epochs"]}
        try:
            with replacing(out / ckpt.CHECKPOINT, out / "metrics.json", out / "curves.png") as (zipped, js, png):
                Path(zipped).write_bytes(ckpt.checkpoint_bytes(net, trainer, meta))
                Path(js).write_text(json.dumps(metrics, indent=1) + "\n")
                plot_history(history, title=f"{self.config['model']} on Fashion-MNIST").savefig(png, format="png")
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
