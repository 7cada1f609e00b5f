"""Evaluate a trained network: predictions, accuracy per class, confusion matrix (+ the CLI).

``python -m gluon_resnet.evaluate DIR`` reloads a run saved with ``train --out DIR``;
``evaluate DIR1 DIR2 ...`` also scores the runs' ensemble (the mean of their class probabilities).
"""
import argparse
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import numpy as np

from .cli import ArgumentParser, friendly, number
from .data import (TEXT_LABELS, ArrayLoader, balanced_subset, get_fashion_mnist_labels, load_fashion_mnist,
                   resize_images)
from .errors import UserError
from .loop import as_ctx_list, scores
from .loop import predict  # noqa: F401  (evaluate.predict: the name chapters 3 and 7 use)
from .plots import plot_confusion, save_figure, show_images
from .run import read_run
from .runtime import devices


def confusion_matrix(y_true, y_pred, num_classes=10):
    """Counts: row = true class, column = predicted class.

    >>> confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=2).tolist()
    [[1, 0], [1, 1]]
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_class_accuracy(matrix):
    """Fraction of each true class predicted correctly (the diagonal over row sums)."""
    matrix = np.asarray(matrix)
    return np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)


def class_probabilities(net, data_iter, ctx, tta=False, shifts=0, copies=2):
    """True labels (int64) and class probabilities (float32, one row per image) over ``data_iter``.

    The probabilities are the softmax of the mean of the views' scores (``loop.scores``: the image,
    its mirror image with ``tta``, ``copies`` shifted copies with ``shifts``), so that runs scored with
    different views weigh alike in an ensemble; the most probable class is ``predict``'s label."""
    from mxnet import npx

    views = (1 + copies * (shifts > 0)) * (2 if tta else 1)
    ctx = as_ctx_list(ctx)[0]
    labels, probs = [], []
    for X, y in data_iter:
        probs.append(npx.softmax(scores(net, X.as_in_ctx(ctx), tta, shifts, copies) / views).asnumpy())
        labels.append(y.asnumpy())
    return np.concatenate(labels).astype(np.int64), np.concatenate(probs)


def run_probabilities(directory, batch_size=500, data_dir=None, device="auto"):
    """(test labels, class probabilities) of the run in ``directory``, scored on the test images its
    training scored (its ``--subset`` and ``--resize``) with its own test-time augmentation."""
    record = read_run(directory)
    ctx, trained = devices(device)[0], record.settings
    data = load_fashion_mnist(data_dir)
    images, labels = balanced_subset(data.test_images, data.test_labels, trained.subset)
    loader = ArrayLoader(resize_images(images, trained.resize), labels, batch_size)
    return class_probabilities(record.load_net(ctx), loader, ctx, trained.tta, trained.tta_shifts,
                               trained.tta_copies)


def ensemble_labels(probabilities):
    """The class each image gets from several nets together: the largest mean probability.

    Two nets can agree on a class that neither ranks first:

    >>> sure_of_0 = np.array([[0.50, 0.45, 0.05]])
    >>> sure_of_2 = np.array([[0.05, 0.45, 0.50]])
    >>> ensemble_labels([sure_of_0, sure_of_2]).tolist()
    [1]
    """
    shapes = {np.shape(p) for p in probabilities}
    if len(shapes) != 1:
        raise UserError(f"the runs were scored on different test sets (probability arrays {sorted(shapes)}); "
                        "an ensemble needs the same images for every run")
    return np.mean(probabilities, axis=0).argmax(axis=1)


# ---------------------------------------------------------------------------- the command line

def prediction_titles(y_true, y_pred):
    """Two-line titles, true label over predicted, as d2l's ``predict_ch3`` shows them.

    >>> prediction_titles([0, 9], [0, 7])
    ['t-shirt\\nt-shirt', 'ankle boot\\nsneaker']
    """
    return [f"{t}\n{p}" for t, p in zip(get_fashion_mnist_labels(y_true), get_fashion_mnist_labels(y_pred))]


