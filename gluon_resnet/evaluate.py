"""Evaluate a trained network: predictions, accuracy per class, confusion matrix (+ the CLI).

``python -m gluon_resnet.evaluate DIR`` reloads a run saved with ``train --out DIR``.
"""
import argparse
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import numpy as np

from .cli import ArgumentParser, friendly, number
from .data import (TEXT_LABELS, ArrayLoader, balanced_subset, get_fashion_mnist_labels, load_fashion_mnist,
                   resize_images)
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
    p.add_argument("run", metavar="DIR", help="the --out folder of a training run")
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
                   help="also add the scores of copies moved S pixels down-right and up-left "
                        "(default: as the run's last epoch scored them)")
    p.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files (default: as train)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="auto: the first GPU MXNet sees, else the CPU (default: %(default)s)")
    return p


def evaluate_run(directory, batch_size=500, subset=None, data_dir=None, num_images=16, export=False,
                 tta=None, device="auto", onnx=False, cam=False, cam_layer=None, tta_shifts=None):
    """Reload ``directory``'s model, measure it on the test set and write its figures; return a dict.

    ``tta=None`` and ``tta_shifts=None`` score the test set the way the run did (its ``--tta`` and
    ``--tta-shifts``; the checkpoint holds the raw weights, also of an ``--ema`` run); ``device`` is
    chosen as ``train --device`` chooses (``runtime.devices``), and the first one is used."""
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
    y_true, y_pred = predict(net, ArrayLoader(images, labels, batch_size), ctx, tta, shifts)
    matrix = confusion_matrix(y_true, y_pred)
    save_figure(plot_confusion(matrix, TEXT_LABELS, title=f"{trained.model}, epoch {record.epoch}"),
                Path(directory) / "confusion.png")
    shown = slice(0, num_images)
    save_figure(show_images(images[shown], prediction_titles(y_true[shown], y_pred[shown])),
                Path(directory) / "predictions.png")
    result = {"epoch": record.epoch, "test_acc": float((y_true == y_pred).mean()),
              "per_class": dict(zip(TEXT_LABELS, per_class_accuracy(matrix).tolist())), "count": len(y_true),
              "tta": tta, "tta_shifts": shifts}
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


@friendly
def main(argv=None):
    args = build_parser().parse_args(argv)
    result = evaluate_run(args.run, args.batch_size, args.subset, args.data_dir, args.num_images, args.export,
                          args.tta, args.device, args.onnx, args.cam or bool(args.cam_layer), args.cam_layer,
                          args.tta_shifts)
    views = (["mirror images"] if result["tta"] else []) + \
        ([f"copies shifted by {result['tta_shifts']} px"] if result["tta_shifts"] else [])
    how = f" (test-time augmentation: {' and '.join(views)})" if views else ""
    print(f"{args.run}: epoch {result['epoch']}, test acc {result['test_acc']:.4f} "
          f"on {result['count']} test images{how}")
    for name, acc in result["per_class"].items():
        print(f"  {name:<11} {acc:.3f}")
    if "onnx_parity" in result:
        check = result["onnx_parity"]
        print(f"onnxruntime: same class for {check['same_class']} of {check['count']} images, "
              f"largest logit difference {check['max_abs_diff']:.2g}")
    written = ["confusion.png", "predictions.png"] + [p.name for p in result.get("exported", [])] + \
        [Path(result[k]).name for k in ("cam", "onnx") if k in result]
    print(f"wrote {', '.join(str(Path(args.run) / name) for name in written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
