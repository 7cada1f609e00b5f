"""The training loop ``train()`` (usable from a notebook) and the ``python -m gluon_resnet.train`` CLI.

In Python::

    history = train(net, train_iter, test_iter, num_epochs=10, lr=0.05, ctx=mx.cpu())

returns one dict per epoch (epoch, train_loss, train_acc, test_acc, examples_per_sec, seconds).
"""
import argparse
import contextlib
import hashlib
import math
import os
import signal
import sys
import time
from pathlib import Path

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
from mxnet import autograd, gluon, init, np, npx

from . import checkpoint as ckpt
from . import distributed
from .cli import ArgumentParser, friendly, number
from .errors import UserError


class Diverged(UserError):
    """The loss became NaN or infinite; the message names the epoch and the batch."""


# ---------------------------------------------------------------------------- pieces of a step

def make_schedule(kind, base_lr, total_steps, warmup_steps=0):
    """``lr(step)`` for step 0 .. total_steps-1: constant, cosine (with linear warm-up) or onecycle.

    One-cycle climbs linearly from base_lr/10 to base_lr over the warm-up (30 % of the run when
    none is given), then falls linearly to zero; cosine warms up linearly, then follows half a cosine.

    >>> lr = make_schedule("cosine", 1.0, 100, warmup_steps=10)
    >>> [round(lr(s), 3) for s in (0, 9, 10, 99)]
    [0.1, 1.0, 1.0, 0.0]
    >>> round(make_schedule("onecycle", 1.0, 10)(3), 3)
    1.0
    """
    total_steps = max(1, total_steps)
    if kind == "constant":
        return lambda step: base_lr
    if kind == "onecycle" and not warmup_steps:
        warmup_steps = max(1, round(0.3 * total_steps))

    def lr(step):
        if step < warmup_steps:
            return base_lr * (0.1 + 0.9 * (step + 1) / warmup_steps) if kind == "onecycle" \
                else base_lr * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
        if kind == "cosine":
            return base_lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return base_lr * max(0.0, 1 - progress)
    if kind not in ("cosine", "onecycle"):
        raise UserError(f"unknown schedule {kind!r}: choose constant, cosine or onecycle")
    return lr


def make_trainer(net, optimizer="sgd", lr=0.05, momentum=0.0, wd=0.0, cluster=None):
    """The one ``gluon.Trainer`` that updates ``net`` (all devices' gradients are summed into it).

    ``cluster`` (``distributed.connect(kvstore)``) picks the kvstore; default: this process alone.
    """
    params = {"learning_rate": lr, "wd": wd}
    if optimizer in ("sgd", "nag"):
        params["momentum"] = momentum
    return distributed.make_trainer(net.collect_params(), optimizer, params,
                                    cluster or distributed.connect())


def cross_entropy(y_hat, y, label_smoothing=0.0):
    """Per-example softmax cross-entropy; with smoothing ``e`` the target puts ``e`` evenly on all classes."""
    logp = npx.log_softmax(y_hat)
    nll = -npx.pick(logp, y)
    if not label_smoothing:
        return nll
    return (1 - label_smoothing) * nll - label_smoothing * logp.mean(axis=1)


def as_ctx_list(ctx):
    return list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]


def split(X, y, ctxs):
    """Slices of the batch on each device (``split_and_load``), never an empty slice."""
    ctxs = ctxs[:max(1, min(len(ctxs), X.shape[0]))]
    return (gluon.utils.split_and_load(X, ctxs, even_split=False),
            gluon.utils.split_and_load(y, ctxs, even_split=False))


def scores(net, X, tta=False):
    """The class scores (logits) of batch ``X``; with ``tta`` (test-time augmentation), the sum of
    the scores of each image and of its mirror image, which the flip-trained nets get right more often.

    >>> net = lambda X: X.reshape(len(X), -1)
    >>> X = np.array([[[[1., 2.]]]])
    >>> scores(net, X).tolist(), scores(net, X, tta=True).tolist()
    ([[1.0, 2.0]], [[3.0, 3.0]])
    """
    out = net(X)
    return out + net(np.flip(X, axis=3)) if tta else out


