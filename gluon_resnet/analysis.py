"""Looking inside a trained network: the size of each 3x3 layer's response (the paper's Fig. 7).

He et al. (2016, Section 4.2) measure, on test images, the standard deviation of every 3x3
layer's output *after batch norm and before the ReLU or the shortcut's sum*. In a residual net
that output is the residual function's contribution, so small values mean the block stays
close to the identity. ``layer_response_std`` measures the same thing on any ``gluon_resnet``
network: each batch norm that directly follows a 3x3 convolution, in the order the forward pass
meets them (the stem's first, then each block's two). Shortcut projections (1x1) are left out.
"""
from mxnet import autograd, np
from mxnet.gluon import nn


def conv_bn_pairs(block):
    """The batch norms that directly follow a 3x3 convolution inside ``block``'s sequences."""
    pairs = []
    children = list(block._children.values())
    for first, second in zip(children, children[1:]):
        if isinstance(first, nn.Conv2D) and isinstance(second, nn.BatchNorm) \
                and tuple(first._kwargs["kernel"]) == (3, 3):
            pairs.append(second)
    for child in children:
        pairs.extend(conv_bn_pairs(child))
    return pairs


def layer_response_std(net, batches, training=False):
    """Per 3x3 layer, the standard deviation of its BN output over ``batches`` (arrays N,C,H,W).

    The standard deviation is taken per channel over images and positions, then averaged over
    the channels (the size of a typical channel's response). ``training=False`` scores as at
    test time, with the batch norms' running averages. The net runs imperatively while hooked
    (hooks do not fire inside a compiled graph); call ``net.hybridize()`` again afterwards if
    you want the compiled speed back.

    >>> import gluon_resnet as gr
    >>> net = gr.get_model("cifar_resnet20"); net.initialize()
    >>> stds = layer_response_std(net, [np.random.uniform(size=(4, 1, 28, 28))])
    >>> len(stds)   # the stem's 3x3 layer and 2 in each of the 9 blocks
    19
    """
    norms = conv_bn_pairs(net)
    sums = [None] * len(norms)
    net.hybridize(False)
    handles = [bn.register_forward_hook(_accumulate(sums, i)) for i, bn in enumerate(norms)]
    try:
        with autograd.predict_mode() if not training else autograd.train_mode():
            for X in batches:
                net(X)
    finally:
        for handle in handles:
            handle.detach()
    stds = []
    for count, total, squares in sums:
        mean = total / count
        stds.append(float(np.sqrt(np.maximum(squares / count - mean ** 2, 0)).mean()))
    return stds


def _accumulate(sums, i):
    """A forward hook adding the output's per-channel count, sum and sum of squares to ``sums[i]``."""
    def hook(block, inputs, output):
        count = output.size // output.shape[1]
        total, squares = output.sum(axis=(0, 2, 3)), (output ** 2).sum(axis=(0, 2, 3))
        if sums[i] is not None:
            count, total, squares = (a + b for a, b in zip(sums[i], (count, total, squares)))
        sums[i] = (count, total, squares)
    return hook
