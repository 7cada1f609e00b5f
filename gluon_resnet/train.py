"""``python -m gluon_resnet.train``: the command line. ``main`` reads as the run's spine:
parse -> data -> model -> train -> report; the loop is ``gluon_resnet.loop``, the run folder
(presets, ``--out``, resume, saving, signals) ``gluon_resnet.run``."""
import argparse
import contextlib
import sys

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)

from . import distributed, run
from .augment import Augment
from .cli import ArgumentParser, friendly, number
from .data import load_data_fashion_mnist
from .errors import UserError
from .loop import Diverged, train
from .ema import WeightAverage
from .models import list_models
from .run import DEFAULTS, PRESETS, RECIPE
from .runtime import cpu_description, devices


# ---------------------------------------------------------------------------- the flags

def build_parser():
    p = ArgumentParser(
        prog="python -m gluon_resnet.train",
        description="Train a residual network on the real Fashion-MNIST and report loss, train and "
                    "test accuracy per epoch, as the d2l ResNet lesson does. With --out, save metrics, "
                    "curves and a checkpoint after every epoch; --resume continues such a run.")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="a named recipe: lesson = the book's settings (resize 96, 10 epochs); quick = the "
                        "README demo (one one-cycle epoch at 28x28, about 6 minutes on 2 cores); fast = the "
                        "tuned recipe: fmnist_resnet8, 9 one-cycle epochs, flips, --tta (about 93%% in 9 "
                        "minutes on 2 cores); best = fast for 20 epochs (93.9%% over 3 seeds in about 13 "
                        "minutes on 2 Zen 3 cores, about 10 on a Zen 4). Flags override it.")
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
    p.add_argument("--erase", type=number(float, "--erase", 0, 1), metavar="P",
                   help="augment: random erasing, fill one random rectangle (2-40%% of the image) of a share "
                        "P of each batch with noise (default: 0 = off)")
    p.add_argument("--tta-shifts", type=number(int, "--tta-shifts", 0, 4), metavar="S",
                   help="test-time augmentation: also score copies moved S pixels down-right and up-left "
                        "(mirrored too with --tta), in the last epoch only (default: 0 = off)")
    p.add_argument("--ema", type=number(float, "--ema", 0, 1, high_open=True), metavar="DECAY",
                   help="score an exponential moving average of the weights, updated every 5 steps with "
                        "this decay, e.g. 0.99 (default: 0 = off; the checkpoint keeps the raw weights, and "
                        "--resume starts the average afresh)")
    p.add_argument("--zero-init", action=argparse.BooleanOptionalAction, default=None,
                   help="start the last BN scale of every residual block at zero, so that each block starts "
                        "as its shortcut (registry ResNets with post-activation blocks; default: off)")
    p.add_argument("--wd-bn-bias", action=argparse.BooleanOptionalAction, default=None,
                   help="apply --wd to BN scales and shifts and to biases as well (default: on; "
                        "--no-wd-bn-bias decays only the convolution and dense weights)")
    p.add_argument("--resize", type=number(int, "--resize", 8, 512),
                   help="resize the 28x28 images to SIZE x SIZE once (the lesson uses 96; default: keep 28)")
    p.add_argument("--subset", type=number(int, "--subset", 10), metavar="N",
                   help="use only N class-balanced training images and N test images (quick experiments)")
    p.add_argument("--seed", type=int, help="seed for initialisation, data order and augmentation (default: 0)")
    p.add_argument("--imperative", action="store_true", default=None,
                   help="run the lesson's nn.Block code eagerly instead of the compiled (hybridized) twin")
    add_place_flags(p)
    return p


def add_place_flags(p):
    """Where the run happens and where it is kept: devices, data, cluster, run folder, display."""
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
    p.add_argument("--loss-guard", action=argparse.BooleanOptionalAction, default=True,
                   help="stop the run, keeping the last good checkpoint, when a batch's loss exceeds 1000 "
                        "times the first epoch's (a NaN or infinite loss always stops it; default: on)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (they are off anyway when "
                   "stderr is not a terminal)")


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