def accuracy_sums(net, data_iter, ctx, tta=False):
    """(number correct, number seen) of ``net`` over ``data_iter``, evaluated on the first device."""
    ctx = as_ctx_list(ctx)[0]
    correct, seen = 0.0, 0
    for X, y in data_iter:
        X, y = X.as_in_ctx(ctx), y.as_in_ctx(ctx)
        correct += float((scores(net, X, tta).argmax(axis=1).astype(y.dtype) == y).sum())
        seen += y.size
    return correct, seen


# ---------------------------------------------------------------------------- the loop

def train_epoch(net, trainer, train_iter, ctxs, epoch, lr_at, first_step, label_smoothing=0.0,
                progress=None):
    """One pass over ``train_iter``: (loss sum, correct, seen). Raises ``Diverged`` on a NaN/inf loss."""
    loss_sum, correct, seen = 0.0, 0.0, 0
    for batch, (X, y) in enumerate(train_iter):
        Xs, ys = split(X, y, ctxs)
        with autograd.record():
            outs = [net(x) for x in Xs]
            losses = [cross_entropy(o, t, label_smoothing) for o, t in zip(outs, ys)]
        # Queue the loss and hit counts before the backward pass: they need only the forward pass,
        # so reading them below never waits for the update. (Reading them after trainer.step made
        # MXNet's engine drain every step: about 20% slower on 2 CPU cores.)
        loss_sums = [loss.sum() for loss in losses]
        hits = [(o.argmax(axis=1).astype(t.dtype) == t).sum() for o, t in zip(outs, ys)]
        autograd.backward(losses)
        batch_loss = sum(float(s) for s in loss_sums)
        if not math.isfinite(batch_loss):
            raise Diverged(f"the loss became {batch_loss} in epoch {epoch + 1}, batch {batch + 1}; "
                           "lower --lr or add warm-up (--warmup-epochs)")
        trainer.set_learning_rate(lr_at(first_step + batch))
        trainer.step(X.shape[0])
        loss_sum += batch_loss
        correct += sum(float(h) for h in hits)
        seen += X.shape[0]
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
        raise_if_stopped()
    return loss_sum, correct, seen


def train(net, train_iter, test_iter, num_epochs, lr, ctx, log=print, on_epoch=None, *,
          optimizer="sgd", momentum=0.0, wd=0.0, schedule="constant", warmup_epochs=0,
          label_smoothing=0.0, trainer=None, start_epoch=0, initialize=True, hybridize=True,
          seed=None, progress=False, tta=False):
    """Train ``net``; return one dict per epoch and call ``on_epoch(row)`` after each.

    ``ctx`` is a device or a list of them (each batch is split across the list). To continue a
    run, pass its restored ``trainer``, ``start_epoch`` and ``initialize=False``. ``tta`` scores
    the test set with mirror-image test-time augmentation (see ``scores``).
    """
    ctxs = as_ctx_list(ctx)
    if initialize:
        net.initialize(init.Xavier(), ctx=ctxs, force_reinit=True)
    if hybridize and isinstance(net, gluon.HybridBlock):
        net.hybridize(static_alloc=True, static_shape=True)
    if trainer is None:
        trainer = make_trainer(net, optimizer, lr, momentum, wd)
    steps = len(train_iter)
    lr_at = make_schedule(schedule, lr, steps * num_epochs, warmup_epochs * steps)
    history = []
    for epoch in range(start_epoch, num_epochs):
        if seed is not None:
            mx.random.seed(seed + epoch)  # any random op in the net repeats on resume
        if hasattr(train_iter, "set_epoch"):  # ArrayLoader: epoch e's order comes from (seed, e)
            train_iter.set_epoch(epoch)
        row = run_epoch(net, trainer, train_iter, test_iter, ctxs, epoch, num_epochs, lr_at,
                        label_smoothing, progress, tta)
        history.append(row)
        log(f"epoch {row['epoch']}/{num_epochs}: loss {row['train_loss']:.3f}, "
            f"train acc {row['train_acc']:.3f}, test acc {row['test_acc']:.3f}, "
            f"{row['examples_per_sec']:.1f} examples/sec ({row['seconds']:.0f} s)")
        if on_epoch is not None:
            on_epoch(row)
    return history


