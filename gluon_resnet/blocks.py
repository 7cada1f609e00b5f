"""Residual blocks: the lesson's, and the paper's family built from the same few parts.

``Residual`` is the lesson's block, kept in the lesson's form (``nn.Block``, ``forward``,
``npx.relu``) so it reads line by line next to the book. ``HybridResidual`` is its compiled
twin; the tests prove the two give the same outputs and gradients on the same parameters. The
compiled blocks add and rectify through ``add`` and ``relu`` below, which keep the CPU's oneDNN
kernels in their fast memory layout (about 1.3x the training speed of ``a + b`` and ``npx.relu``).

The family blocks take ``channels`` (the block's base width; it outputs ``channels * expansion``),
``strides`` (2 halves height and width), ``in_channels`` (known input width, so parameter shapes
are known before any data flows) and ``shortcut``, the paper's option:
``'A'`` identity with zero-padded channels and strided subsampling (no parameters), ``'B'``
a 1x1 projection only where the shape changes, ``'C'`` a projection on every block, and ``'none'``
for the plain networks, which have no shortcut at all.
"""
from mxnet import npx
from mxnet.gluon import nn

from .errors import UserError

SHORTCUTS = ("A", "B", "C", "none")


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


def relu(F, x):
    """ReLU through MXNet's ``Activation`` operator, which oneDNN runs on the CPU.

    Same values as ``npx.relu``; the compiled blocks use it for speed (see ``add``).
    """
    return F.npx.activation(x, act_type="relu")


def add(F, a, b):
    """``a + b`` (same shapes) through MXNet's ``elemwise_add``, which oneDNN runs on the CPU.

    The numpy-style ``a + b`` is not a oneDNN operator, so on the CPU each one makes MXNet convert
    the convolutions' blocked oneDNN layout back to plain NCHW and back again. With this sum and
    ``relu`` a compiled ResNet-18 (d2l, 1x96x96, batch 128) trains about 1.3x faster on 2 cores
    (median 55.1 against 41.3 img/s, 8 interleaved rounds), with the same outputs and gradients.
    ``as_nd_ndarray`` only relabels the array for the classic operator; nothing is copied.
    """
    return F.elemwise_add(a.as_nd_ndarray(), b.as_nd_ndarray()).as_np_ndarray()


