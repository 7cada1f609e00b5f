"""Networks built from blocks, and the registry that names them.

Every network of the paper's family is one ``ResNet`` configured by data: a stem, a list of stages
(``layer_dims`` blocks each, with ``channels``) and a head. ``ARCHITECTURES`` is that data, one
entry per name; ``get_model(name)`` builds any of them, and the lesson's own ResNet-18.
"""
from mxnet.gluon import nn

from .blocks import (BasicBlock, BasicBlockV2, Bottleneck, BottleneckV2, HybridResidual,
                     ResNeXtBlock, Residual, SimpleResidual, _PostActivation, _PreActivation, conv,
                     sequence)
from .errors import UserError

D2L_STAGES = ((2, 64), (2, 128), (2, 256), (2, 512))
STEM_CHANNELS = {"imagenet": (64, 128, 256, 512), "cifar": (16, 32, 64), "small": (32, 64, 128),
                 "fine": (32, 64, 128)}
FINE_STEM_CHANNELS = 16  # the 'fine' stem's full-resolution convolution


def resnet_stage(num_residuals, num_channels, first_stage=False, block=Residual):
    """A stage of the lesson's blocks; all but the first stage halve height and width in block one."""
    stage = nn.HybridSequential() if issubclass(block, nn.HybridBlock) else nn.Sequential()
    for i in range(num_residuals):
        if i == 0 and not first_stage:
            stage.add(block(num_channels, use_1x1conv=True, strides=2))
        else:
            stage.add(block(num_channels))
    return stage


def resnet18_d2l(num_classes=10, stages=D2L_STAGES, imperative=False, in_channels=1):
    """The lesson's ResNet-18: 7x7 stem and max-pool, four stages, global average pool, dense.

    ``imperative=True`` builds it from the lesson's ``Residual`` (an ``nn.Block``); the default
    uses its hybridizable twin so the network can be compiled with ``hybridize()``. As in the book,
    the convolutions keep their bias and the shortcut projections have no BN.
    """
    block = Residual if imperative else HybridResidual
    net = nn.Sequential() if imperative else nn.HybridSequential()
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3, in_channels=in_channels),
            nn.BatchNorm(), nn.Activation("relu"),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    for i, (num_residuals, num_channels) in enumerate(stages):
        net.add(resnet_stage(num_residuals, num_channels, first_stage=(i == 0), block=block))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


def make_stage(block, num_blocks, channels, in_channels, strides, **block_options):
    """``num_blocks`` blocks; only the first changes the shape (``strides``, and the width)."""
    stage = nn.HybridSequential()
    for i in range(num_blocks):
        stage.add(block(channels, strides if i == 0 else 1, in_channels, **block_options))
        in_channels = channels * block.expansion
    return stage


def _conv_bn_relu(channels, kernel, strides, in_channels):
    return [conv(channels, kernel, strides, in_channels), nn.BatchNorm(in_channels=channels),
            nn.Activation("relu")]


def make_stem(kind, channels, in_channels):
    """'imagenet': 7x7/2 conv, BN, ReLU, 3x3/2 max-pool (224 -> 56); 'cifar': 3x3 conv, BN, ReLU;
    'small': 3x3/2 conv, BN, ReLU (28 -> 14), for a net that must be cheap on a CPU; 'fine': a 3x3
    conv, BN, ReLU of 16 channels at full resolution first, then 'small' (it sees the pixels before
    they are halved, for about 10 % more training time per epoch in fmnist_resnet8)."""
    if kind == "imagenet":
        return sequence(*_conv_bn_relu(channels, 7, 2, in_channels), nn.MaxPool2D(3, 2, 1))
    if kind == "fine":
        return sequence(*_conv_bn_relu(FINE_STEM_CHANNELS, 3, 1, in_channels),
                        *_conv_bn_relu(channels, 3, 2, FINE_STEM_CHANNELS))
    if kind in ("cifar", "small"):
        return sequence(*_conv_bn_relu(channels, 3, 1 if kind == "cifar" else 2, in_channels))
    raise UserError(f"unknown stem {kind!r}; choose 'imagenet', 'cifar', 'small' or 'fine'")