def run_epoch(net, trainer, train_iter, test_iter, ctxs, epoch, num_epochs, lr_at,
              label_smoothing, progress, tta=False):
    """Train one epoch, then measure test accuracy; the row ``train()`` returns for it."""
    from tqdm import tqdm

    bar = tqdm(total=len(train_iter), desc=f"epoch {epoch + 1}/{num_epochs}", unit="batch",
               leave=False, file=sys.stderr, disable=not progress)
    start = time.perf_counter()
    try:
        loss_sum, correct, seen = train_epoch(net, trainer, train_iter, ctxs, epoch, lr_at,
                                              epoch * len(train_iter), label_smoothing, bar)
    finally:
        bar.close()
    train_seconds = time.perf_counter() - start
    test_correct, test_seen = accuracy_sums(net, test_iter, ctxs, tta)
    row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
           "test_acc": test_correct / test_seen, "examples_per_sec": seen / train_seconds,
           "seconds": time.perf_counter() - start, "lr": lr_at((epoch + 1) * len(train_iter) - 1)}
    if hasattr(train_iter, "order"):  # a fingerprint of the epoch's data order, to compare runs by
        row["data_order"] = hashlib.sha1(train_iter.order(epoch).tobytes()).hexdigest()[:16]
    return row


# ---------------------------------------------------------------------------- the command line

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
}
DEFAULTS = dict(model="resnet18_d2l", epochs=10, batch_size=256, lr=0.05, resize=None,
                optimizer="sgd", momentum=0.0, wd=0.0, schedule="constant", warmup_epochs=0,
                label_smoothing=0.0, crop_pad=0, flip=False, tta=False, subset=None, seed=0, imperative=False)
# What defines a run (saved with it; --resume refuses flags that change it).
RECIPE = tuple(DEFAULTS)