def choose_devices(args):
    """The contexts to train on: ``--device`` and ``--num-gpus``, or a one-line reason why not."""
    ctxs = devices("gpu" if args.num_gpus else args.device)
    if args.num_gpus:
        if len(ctxs) < args.num_gpus:
            raise UserError(f"--num-gpus {args.num_gpus} asked for more GPUs than the {len(ctxs)} MXNet sees")
        ctxs = ctxs[:args.num_gpus]
    return ctxs


@friendly
def main(argv=None):
    args = parse_args(argv)                                               # parse
    cluster = distributed.connect(args.kvstore)                           # this process in its cluster
    log = cluster.tag(print)
    resume = run.resume_point(args)
    folder = run.RunFolder(args.out, resuming=resume is not None) if args.out and cluster.is_writer else None
    with folder or contextlib.nullcontext():
        ctxs = choose_devices(args)
        train_iter, test_iter = load_data_fashion_mnist(                  # data
            args.batch_size, args.resize, args.data_dir, seed=args.seed, subset=args.subset,
            augment=Augment(args.crop_pad, args.flip, args.erase) or None)
        train_iter = distributed.shard(train_iter, cluster)               # this worker's shard
        net = run.build_net(run.recipe(args))                             # model
        ema = WeightAverage(net, args.ema) if args.ema else None
        saver = run.Saver(folder, run.recipe(args), run.environment(ctxs), resume.epoch if resume else 0) \
            if folder else None
        if resume:
            log(f"resuming {args.out} after epoch {resume.epoch} of {args.epochs}")
        caught = []
        try:                                                              # train
            with run.sigterm_as_interrupt(caught):
                history = train(
                    net, train_iter, test_iter, args.epochs, args.lr, ctxs, log=log,
                    on_epoch=check_agreement(net, log) if cluster.distributed else None,
                    optimizer=args.optimizer, momentum=args.momentum, wd=args.wd, schedule=args.schedule,
                    warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
                    hybridize=not args.imperative, seed=args.seed, tta=args.tta,
                    progress=not args.quiet and sys.stderr.isatty(), should_stop=lambda: bool(caught),
                    cluster=cluster, resume=resume, save=saver, max_loss_ratio=1000.0 if args.loss_guard else None,
                    ema=ema, tta_shifts=args.tta_shifts)
        except KeyboardInterrupt:
            return run.interrupted(folder and args.out, saver.saved if saver else 0, caught)
        except Diverged as err:
            kept = f"; the checkpoint of epoch {saver.saved} in {args.out} is kept" if saver and saver.saved else ""
            raise Diverged(f"{err} (--lr, --warmup-epochs){kept}") from None
    return summarize(history, ctxs, args.out if folder else None, cluster, log)  # report


def check_agreement(net, log):
    """An ``on_epoch`` that logs a short digest of the weights (workers must all print the same)."""
    return lambda row: log(f"epoch {row['epoch']}: parameters {distributed.param_digest(net)}")


def summarize(history, ctxs, out, cluster, log=print):
    """The d2l-style closing lines (and where the run was saved); the speed line names the CPU."""
    if out:
        log(f"saved {out}/metrics.json, {out}/curves.png and {out}/checkpoint.zip")
    last = history[-1]
    log(f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
        f"test acc {last['test_acc']:.3f}")
    speed = sum(r["examples_per_sec"] for r in history) / len(history)
    together = f" (about {speed * cluster.num_workers:.0f} for all {cluster.num_workers} workers)"
    where = ", ".join(str(c) for c in ctxs)
    if all(c.device_type == "cpu" for c in ctxs):
        where += f" ({cpu_description()})"
    log(f"{speed:.1f} examples/sec on {where}" + (together if cluster.num_workers > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
