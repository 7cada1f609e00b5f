"""Train a ResNet on Fashion-MNIST: ``python -m gluon_resnet.train --help``."""
import argparse
import sys
import time

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
from mxnet import autograd, gluon, init, np, npx

from .cli import friendly, positive
from .data import load_data_fashion_mnist
from .models import get_model, list_models
from .runtime import devices


def accuracy_sums(net, data_iter, ctx):
    """(number correct, number seen) of ``net`` over ``data_iter``."""
    correct, seen = 0.0, 0
    for X, y in data_iter:
        X, y = X.as_in_ctx(ctx), y.as_in_ctx(ctx)
        correct += float((net(X).argmax(axis=1).astype(y.dtype) == y).sum())
        seen += y.size
    return correct, seen


def train(net, train_iter, test_iter, num_epochs, lr, ctx, log=print, on_epoch=None):
    """Plain SGD with softmax cross-entropy; returns one dict of metrics per epoch.

    ``on_epoch(row)`` is called after each epoch (e.g. ``plots.LivePlot()`` in a notebook).
    """
    net.initialize(init.Xavier(), ctx=ctx, force_reinit=True)
    if isinstance(net, gluon.HybridBlock):
        net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    history = []
    for epoch in range(num_epochs):
        start, loss_sum, correct, seen = time.perf_counter(), 0.0, 0.0, 0
        for X, y in train_iter:
            X, y = X.as_in_ctx(ctx), y.as_in_ctx(ctx)
            with autograd.record():
                y_hat = net(X)
                loss = loss_fn(y_hat, y)
            loss.backward()
            trainer.step(X.shape[0])
            loss_sum += float(loss.sum())
            correct += float((y_hat.argmax(axis=1).astype(y.dtype) == y).sum())
            seen += y.size
        train_seconds = time.perf_counter() - start
        test_correct, test_seen = accuracy_sums(net, test_iter, ctx)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
               "test_acc": test_correct / test_seen, "examples_per_sec": seen / train_seconds,
               "seconds": time.perf_counter() - start}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        log(f"epoch {row['epoch']}/{num_epochs}: loss {row['train_loss']:.3f}, "
            f"train acc {row['train_acc']:.3f}, test acc {row['test_acc']:.3f} "
            f"({row['seconds']:.0f} s)")
    return history


# A preset fills in defaults; flags given on the command line still win.
PRESETS = {
    "lesson": dict(model="resnet18_d2l", resize=96, lr=0.05, batch_size=256, epochs=10),
    "quick": dict(model="resnet18_d2l", resize=None, lr=0.1, batch_size=128, epochs=2),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m gluon_resnet.train",
        description="Train a residual network on the real Fashion-MNIST with SGD and report "
                    "loss, train and test accuracy per epoch, as the d2l ResNet lesson does.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="a named recipe: lesson = the book's settings (resize 96, 10 epochs); "
                             "quick = the README demo (about 10 minutes on 2 CPU cores). Flags override it.")
    parser.add_argument("--model", default="resnet18_d2l", choices=list_models(), metavar="NAME",
                        help="network from the registry (default: %(default)s; see gluon_resnet.list_models())")
    parser.add_argument("--epochs", type=positive(int, 1, "--epochs"), default=10,
                        help="passes over the 60,000 training images (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive(int, 1, "--batch-size"), default=256,
                        help="examples per SGD step (default: %(default)s)")
    parser.add_argument("--lr", type=positive(float, 0, "--lr"), default=0.05,
                        help="SGD learning rate (default: %(default)s)")
    parser.add_argument("--resize", type=positive(int, 8, "--resize"), default=None,
                        help="resize the 28x28 images to SIZE x SIZE first (the lesson uses 96; default: keep 28)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="auto: the first GPU when MXNet sees one, else the CPU (default: %(default)s)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding the four Fashion-MNIST IDX files (default: look in "
                             "$MXNET_HOME/datasets/fashion-mnist, then /usr/share/datasets/fashion-mnist, then download)")
    parser.add_argument("--imperative", action="store_true",
                        help="run the lesson's nn.Block code eagerly instead of the compiled (hybridized) twin")
    parser.add_argument("--subset", type=positive(int, 10, "--subset"), default=None, metavar="N",
                        help="use only N class-balanced training images and N test images (quick experiments)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    return parser


def parse_args(argv=None):
    """Parse flags; a preset's values apply wherever the flag itself was not given."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preset:
        given = parser.parse_args(argv, namespace=argparse.Namespace(**{k: None for k in vars(args)}))
        for key, value in PRESETS[args.preset].items():
            if getattr(given, key) is None:
                setattr(args, key, value)
    return args


@friendly
def main(argv=None):
    args = parse_args(argv)
    ctx = devices(args.device)[0]
    mx.random.seed(args.seed)
    train_iter, test_iter = load_data_fashion_mnist(args.batch_size, args.resize, args.data_dir,
                                                    seed=args.seed, subset=args.subset)
    net = get_model(args.model, imperative=args.imperative)
    history = train(net, train_iter, test_iter, args.epochs, args.lr, ctx)
    last = history[-1]
    print(f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
          f"test acc {last['test_acc']:.3f}")
    speed = sum(r["examples_per_sec"] for r in history) / len(history)
    print(f"{speed:.1f} examples/sec on {ctx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
