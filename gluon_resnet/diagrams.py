"""Labelled diagrams the chapters draw: function classes, blocks, ResNet-18, Fig. 5, ResNeXt.

Each function returns a ``matplotlib.figure.Figure`` (no pyplot), so a notebook shows it and a
script saves it with ``plots.save_figure``. Every box carries its text, so the tests can read
the diagrams back. Matplotlib has no block-diagram helper, hence these few drawing functions.
"""
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

MAIN, SHORTCUT, SUM = "#dbe9f6", "#f6d5d5", "#fde2c8"


def box(ax, x, y, text, colour=MAIN, width=1.9, height=0.44, fontsize=8):
    """A rounded box centred at (x, y) with ``text`` in it."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.04", fc=colour, ec="k", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def arrow(ax, start, end, colour="k", rad=0.0):
    """An arrow from ``start`` to ``end``; ``rad`` bends it (the shortcut's curve)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, lw=1, color=colour,
                                 connectionstyle=f"arc3,rad={rad}"))


def stack(ax, layers, title, shortcut=None, output="", x=0.0, step=0.62, width=1.9):
    """Boxes ``layers`` top to bottom joined by arrows; with ``shortcut`` (a label), a path from the
    input around them into a sum, then a ReLU. Returns the y of the last box."""
    top = len(layers) * step + 1.2
    ax.text(x, top + 0.35, "x", ha="center", fontsize=11)
    y = top
    for i, layer in enumerate(layers):
        y -= step
        box(ax, x, y, layer, width=width)
        arrow(ax, (x, y + step - (0.25 if i else -0.22)), (x, y + 0.25))
    if shortcut is not None:
        y -= step
        box(ax, x, y, "+", SUM, width=0.5)
        arrow(ax, (x, y + step - 0.25), (x, y + 0.25))
        # The shortcut leaves the input, runs down the right side *through* its box (identity or
        # 1x1 conv) and enters the sum from the side.
        side, mid, half = x + width / 2 + 0.9, (top + y) / 2, 0.3
        ax.plot([x, side, side], [top + 0.1, top + 0.1, mid + half], color="C3", lw=1)
        arrow(ax, (side, mid + half + 0.02), (side, mid + 0.24), colour="C3")
        ax.plot([side, side], [mid - 0.24, y], color="C3", lw=1)
        arrow(ax, (side, y), (x + 0.3, y), colour="C3")
        box(ax, side, mid, shortcut, SHORTCUT, width=1.3, fontsize=7)
    y -= step
    box(ax, x, y, "ReLU", width=width)
    arrow(ax, (x, y + step - 0.25), (x, y + 0.25))
    ax.text(x, y - 0.6, output, ha="center", fontsize=10)
    ax.set_title(title, fontsize=10)
    return y


def _frame(ax, xlim, ylim):
    ax.set(xlim=xlim, ylim=ylim)
    ax.set_axis_off()


def residual_blocks():
    """The lesson's block three ways: no shortcut (plain), identity shortcut, 1x1-conv shortcut."""
    fig = Figure(figsize=(10, 4.6), layout="constrained")
    body = ["3x3 conv", "batch norm", "ReLU", "3x3 conv", "batch norm"]
    cases = [("plain block", None, "f(x)"),
             ("residual block", "identity", "ReLU(g(x) + x)"),
             ("residual block, 1x1 shortcut", "1x1 conv\n(stride s)", "ReLU(g(x) + conv1x1(x))")]
    for ax, (title, shortcut, out) in zip(fig.subplots(1, 3), cases):
        stack(ax, body, title, shortcut, out)
        _frame(ax, (-1.4, 2.6), (-1.5, 6.0))
    return fig


def function_classes():
    """Nested classes F1 in F2 in ... and non-nested ones whose bigger members drift away from f*."""
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    truth = (1.7, 0.7)
    # non-nested: each class bigger than the last, but its centre moves away from f*
    loose = [((0.9, 0.4), 1.0), ((0.3, 0.0), 1.3), ((-0.3, -0.4), 1.6), ((-0.9, -0.7), 1.9)]
    nested = [((-0.6 + 0.3 * i, -0.3 + 0.12 * i), 1.0 + 0.7 * i) for i in range(4)]
    for ax, classes, title in zip(fig.subplots(1, 2), (loose, nested),
                                  ("non-nested: bigger classes, further from f*",
                                   "nested: each class contains the last")):
        for i, ((cx, cy), size) in enumerate(classes):
            ax.add_patch(Ellipse((cx, cy), size * 1.3, size * 0.9, fill=False, lw=1.5, color=f"C{i}"))
            ax.text(cx - 0.15, cy + size * 0.45 - 0.25,
                    f"$\\mathcal{{F}}_{i + 1}$", color=f"C{i}", fontsize=11)
        ax.plot(*truth, "k*", ms=12)
        ax.text(truth[0] + 0.08, truth[1] - 0.1, "$f^*$", fontsize=12)
        ax.set(title=title, aspect="equal")
        _frame(ax, (-2.4, 2.6), (-1.9, 2.0))
    return fig


