"""The settings of a training run: one frozen dataclass from the command line to the checkpoint.

``Settings`` holds every flag of ``python -m gluon_resnet.train``; each field carries its help text,
and ``build_parser`` makes the command line from the fields. The *recipe* fields (what the network
learns from, how, and how it is scored) are saved in the checkpoint and read back by ``--resume``;
the others say where the run happens and where it is kept. The presets are ``Settings`` too. In Python::

    from gluon_resnet.settings import PRESETS, Settings
    train(net, train_iter, test_iter, Settings(epochs=3, lr=0.1, momentum=0.9), ctx)
    train(net, train_iter, test_iter, PRESETS["fast"].but(epochs=2), ctx)

Adding a flag is one field here and its use where it matters.
"""
import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Optional

from .cli import ArgumentParser, number
from .distributed import KVSTORES
from .errors import UserError
from .models import ARCHITECTURES, exclude_from_weight_decay, get_model, list_models

NUM_CLASSES = 10  # Fashion-MNIST


def option(default, help, recipe=True, **flag):
    """A field with its ``--help`` text; ``flag`` goes to ``add_argument`` (values may be callables,
    asked when the parser is built). Recipe fields define the run and are saved with it."""
    return field(default=default, metadata={"help": help, "recipe": recipe, "flag": flag})


