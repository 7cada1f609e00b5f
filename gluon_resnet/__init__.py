"""gluon_resnet: residual networks on MXNet Gluon, taught as the d2l lesson does and run for real."""
import sys

from .errors import UserError
from .runtime import configure_threads

try:
    configure_threads()  # must precede the first `import mxnet` in this process
except UserError as err:  # a malformed setting in the environment: one line, before any traceback
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2) from None

from mxnet import npx  # noqa: E402

npx.set_np()

from .blocks import (BasicBlock, BasicBlockV2, Bottleneck, BottleneckV2,  # noqa: E402
                     ResNeXtBlock, Residual)
from .data import (get_fashion_mnist_labels, load_data_fashion_mnist,  # noqa: E402
                   load_fashion_mnist)
from .errors import DataError  # noqa: E402
from .models import ResNet, get_model, list_models, resnet18_d2l  # noqa: E402
from .runtime import devices  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Residual", "resnet18_d2l", "get_model", "list_models", "load_fashion_mnist",
           "load_data_fashion_mnist", "get_fashion_mnist_labels", "devices", "UserError",
           "DataError", "configure_threads", "ResNet", "BasicBlock", "Bottleneck", "BasicBlockV2",
           "BottleneckV2", "ResNeXtBlock"]
# layer_table and count_params live in gluon_resnet.shapes (also a `python -m` CLI, so not imported here)
