"""The eight filters `train --whiten` gives fmnist_resnet9's first convolution, drawn from the real
Fashion-MNIST training images (the other eight are their negatives), each titled with the share of a
3x3 patch's variance along it: docs/whiten-filters.png, on docs/frontier.md.

    .venv/bin/python docs/whiten_filters.py docs/whiten-filters.png
"""
import sys

import gluon_resnet  # noqa: F401  (the package's matplotlib settings and thread count)
from gluon_resnet.data import load_fashion_mnist
from gluon_resnet.plots import save_figure, show_images
from gluon_resnet.whiten import patch_components, whitening_filters


def main(argv):
    if len(argv) != 1 or not argv[0].endswith(".png"):
        print("usage: python docs/whiten_filters.py OUT.png", file=sys.stderr)
        return 2
    images = load_fashion_mnist().train_images
    variances, _ = patch_components(images)
    filters = whitening_filters(images, 16)[:8]
    shares = 100 * variances / variances.sum()
    fig = show_images(filters, [f"{i + 1}: {share:.1f} %" for i, share in enumerate(shares[:8])],
                      ncols=8, scale=1.0, cmap="RdBu_r", symmetric=True)
    fig.suptitle("--whiten: fmnist_resnet9's first filters (red +, blue -), with their share of a patch's variance",
                 fontsize=8)
    save_figure(fig, argv[0])
    for i, (share, f) in enumerate(zip(shares, filters)):
        print(f"filter {i + 1}: {share:5.2f} % of the variance, weights {f[0].astype(float).round(2).tolist()}")
    print(f"saved {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
