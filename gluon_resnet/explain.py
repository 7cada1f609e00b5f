"""Where a network looks: Grad-CAM class-activation maps (Selvaraju et al., 2017) for any registry model.

Grad-CAM splits the network after one layer (by default the last stage before global pooling), takes
the gradient of one class score with respect to that layer's feature maps, averages it over each map
to weigh the maps, and keeps the positive part of their weighted sum: a coarse map of the places that
raised that class's score, here scaled to [0, 1] and resized to the input.

    from gluon_resnet import get_model, explain
    net = get_model("fmnist_resnet8", pretrained=True)
    cams, scores = explain.grad_cam(net, X)             # X: (N, 1, 28, 28); cams: (N, 28, 28) numpy
    explain.layer_names(net)                            # ['stem', 'stage1', 'stage2', 'stage3', 'pool', 'fc']
"""
import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
import numpy as np
from mxnet import autograd
from mxnet.gluon import nn

from .errors import UserError
from .runtime import context_of

HEAD_KINDS = (nn.GlobalAvgPool2D, nn.Flatten, nn.Dense)  # where the spatial maps end


def layers(net):
    """``(name, block)`` of the network's top-level layers, in the order data flows through them:
    a ``ResNet``'s named parts (stem, stage1, ..., pool, fc), or a Sequential's children by index."""
    if hasattr(net, "layer_names"):
        return [(name, getattr(net, name)) for name in net.layer_names]
    if isinstance(net, (nn.Sequential, nn.HybridSequential)):
        return [(str(i), net[i]) for i in range(len(net))]
    raise UserError(f"Grad-CAM needs a ResNet or a Sequential network, not a {type(net).__name__}")


def layer_names(net):
    """The names ``grad_cam(layer=...)`` accepts, in order.

    >>> from gluon_resnet import get_model
    >>> layer_names(get_model("fmnist_resnet8"))
    ['stem', 'stage1', 'stage2', 'stage3', 'pool', 'fc']
    """
    return [name for name, _ in layers(net)]


def default_layer(net):
    """The last layer before the head (global pooling, flattening or dense): the last stage.

    >>> from gluon_resnet import get_model
    >>> default_layer(get_model("resnet50_v2")), default_layer(get_model("resnet18_d2l"))
    ('post', '7')
    """
    named = layers(net)
    first_head = next(i for i, (_, block) in enumerate(named) if isinstance(block, HEAD_KINDS))
    if first_head == 0:
        raise UserError("this network has no convolutional layer before its head")
    return named[first_head - 1][0]


def split(net, layer=None):
    """``(features, head)``: two callables that together are ``net``, cut after ``layer``."""
    named = layers(net)
    layer = layer or default_layer(net)
    names = [name for name, _ in named]
    if layer not in names:
        raise UserError(f"no layer {layer!r} in this network; choose one of: {', '.join(names)}")
    cut = names.index(layer) + 1
    if cut == len(names):
        raise UserError(f"{layer!r} is the network's output; choose a layer before the head")

    def run(blocks):
        def forward(x):
            for _, block in blocks:
                x = block(x)
            return x
        return forward
    return run(named[:cut]), run(named[cut:])


def resize_maps(maps, height, width):
    """Bilinear resize of float maps (N, h, w) to (N, height, width) with MXNet's operator."""
    X = mx.nd.array(maps[:, None], dtype=np.float32)
    return mx.nd.contrib.BilinearResize2D(X, height=height, width=width).asnumpy()[:, 0]


def grad_cam(net, X, classes=None, layer=None, resize=True):
    """Grad-CAM maps of ``net`` for the batch ``X`` (N, C, H, W), as numpy arrays.

    ``classes`` (one per image) picks the class each map explains; default: the predicted one.
    ``layer`` names the layer whose feature maps are weighed (see ``layer_names``; default: the
    last stage). Returns ``(cams, scores)``: maps (N, H, W) in [0, 1] (all zero where no place
    raised the score; ``resize=False`` keeps the layer's h x w) and the logits (N, classes).
    """
    ctx = context_of(net)
    X = X.as_in_ctx(ctx) if isinstance(X, mx.np.ndarray) else mx.np.array(np.asarray(X, dtype=np.float32), ctx=ctx)
    features, head = split(net, layer)
    A = features(X)
    if A.ndim != 4:
        raise UserError(f"layer {layer!r} gives {A.ndim}-d output; Grad-CAM needs feature maps (N, C, H, W)")
    A.attach_grad()
    with autograd.record(train_mode=False):  # BatchNorm keeps its running statistics
        scores = head(A)
        picked = scores.argmax(axis=1).astype("int32") if classes is None else \
            mx.np.array(np.asarray(classes), dtype="int32", ctx=ctx)
        chosen = mx.npx.pick(scores, picked, axis=1)
    chosen.backward()
    weights = A.grad.mean(axis=(2, 3), keepdims=True)
    cams = mx.npx.relu((weights * A).sum(axis=1)).asnumpy()
    peak = cams.reshape(len(cams), -1).max(axis=1)[:, None, None]
    cams = np.where(peak > 0, cams / np.where(peak > 0, peak, 1), 0)
    if resize:
        cams = np.clip(resize_maps(cams, X.shape[2], X.shape[3]), 0, 1)
    return cams, scores.asnumpy()


def plot_cams(images, cams, titles, colors=None, ncols=8, scale=1.4):
    """Each image in gray under its heat map (``jet``, half transparent), titled; ``colors`` per title."""
    from matplotlib.figure import Figure

    nrows = max(1, -(-len(images) // ncols))
    fig = Figure(figsize=(ncols * scale, nrows * scale * 1.3), layout="constrained")
    for i, (image, cam) in enumerate(zip(images, cams)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(np.asarray(image).squeeze(), cmap="gray")
        ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(titles[i], fontsize=7, color=(colors[i] if colors else "black"))
        ax.set_axis_off()
    return fig


def right_and_wrong(y_true, y_pred, count):
    """Indices of up to ``count`` test images, half answered right and half wrong, in test-set order.

    >>> right_and_wrong(np.array([0, 1, 2, 3, 4]), np.array([0, 2, 2, 0, 4]), 4).tolist()
    [0, 1, 2, 3]
    """
    right, wrong = np.flatnonzero(y_true == y_pred), np.flatnonzero(y_true != y_pred)
    n_wrong = min(len(wrong), count // 2)
    return np.sort(np.concatenate([right[:count - n_wrong], wrong[:n_wrong]]))


def cam_figure(net, images, labels, count=16, batch_size=500, layer=None):
    """The figure ``evaluate --cam`` writes: ``count`` test images (uint8, N x H x W), half of them
    answered right and half wrong, under their Grad-CAM maps at ``layer`` (default: the last
    stage), titled true over predicted label."""
    from .data import ArrayLoader, get_fashion_mnist_labels, to_unit_floats
    from .loop import predict

    y_true, y_pred = predict(net, ArrayLoader(images, labels, batch_size), context_of(net))
    take = right_and_wrong(y_true, y_pred, count)
    X = to_unit_floats(images[take][:, None])
    cams, _ = grad_cam(net, X, layer=layer)
    titles = [f"true {t}\npred {p}" for t, p in zip(get_fashion_mnist_labels(y_true[take]),
                                                     get_fashion_mnist_labels(y_pred[take]))]
    colors = ["tab:green" if y_true[i] == y_pred[i] else "tab:red" for i in take]
    return plot_cams(images[take], cams, titles, colors)
