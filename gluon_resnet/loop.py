"""The training loop a notebook imports: loss, schedule, one step, one epoch, ``train()``, accuracy.

In Python::

    history = train(net, train_iter, test_iter, Settings(epochs=10, lr=0.05), mx.cpu())

returns one dict per epoch (epoch, train_loss, train_acc, test_acc, examples_per_sec, seconds).
Nothing here knows about the command line; ``python -m gluon_resnet.train`` drives it.
"""
import contextlib
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
import numpy
from mxnet import autograd, gluon, init, np, npx
from tqdm import tqdm

from . import distributed
from .ema import WeightAverage
from .sam import SharpnessAware
from .errors import UserError
from .models import hybridize_static


class Diverged(UserError):
    """The loss became NaN or infinite, or exploded; the message names the epoch and the batch."""


class LossGuard:
    """Stops a run whose loss blows up: always on a NaN or infinite loss, and with ``ratio``, on a
    batch loss over ``ratio`` times the first epoch's mean loss (the first batch's loss until the
    first epoch is over). ``ratio=None`` turns the second check off.

    >>> guard = LossGuard(1000, reference=2.0)
    >>> guard.check(1999.0, epoch=1, batch=4)
    >>> guard.check(2001.0, epoch=1, batch=4)
    Traceback (most recent call last):
    ...
    gluon_resnet.loop.Diverged: the loss rose to 2001 in epoch 2, batch 5, over 1000 times its first-epoch value 2; lower the learning rate or add warm-up
    """

    def __init__(self, ratio=1000.0, reference=None):
        self.ratio, self.reference = ratio, reference

    def check(self, loss, epoch, batch):
        """``loss``: the mean loss of batch ``batch`` of ``epoch`` (both counted from 0)."""
        where = f"in epoch {epoch + 1}, batch {batch + 1}"
        if not math.isfinite(loss):
            raise Diverged(f"the loss became {loss} {where}; lower the learning rate or add warm-up")
        if self.reference is None:
            self.reference = loss
        elif self.ratio and loss > self.ratio * self.reference:
            raise Diverged(f"the loss rose to {loss:.4g} {where}, over {self.ratio:g} times its first-epoch "
                           f"value {self.reference:.4g}; lower the learning rate or add warm-up")

    def epoch_done(self, row):
        if row["epoch"] == 1:
            self.reference = row["train_loss"]


# ---------------------------------------------------------------------------- pieces of a step