def build_parser():
    p = ArgumentParser(prog="python -m gluon_resnet.evaluate",
                       description="Reload a run saved by `python -m gluon_resnet.train --out DIR` and "
                                   "report its test accuracy, per class too; write DIR/confusion.png and "
                                   "DIR/predictions.png (test images with true and predicted labels).")
    p.add_argument("runs", metavar="DIR", nargs="+",
                   help="the --out folder of a training run; give several to score each and their ensemble "
                        "too (each image gets the class with the largest mean probability over the runs)")
    p.add_argument("--batch-size", type=number(int, "--batch-size", 1), default=500,
                   help="examples per forward pass (default: %(default)s)")
    p.add_argument("--subset", type=number(int, "--subset", 10), metavar="N",
                   help="evaluate on N class-balanced test images only (default: all 10,000)")
    p.add_argument("--num-images", type=number(int, "--num-images", 1, 64), default=16,
                   help="test images in predictions.png (default: %(default)s)")
    p.add_argument("--export", action="store_true",
                   help="also write DIR/model-symbol.json and DIR/model-0000.params for deployment "
                        "(reload with mxnet.gluon.SymbolBlock.imports)")
    p.add_argument("--onnx", action="store_true",
                   help="also write DIR/model.onnx and check it with onnxruntime on the evaluated images "
                        "(same class for how many, largest logit difference)")
    p.add_argument("--cam", action="store_true",
                   help="also write DIR/cam.png: test images answered right and wrong under their Grad-CAM "
                        "heat maps (where the network looked), with true and predicted labels")
    p.add_argument("--cam-layer", metavar="NAME",
                   help="the layer whose maps --cam weighs, e.g. stage2 (default: the last stage)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="add the scores of each test image's mirror image (default: as the run was trained)")
    p.add_argument("--tta-shifts", type=number(int, "--tta-shifts", 0, 4), metavar="S",
                   help="also add the scores of copies moved S pixels (default: as the run's last epoch "
                        "scored them)")
    p.add_argument("--tta-copies", type=int, choices=(2, 4, 8), metavar="N",
                   help="how many shifted copies: 2 (down-right and up-left), 4 (up, down, left, right) or 8 "
                        "(every neighbouring place) (default: as the run's last epoch scored them)")
    p.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files (default: as train)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="auto: the first GPU MXNet sees, else the CPU (default: %(default)s)")
    return p


def evaluate_run(directory, batch_size=500, subset=None, data_dir=None, num_images=16, export=False,
                 tta=None, device="auto", onnx=False, cam=False, cam_layer=None, tta_shifts=None,
                 tta_copies=None):
    """Reload ``directory``'s model, measure it on the test set and write its figures; return a dict.

    ``tta=None``, ``tta_shifts=None`` and ``tta_copies=None`` score the test set the way the run did
    (its ``--tta``, ``--tta-shifts`` and ``--tta-copies``; the checkpoint holds the raw weights, also
    of an ``--ema`` run); ``device`` is chosen as ``train --device`` chooses (``runtime.devices``), and
    the first one is used."""
    ctx = devices(device)[0]
    record = read_run(directory)
    net, trained = record.load_net(ctx), record.settings
    if cam and cam_layer:
        from .explain import split
        split(net, cam_layer)  # an unknown layer fails here, before anything is written
    data = load_fashion_mnist(data_dir)
    images, labels = balanced_subset(data.test_images, data.test_labels, subset)
    images = resize_images(images, trained.resize)
    tta = trained.tta if tta is None else tta
    shifts = trained.tta_shifts if tta_shifts is None else tta_shifts
    copies = trained.tta_copies if tta_copies is None else tta_copies
    if tta_copies is not None and not shifts:
        raise UserError(f"--tta-copies {tta_copies} scores shifted copies: give --tta-shifts S as well "
                        f"({directory} was not scored with any)")
    y_true, probs = class_probabilities(net, ArrayLoader(images, labels, batch_size), ctx, tta, shifts, copies)
    y_pred = probs.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred)
    save_figure(plot_confusion(matrix, TEXT_LABELS, title=f"{trained.model}, epoch {record.epoch}"),
                Path(directory) / "confusion.png")
    shown = slice(0, num_images)
    save_figure(show_images(images[shown], prediction_titles(y_true[shown], y_pred[shown])),
                Path(directory) / "predictions.png")
    result = {"epoch": record.epoch, "test_acc": float((y_true == y_pred).mean()),
              "per_class": dict(zip(TEXT_LABELS, per_class_accuracy(matrix).tolist())), "count": len(y_true),
              "tta": tta, "tta_shifts": shifts, "tta_copies": copies if shifts else 0, "labels": y_true,
              "probabilities": probs}
    if export:
        from .onnx_export import export_model
        result["exported"] = export_model(net, Path(directory) / "model", (1, 1) + images.shape[1:])
    if cam:
        from .explain import cam_figure
        result["cam"] = save_figure(cam_figure(net, images, labels, batch_size=batch_size, layer=cam_layer),
                                    Path(directory) / "cam.png")
    if onnx:
        from .onnx_export import export_and_check
        result["onnx"], result["onnx_parity"] = export_and_check(net, record.model, Path(directory) / "model.onnx",
                                                                 images, batch_size)
    return result


