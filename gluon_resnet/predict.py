"""Classify your own pictures: ``python -m gluon_resnet.predict IMAGE [IMAGE ...]``.

A photo is prepared the way Fashion-MNIST's images were made from product photos (Xiao et al.,
2017: trim to the object, longest edge to 28 pixels, centre, negate, 8-bit grayscale): grayscale;
the background, taken as the median colour of the border, made black (a light background is
inverted) and the faint specks of noise and texture in it dropped, with the object's contrast
stretched to 0..255; the object's bounding box scaled so its longest edge is 28 pixels, keeping its
aspect, and centred on a 28x28 black square.

    from gluon_resnet import get_model, predict
    net = get_model("fmnist_resnet9", pretrained=True)   # the weights predict uses by default
    predict.classify(net, ["docs/examples/t-shirt.png"])[0]["top"]
    # [('t-shirt', 0.9326), ('shirt', 0.012), ('sandal', 0.0097)]
"""
import sys
from pathlib import Path

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import numpy as np

from .cli import friendly
from .errors import UserError

SIZE = 28
DEFAULT_MODEL = "fmnist_resnet9"  # the shipped weights used when neither --run nor --model is given
WORK_SIZE = 512  # larger pictures are shrunk to this first: 28 pixels need no more
TRIM = 0.05 * 255  # a pixel belongs to the object if it differs this much from the background


def open_image(path):
    """The first frame of the picture at ``path`` as RGBA, at most ``WORK_SIZE`` pixels a side;
    a UserError that names the file and the problem when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    try:
        with Image.open(path) as image:
            image.draft("RGB", (WORK_SIZE, WORK_SIZE))  # JPEG: decode at a reduced scale
            image = image.convert("RGBA")
    except Image.DecompressionBombError:
        raise UserError(f"{path}: the picture is too large to decode safely") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not an image file (PNG, JPEG, BMP or GIF)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise UserError(f"{path}: the image is damaged or truncated ({err})") from None
    image.thumbnail((WORK_SIZE, WORK_SIZE))
    return image


def grayscale(image):
    """A PIL image as a float array in [0, 255], transparent parts composited onto white paper."""
    from PIL import Image

    rgba = image.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(paper, rgba).convert("L"), dtype=np.float32)


def object_mask(ink):
    """Where the object is: ``ink > TRIM`` without the isolated specks of noise, which a 3x3
    morphological opening (erosion, then dilation) removes while solid shapes keep their edges.
    A drawing of hairlines, which the opening would erase whole, keeps its raw mask."""
    from PIL import Image, ImageFilter

    raw = Image.fromarray(((ink > TRIM) * 255).astype(np.uint8))
    opened = np.asarray(raw.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))) > 0
    return opened if opened.any() else np.asarray(raw) > 0


def prepare(image, size=SIZE):
    """A PIL image as Fashion-MNIST would show it: ``size`` x ``size`` uint8, light object on black.

    >>> from PIL import Image, ImageDraw
    >>> photo = Image.new("RGB", (300, 200), "white")
    >>> ImageDraw.Draw(photo).rectangle((100, 20, 139, 179), fill="navy")  # a tall dark object
    >>> x = prepare(photo); x.shape, x[14, 14], x[0, 0]
    ((28, 28), 255, 0)
    >>> [int(c) for c in np.nonzero(x.max(axis=0))[0][[0, -1]]]  # 40 wide, 160 high -> 7 of 28 columns
    [10, 16]
    """
    from PIL import Image

    gray = grayscale(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 127:  # a light background, as in product photos: negate
        gray, background = 255 - gray, 255 - background
    ink = np.clip(gray - background, 0, None)
    ink[ink < TRIM] = 0  # faint noise and paper texture are background too
    rows, cols = np.nonzero(object_mask(ink))
    if len(rows) == 0:
        raise UserError("the picture is blank (one colour throughout): there is nothing to classify")
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    ink = ink * (255 / ink.max())
    height, width = ink.shape
    scale = size / max(height, width)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(ink.astype(np.uint8)).resize(new, Image.LANCZOS)
    canvas = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - new[1]) // 2, (size - new[0]) // 2
    canvas[top:top + new[1], left:left + new[0]] = np.asarray(small)
    return canvas


def prepare_file(path, size=SIZE):
    """``prepare`` for the picture at ``path``; UserError (naming the file) if it cannot be used."""
    try:
        return prepare(open_image(path), size)
    except UserError as err:
        message = str(err)
        raise UserError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None


def probabilities(net, images, resize=None):
    """Softmax class probabilities (N, 10) of ``net`` for uint8 images (N, 28, 28); ``resize``: the
    side the net was trained at, when it was not 28."""
    import mxnet as mx

    from .data import resize_images, to_unit_floats

    images = resize_images(np.asarray(images, dtype=np.uint8), resize)
    X = mx.np.array(to_unit_floats(images[:, None]))
    return mx.npx.softmax(net(X)).asnumpy()


def top_k(probs, k=3):
    """The ``k`` likeliest (label, probability) pairs of one probability vector, likeliest first.

    >>> top_k(np.array([0.1, 0.6, 0.3] + [0.0] * 7), k=2)
    [('trouser', 0.6), ('pullover', 0.3)]
    """
    from .data import TEXT_LABELS

    order = np.argsort(-np.asarray(probs), kind="stable")[:k]
    return [(TEXT_LABELS[i], round(float(probs[i]), 4)) for i in order]


def classify(net, paths, k=3, resize=None):
    """One dict per path, in order: ``{"path", "image", "probabilities", "top"}`` for a picture,
    ``{"path", "error"}`` for a file that could not be used (the others are still classified)."""
    results, good = [], []
    for path in paths:
        try:
            results.append({"path": str(path), "image": prepare_file(path)})
            good.append(results[-1])
        except UserError as err:
            results.append({"path": str(path), "error": str(err)})
    if good:
        for result, probs in zip(good, probabilities(net, [r["image"] for r in good], resize)):
            result.update(probabilities=probs, top=top_k(probs, k))
    return results


def plot_probabilities(images, probs, titles, scale=1.0):
    """Each prepared image beside a bar chart of its ten class probabilities, one row per image."""
    from matplotlib.figure import Figure

    from .data import TEXT_LABELS

    fig = Figure(figsize=(6.4 * scale, 1.9 * scale * len(images) + 0.3), layout="constrained")
    axes = fig.subplots(len(images), 2, squeeze=False, gridspec_kw={"width_ratios": (1, 2.2)})
    for (left, right), image, p, title in zip(axes, images, probs, titles):
        left.imshow(image, cmap="gray", vmin=0, vmax=255)
        left.set_title(title, fontsize=8)
        left.set_axis_off()
        right.barh(range(len(p)), p, color=["tab:orange" if i == np.argmax(p) else "tab:blue"
                                            for i in range(len(p))])
        right.set_yticks(range(len(p)), TEXT_LABELS, fontsize=7)
        right.invert_yaxis()
        right.set_xlim(0, 1)
        right.set_xlabel("probability", fontsize=8)
    return fig


def load_net(run=None, model=None):
    """``(net, resize)``: a run folder's trained net, or shipped weights (default: ``DEFAULT_MODEL``)."""
    from .models import get_model
    from .run import read_run

    if run:
        record = read_run(run)
        return record.load_net(), record.settings.resize
    net = get_model(model or DEFAULT_MODEL, pretrained=True)
    net.hybridize()
    return net, None