RESNET18_96 = [("input", "1 x 96 x 96"), ("7x7 conv, 64, /2 + BN + ReLU", "64 x 48 x 48"),
               ("3x3 max-pool, /2", "64 x 24 x 24"), ("stage 1: 2 blocks, 64", "64 x 24 x 24"),
               ("stage 2: 2 blocks, 128, /2", "128 x 12 x 12"), ("stage 3: 2 blocks, 256, /2", "256 x 6 x 6"),
               ("stage 4: 2 blocks, 512, /2", "512 x 3 x 3"), ("global average pool", "512 x 1 x 1"),
               ("dense, 10 classes", "10")]


def resnet18(rows=RESNET18_96):
    """The lesson's ResNet-18 as one column: stem, four stages, head; each box with its output shape."""
    fig = Figure(figsize=(5.6, 6.2), layout="constrained")
    ax = fig.add_subplot()
    colours = {"input": "white", "stage": MAIN, "dense": SUM, "global": SUM}
    for i, (layer, shape) in enumerate(rows):
        y = -0.75 * i
        colour = next((c for k, c in colours.items() if layer.startswith(k)), SHORTCUT)
        box(ax, 0, y, layer, colour, width=3.4, fontsize=8)
        ax.text(2.0, y, shape, va="center", fontsize=8, family="monospace")
        if i:
            arrow(ax, (0, y + 0.75 - 0.24), (0, y + 0.24))
    ax.text(2.0, 0.55, "output shape\n(channels x height x width)", fontsize=8)
    ax.text(-1.7, 0.55, "stem (red), stages (blue), head (orange)", fontsize=8)
    ax.set_title("ResNet-18 (d2l's, one-channel 96x96 input)", fontsize=10)
    _frame(ax, (-1.9, 4.0), (-0.75 * len(rows), 1.1))
    return fig


def fig5():
    """The paper's Fig. 5: a 64-channel basic block beside a 256-channel bottleneck of similar cost."""
    fig = Figure(figsize=(8, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    stack(left, ["3x3 conv, 64", "BN, ReLU", "3x3 conv, 64", "BN"], "basic block (64-d input)",
          "identity", "64-d output")
    stack(right, ["1x1 conv, 64", "BN, ReLU", "3x3 conv, 64", "BN, ReLU", "1x1 conv, 256", "BN"],
          "bottleneck block (256-d input)", "identity", "256-d output")
    for ax in (left, right):
        _frame(ax, (-1.4, 2.6), (-1.5, 6.0))
    return fig


def resnext(groups=32, width=4, out=256):
    """ResNeXt's block: 1x1 reduce, a grouped 3x3 (``groups`` paths of ``width`` channels), 1x1 expand."""
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    inner = groups * width
    stack(left, [f"1x1 conv, {inner}", "BN, ReLU", f"3x3 conv, {inner},\n{groups} groups", "BN, ReLU",
                 f"1x1 conv, {out}", "BN"], f"ResNeXt block ({groups}x{width}d)", "identity or\n1x1 conv",
          f"{out}-d output")
    _frame(left, (-1.4, 2.6), (-1.5, 6.0))
    # the same block drawn as paths: each group sees only its own slice of the channels
    shown = [0, 1, None, groups - 1]
    for i, g in enumerate(shown):
        x = -2.4 + 1.6 * i
        if g is None:
            right.text(x, 1.5, "...", ha="center", fontsize=14)
            continue
        for j, text in enumerate([f"{width} channels", f"3x3 conv\n{width} -> {width}"]):
            box(right, x, 2.4 - 1.2 * j, text, width=1.3, fontsize=7)
        arrow(right, (x, 3.35), (x, 2.65))
        arrow(right, (x, 2.15), (x, 1.45))
        arrow(right, (x, 0.95), (0.0, 0.25))
    box(right, 0, 3.6, f"1x1 conv output: {inner} channels, split into {groups} groups", width=6.4, fontsize=8)
    box(right, 0, 0.0, f"concatenate: {inner} channels", SUM, width=3.2, fontsize=8)
    right.set_title("the grouped 3x3 conv as parallel paths", fontsize=10)
    _frame(right, (-3.4, 3.4), (-0.6, 4.2))
    return fig


def texts(fig):
    """Every string drawn on ``fig``'s axes, titles included (for tests and for reading a figure)."""
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