def evaluate_ensemble(directories, **options):
    """``evaluate_run`` for each run folder (``options`` as there, the same for all), then their
    ensemble: each test image gets the class with the largest mean probability over the runs.

    Returns ``{"members": [each run's result], "test_acc", "per_class", "count"}``. What an
    ensemble of seeds buys against one net trained as long as they took together is measured in
    docs/frontier.md; at test time it costs one forward pass per run."""
    for directory in directories:
        read_run(directory)  # every folder is checked before any figure is written
    members = [evaluate_run(directory, **options) for directory in directories]
    y_true = members[0]["labels"]
    y_pred = ensemble_labels([m["probabilities"] for m in members])
    matrix = confusion_matrix(y_true, y_pred)
    return {"members": members, "test_acc": float((y_true == y_pred).mean()), "count": len(y_true),
            "per_class": dict(zip(TEXT_LABELS, per_class_accuracy(matrix).tolist()))}


def _report(run, result, per_class):
    """Print one run's result: accuracy line, per-class accuracies if asked, ONNX check, files written."""
    views = (["mirror images"] if result["tta"] else []) + \
        ([f"{result['tta_copies']} copies shifted by {result['tta_shifts']} px"] if result["tta_shifts"] else [])
    how = f" (test-time augmentation: {' and '.join(views)})" if views else ""
    print(f"{run}: epoch {result['epoch']}, test acc {result['test_acc']:.4f} "
          f"on {result['count']} test images{how}")
    if per_class:
        for name, acc in result["per_class"].items():
            print(f"  {name:<11} {acc:.3f}")
    if "onnx_parity" in result:
        check = result["onnx_parity"]
        print(f"onnxruntime: same class for {check['same_class']} of {check['count']} images, "
              f"largest logit difference {check['max_abs_diff']:.2g}")
    written = ["confusion.png", "predictions.png"] + [p.name for p in result.get("exported", [])] + \
        [Path(result[k]).name for k in ("cam", "onnx") if k in result]
    print(f"wrote {', '.join(str(Path(run) / name) for name in written)}")


@friendly
def main(argv=None):
    args = build_parser().parse_args(argv)
    options = dict(batch_size=args.batch_size, subset=args.subset, data_dir=args.data_dir,
                   num_images=args.num_images, export=args.export, tta=args.tta, device=args.device,
                   onnx=args.onnx, cam=args.cam or bool(args.cam_layer), cam_layer=args.cam_layer,
                   tta_shifts=args.tta_shifts, tta_copies=args.tta_copies)
    if len(args.runs) == 1:
        _report(args.runs[0], evaluate_run(args.runs[0], **options), per_class=True)
        return 0
    result = evaluate_ensemble(args.runs, **options)
    for run, member in zip(args.runs, result["members"]):
        _report(run, member, per_class=False)
    print(f"ensemble of {len(args.runs)} runs (the class with the largest mean probability): "
          f"test acc {result['test_acc']:.4f} on {result['count']} test images")
    for name, acc in result["per_class"].items():
        print(f"  {name:<11} {acc:.3f}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