def build_parser():
    from .cli import ArgumentParser

    p = ArgumentParser(prog="python -m gluon_resnet.predict",
                       description="Classify your own pictures (PNG, JPEG, BMP or GIF) with a trained network: "
                                   "print the 3 likeliest Fashion-MNIST classes of each. A file that cannot be "
                                   "read is reported and skipped; the exit code is then 2.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="picture files, any size and colour")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="DIR", help="use the trained net of a run folder (train --out DIR)")
    which.add_argument("--model", metavar="NAME", help=f"use NAME's shipped weights (default: {DEFAULT_MODEL}, "
                                                       "`python -m gluon_resnet.pretrained` lists each one's "
                                                       "training command)")
    p.add_argument("--show", metavar="FILE.png", help="also draw each prepared input beside its probabilities")
    return p


@friendly
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.show and not Path(args.show).resolve().parent.is_dir():
        raise UserError(f"--show {args.show}: the folder {Path(args.show).parent} does not exist")
    net, resize = load_net(args.run, args.model)
    results = classify(net, args.images, resize=resize)
    for r in results:
        if "error" in r:
            print(f"error: {r['error']}", file=sys.stderr)
        else:
            print(f"{r['path']}: " + ", ".join(f"{label} {p:.3f}" for label, p in r["top"]))
    good = [r for r in results if "error" not in r]
    if args.show and good:
        from .plots import save_figure

        save_figure(plot_probabilities([r["image"] for r in good], [r["probabilities"] for r in good],
                                       [Path(r["path"]).name for r in good]), args.show)
        print(f"wrote {args.show}")
    return 2 if len(good) < len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