def build_parser():
    from .models import list_models

    p = ArgumentParser(
        prog="python -m gluon_resnet.train",
        description="Train a residual network on the real Fashion-MNIST and report loss, train and "
                    "test accuracy per epoch, as the d2l ResNet lesson does. With --out, save metrics, "
                    "curves and a checkpoint after every epoch; --resume continues such a run.")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="a named recipe: lesson = the book's settings (resize 96, 10 epochs); quick = the "
                        "README demo (one one-cycle epoch at 28x28, about 6 minutes on 2 cores); fast = the "
                        "tuned recipe: fmnist_resnet8, 9 one-cycle epochs, flips, --tta (about 93%% in 9 "
                        "minutes on 2 cores). Flags override it.")
    p.add_argument("--model", choices=list_models(), metavar="NAME",
                   help=f"network from the registry: {', '.join(list_models())} (default: resnet18_d2l)")
    p.add_argument("--epochs", type=number(int, "--epochs", 1), help="passes over the training set (default: 10)")
    p.add_argument("--batch-size", type=number(int, "--batch-size", 1), help="examples per step (default: 256)")
    p.add_argument("--lr", type=number(float, "--lr", 0, low_open=True), help="peak learning rate (default: 0.05)")
    p.add_argument("--optimizer", choices=("sgd", "nag", "adam"), help="update rule (default: sgd)")
    p.add_argument("--momentum", type=number(float, "--momentum", 0, 1, high_open=True),
                   help="momentum for sgd/nag (default: 0, the lesson's plain SGD)")
    p.add_argument("--wd", type=number(float, "--wd", 0), help="weight decay (default: 0)")
    p.add_argument("--schedule", choices=("constant", "cosine", "onecycle"),
                   help="learning-rate schedule over the whole run (default: constant)")
    p.add_argument("--warmup-epochs", type=number(float, "--warmup-epochs", 0),
                   help="linear warm-up length for cosine/onecycle (default: 0; onecycle then uses 30%%)")
    p.add_argument("--label-smoothing", type=number(float, "--label-smoothing", 0, 1, high_open=True),
                   help="share of the target spread over all classes (default: 0)")
    p.add_argument("--crop-pad", type=number(int, "--crop-pad", 0, 16),
                   help="augment: pad by P pixels, crop back at random (default: 0 = off)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="augment: mirror a random half of each batch (default: off)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time augmentation: score each test image and its mirror image and add the "
                        "scores (default: off; evaluate uses the run's setting)")
    p.add_argument("--resize", type=number(int, "--resize", 8, 512),
                   help="resize the 28x28 images to SIZE x SIZE once (the lesson uses 96; default: keep 28)")
    p.add_argument("--subset", type=number(int, "--subset", 10), metavar="N",
                   help="use only N class-balanced training images and N test images (quick experiments)")
    p.add_argument("--seed", type=int, help="seed for initialisation, data order and augmentation (default: 0)")
    p.add_argument("--imperative", action="store_true", default=None,
                   help="run the lesson's nn.Block code eagerly instead of the compiled (hybridized) twin")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="auto: every GPU MXNet sees, else the CPU (default: %(default)s)")
    p.add_argument("--num-gpus", type=number(int, "--num-gpus", 1), metavar="K",
                   help="use the first K GPUs, splitting each batch across them (default: all with --device auto/gpu)")
    p.add_argument("--data-dir", help="folder holding the four Fashion-MNIST IDX files (default: look in "
                   "$MXNET_HOME/datasets/fashion-mnist, then /usr/share/datasets/fashion-mnist, then download)")
    p.add_argument("--kvstore", choices=distributed.KVSTORES, default="device",
                   help="how gradients are combined: device/local sum over this machine's GPUs; "
                        "dist_sync/dist_device_sync over the processes that `python -m gluon_resnet.launch` "
                        "starts, each training on its shard with --batch-size images per step, --lr applying "
                        "to the mean over all workers' batches (default: %(default)s)")
    p.add_argument("--out", metavar="DIR", help="save metrics.json, curves.png and a checkpoint after every epoch here")
    p.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR (its --out) from its last "
                   "complete epoch, with its settings and the same data order; with --epochs N, a "
                   "constant-rate run goes on to epoch N")
    p.add_argument("--quiet", action="store_true", help="no progress bars (they are off anyway when "
                   "stderr is not a terminal)")
    return p


def parse_args(argv=None):
    """Parse flags: explicit flags win over the preset, which wins over the defaults.

    ``args.given`` is the set of recipe keys given explicitly on the command line.
    """
    args = build_parser().parse_args(argv)
    args.given = {k for k in RECIPE if getattr(args, k) is not None}
    preset = PRESETS.get(args.preset, {})
    for key in RECIPE:
        if getattr(args, key) is None:
            setattr(args, key, preset.get(key, DEFAULTS[key]))
    return args


def recipe(args):
    """The settings that define a run, as saved in its checkpoint and metrics.json."""
    return {key: getattr(args, key) for key in RECIPE}


