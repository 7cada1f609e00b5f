"""Trained weights that ship inside the package, and the command that makes them from a run.

``gluon_resnet/weights/NAME.params`` holds a network's parameters (``net.save_parameters``) and
``NAME.json`` beside it the manifest: the file's sha256, the test accuracy on the 10,000 real test
images (plain, and with mirror-image test-time augmentation), the training command, the date and
the CPU. ``get_model(NAME, pretrained=True)`` loads them offline, after checking the hash.

    python -m gluon_resnet.pretrained                          # list the shipped weights
    python -m gluon_resnet.pretrained --from-run runs/fast     # make NAME.params and NAME.json
"""
import datetime
import hashlib
import json
import sys
from pathlib import Path

from .cli import friendly
from .errors import UserError
from .files import atomic_write

WEIGHTS = Path(__file__).resolve().parent / "weights"
REMAKE = "reinstall the package, or remake the file with python -m gluon_resnet.pretrained --from-run DIR"


def shipped(folder=None):
    """Names that have weights in ``folder`` (default: the package's own).

    >>> 'fmnist_resnet8' in shipped()
    True
    """
    return sorted(p.stem for p in Path(folder or WEIGHTS).glob("*.json"))


def manifest(name, folder=None):
    """The manifest of ``name``'s weights as a dict; UserError if there are none or it is unreadable."""
    path = Path(folder or WEIGHTS) / f"{name}.json"
    if not path.is_file():
        have = ", ".join(shipped(folder)) or "none"
        raise UserError(f"no shipped weights for {name!r} (weights ship for: {have}); "
                        "train it with python -m gluon_resnet.train --model NAME --out DIR")
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError, UnicodeDecodeError):
        raise UserError(f"{path} is damaged; {REMAKE}") from None


def read_weights(name, folder=None):
    """``(manifest, parameter bytes)`` of ``name``, the bytes checked against the manifest's sha256."""
    info = manifest(name, folder)
    path = Path(folder or WEIGHTS) / info["file"]
    try:
        data = path.read_bytes()
    except OSError:
        raise UserError(f"{path} is missing or unreadable; {REMAKE}") from None
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise UserError(f"{path} is damaged (its sha256 differs from the one in {name}.json); {REMAKE}")
    return info, data


def load_pretrained(net, name, num_classes=10, in_channels=1, ctx=None, folder=None):
    """Load ``name``'s shipped weights into the built ``net``; refuse other classes or channels."""
    import mxnet as mx

    from .checkpoint import restore

    info = manifest(name, folder)
    if (num_classes, in_channels) != (info["num_classes"], info["in_channels"]):
        raise UserError(f"the shipped {name} weights have {info['num_classes']} classes and "
                        f"{info['in_channels']} input channel(s), not {num_classes} and {in_channels}; "
                        "use pretrained=False and train the network for your data")
    info, data = read_weights(name, folder)
    restore(net, {"params": data}, ctx or mx.cpu(), where=f"the shipped {name} weights")
    return net


# ---------------------------------------------------------------------------- making them from a run

def shown_path(path, cwd=None, home=None):
    """``path`` as a manifest may print it: relative to the working folder when inside it, else
    under ``~``, else its last two parts (a shipped file names no one's machine).

    >>> shown_path("/work/runs/fast", cwd="/work", home="/root"), shown_path("/root/r/a", "/x", "/root")
    ('runs/fast', '~/r/a')
    >>> shown_path("/srv/runs/fast", cwd="/work", home="/root")
    'runs/fast'
    """
    path = Path(path).absolute()
    for base, prefix in ((Path(cwd or Path.cwd()), None), (Path(home or Path.home()), "~")):
        try:
            inner = path.relative_to(base)
        except ValueError:
            continue
        return str(inner) if prefix is None else f"{prefix}/{inner}"
    return str(Path(*path.parts[-2:]))


