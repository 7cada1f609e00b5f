"""The training loop a notebook imports: loss, schedule, one step, one epoch, ``train()``, accuracy.

In Python::

    history = train(net, train_iter, test_iter, num_epochs=10, lr=0.05, ctx=mx.cpu())

returns one dict per epoch (epoch, train_loss, train_acc, test_acc, examples_per_sec, seconds).
Nothing here knows about the command line; ``python -m gluon_resnet.train`` drives it.
"""
import hashlib
import math
import sys
import time

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
from mxnet import autograd, gluon, init, np, npx

from . import distributed
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
                progress=None, should_stop=None):
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
        if should_stop is not None and should_stop():
            raise KeyboardInterrupt
    return loss_sum, correct, seen


def train(net, train_iter, test_iter, num_epochs, lr, ctx, log=print, on_epoch=None, *,
          optimizer="sgd", momentum=0.0, wd=0.0, schedule="constant", warmup_epochs=0,
          label_smoothing=0.0, trainer=None, start_epoch=0, initialize=True, hybridize=True,
          seed=None, progress=False, tta=False, should_stop=None):
    """Train ``net``; return one dict per epoch and call ``on_epoch(row)`` after each.

    ``should_stop()`` is asked after every batch; when it returns true the loop raises
    ``KeyboardInterrupt`` (the command line passes one that reports a caught SIGTERM/SIGINT).

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
                        label_smoothing, progress, tta, should_stop)
        history.append(row)
        log(f"epoch {row['epoch']}/{num_epochs}: loss {row['train_loss']:.3f}, "
            f"train acc {row['train_acc']:.3f}, test acc {row['test_acc']:.3f}, "
            f"{row['examples_per_sec']:.1f} examples/sec ({row['seconds']:.0f} s)")
        if on_epoch is not None:
            on_epoch(row)
    return history


def run_epoch(net, trainer, train_iter, test_iter, ctxs, epoch, num_epochs, lr_at,
              label_smoothing, progress, tta=False, should_stop=None):
    """Train one epoch, then measure test accuracy; the row ``train()`` returns for it."""
    from tqdm import tqdm

    bar = tqdm(total=len(train_iter), desc=f"epoch {epoch + 1}/{num_epochs}", unit="batch",
               leave=False, file=sys.stderr, disable=not progress)
    start = time.perf_counter()
    try:
        loss_sum, correct, seen = train_epoch(net, trainer, train_iter, ctxs, epoch, lr_at,
                                              epoch * len(train_iter), label_smoothing, bar,
                                              should_stop)
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