def prepare_out(directory, resuming=False):
    """Make sure ``--out`` is a writable folder that holds no other run; nothing is overwritten."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {directory} is a file, not a folder: choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        ckpt.atomic_write(path / ".write-test", b"")
        os.unlink(path / ".write-test")
    except OSError as err:
        raise UserError(f"cannot write to --out {directory} ({err.strerror}): choose a writable folder") from None
    if not resuming and (path / ckpt.CHECKPOINT).exists():
        raise UserError(f"{directory} already holds a run: continue it with --resume {directory} "
                        "or choose another --out")
    return path


def resume_point(args):
    """With ``--resume DIR``: adopt the saved settings and return (meta, members); else (None, None)."""
    if not args.resume:
        return None, None
    if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise UserError("--resume writes back into the run's own folder; leave out --out")
    meta, members = ckpt.read_checkpoint(args.resume)
    saved = meta["config"]
    clash = sorted(k for k in args.given if k != "epochs" and getattr(args, k) != saved.get(k))
    if clash:
        got = ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)} (saved: {saved.get(k)})" for k in clash)
        raise UserError(f"{args.resume} holds a {saved['model']} run with other settings: {got}; "
                        "--resume continues a run with its own settings, so leave those flags out")
    wanted = args.epochs if "epochs" in args.given else None
    for key in RECIPE:
        setattr(args, key, saved.get(key, DEFAULTS[key]))
    if wanted is not None and wanted != args.epochs:
        args.epochs = extended_epochs(args, wanted, meta["epoch"])
    if meta["epoch"] >= args.epochs:
        more = (f" (--resume {args.resume} --epochs N trains it on to epoch N)"
                if args.schedule == "constant" else "")
        raise UserError(f"the run in {args.resume} already finished its {args.epochs} epochs; "
                        f"nothing to resume{more}")
    args.out = args.resume
    return meta, members


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


def choose_devices(args):
    """The contexts to train on: ``--device`` and ``--num-gpus``, or a one-line reason why not."""
    from .runtime import devices

    ctxs = devices("gpu" if args.num_gpus else args.device)
    if args.num_gpus:
        if len(ctxs) < args.num_gpus:
            raise UserError(f"--num-gpus {args.num_gpus} asked for more GPUs than the {len(ctxs)} MXNet sees")
        ctxs = ctxs[:args.num_gpus]
    return ctxs


def run_saver(out, net, trainer, config, env, history, done):
    """The CLI's ``on_epoch``: keep the row; with ``out``, write checkpoint, metrics.json, curves.png.

    ``done[0]`` becomes the epoch only once its checkpoint is in place, so an interruption
    message never promises a checkpoint that is not there.
    """
    def on_epoch(row):
        history.append(row)
        if out is None:
            done[0] = row["epoch"]
            return
        meta = {"epoch": row["epoch"], "config": config, "history": history,
                "rng": {"seed": config["seed"], "next_epoch": row["epoch"],
                        "note": "data order, augmentation and mx.random derive from (seed, epoch)"}}
        ckpt.save_checkpoint(out, net, trainer, meta)
        done[0] = row["epoch"]
        ckpt.write_metrics(out, config, env, history, finished=row["epoch"] >= config["epochs"])
        ckpt.write_curves(out, history, title=f"{config['model']} on Fashion-MNIST")
    return on_epoch


_stop_signals = None  # the `caught` list of the active `sigterm_as_interrupt` block, if any


def raise_if_stopped():
    """Re-raise a stop signal whose KeyboardInterrupt Python swallowed (it ignores them in ``__del__``)."""
    if _stop_signals:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt(caught):
    """Inside the block, SIGTERM and SIGINT stop the run like Ctrl-C; ``caught`` records the signal.

    The handler raises KeyboardInterrupt at once; should that land in a finalizer, where Python
    ignores it, the training loop raises it after the current batch (``raise_if_stopped``).
    """
    global _stop_signals

    def handler(signum, frame):
        caught.append(signum)
        raise KeyboardInterrupt
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    _stop_signals = caught
    try:
        yield
    finally:
        _stop_signals = None
        for sig, old in previous.items():
            signal.signal(sig, old)


def interrupted(args, done, caught):
    """Tell what survived a Ctrl-C / SIGTERM and how to go on; return the exit code (128 + signal)."""
    if not args.out:
        print("interrupted: nothing was saved (pass --out DIR to keep a checkpoint after every epoch)",
              file=sys.stderr)
    elif done[0] == 0:
        print(f"interrupted during epoch 1: no epoch finished, so {args.out} holds no checkpoint yet",
              file=sys.stderr)
    else:
        print(f"interrupted during epoch {done[0] + 1}: the checkpoint of epoch {done[0]} in {args.out} is "
              f"intact; resume with: python -m gluon_resnet.train --resume {args.out}", file=sys.stderr)
    return 128 + (caught[0] if caught else signal.SIGINT)


@friendly
def main(argv=None):
    from .augment import Augment
    from .data import load_data_fashion_mnist
    from .models import get_model

    args = parse_args(argv)                                               # parse
    cluster = distributed.connect(args.kvstore)                           # cluster (rank 0 of 1 alone)
    log = cluster.tag(print)
    if cluster.distributed and args.schedule != "constant":
        raise UserError(f"--schedule {args.schedule} is not supported with --kvstore {args.kvstore} yet "
                        "(the servers run the optimizer): use --schedule constant")
    meta, members = resume_point(args)
    out = prepare_out(args.out, resuming=meta is not None) if args.out and cluster.is_writer else None
    ctxs = choose_devices(args)                                           # devices
    augment = Augment(args.crop_pad, args.flip)                           # data
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, args.resize, args.data_dir,
                                                    seed=args.seed, subset=args.subset,
                                                    augment=augment or None)
    train_iter = distributed.shard(train_iter, cluster)                   # this worker's shard
    mx.random.seed(args.seed)                                             # model
    net = get_model(args.model, imperative=args.imperative)
    if meta:
        ckpt.restore(net, members, ctxs, where=f"{args.resume}/{ckpt.CHECKPOINT}")
    else:
        net.initialize(init.Xavier(), ctx=ctxs)
    trainer = make_trainer(net, args.optimizer, args.lr, args.momentum, args.wd, cluster)  # trainer
    if meta:
        ckpt.restore_trainer(trainer, members)
    config, history = recipe(args), list(meta["history"]) if meta else []
    done = [meta["epoch"] if meta else 0]
    on_epoch = run_saver(out, net, trainer, config, ckpt.environment(ctxs), history, done)
    if cluster.distributed:  # workers print a digest of their weights: equal digests, equal models
        on_epoch = check_agreement(on_epoch, net, log)
    if meta:
        log(f"resuming {args.out} after epoch {meta['epoch']} of {args.epochs}")
    caught = []
    try:                                                                  # loop
        with sigterm_as_interrupt(caught):
            train(net, train_iter, test_iter, args.epochs, args.lr, ctxs, log=log, on_epoch=on_epoch,
                  optimizer=args.optimizer, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                  label_smoothing=args.label_smoothing, trainer=trainer, start_epoch=done[0],
                  initialize=False, hybridize=not args.imperative, seed=args.seed,
                  progress=not args.quiet and sys.stderr.isatty(), tta=args.tta)
    except KeyboardInterrupt:
        return interrupted(args, done, caught)
    except Diverged as err:
        kept = f"; the checkpoint of epoch {done[0]} in {args.out} is kept" if out and done[0] else ""
        raise Diverged(f"{err}{kept}") from None
    return summarize(history, ctxs, out, cluster, log)                    # outputs


def check_agreement(on_epoch, net, log):
    """Wrap ``on_epoch`` to also log a short digest of the weights (workers must all print the same)."""
    def wrapped(row):
        on_epoch(row)
        log(f"epoch {row['epoch']}: parameters {distributed.param_digest(net)}")
    return wrapped


def summarize(history, ctxs, out, cluster, log=print):
    """The d2l-style closing lines (and where the run was saved)."""
    if out:
        log(f"saved {out}/metrics.json, {out}/curves.png and {out}/{ckpt.CHECKPOINT}")
    last = history[-1]
    log(f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
        f"test acc {last['test_acc']:.3f}")
    speed = sum(r["examples_per_sec"] for r in history) / len(history)
    together = f" (about {speed * cluster.num_workers:.0f} for all {cluster.num_workers} workers)"
    log(f"{speed:.1f} examples/sec on {', '.join(str(c) for c in ctxs)}"
        + (together if cluster.num_workers > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