def train_command(config):
    """The ``train`` command line that gives ``config``: a preset and the flags that differ from it.

    >>> from gluon_resnet.run import DEFAULTS, PRESETS
    >>> train_command(dict(DEFAULTS, **PRESETS["fast"]))
    'python -m gluon_resnet.train --preset fast'
    >>> train_command(dict(DEFAULTS, epochs=2, flip=True))
    'python -m gluon_resnet.train --epochs 2 --flip'
    """
    from .run import DEFAULTS, PRESETS

    def flags(base):
        return [f"--{k.replace('_', '-')} {v}" if not isinstance(v, bool) else
                f"--{'' if v else 'no-'}{k.replace('_', '-')}"
                for k, v in config.items() if k in DEFAULTS and v != base.get(k)]

    choices = [([f"--preset {p}"] + flags({**DEFAULTS, **PRESETS[p]})) for p in PRESETS]
    best = min(choices + [flags(DEFAULTS)], key=len)
    return " ".join(["python -m gluon_resnet.train", *best])


def score_test_set(net, data_dir=None, batch_size=500):
    """(plain, mirror-TTA) accuracy of ``net`` on the 10,000 real test images, and their count."""
    import mxnet as mx

    from .data import ArrayLoader, load_fashion_mnist
    from .evaluate import predict

    data = load_fashion_mnist(data_dir)
    result = []
    for tta in (False, True):
        y_true, y_pred = predict(net, ArrayLoader(data.test_images, data.test_labels, batch_size),
                                 mx.cpu(), tta)
        result.append(float((y_true == y_pred).mean()))
    return result[0], result[1], len(data.test_labels)


def make_weights(run, folder=None, data_dir=None):
    """Write ``NAME.params`` and ``NAME.json`` into ``folder`` from the finished run folder ``run``."""
    from . import checkpoint as ckpt
    from .runtime import cpu_description

    meta, members = ckpt.read_checkpoint(run)
    config = meta["config"]
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    if not metrics.get("finished"):
        raise UserError(f"{run} has not finished its {config['epochs']} epochs; resume it first")
    if config.get("resize") or config.get("subset"):
        raise UserError("shipped weights must come from a run on all 28x28 images (no --resize, no --subset)")
    name, folder = config["model"], Path(folder or WEIGHTS)
    plain, tta, count = score_test_set(ckpt.load_model(run), data_dir)
    finished = datetime.datetime.fromtimestamp((Path(run) / ckpt.CHECKPOINT).stat().st_mtime,
                                               datetime.timezone.utc)
    info = {"model": name, "file": f"{name}.params", "sha256": hashlib.sha256(members["params"]).hexdigest(),
            "bytes": len(members["params"]), "num_classes": config.get("num_classes", 10), "in_channels": 1,
            "input": "1x28x28 grayscale in [0, 1] (pixels / 255), light object on a dark background",
            "test_accuracy": plain, "test_accuracy_tta": tta, "test_images": count,
            "epochs": meta["epoch"], "train_command": train_command(config),
            "train_minutes": round(sum(r["seconds"] for r in metrics["history"]) / 60, 1),
            "trained_utc": finished.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_description(),
            "environment": metrics.get("environment"),
            "command": f"python -m gluon_resnet.pretrained --from-run {shown_path(run)}"}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / info["file"], members["params"])
    atomic_write(folder / f"{name}.json", json.dumps(info, indent=1) + "\n")
    return info


def build_parser():
    from .cli import ArgumentParser

    p = ArgumentParser(prog="python -m gluon_resnet.pretrained",
                       description="List the trained weights that ship with the package, or make them "
                                   "from a finished training run (NAME.params and its NAME.json manifest).")
    p.add_argument("--from-run", metavar="DIR", help="the --out folder of a finished training run")
    p.add_argument("--out", metavar="FOLDER", help=f"where to write them (default: {WEIGHTS})")
    p.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files (default: as train)")
    return p


@friendly
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.from_run:
        info = make_weights(args.from_run, args.out, args.data_dir)
        print(f"wrote {Path(args.out or WEIGHTS) / info['file']} ({info['bytes']} bytes) and {info['model']}.json: "
              f"test acc {info['test_accuracy']:.4f}, {info['test_accuracy_tta']:.4f} with mirror TTA")
        return 0
    for name in shipped(args.out):
        info = manifest(name, args.out)
        print(f"{name}: test acc {info['test_accuracy']:.4f} ({info['test_accuracy_tta']:.4f} with mirror TTA), "
              f"trained {info['trained_utc']} on {info['cpu']} by: {info['train_command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
