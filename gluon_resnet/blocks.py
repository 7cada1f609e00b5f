"""Residual blocks.

``Residual`` is the lesson's block, kept in the lesson's form (``nn.Block``, ``forward``,
``npx.relu``) so it reads line by line next to the book.
"""
from mxnet import npx
from mxnet.gluon import nn


class Residual(nn.Block):
    """Two 3x3 conv-BN layers plus a shortcut; ReLU after the sum.

    ``use_1x1conv`` puts a 1x1 convolution on the shortcut so it can change the channel
    count and, with ``strides=2``, halve height and width alongside the main path.

    >>> from mxnet import np, npx; npx.set_np()
    >>> blk = Residual(3); blk.initialize()
    >>> blk(np.random.uniform(size=(4, 3, 6, 6))).shape
    (4, 3, 6, 6)
    >>> blk = Residual(6, use_1x1conv=True, strides=2); blk.initialize()
    >>> blk(np.random.uniform(size=(4, 3, 6, 6))).shape
    (4, 6, 3, 3)
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides) if use_1x1conv else None
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def forward(self, X):
        Y = npx.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return npx.relu(Y + X)


class HybridResidual(nn.HybridBlock):
    """The same block as ``Residual``, hybridizable, for fast training.

    Same layers under the same names, so parameters load into either; the tests check that both
    give the same outputs and gradients.
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides) if use_1x1conv else None
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def hybrid_forward(self, F, X):
        Y = F.npx.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return F.npx.relu(Y + X)
