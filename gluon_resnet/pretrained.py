"""The command that lists the shipped weights and makes them from a finished run.

``gluon_resnet/weights/NAME.params`` holds a network's parameters (``net.save_parameters``) and
``NAME.json`` beside it the manifest: the file's sha256, the test accuracy on the 10,000 real test
images (plain, and with mirror-image test-time augmentation), the training command, the date and
the CPU. ``get_model(NAME, pretrained=True)`` loads them offline through ``zoo``, which sits below
the models; this maker sits on top, beside ``train`` and ``evaluate``.

    python -m gluon_resnet.pretrained                          # list the shipped weights
    python -m gluon_resnet.pretrained --from-run runs/fast     # make NAME.params and NAME.json
"""
import hashlib
import json
import sys
from pathlib import Path

from .cli import friendly
from .errors import UserError
from .files import atomic_write
from .zoo import WEIGHTS, load_pretrained, manifest, read_weights, shipped  # noqa: F401  (listed here)


# ---------------------------------------------------------------------------- making them from a run

def score_test_set(net, data_dir=None, batch_size=500):
    """(plain, mirror-TTA) accuracy of ``net`` on the 10,000 real test images, and their count."""
    import mxnet as mx

    from .data import ArrayLoader, load_fashion_mnist
    from .loop import predict

    data = load_fashion_mnist(data_dir)
    result = []
    for tta in (False, True):
        y_true, y_pred = predict(net, ArrayLoader(data.test_images, data.test_labels, batch_size),
                                 mx.cpu(), tta)
        result.append(float((y_true == y_pred).mean()))
    return result[0], result[1], len(data.test_labels)


def shown_path(path):
    """``path`` as the manifest shows it: relative to the working folder when inside it, else its
    last two parts (an absolute path names one machine's folders).

    >>> shown_path("/home/someone/runs/fast")
    'runs/fast'
    """
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*path.parts[-2:]))


def make_weights(run, folder=None, data_dir=None):
    """Write ``NAME.params`` and ``NAME.json`` into ``folder`` from the finished run folder ``run``."""
    from .run import read_run
    from .runtime import cpu_description

    record = read_run(run)
    settings, params = record.settings, record.members["params"]
    if not record.finished:
        raise UserError(f"{run} has not finished its {settings.epochs} epochs; resume it first")
    if settings.resize or settings.subset:
        raise UserError("shipped weights must come from a run on all 28x28 images (no --resize, no --subset)")
    name, folder = settings.model, Path(folder or WEIGHTS)
    plain, tta, count = score_test_set(record.load_net(), data_dir)
    info = {"model": name, "file": f"{name}.params", "sha256": hashlib.sha256(params).hexdigest(),
            "bytes": len(params), "num_classes": record.model["num_classes"], "in_channels": 1,
            "input": "1x28x28 grayscale in [0, 1] (pixels / 255), light object on a dark background",
            "test_accuracy": plain, "test_accuracy_tta": tta, "test_images": count,
            "epochs": record.epoch, "train_command": settings.command(),
            "train_minutes": round(sum(r["seconds"] for r in record.history) / 60, 1),
            "trained_utc": record.saved_utc.strftime("%Y-%m-%d %H:%M"),
            "cpu": cpu_description((record.environment or {}).get("cpu")),  # the run's CPU and threads, not ours
            "environment": record.environment,
            "command": f"python -m gluon_resnet.pretrained --from-run {shown_path(run)}"}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / info["file"], params)
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
