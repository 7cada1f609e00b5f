"""Networks built from blocks, and the registry that names them."""
from mxnet.gluon import nn

from .blocks import HybridResidual, Residual
from .errors import UserError

D2L_STAGES = ((2, 64), (2, 128), (2, 256), (2, 512))


def resnet_stage(num_residuals, num_channels, first_stage=False, block=Residual):
    """A stage of residual blocks; all but the first stage halve height and width in block one."""
    stage = nn.HybridSequential() if issubclass(block, nn.HybridBlock) else nn.Sequential()
    for i in range(num_residuals):
        if i == 0 and not first_stage:
            stage.add(block(num_channels, use_1x1conv=True, strides=2))
        else:
            stage.add(block(num_channels))
    return stage


def resnet18_d2l(num_classes=10, stages=D2L_STAGES, imperative=False):
    """The lesson's ResNet-18: 7x7 stem and max-pool, four stages, global average pool, dense.

    ``imperative=True`` builds it from the lesson's ``Residual`` (an ``nn.Block``); the default
    uses its hybridizable twin so the network can be compiled with ``hybridize()``.
    """
    block = Residual if imperative else HybridResidual
    net = nn.Sequential() if imperative else nn.HybridSequential()
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3),
            nn.BatchNorm(), nn.Activation("relu"),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    for i, (num_residuals, num_channels) in enumerate(stages):
        net.add(resnet_stage(num_residuals, num_channels, first_stage=(i == 0), block=block))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


_REGISTRY = {
    "resnet18_d2l": resnet18_d2l,
}


def list_models():
    """Names ``get_model`` accepts."""
    return sorted(_REGISTRY)


def get_model(name, num_classes=10, **options):
    """Build a registered network (parameters not yet initialised)."""
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name](num_classes=num_classes, **options)