class HybridResidual(nn.HybridBlock):
    """The same block as ``Residual``, hybridizable, for fast training.

    Same layers under the same names, so parameters load into either; the tests check that both
    give the same outputs and gradients. Only the operators differ: ``relu`` and ``add`` run the
    ReLU and the sum through oneDNN (see ``add`` for why and what it buys).
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1, strides=strides) if use_1x1conv else None
        self.bn1 = nn.BatchNorm()
        self.bn2 = nn.BatchNorm()

    def hybrid_forward(self, F, X):
        Y = relu(F, self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return relu(F, add(F, Y, X))


def conv(channels, kernel, strides=1, in_channels=0, groups=1):
    """A bias-free convolution with 'same' padding, as every conv followed by BN is in the paper."""
    return nn.Conv2D(channels, kernel, strides, kernel // 2, groups=groups, use_bias=False,
                     in_channels=in_channels)


def sequence(*layers):
    """A ``HybridSequential`` of ``layers``, in order."""
    seq = nn.HybridSequential()
    seq.add(*layers)
    return seq


class ZeroPadShortcut(nn.HybridBlock):
    """Option A: keep every ``strides``-th pixel and append ``extra`` all-zero channels; no parameters.

    >>> from mxnet import np
    >>> ZeroPadShortcut(extra=2, strides=2)(np.ones((1, 2, 4, 4))).shape
    (1, 4, 2, 2)
    """

    def __init__(self, extra, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.extra, self.strides = extra, strides

    def hybrid_forward(self, F, x):
        if self.strides != 1:  # a 1x1 max-pool with a stride is plain subsampling
            x = F.npx.pooling(x, kernel=(1, 1), stride=(self.strides,) * 2, pool_type="max")
        return F.np.pad(x, ((0, 0), (0, self.extra), (0, 0), (0, 0))) if self.extra else x


def make_shortcut(kind, in_channels, out_channels, strides, norm=True):
    """The shortcut layer for option ``kind``: ``None`` means identity (or, for 'none', no shortcut)."""
    if kind not in SHORTCUTS:
        raise UserError(f"unknown shortcut {kind!r}; choose one of: {', '.join(SHORTCUTS)}")
    changes = strides != 1 or in_channels != out_channels
    if kind == "none" or (kind in ("A", "B") and not changes):
        return None
    if kind == "A":
        if out_channels < in_channels:
            raise UserError("shortcut 'A' can only add channels; use 'B' or 'C' to reduce them")
        return ZeroPadShortcut(out_channels - in_channels, strides)
    projection = conv(out_channels, 1, strides, in_channels)
    return sequence(projection, nn.BatchNorm(in_channels=out_channels)) if norm else projection


class _PostActivation(nn.HybridBlock):
    """v1 block (He et al. 2016a): ``relu(body(x) + shortcut(x))``; subclasses build ``body``."""

    expansion = 1

    def __init__(self, channels, strides, in_channels, shortcut, **kwargs):
        super().__init__(**kwargs)
        in_channels = in_channels or channels * self.expansion
        self.residual = shortcut != "none"
        self.body = self.make_body(channels, strides, in_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, channels * self.expansion, strides)

    def hybrid_forward(self, F, x):
        y = self.body(x)
        if self.residual:
            y = add(F, y, x if self.shortcut is None else self.shortcut(x))
        return relu(F, y)


class BasicBlock(_PostActivation):
    """Two 3x3 conv-BN layers (ResNet-18/34 and the CIFAR nets).

    >>> from mxnet import np
    >>> blk = BasicBlock(8, strides=2, in_channels=4); blk.initialize()
    >>> blk(np.ones((1, 4, 6, 6))).shape
    (1, 8, 3, 3)
    """

    def __init__(self, channels, strides=1, in_channels=0, shortcut="B", **kwargs):
        super().__init__(channels, strides, in_channels, shortcut, **kwargs)

    def make_body(self, channels, strides, in_channels):
        return sequence(conv(channels, 3, strides, in_channels), nn.BatchNorm(in_channels=channels),
                        nn.Activation("relu"), conv(channels, 3, 1, channels),
                        nn.BatchNorm(in_channels=channels))


class Bottleneck(_PostActivation):
    """1x1 reduce, 3x3, 1x1 expand to ``4 * channels`` (ResNet-50/101/152).

    As in the paper, the stride sits on the first 1x1 conv (torchvision's "v1.5" moves it to the
    3x3, which costs ~7% more multiply-adds); ``groups > 1`` with ``width_per_group`` makes the
    3x3 grouped, which is ResNeXt's block (see ``ResNeXtBlock``).

    >>> from mxnet import np
    >>> blk = Bottleneck(4, in_channels=16); blk.initialize()
    >>> blk(np.ones((1, 16, 5, 5))).shape
    (1, 16, 5, 5)
    """

    expansion = 4

    def __init__(self, channels, strides=1, in_channels=0, shortcut="B", groups=1,
                 width_per_group=64, stride_in_3x3=False, **kwargs):
        self.width = int(channels * width_per_group / 64) * groups
        self.groups, self.stride_in_3x3 = groups, stride_in_3x3
        super().__init__(channels, strides, in_channels, shortcut, **kwargs)

    def make_body(self, channels, strides, in_channels):
        width, out = self.width, channels * self.expansion
        s1, s3 = (1, strides) if self.stride_in_3x3 else (strides, 1)
        return sequence(conv(width, 1, s1, in_channels), nn.BatchNorm(in_channels=width),
                        nn.Activation("relu"),
                        conv(width, 3, s3, width, groups=self.groups), nn.BatchNorm(in_channels=width),
                        nn.Activation("relu"),
                        conv(out, 1, 1, width), nn.BatchNorm(in_channels=out))


class ResNeXtBlock(Bottleneck):
    """ResNeXt's block (Xie et al. 2017): a bottleneck whose 3x3 conv is split into ``groups`` groups.

    ``groups`` is the cardinality (32 in ResNeXt-50 32x4d) and ``width_per_group`` the channels of
    each group in the first stage (4); as in the ResNeXt code, the stride sits on the 3x3.
    """

    def __init__(self, channels, strides=1, in_channels=0, shortcut="B", groups=32,
                 width_per_group=4, **kwargs):
        super().__init__(channels, strides, in_channels, shortcut, groups, width_per_group,
                         stride_in_3x3=True, **kwargs)


class _PreActivation(nn.HybridBlock):
    """v2 block (He et al., "Identity Mappings", 2016): BN-ReLU first, nothing after the sum."""

    expansion = 1

    def __init__(self, channels, strides, in_channels, shortcut, **kwargs):
        super().__init__(**kwargs)
        in_channels = in_channels or channels * self.expansion
        self.residual = shortcut != "none"
        self.bn = nn.BatchNorm(in_channels=in_channels)
        self.body = self.make_body(channels, strides, in_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, channels * self.expansion, strides,
                                      norm=False)

    def hybrid_forward(self, F, x):
        pre = relu(F, self.bn(x))
        y = self.body(pre)
        if not self.residual:
            return y
        return add(F, y, x if self.shortcut is None else self.shortcut(pre))


class BasicBlockV2(_PreActivation):
    """Pre-activation basic block: (BN-ReLU-3x3 conv) twice, then the sum.

    >>> from mxnet import np
    >>> blk = BasicBlockV2(8, strides=2, in_channels=4); blk.initialize()
    >>> blk(np.ones((1, 4, 6, 6))).shape
    (1, 8, 3, 3)
    """

    def __init__(self, channels, strides=1, in_channels=0, shortcut="B", **kwargs):
        super().__init__(channels, strides, in_channels, shortcut, **kwargs)

    def make_body(self, channels, strides, in_channels):
        return sequence(conv(channels, 3, strides, in_channels), nn.BatchNorm(in_channels=channels),
                        nn.Activation("relu"), conv(channels, 3, 1, channels))


class BottleneckV2(_PreActivation):
    """Pre-activation bottleneck: BN-ReLU before each of 1x1 reduce, 3x3 and 1x1 expand.

    The stride sits on the 3x3, as in the authors' pre-activation code.
    """

    expansion = 4

    def __init__(self, channels, strides=1, in_channels=0, shortcut="B", **kwargs):
        super().__init__(channels, strides, in_channels, shortcut, **kwargs)

    def make_body(self, channels, strides, in_channels):
        out = channels * self.expansion
        return sequence(conv(channels, 1, 1, in_channels), nn.BatchNorm(in_channels=channels),
                        nn.Activation("relu"), conv(channels, 3, strides, channels),
                        nn.BatchNorm(in_channels=channels), nn.Activation("relu"),
                        conv(out, 1, 1, channels))


class SimpleResidual(nn.HybridBlock):
    """The classic MNIST tutorial's block: two 3x3 convs (with bias, no BN), ReLU after the sum.

    >>> from mxnet import np
    >>> blk = SimpleResidual(16); blk.initialize()
    >>> blk(np.ones((2, 16, 12, 12))).shape
    (2, 16, 12, 12)
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(channels, 3, padding=1, in_channels=channels)
        self.conv2 = nn.Conv2D(channels, 3, padding=1, in_channels=channels)

    def hybrid_forward(self, F, x):
        y = self.conv2(relu(F, self.conv1(x)))
        return relu(F, add(F, x, y))