@dataclass(frozen=True)
class Settings:
    """Every setting of a run; ``Settings()`` is the lesson's plain recipe (``train --help`` lists them)."""

    preset: Optional[str] = option(
        None, "a named recipe: lesson = the book's settings (resize 96, 10 epochs); quick = the README demo "
        "(one one-cycle epoch at 28x28, about 6 minutes on 2 cores); fast = the tuned recipe: fmnist_resnet8, "
        "9 one-cycle epochs, flips, --tta (about 93%% in 4 minutes on 2 Zen 4 cores, 5 on Zen 3); best = fast's "
        "recipe on fmnist_resnet9 for 35 epochs with one-pixel random crops (--crop-pad 1) and --wd 2e-4, scoring "
        "the test set every 5th epoch, 94.74%% over 5 seeds in about 10 minutes on 2 Zen 5 cores (24-28 on Zen 3, "
        "scoring every epoch); long = best for 70 epochs, 94.95%% over 5 seeds in about 20 minutes (51 on Zen 3; "
        "see docs/frontier.md). Flags override it.",
        recipe=False, choices=lambda: sorted(PRESETS))
    model: str = option("resnet18_d2l", f"network from the registry: {', '.join(list_models())} "
                        "(default: resnet18_d2l)", choices=list_models, metavar="NAME")
    epochs: int = option(10, "passes over the training set (default: 10)", type=number(int, "--epochs", 1))
    batch_size: int = option(256, "examples per step (default: 256)", type=number(int, "--batch-size", 1))
    lr: float = option(0.05, "peak learning rate (default: 0.05)", type=number(float, "--lr", 0, low_open=True))
    optimizer: str = option("sgd", "update rule (default: sgd)", choices=("sgd", "nag", "adam"))
    momentum: float = option(0.0, "momentum for sgd/nag (default: 0, the lesson's plain SGD)",
                             type=number(float, "--momentum", 0, 1, high_open=True))
    wd: float = option(0.0, "weight decay (default: 0)", type=number(float, "--wd", 0))
    schedule: str = option("constant", "learning-rate schedule over the whole run; step is the paper's: lr/10 "
                           "after 50%% and again after 75%% of the steps (default: constant)",
                           choices=("constant", "cosine", "onecycle", "step"))
    warmup_epochs: float = option(0, "linear warm-up from 0 (from lr/10 for onecycle), in epochs, fractions "
                                  "allowed (default: 0; onecycle then uses 30%%)", type=number(float, "--warmup-epochs", 0))
    label_smoothing: float = option(0.0, "share of the target spread over all classes (default: 0)",
                                    type=number(float, "--label-smoothing", 0, 1, high_open=True))
    crop_pad: int = option(0, "augment: pad by P pixels, crop back at random (default: 0 = off)",
                           type=number(int, "--crop-pad", 0, 16))
    flip: bool = option(False, "augment: mirror a random half of each batch (default: off)")
    alternate_flip: bool = option(False, "with --flip: mirror each training image in every other epoch instead of "
                                  "at random, half the set each epoch (airbench's derandomised flip; default: off)")
    tta: bool = option(False, "test-time augmentation: score each test image and its mirror image and add "
                       "the scores (default: off; evaluate uses the run's setting)")
    erase: float = option(0.0, "augment: random erasing, fill one random rectangle (2-40%% of the image) of a "
                          "share P of each batch with noise (default: 0 = off)",
                          type=number(float, "--erase", 0, 1), metavar="P")
    cutmix: float = option(0.0, "augment: CutMix, paste a random rectangle of another training image into a "
                           "share P of each batch; the target shares the two labels by area (default: 0 = off)",
                           type=number(float, "--cutmix", 0, 1), metavar="P")
    mixup: float = option(0.0, "augment: mixup, blend a share P of each batch with other training images, "
                          "pixels and labels in the same random proportion; an alternative to --cutmix "
                          "(default: 0 = off)", type=number(float, "--mixup", 0, 1), metavar="P")
    tta_shifts: int = option(0, "test-time augmentation: also score copies moved S pixels (--tta-copies of them, "
                             "mirrored too with --tta), in the last epoch only (default: 0 = off)",
                             type=number(int, "--tta-shifts", 0, 4), metavar="S")
    tta_copies: int = option(2, "how many shifted copies --tta-shifts scores: 2 (down-right and up-left), 4 (up, "
                             "down, left, right) or 8 (every neighbouring place) (default: 2)",
                             type=int, choices=(2, 4, 8), metavar="N")
    test_every: int = option(1, "score the test set after every N-th epoch and after the last; the rows of the "
                             "others have no test accuracy, and the weights are the same either way (scoring 10,000 "
                             "test images, twice with --tta, took about 9%% of each fmnist_resnet9 epoch on 2 Zen 3 "
                             "CPU cores; best and long score every 5th; default: 1, every epoch). Saved with the "
                             "run; --resume may change it", type=number(int, "--test-every", 1), metavar="N")
    ema: float = option(0.0, "score an exponential moving average of the weights, updated every 5 steps with "
                        "this decay, e.g. 0.99 (default: 0 = off; the checkpoint keeps the raw weights, and "
                        "--resume starts the average afresh)",
                        type=number(float, "--ema", 0, 1, high_open=True), metavar="DECAY")
    sam: float = option(0.0, "sharpness-aware minimisation: step with the gradient taken at the weights moved "
                        "RHO uphill along the batch's gradient, e.g. 0.05; each step then costs two forward and "
                        "backward passes (default: 0 = off)", type=number(float, "--sam", 0), metavar="RHO")
    zero_init: bool = option(False, "start the last BN scale of every residual block at zero, so that each "
                             "block starts as its shortcut (registry ResNets with post-activation blocks; "
                             "default: off)")
    whiten: bool = option(False, "set the first convolution's filters to the whitened principal components of the "
                          "training images' patches, each with its negative, and freeze them (the fast CIFAR-10 "
                          "nets' patch whitening; needs an even number of filters, at most twice a patch's numbers: "
                          "fmnist_resnet9's 16 on 3x3 patches; +0.26 on best's 3 seeds on a 2-core Xeon, docs/frontier.md; default: on in "
                          "--preset best, off otherwise; --no-whiten turns it off)")
    wd_bn_bias: bool = option(True, "apply --wd to BN scales and shifts and to biases as well (default: on; "
                              "--no-wd-bn-bias decays only the convolution and dense weights)")
    resize: Optional[int] = option(None, "resize the 28x28 images to SIZE x SIZE once (the lesson uses 96; "
                                   "default: keep 28)", type=number(int, "--resize", 8, 512))
    small_size: Optional[int] = option(None, "progressive resizing: train the first --small-epochs epochs on the "
                                       "images resized to SIZE x SIZE, whose steps cost less, and the rest (and "
                                       "every test) at full size (default: off)",
                                       type=number(int, "--small-size", 8, 512), metavar="SIZE")
    small_epochs: int = option(0, "how many epochs train at --small-size (default: 0)",
                               type=number(int, "--small-epochs", 0), metavar="N")
    clean_epochs: int = option(0, "train the last N epochs without --crop-pad, --erase, --cutmix and --mixup, "
                               "on images like the test images (mirror images stay with --flip; default: 0)",
                               type=number(int, "--clean-epochs", 0), metavar="N")
    subset: Optional[int] = option(None, "use only N class-balanced training images and N test images (quick "
                                   "experiments)", type=number(int, "--subset", 10), metavar="N")
    seed: Optional[int] = option(0, "seed for initialisation, data order and augmentation (default: 0)", type=int)
    imperative: bool = option(False, "run the lesson's nn.Block code eagerly instead of the compiled "
                              "(hybridized) twin", action="store_true")
    # ---- where the run happens and where it is kept (not saved with the run)
    device: str = option("auto", "auto: every GPU MXNet sees, else the CPU (default: %(default)s)",
                         recipe=False, choices=("auto", "cpu", "gpu"))
    num_gpus: Optional[int] = option(None, "use the first K GPUs, splitting each batch across them (default: "
                                     "all with --device auto/gpu)", recipe=False,
                                     type=number(int, "--num-gpus", 1), metavar="K")
    data_dir: Optional[str] = option(None, "folder holding the four Fashion-MNIST IDX files (default: look in "
                                     "$MXNET_HOME/datasets/fashion-mnist, then /usr/share/datasets/fashion-mnist, "
                                     "then download)", recipe=False)
    kvstore: str = option("device", "how gradients are combined: device/local sum over this machine's GPUs; "
                          "dist_sync/dist_device_sync over the processes that `python -m gluon_resnet.launch` "
                          "starts, each training on its shard with --batch-size images per step, --lr applying "
                          "to the mean over all workers' batches (default: %(default)s)",
                          recipe=False, choices=KVSTORES)
    out: Optional[str] = option(None, "save metrics.json, curves.png and a checkpoint after every epoch here",
                                recipe=False, metavar="DIR")
    resume: Optional[str] = option(None, "continue the run saved in DIR (its --out) from its last complete "
                                   "epoch, with its settings and the same data order; with --epochs N, a "
                                   "constant-rate run goes on to epoch N", recipe=False, metavar="DIR")
    loss_guard: bool = option(True, "stop the run, keeping the last good checkpoint, when a batch's loss "
                              "exceeds 1000 times the first epoch's (a NaN or infinite loss always stops it; "
                              "default: on)", recipe=False)
    quiet: bool = option(False, "no progress bars (they are off anyway when stderr is not a terminal)",
                         recipe=False, action="store_true")

    def but(self, **changes):
        """A copy with ``changes``: ``PRESETS["fast"].but(epochs=2)``."""
        return dataclasses.replace(self, **changes)

    def recipe(self):
        """The settings that define the run, as a dict (saved in its checkpoint and metrics.json)."""
        return {name: getattr(self, name) for name in RECIPE}

    @classmethod
    def from_recipe(cls, saved, **place):
        """Settings from a saved recipe (keys it lacks keep their defaults, unknown keys are dropped)
        and the place fields ``place`` (device, out, ...)."""
        return cls(**{k: v for k, v in saved.items() if k in RECIPE}, **place)

    def place(self):
        """The fields that are not part of the recipe, as a dict."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata["recipe"]}

    def command(self):
        """The ``train`` command line that gives this recipe: a preset and the flags that differ from it.

        >>> PRESETS["fast"].command()
        'python -m gluon_resnet.train --preset fast'
        >>> Settings(epochs=2, flip=True).command()
        'python -m gluon_resnet.train --epochs 2 --flip'
        """
        def flags(base):
            return [_flag_text(k, getattr(self, k)) for k in RECIPE if getattr(self, k) != getattr(base, k)
                    and not (k == "tta_copies" and not self.tta_shifts)]  # no copies to count without shifts

        choices = [[f"--preset {name}"] + flags(preset) for name, preset in PRESETS.items()]
        return " ".join(["python -m gluon_resnet.train", *min(choices + [flags(Settings())], key=len)])


RECIPE = tuple(f.name for f in fields(Settings) if f.metadata["recipe"])


def _flag_text(name, value):
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"


# A preset is a recipe; flags given on the command line still win.
PRESETS = {
    "lesson": Settings(model="resnet18_d2l", resize=96, lr=0.05, batch_size=256, epochs=10),
    # one epoch of one-cycle SGD: 88.6 % test accuracy in 5.3 minutes on 2 idle CPU cores
    "quick": Settings(model="resnet18_d2l", lr=0.05, batch_size=128, epochs=1, momentum=0.9, wd=5e-4,
                      schedule="onecycle", label_smoothing=0.1),
    # a small ResNet (6x the throughput of resnet18_d2l at 28x28), 9 one-cycle epochs, mirror images in
    # training and at test time: 93.4 % test accuracy in about 9 minutes on 2 idle CPU cores (README: Results)
    "fast": Settings(model="fmnist_resnet8", lr=0.1, batch_size=128, epochs=9, momentum=0.9, wd=5e-4,
                     schedule="onecycle", label_smoothing=0.1, flip=True, tta=True),
}
# fast's recipe on fmnist_resnet9 (a 3x3 conv at full resolution before the stem), trained for the
# 35 epochs that fit 10 minutes of 2 Zen 5 cores, with one-pixel random crops: they beat random erasing
# there (+0.23 over five seeds, every seed ahead) and erasing with crops (docs/frontier.md). Weight decay
# 2e-4 beat 5e-4, 1e-3, 3e-4 and 1e-4 (with erasing, where it was swept). Levers that lost: EMA, label
# smoothing 0, 2-pixel crops at 21 epochs, batch 256, CutMix, mixup, SAM, peak lr 0.2, wider and deeper nets,
# progressive resizing (--small-size 20 for the first half, on the Zen 3); a clean finish (--clean-epochs 5)
# tied once the shifted copies below are scored. Its first convolution is whitened and frozen (--whiten): on
# a 2-core Intel Xeon that won on each of 3 seeds, 0.9500 against 0.9474 (docs/frontier.md).
# The earlier bests, all still flags away: --preset best --no-whiten (best before the whitened layer), --crop-pad 0
# --erase 0.25 (erasing, until crops replaced it), the same with --wd 5e-4 (until weight decay moved),
# --preset fast --model fmnist_resnet9 --epochs 21; the earlier longs: the same flags on --preset long.
# It scores the test set after every 5th epoch only: the weights are the same, and scoring each epoch
# cost about 9 % of the minutes (docs/frontier.md, The levers on the Zen 3), enough to take the
# Zen 5's 10.1 minutes past ten. Its last scoring adds four copies moved one pixel up, down, left and
# right (mirrored too): +0.11 on four 35-epoch nets and +0.16 on three 70-epoch ones on the Zen 3, every
# net ahead, where the diagonal pair (--tta-copies 2) gave +0.03 and +0.11 (docs/frontier.md).
PRESETS["best"] = PRESETS["fast"].but(model="fmnist_resnet9", epochs=35, crop_pad=1, wd=2e-4, test_every=5,
                                      tta_shifts=1, tta_copies=4, whiten=True)
# long is best trained twice as long: crops pay more there (+0.29 over erasing, five seeds, every one ahead).
# Its first layer learns: at 70 epochs the whitened one tied (+0.05 over 3 seeds, docs/frontier.md), and
# the shipped fmnist_resnet9 weights and chapter 8 are long's.
PRESETS["long"] = PRESETS["best"].but(epochs=70, whiten=False)


# ---------------------------------------------------------------------------- the command line

def build_parser():
    """``python -m gluon_resnet.train``'s parser, one flag per field of ``Settings``.

    Recipe flags default to None here, so that ``parse_args`` can tell which were given."""
    p = ArgumentParser(
        prog="python -m gluon_resnet.train",
        description="Train a residual network on the real Fashion-MNIST and report loss, train and "
                    "test accuracy per epoch, as the d2l ResNet lesson does. With --out, save metrics, "
                    "curves and a checkpoint after every epoch; --resume continues such a run.")
    for f in fields(Settings):
        flag = {k: v() if callable(v) and k != "type" else v for k, v in f.metadata["flag"].items()}
        if isinstance(f.default, bool):
            flag.setdefault("action", argparse.BooleanOptionalAction)
        default = None if f.metadata["recipe"] else f.default
        p.add_argument("--" + f.name.replace("_", "-"), default=default, help=f.metadata["help"], **flag)
    return p


def parse_args(argv=None):
    """``(settings, given)``: explicit flags win over the preset, which wins over the defaults;
    ``given`` is the set of recipe fields given explicitly on the command line."""
    args = vars(build_parser().parse_args(argv))
    given = {k for k in RECIPE if args[k] is not None}
    base = PRESETS[args["preset"]] if args["preset"] else Settings()
    place = {k: v for k, v in args.items() if k not in RECIPE}
    settings = base.but(**{k: args[k] for k in given}, **place)
    if settings.cutmix and settings.mixup:
        raise UserError("--cutmix and --mixup are alternatives: give one of them")
    check_small_size(settings)
    check_clean_epochs(settings)
    if settings.alternate_flip and not settings.flip:
        raise UserError("--alternate-flip changes how --flip mirrors the images: give --flip as well")
    if not settings.tta_shifts:  # copies of nothing: refused when asked for, else kept at the default
        if "tta_copies" in given and settings.tta_copies != 2:
            raise UserError(f"--tta-copies {settings.tta_copies} scores shifted copies: give --tta-shifts S as well")
        settings = settings.but(tta_copies=2)
    return settings, given


def check_small_size(settings):
    """Progressive resizing needs both flags, fewer small epochs than epochs, and a smaller size."""
    size, small, n = settings.resize or 28, settings.small_size, settings.small_epochs
    if (small is None) != (n == 0):
        raise UserError("--small-size SIZE and --small-epochs N go together: give both (or neither)")
    if small is not None and n >= settings.epochs:
        raise UserError(f"--small-epochs {n} leaves none of the {settings.epochs} epochs at full size: "
                        f"give fewer than {settings.epochs}")
    if small is not None and small >= size:
        raise UserError(f"--small-size {small} is not smaller than the {size}x{size} images: give less than {size}")


def check_clean_epochs(settings):
    """A clean finish needs augmentation to leave out and fewer clean epochs than epochs."""
    n = settings.clean_epochs
    if n and not (settings.crop_pad or settings.erase or settings.cutmix or settings.mixup):
        raise UserError(f"--clean-epochs {n} has nothing to leave out: it drops --crop-pad, --erase, --cutmix "
                        f"and --mixup, and this run has none of them")
    if n >= settings.epochs and n:
        raise UserError(f"--clean-epochs {n} leaves none of the {settings.epochs} epochs augmented: "
                        f"give fewer than {settings.epochs}")


# ---------------------------------------------------------------------------- the network

def build_net(settings):
    """The run's network, not yet initialised, with ``zero_init`` (the last BN scale of each block
    starts at 0) and ``wd_bn_bias=False`` (no weight decay on BN and biases)."""
    name, zero_init = settings.model, settings.zero_init
    no_blocks = UserError(f"--zero-init needs a registry ResNet with post-activation blocks (BasicBlock, "
                          f"Bottleneck); {name} has none: leave out --zero-init")
    if zero_init and name not in ARCHITECTURES:
        raise no_blocks
    net = get_model(name, num_classes=NUM_CLASSES, imperative=settings.imperative,
                    **({"zero_init": True} if zero_init else {}))
    if zero_init and not net.blocks():
        raise no_blocks
    if not settings.wd_bn_bias:
        exclude_from_weight_decay(net)
    return net