class ResNet(nn.HybridBlock):
    """Stem, stages, global average pool and a dense classifier, all set by the arguments.

    ``layer_dims`` gives the blocks per stage (Keras tutorials' form); ``channels`` each stage's
    base width (default: 64, 128, 256, 512 after an ImageNet stem, 16, 32, 64 after a CIFAR one).
    Each stage but the first halves height and width in its first block. Pre-activation blocks
    get the final BN-ReLU they need before pooling. ``zero_init=True`` starts the last BN scale
    (gamma) of every post-activation block at zero, so that each block begins as its shortcut alone
    (Goyal et al., 2017). Extra options go to every block.

    >>> from mxnet import np
    >>> net = ResNet(layer_dims=[2, 2, 2, 2]); net.initialize()
    >>> net(np.ones((2, 1, 64, 64))).shape
    (2, 10)
    """

    def __init__(self, layer_dims=(2, 2, 2, 2), channels=None, block=BasicBlock, stem="imagenet",
                 num_classes=10, in_channels=1, zero_init=False, **block_options):
        super().__init__()
        channels = channels or STEM_CHANNELS.get(stem, ())
        if len(channels) != len(layer_dims):
            raise UserError(f"{len(layer_dims)} stages need as many channel widths, got {channels}")
        self.layer_names = ["stem"]
        self.stem = make_stem(stem, channels[0], in_channels)
        width = channels[0]
        for i, (num_blocks, stage_channels) in enumerate(zip(layer_dims, channels)):
            stage = make_stage(block, num_blocks, stage_channels, width, 1 if i == 0 else 2,
                               **block_options)
            self._add(f"stage{i + 1}", stage)
            width = stage_channels * block.expansion
        if issubclass(block, _PreActivation):
            self._add("post", sequence(nn.BatchNorm(in_channels=width), nn.Activation("relu")))
        self._add("pool", nn.GlobalAvgPool2D())
        self._add("fc", nn.Dense(num_classes, in_units=width))
        if zero_init:
            for blk in self.blocks():
                blk.body[-1].gamma.init = "zeros"  # wins over the initializer given to initialize()

    def blocks(self):
        """The residual blocks whose body ends in a BN (the post-activation BasicBlock and Bottleneck)."""
        stages = [getattr(self, name) for name in self.layer_names if name.startswith("stage")]
        return [blk for stage in stages for blk in stage
                if isinstance(blk, _PostActivation) and isinstance(blk.body[-1], nn.BatchNorm)]

    def _add(self, name, layer):
        setattr(self, name, layer)  # registers the child under this name
        self.layer_names.append(name)

    def hybrid_forward(self, F, x):
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x


def simple_residual_cnn(num_classes=10, in_channels=1, imperative=False):
    """The classic small MNIST tutorial net: two 5x5 conv + pool steps, each followed by a BN-free
    residual block, then dense (512 features for a 28x28 input). ``imperative`` is ignored."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(16, 5, in_channels=in_channels), nn.Activation("relu"), nn.MaxPool2D(2),
            SimpleResidual(16),
            nn.Conv2D(32, 5, in_channels=16), nn.Activation("relu"), nn.MaxPool2D(2),
            SimpleResidual(32),
            nn.Flatten(), nn.Dense(num_classes))
    return net


def _family():
    """The paper's networks as data: name -> ``ResNet`` arguments."""
    imagenet = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
                50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)),
                152: (Bottleneck, (3, 8, 36, 3))}
    v2 = {BasicBlock: BasicBlockV2, Bottleneck: BottleneckV2}
    arch = {f"resnet{depth}": dict(block=block, layer_dims=dims)
            for depth, (block, dims) in imagenet.items()}
    arch.update({f"resnet{depth}_v2": dict(block=v2[block], layer_dims=dims)
                 for depth, (block, dims) in imagenet.items()})
    arch["resnext50_32x4d"] = dict(block=ResNeXtBlock, layer_dims=(3, 4, 6, 3))
    arch.update({f"plain{depth}": dict(arch[f"resnet{depth}"], shortcut="none") for depth in (18, 34)})
    cifar = {6 * n + 2: dict(block=BasicBlock, layer_dims=(n, n, n), stem="cifar")
             for n in (3, 5, 7, 9, 18)}  # depth 6n + 2
    arch.update({f"cifar_resnet{depth}": dict(spec, shortcut="A") for depth, spec in cifar.items()})
    arch.update({f"cifar_plain{depth}": dict(spec, shortcut="none") for depth, spec in cifar.items()})
    # Not from the paper: 8 weighted layers (stem, 3 blocks of 2, dense) working at 14, 7 and 4 pixels
    # for 28x28 Fashion-MNIST. Against resnet18_d2l at 28x28: 36x fewer parameters, 3x fewer
    # multiply-adds, and about 6x the training throughput on 2 CPU cores. The net of `--preset fast`.
    arch["fmnist_resnet8"] = dict(block=BasicBlock, layer_dims=(1, 1, 1), stem="small")
    # The same walk 1.5x as wide (48, 96, 192 channels): 2.2x the parameters and multiply-adds, and
    # about half the training throughput on 2 AVX2 cores (README: `--preset best`).
    arch["fmnist_resnet8_wide"] = dict(block=BasicBlock, layer_dims=(1, 1, 1), stem="small",
                                       channels=(48, 96, 192))
    # fmnist_resnet8 with a 16-channel 3x3 convolution at 28x28 before its stride-2 stem ('fine'): nine
    # weighted layers, 1.5 % more parameters, 0.88x the training throughput on 2 Zen 4 cores, and +0.21
    # points of test accuracy over 3 seeds at 21 epochs (+0.25 over 4; docs/frontier.md, The levers).
    # (Not Page's CIFAR-10 "ResNet-9", which is far wider.)
    arch["fmnist_resnet9"] = dict(block=BasicBlock, layer_dims=(1, 1, 1), stem="fine")
    # fmnist_resnet9 with two blocks per stage: 15 weighted layers, 2.2x the parameters and about half
    # the training throughput (docs/frontier.md, The levers: a deeper net for the same minutes).
    arch["fmnist_resnet15"] = dict(block=BasicBlock, layer_dims=(2, 2, 2), stem="fine")
    return arch