class Inception(nn.HybridBlock):
    """GoogLeNet's Inception block, for comparing with the residual block (d2l's exercise 1).

    Four paths whose outputs are **concatenated**: a 1x1 conv (``c1`` channels); 1x1 then 3x3
    (``c2`` = (reduce, out)); 1x1 then 5x5 (``c3``); 3x3 max-pool then 1x1 (``c4``). A path whose
    width is 0 is left out. Each conv is followed by batch norm and ReLU, as in Inception v2, so
    it trains on the same terms as the residual blocks here.

    >>> from mxnet import np
    >>> blk = Inception(16, (24, 32), (4, 8), 8, in_channels=64); blk.initialize()
    >>> blk(np.ones((1, 64, 14, 14))).shape
    (1, 64, 14, 14)
    >>> blk = Inception(16, (24, 48), (0, 0), 0, in_channels=64); blk.initialize()
    >>> blk(np.ones((1, 64, 14, 14))).shape
    (1, 64, 14, 14)
    """

    def __init__(self, c1, c2, c3, c4, in_channels, **kwargs):
        super().__init__(**kwargs)

        def unit(channels, kernel, fan_in):
            return [conv(channels, kernel, 1, fan_in), nn.BatchNorm(in_channels=channels),
                    nn.Activation("relu")]

        paths = [unit(c1, 1, in_channels) if c1 else None,
                 unit(c2[0], 1, in_channels) + unit(c2[1], 3, c2[0]) if c2[1] else None,
                 unit(c3[0], 1, in_channels) + unit(c3[1], 5, c3[0]) if c3[1] else None,
                 [nn.MaxPool2D(3, 1, 1)] + unit(c4, 1, in_channels) if c4 else None]
        self.paths = nn.HybridSequential()
        self.paths.add(*[sequence(*layers) for layers in paths if layers])

    def hybrid_forward(self, F, x):
        return F.np.concatenate([path(x) for path in self.paths], axis=1)