def make_schedule(kind, base_lr, total_steps, warmup_steps=0):
    """The optimizer's ``lr_scheduler`` for a run of ``total_steps`` updates, or None for "constant".

    MXNet's own schedulers, so the learning rate lives in the optimizer and also changes on the
    kvstore servers of a distributed run. Cosine: linear warm-up from 0, then half a cosine down
    to 0. One-cycle: linear from ``base_lr/10`` up to ``base_lr`` over the warm-up (30 % of the
    run when none is given), then linear down to 0 (a polynomial of power 1). MXNet asks the
    scheduler for update ``n`` = 1, 2, ... (the count after the step), up to ``total_steps``.

    >>> sched = make_schedule("onecycle", 1.0, 10)
    >>> [round(sched(n), 2) for n in (1, 3, 10)]
    [0.4, 1.0, 0.0]
    """
    total_steps = max(1, int(total_steps))
    warmup_steps = min(int(warmup_steps), total_steps - 1)
    if kind == "constant":
        return None
    if kind == "cosine":
        return mx.lr_scheduler.CosineScheduler(total_steps, base_lr, final_lr=0.0, warmup_steps=warmup_steps,
                                               warmup_begin_lr=0.0)
    if kind == "onecycle":
        warmup_steps = warmup_steps or min(total_steps - 1, max(1, round(0.3 * total_steps)))
        return mx.lr_scheduler.PolyScheduler(total_steps, base_lr, pwr=1, final_lr=0.0,
                                             warmup_steps=warmup_steps, warmup_begin_lr=base_lr / 10)
    if kind == "step":  # the paper's CIFAR schedule: lr / 10 after half the updates, again after three quarters
        half = max(1, total_steps // 2)
        return mx.lr_scheduler.MultiFactorScheduler([half, max(half + 1, total_steps * 3 // 4)], factor=0.1,
                                                    base_lr=base_lr, warmup_steps=warmup_steps, warmup_begin_lr=0.0)
    raise UserError(f"unknown schedule {kind!r}: choose constant, cosine, onecycle or step")


def make_trainer(net, optimizer="sgd", lr=0.05, momentum=0.0, wd=0.0, cluster=None, lr_scheduler=None):
    """The one ``gluon.Trainer`` that updates ``net`` (all devices' gradients are summed into it).

    ``cluster`` (``distributed.connect(kvstore)``) picks the kvstore; default: this process alone.
    ``lr_scheduler`` (``make_schedule``) travels inside the optimizer, to the servers too.
    """
    params = {"learning_rate": lr, "wd": wd, "lr_scheduler": lr_scheduler}
    if optimizer in ("sgd", "nag"):
        params["momentum"] = momentum
    return distributed.make_trainer(net.collect_params(), optimizer, params,
                                    cluster or distributed.connect())


def cross_entropy(y_hat, y, label_smoothing=0.0):
    """Per-example softmax cross-entropy; with smoothing ``e`` the target puts ``e`` evenly on all classes.

    ``y`` holds class indices (B,) or, for mixed images (CutMix, mixup), each image's class shares
    (B, classes). Ours because ``gluon.loss.SoftmaxCrossEntropyLoss`` has no label smoothing."""
    logp = npx.log_softmax(y_hat)
    nll = -(logp * y).sum(axis=1) if y.ndim == 2 else -npx.pick(logp, y)
    if not label_smoothing:
        return nll
    return (1 - label_smoothing) * nll - label_smoothing * logp.mean(axis=1)


def hard_labels(y):
    """Class indices (int32): ``y`` itself, or for rows of class shares (mixed images) the class
    with the largest share, which training accuracy counts as the right answer."""
    return y.argmax(axis=1).astype("int32") if y.ndim == 2 else y.astype("int32")


def as_ctx_list(ctx):
    return list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]


def split(X, y, ctxs):
    """Slices of the batch on each device (``split_and_load``), never an empty slice."""
    ctxs = ctxs[:max(1, min(len(ctxs), X.shape[0]))]
    return (gluon.utils.split_and_load(X, ctxs, even_split=False),
            gluon.utils.split_and_load(y, ctxs, even_split=False))


# The shifted copies ``scores`` adds, as (down, right) moves of the content: 2 = the diagonal pair
# (the first version, still the default), 4 = the four neighbours across an edge, 8 = all eight.
SHIFT_COPIES = {2: ((1, 1), (-1, -1)), 4: ((1, 0), (-1, 0), (0, 1), (0, -1)),
                8: tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)}


def scores(net, X, tta=False, shifts=0, copies=2):
    """The class scores (logits) of batch ``X``; with ``tta`` (test-time augmentation), the sum of
    the scores of each image and of its mirror image, which the flip-trained nets get right more often.
    ``shifts=s`` adds the scores of copies moved ``s`` pixels (zero-filled, like the background), as
    crop-trained nets have seen: ``copies=2`` down-right and up-left, 4 up, down, left and right, 8
    every neighbouring place (``SHIFT_COPIES``); with ``tta`` each copy is mirrored too.

    >>> net = lambda X: X.reshape(len(X), -1)
    >>> X = np.array([[[[1., 2.]]]])
    >>> scores(net, X).tolist(), scores(net, X, tta=True).tolist()
    ([[1.0, 2.0]], [[3.0, 3.0]])
    >>> total = lambda X: X.sum(axis=(2, 3))  # a diagonal copy loses a row and a column: 9 + 4 + 4
    >>> scores(total, np.ones((1, 1, 3, 3)), shifts=1).tolist()
    [[17.0]]
    >>> scores(total, np.ones((1, 1, 3, 3)), shifts=1, copies=4).tolist()  # each loses one row or column: 9 + 4 * 6
    [[33.0]]
    """
    views = [X]
    if shifts:
        h, w = X.shape[2:]
        padded = np.pad(X, ((0, 0), (0, 0), (shifts, shifts), (shifts, shifts)))
        views += [padded[:, :, shifts * (1 - dy):shifts * (1 - dy) + h, shifts * (1 - dx):shifts * (1 - dx) + w]
                  for dy, dx in SHIFT_COPIES[copies]]
    if tta:
        views += [np.flip(view, axis=3) for view in views]
    out = net(views[0])
    for view in views[1:]:
        out = out + net(view)
    return out


def predicted(net, data_iter, ctx, tta=False, shifts=0, copies=2):
    """Per batch of ``data_iter``: (true labels, predicted labels), both on the first device of ``ctx``.

    The one evaluation loop: ``accuracy_sums`` counts its hits, ``predict`` keeps its labels."""
    ctx = as_ctx_list(ctx)[0]
    for X, y in data_iter:
        X, y = X.as_in_ctx(ctx), y.as_in_ctx(ctx)
        yield y, scores(net, X, tta, shifts, copies).argmax(axis=1).astype(y.dtype)


def accuracy_sums(net, data_iter, ctx, tta=False, shifts=0, copies=2):
    """(number correct, number seen) of ``net`` over ``data_iter``, evaluated on the first device.

    Counted here because ``mx.metric.Accuracy`` (MXNet 1.9) takes only legacy NDArrays, not the
    ``mx.np`` arrays this package uses."""
    correct, seen = 0.0, 0
    for y, y_hat in predicted(net, data_iter, ctx, tta, shifts, copies):
        correct += float((y_hat == y).sum())
        seen += y.size
    return correct, seen


def predict(net, data_iter, ctx, tta=False, shifts=0, copies=2):
    """True and predicted labels over ``data_iter`` as two int64 numpy arrays (``tta``, ``shifts``,
    ``copies``: see ``scores``), for a confusion matrix or a grid of labelled images."""
    pairs = [(y.asnumpy(), y_hat.asnumpy()) for y, y_hat in predicted(net, data_iter, ctx, tta, shifts, copies)]
    return tuple(numpy.concatenate(column).astype(numpy.int64) for column in zip(*pairs))


# ---------------------------------------------------------------------------- the loop

def train_epoch(net, trainer, train_iter, ctxs, epoch, label_smoothing=0.0, progress=None,
                should_stop=None, guard=None, after_step=None, sam=None):
    """One pass over ``train_iter``: (loss sum, correct, seen). ``guard`` (a ``LossGuard``; default:
    NaN/inf only) raises ``Diverged``; ``should_stop()`` true after a batch raises KeyboardInterrupt.
    ``after_step(batch)`` runs after each update (the weight average's hook, ``ema.WeightAverage``).
    With ``sam`` (a ``sam.SharpnessAware``) each step uses the gradient of a second pass at the
    perturbed weights; the loss and accuracy reported stay the first pass's."""
    guard = guard or LossGuard(None)
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
        hits = [(o.argmax(axis=1).astype("int32") == hard_labels(t)).sum() for o, t in zip(outs, ys)]
        autograd.backward(losses)
        if sam is not None:
            with sam.ascended():
                with autograd.record():
                    again = [cross_entropy(net(x), t, label_smoothing) for x, t in zip(Xs, ys)]
                autograd.backward(again)
        batch_loss = sum(float(s) for s in loss_sums)
        guard.check(batch_loss / X.shape[0], epoch, batch)
        trainer.step(X.shape[0])
        if after_step is not None:
            after_step(epoch * len(train_iter) + batch)
        loss_sum += batch_loss
        correct += sum(float(h) for h in hits)
        seen += X.shape[0]
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
        if should_stop is not None and should_stop():
            raise KeyboardInterrupt
    return loss_sum, correct, seen


def start(net, ctxs, resume, seed):
    """Fresh weights (Xavier, seeded by ``seed``) or, with ``resume``, the saved ones."""
    if resume is not None:
        resume.restore_net(net, ctxs)
        return
    if seed is not None:
        mx.random.seed(seed)
    net.initialize(init.Xavier(), ctx=ctxs, force_reinit=True)


@dataclass
class Hooks:
    """What only the caller of ``train`` knows: ``should_stop()`` is asked after every batch (true:
    the loop raises KeyboardInterrupt); ``save(net, trainer, history)`` keeps each finished epoch
    (``run.Saver`` writes a run folder); ``resume`` continues a saved run: an object with ``history``
    (the rows of the epochs done), ``restore_net(net, ctxs)`` and ``restore_trainer(trainer)``
    (``run.RunRecord`` is one); ``cluster`` (``distributed.connect``) picks the kvstore."""
    should_stop: Optional[Callable[[], bool]] = None
    save: Optional[Callable] = None
    resume: object = None
    cluster: object = None


def train(net, train_iter, test_iter, settings, ctx, *, log=print, on_epoch=None, hooks=None):
    """Train ``net`` as ``settings`` (a ``settings.Settings``) say; return one dict per epoch and
    call ``on_epoch(row)`` after each.

    ``ctx`` is a device or a list of them (each batch is split across the list). The loop reads
    the recipe fields of ``settings`` and ``loss_guard`` (see ``LossGuard``) and ``quiet`` (progress
    bars, shown only on a terminal); ``imperative`` runs the net without hybridizing it. ``tta``
    scores the test set with mirror images (see ``scores``); ``tta_shifts`` adds shifted copies
    (``tta_copies`` of them) in the last epoch's scoring only; ``test_every`` = N scores the test set after every N-th epoch and
    the last only (the other rows get ``test_acc`` None). With ``ema`` the test set scores a moving
    average of the weights (``ema.WeightAverage``); the raw ones go on training and are what
    ``hooks.save`` keeps. With ``hooks.resume`` training goes on after its last epoch and the returned
    list starts with its rows.
    """
    hooks, ctxs = hooks or Hooks(), as_ctx_list(ctx)
    steps, epochs, resume = len(train_iter), settings.epochs, hooks.resume
    sched = make_schedule(settings.schedule, settings.lr, steps * epochs, settings.warmup_epochs * steps)
    start(net, ctxs, resume, settings.seed)
    trainer = make_trainer(net, settings.optimizer, settings.lr, settings.momentum, settings.wd, hooks.cluster,
                           sched)
    if resume is not None:
        resume.restore_trainer(trainer)  # momentum buffers and the schedule's step count
    if not settings.imperative and isinstance(net, gluon.HybridBlock):
        hybridize_static(net)
    ema = WeightAverage(net, settings.ema) if settings.ema else None
    sam = SharpnessAware(net, settings.sam) if settings.sam else None
    progress = not settings.quiet and sys.stderr.isatty()
    history = list(resume.history) if resume else []
    guard = LossGuard(1000.0 if settings.loss_guard else None, history[0]["train_loss"] if history else None)
    for epoch in range(len(history), epochs):
        if settings.seed is not None:
            mx.random.seed(settings.seed + epoch)  # any random op in the net repeats on resume
        if hasattr(train_iter, "set_epoch"):  # ArrayLoader: epoch e's order comes from (seed, e)
            train_iter.set_epoch(epoch)
        last = epoch + 1 == epochs
        scored = last or (epoch + 1) % settings.test_every == 0
        row = run_epoch(net, trainer, train_iter, test_iter if scored else None, ctxs, epoch, epochs,
                        settings.label_smoothing, progress, settings.tta, hooks.should_stop, guard, ema,
                        (settings.tta_shifts, settings.tta_copies) if last else (0, 2), sam)
        row["lr"] = sched((epoch + 1) * steps) if sched else settings.lr  # the rate of the epoch's last step
        guard.epoch_done(row)
        history.append(row)
        log(f"epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.3f}, "
            f"train acc {row['train_acc']:.3f}, test acc {format_acc(row['test_acc'])}, "
            f"{row['examples_per_sec']:.1f} examples/sec ({row['seconds']:.0f} s)")
        if hooks.save is not None:
            hooks.save(net, trainer, history)
        if on_epoch is not None:
            on_epoch(row)
    return history


def format_acc(acc):
    """An accuracy as the epoch lines print it; ``-`` for an epoch whose test set was not scored."""
    return "-" if acc is None else f"{acc:.3f}"


def run_epoch(net, trainer, train_iter, test_iter, ctxs, epoch, num_epochs, label_smoothing=0.0,
              progress=False, tta=False, should_stop=None, guard=None, ema=None, shifts=(0, 2), sam=None):
    """Train one epoch, then measure test accuracy (of the averaged weights, given ``ema``; None
    without ``test_iter``; ``shifts``: ``scores``'s ``(shifts, copies)``); the row ``train()`` returns for it."""
    bar = tqdm(total=len(train_iter), desc=f"epoch {epoch + 1}/{num_epochs}", unit="batch",
               leave=False, file=sys.stderr, disable=not progress)
    begin = time.perf_counter()
    try:
        loss_sum, correct, seen = train_epoch(net, trainer, train_iter, ctxs, epoch, label_smoothing, bar,
                                              should_stop, guard, ema.update if ema else None, sam)
    finally:
        bar.close()
    train_seconds = time.perf_counter() - begin
    test_acc = None
    if test_iter is not None:
        with ema.applied() if ema else contextlib.nullcontext():
            test_correct, test_seen = accuracy_sums(net, test_iter, ctxs, tta, *shifts)
        test_acc = test_correct / test_seen
    row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
           "test_acc": test_acc, "examples_per_sec": seen / train_seconds,
           "seconds": time.perf_counter() - begin}
    if hasattr(train_iter, "order"):  # a fingerprint of the epoch's data order, to compare runs by
        row["data_order"] = hashlib.sha1(train_iter.order(epoch).tobytes()).hexdigest()[:16]
    return row
