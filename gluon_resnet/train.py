"""``python -m gluon_resnet.train``: the command line around the loop in ``gluon_resnet.loop``."""
import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
from mxnet import init

from . import checkpoint as ckpt
from . import distributed
from .cli import ArgumentParser, friendly, number
from .errors import UserError
from .loop import Diverged, make_trainer, train


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
                  progress=not args.quiet and sys.stderr.isatty(), tta=args.tta,
                  should_stop=lambda: bool(caught))
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
