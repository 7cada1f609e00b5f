"""``python -m gluon_resnet.train``: the command line. ``main`` reads as the run's spine:
parse -> settings -> setup -> loop -> summary. The flags are the fields of ``settings.Settings``;
the loop is ``gluon_resnet.loop``, the run folder (``--out``, resume, saving, signals) ``gluon_resnet.run``."""
import contextlib
import sys

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)

from . import distributed, run
from .augment import Augment, Mix
from .cli import friendly
from .data import load_data_fashion_mnist
from .errors import UserError
from .loop import Diverged, Hooks, format_acc, train
from .runtime import cpu_description, devices
from .settings import PRESETS, RECIPE, build_net, build_parser, parse_args  # noqa: F401  (the CLI's names)
from .whiten import whiten_first_conv


def choose_devices(settings):
    """The contexts to train on: ``--device`` and ``--num-gpus``, or a one-line reason why not."""
    ctxs = devices("gpu" if settings.num_gpus else settings.device)
    if settings.num_gpus:
        if len(ctxs) < settings.num_gpus:
            raise UserError(f"--num-gpus {settings.num_gpus} asked for more GPUs than the {len(ctxs)} MXNet sees")
        ctxs = ctxs[:settings.num_gpus]
    return ctxs


def load_data(settings, cluster):
    """This worker's training batches and the test batches, as ``settings`` ask."""
    train_iter, test_iter = load_data_fashion_mnist(
        settings.batch_size, settings.resize, settings.data_dir, seed=settings.seed, subset=settings.subset,
        augment=Augment(settings.crop_pad, flip_of(settings), settings.erase) or None, mix=mix(settings),
        early=(settings.small_size, settings.small_epochs) if settings.small_size else None,
        finish=(Augment(flip=flip_of(settings)) or None, settings.epochs - settings.clean_epochs)
        if settings.clean_epochs else None)
    return distributed.shard(train_iter, cluster), test_iter


def flip_of(settings):
    """``Augment``'s flip: False, True (a random half) or "alternate" (``--alternate-flip``)."""
    return "alternate" if settings.flip and settings.alternate_flip else settings.flip


def mix(settings):
    """The run's CutMix or mixup (``augment.Mix``), or None."""
    if settings.cutmix:
        return Mix("cutmix", settings.cutmix)
    return Mix("mixup", settings.mixup) if settings.mixup else None


@friendly
def main(argv=None):
    settings, given = parse_args(argv)                                    # parse
    cluster = distributed.connect(settings.kvstore)                       # this process in its cluster
    log = cluster.tag(print)
    settings, resume = run.resume(settings, given)                        # settings (saved ones on --resume)
    folder = run.RunFolder(settings.out, resuming=resume is not None) if settings.out and cluster.is_writer else None
    with folder or contextlib.nullcontext():
        ctxs = choose_devices(settings)                                   # setup
        train_iter, test_iter = load_data(settings, cluster)
        net = build_net(settings)
        if settings.whiten:  # after the data: its filters come from the training images
            whiten_first_conv(net, train_iter.images)
        saver = run.Saver(folder, settings, run.environment(ctxs), resume.epoch if resume else 0) if folder else None
        if resume:
            log(f"resuming {settings.out} after epoch {resume.epoch} of {settings.epochs}")
        caught = []
        hooks = Hooks(should_stop=lambda: bool(caught), save=saver, resume=resume, cluster=cluster)
        try:                                                              # loop
            with run.sigterm_as_interrupt(caught):
                history = train(net, train_iter, test_iter, settings, ctxs, log=log, hooks=hooks,
                                on_epoch=check_agreement(net, log) if cluster.distributed else None)
        except KeyboardInterrupt:
            return run.interrupted(folder and settings.out, saver.saved if saver else 0, caught)
        except Diverged as err:
            kept = f"; the checkpoint of epoch {saver.saved} in {settings.out} is kept" if saver and saver.saved else ""
            raise Diverged(f"{err} (--lr, --warmup-epochs){kept}") from None
    return summarize(history, ctxs, settings.out if folder else None, cluster, log)  # summary


def check_agreement(net, log):
    """An ``on_epoch`` that logs a short digest of the weights (workers must all print the same)."""
    return lambda row: log(f"epoch {row['epoch']}: parameters {distributed.param_digest(net)}")


def summarize(history, ctxs, out, cluster, log=print):
    """The d2l-style closing lines (and where the run was saved); the speed line names the CPU."""
    if out:
        log(f"saved {out}/metrics.json, {out}/curves.png and {out}/checkpoint.zip")
    last = history[-1]
    log(f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
        f"test acc {format_acc(last['test_acc'])}")
    speed = sum(r["examples_per_sec"] for r in history) / len(history)
    together = f" (about {speed * cluster.num_workers:.0f} for all {cluster.num_workers} workers)"
    where = ", ".join(str(c) for c in ctxs)
    if all(c.device_type == "cpu" for c in ctxs):
        where += f" ({cpu_description()})"
    log(f"{speed:.1f} examples/sec on {where}" + (together if cluster.num_workers > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
