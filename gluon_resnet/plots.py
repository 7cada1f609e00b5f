"""Figures: training curves (the d2l look), confusion matrices and labelled image grids.

Every function builds a ``matplotlib.figure.Figure`` without pyplot, so nothing depends on a
display or a global backend: Jupyter shows a returned figure, scripts call ``save_figure``.
"""
import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from .files import atomic_write

# (label, key in a history row, line style) in the order d2l's training plots draw them
CURVES = (("train loss", "train_loss", "-"), ("train acc", "train_acc", "m--"),
          ("test acc", "test_acc", "g-."))


def _axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_history(history, ax=None, title=None, figsize=(4.5, 3.2)):
    """Loss and accuracies per epoch from ``train()``'s list of row dicts."""
    fig, ax = _axes(ax, figsize)
    epochs = [row["epoch"] for row in history]
    for label, key, style in CURVES:
        points = [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
        sparse = len(points) < len(history)  # e.g. --test-every: mark the epochs that were scored
        ax.plot(*zip(*points) if points else ([], []), style, label=label, marker="o" if sparse else None,
                markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss / accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, max(epochs[-1] if epochs else 1, 1) + 0.5)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def plot_series(series, xlabel, ylabel, ax=None, title=None, styles=None, figsize=(4.5, 3.2)):
    """Several named curves on one axis, x = 1, 2, ...: ``{"plain-20": [...], "resnet-20": [...]}``."""
    fig, ax = _axes(ax, figsize)
    for i, (name, values) in enumerate(series.items()):
        style = (styles or {}).get(name, "-")
        ax.plot(np.arange(1, len(values) + 1), values, style, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # x counts epochs (or layers): whole numbers
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def plot_band(ax, runs, style="-", label=None, color=None, alpha=0.2, x=None):
    """The mean of several runs' curves and a shaded band from their min to max.

    ``runs`` is a list of equally long sequences, e.g. one error curve per seed; ``x`` their
    positions (default 1, 2, ...: epochs), e.g. the step count at each epoch's end. Returns the line.
    """
    runs = np.asarray(runs, dtype=float).reshape(-1, np.shape(runs)[-1])
    x = np.arange(1, runs.shape[1] + 1) if x is None else np.asarray(x, dtype=float)
    if x.shape != (runs.shape[1],):
        raise ValueError(f"x has {x.size} positions for curves of {runs.shape[1]} points")
    (line,) = ax.plot(x, runs.mean(axis=0), style, label=label, color=color)
    if len(runs) > 1:
        ax.fill_between(x, runs.min(axis=0), runs.max(axis=0), color=line.get_color(), alpha=alpha, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return line


def log_axis_ticks(ax, values, count=6):
    """A log-scaled y axis with about ``count`` labelled ticks spread over ``values``' range.

    Matplotlib labels a log axis only at powers of ten and their few multiples, so a range such as
    0.8-1.05 gets two or three labels. Here a narrow range (under a factor of 10) gets about
    ``count`` round values across the data; a wide one gets every power of ten. Labels are plain numbers; minor ticks are hidden. Returns the ticks shown.
    """
    values = np.asarray(values, dtype=float).ravel()
    lo, hi = values[values > 0].min(), values.max()
    if hi <= lo * 1.0001:
        lo, hi = lo * 0.9, hi * 1.1
    if hi / lo >= 10:  # a wide range: every power of ten, which the eye reads at once
        ticks = [float(10.0 ** k) for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)]
        limits = (lo / 1.3, hi * 1.3)
    else:  # a narrow one: about ``count`` round values (0.85, 0.9, 0.95, ...) across the data
        limits = (lo / 1.03, hi * 1.03)
        ticks = [float(f"{t:.6g}") for t in MaxNLocator(nbins=count, steps=[1, 2, 2.5, 5, 10]).tick_values(*limits)]
    ax.set_yscale("log")
    ax.set_ylim(*limits)
    ticks = [t for t in ticks if limits[0] <= t <= limits[1]]
    ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    return ticks


def plot_confusion(matrix, labels, ax=None, title="confusion matrix", figsize=(5.5, 5)):
    """Counts of (true row, predicted column), each cell annotated, rows labelled."""
    matrix = np.asarray(matrix)
    fig, ax = _axes(ax, figsize)
    image = ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=60, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return fig


def show_images(images, titles=None, ncols=8, scale=1.4, cmap="gray", symmetric=False):
    """A grid of images (N, H, W) or (N, 1, H, W), each with an optional title. ``symmetric`` scales
    each image from minus to plus its largest magnitude, so that 0 is the middle colour (filters)."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images[:, 0]
    nrows = max(1, -(-len(images) // ncols))
    fig = Figure(figsize=(ncols * scale, nrows * scale * 1.15), layout="constrained")
    for i, image in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        limits = {}
        if symmetric:
            top = float(np.abs(image).max()) or 1.0
            limits = {"vmin": -top, "vmax": top}
        ax.imshow(image, cmap=cmap, **limits)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return fig


class LivePlot:
    """An ``on_epoch`` callback that redraws the training curves in a notebook after each epoch."""

    def __init__(self, title=None):
        self.rows, self.title = [], title

    def __call__(self, row):
        from IPython import display

        self.rows.append(row)
        display.clear_output(wait=True)
        display.display(plot_history(self.rows, title=self.title))


def save_figure(fig, path, dpi=120):
    """Write ``fig`` as PNG atomically: a temporary file in the same folder, then a rename."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    atomic_write(path, buffer.getvalue())
    return path
