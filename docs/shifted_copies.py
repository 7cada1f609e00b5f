"""Which shifted test copies pay (docs/frontier.md, The levers on the Zen 3): every pattern of
one-pixel copies, scored from one set of forward passes per run.

Each run's net scores the 10,000 test images at all nine places one pixel around (the image as
it is and moved to each neighbouring place, zero-filled as `evaluate --tta-shifts 1` does), each
as it is and mirrored: 18 passes. The patterns are then sums of those scores (logits):

    mirror      the image and its mirror image (the recipe's `--tta`)
    diagonal    + the copies moved down-right and up-left (`--tta-copies 2`)
    cross       + up, down, left and right (`--tta-copies 4`)
    square      + all eight neighbouring places (`--tta-copies 8`)
    ... x0.5    the same with each copy weighted half as much as the image itself (no flag)

and, for two or more runs, every pair and triple averaged as `evaluate RUN1 RUN2` averages them
(the softmax of each net's mean score, averaged over the nets):

    .venv/bin/python docs/shifted_copies.py runs/levers/crop1-noerase-35-s*-zen3
"""
import itertools
import sys

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import numpy as onp
from mxnet import np

from gluon_resnet.data import load_fashion_mnist, to_unit_floats
from gluon_resnet.loop import SHIFT_COPIES
from gluon_resnet.run import read_run

PATTERNS = {"mirror": (), "diagonal": SHIFT_COPIES[2], "cross": SHIFT_COPIES[4], "square": SHIFT_COPIES[8]}


def all_views(net, images, batch=500):
    """Scores (2 mirror, 3 rows, 3 columns, N, classes): the images moved (dy, dx) = (row - 1, column - 1)."""
    out = onp.zeros((2, 3, 3, len(images), 10), onp.float32)
    for b in range(0, len(images), batch):
        X = onp.pad(images[b:b + batch], ((0, 0), (0, 0), (1, 1), (1, 1)))
        h, w = X.shape[2] - 2, X.shape[3] - 2
        for dy, dx in itertools.product((-1, 0, 1), repeat=2):
            view = X[:, :, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
            for mirrored in (0, 1):
                v = onp.ascontiguousarray(view[..., ::-1] if mirrored else view)
                out[mirrored, dy + 1, dx + 1, b:b + batch] = net(np.array(v)).asnumpy()
    return out


def pattern_scores(views, moves, weight=1.0):
    """The summed scores of the image, its moved copies (``weight`` each) and all their mirror images."""
    return sum(views[m, 1, 1] + weight * sum(views[m, dy + 1, dx + 1] for dy, dx in moves) for m in (0, 1))


def softmax(z):
    e = onp.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main(runs):
    data = load_fashion_mnist()
    images, labels = to_unit_floats(data.test_images)[:, None], data.test_labels
    names = [(name, moves, w) for name, moves in PATTERNS.items() for w in ((1.0,) if not moves else (1.0, 0.5))]
    probs = {name: [] for name, _, _ in names}
    print("run".ljust(34) + "".join(f"{n + (' x0.5' if w != 1 else ''):>14}" for n, _, w in names), flush=True)
    for run in runs:
        views = all_views(read_run(run).load_net(), images)
        row = []
        for name, moves, w in names:
            scores = pattern_scores(views, moves, w)
            row.append((scores.argmax(axis=1) == labels).mean())
            if w == 1.0:
                probs[name].append(softmax(scores / (2 * (1 + len(moves)))))
        print(run.rstrip("/").split("/")[-1].ljust(34) + "".join(f"{acc:14.4f}" for acc in row), flush=True)
    for k in (2, 3):
        groups = list(itertools.combinations(range(len(runs)), k))
        if not groups:
            continue
        print(f"{k} nets averaged, mean (range) over {len(groups)}:")
        for name in PATTERNS:
            accs = [(sum(probs[name][i] for i in g).argmax(axis=1) == labels).mean() for g in groups]
            print(f"  {name:<9} {onp.mean(accs):.4f} ({min(accs):.4f}-{max(accs):.4f})")


if __name__ == "__main__":
    main(sys.argv[1:])