ARCHITECTURES = _family()


def build(name, num_classes=10, in_channels=1, imperative=False, **options):
    """Build family member ``name``; ``options`` override its entry (e.g. ``shortcut='C'``).

    ``imperative`` is accepted for every model and ignored here: a HybridBlock runs eagerly
    until ``hybridize()`` is called.
    """
    return ResNet(num_classes=num_classes, in_channels=in_channels, **{**ARCHITECTURES[name], **options})


def hybridize_static(net):
    """Compile ``net`` into one static graph with preallocated memory (input shapes must not change):
    the fast path that training, benchmarking and exporting all take. Returns ``net``."""
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def exclude_from_weight_decay(net):
    """Set ``wd_mult = 0`` on every BN scale and shift and every bias of ``net``; return their names.

    Weight decay is there to keep the convolution and dense weights small; on BN's gamma and beta
    and on biases it only pulls each channel's scale and offset towards zero.
    """
    params = net.collect_params()
    names = [name for name in params if name.endswith(("gamma", "beta", "bias"))]
    for name in names:
        params[name].wd_mult = 0.0
    return names


def list_models(ordered=False):
    """Names ``get_model`` accepts, sorted; ``ordered=True`` keeps the family order of the README table.

    >>> 'resnet50' in list_models() and 'cifar_resnet110' in list_models()
    True
    """
    names = ["resnet18_d2l", *ARCHITECTURES, "simple_residual_cnn"]
    return names if ordered else sorted(names)


def get_model(name, num_classes=10, in_channels=1, pretrained=False, **options):
    """Build a registered network (parameters not yet initialised, unless ``pretrained``).

    ``pretrained=True`` loads the trained weights shipped in the package (see
    ``gluon_resnet.pretrained``; offline, hash-checked), for the names that have them.

    >>> net = get_model("cifar_resnet20", in_channels=3); net.initialize()
    >>> from mxnet import np
    >>> net(np.ones((2, 3, 32, 32))).shape
    (2, 10)
    >>> get_model("fmnist_resnet8", pretrained=True)(np.zeros((1, 1, 28, 28))).shape
    (1, 10)
    """
    for what, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{what} must be a whole number of at least 1, not {value!r}")
    builders = {"resnet18_d2l": resnet18_d2l, "simple_residual_cnn": simple_residual_cnn}
    if name in builders:
        net = builders[name](num_classes=num_classes, in_channels=in_channels, **options)
    elif name in ARCHITECTURES:
        net = build(name, num_classes=num_classes, in_channels=in_channels, **options)
    else:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    if pretrained:
        from .zoo import load_pretrained
        load_pretrained(net, name, num_classes, in_channels)
    return net
