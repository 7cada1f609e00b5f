"""Walk a network layer by layer: output shape, parameters and multiply-adds of each.

``layer_table`` returns the rows (for notebooks); ``python -m gluon_resnet.shapes`` prints them,
and ``--table`` prints the README's table of every registered model. Multiply-adds are counted
as the paper counts FLOPs: convolutions and dense layers only (BN, ReLU, pooling and the additions
count 0), each as weight size x output positions, for the whole input batch.
"""
import math
import sys
import warnings

from mxnet import np  # the package's __init__ has already set the thread count
from mxnet.base import MXNetError
from mxnet.gluon import nn
from tqdm import tqdm

from .blocks import HybridResidual, Residual
from .cli import ArgumentParser, friendly
from .errors import UserError
from .models import get_model, list_models


def count_params(net):
    """Trainable parameters (``grad_req`` not 'null'); shapes must be known (``in_channels`` or a forward).

    >>> count_params(nn.Dense(10, in_units=512))
    5130
    """
    total = 0
    for param in net.collect_params().values():
        if param.grad_req == "null":
            continue
        if param.shape is None or any(d <= 0 for d in param.shape):
            raise ValueError(f"{param.name} has unknown shape {param.shape}: run one forward pass first")
        total += math.prod(param.shape)
    return total


def children(block):
    """The registered sub-blocks of ``block``, as (name, block) pairs in order."""
    return list(block._children.items())


def layer_macs(layer, output_shape):
    """Multiply-adds of one leaf layer for its output: conv and dense only, as the paper counts."""
    if isinstance(layer, nn.Conv2D):
        return math.prod(layer.weight.shape) * output_shape[0] * math.prod(output_shape[2:])
    if isinstance(layer, nn.Dense):
        return math.prod(layer.weight.shape) * math.prod(output_shape[:-1])
    return 0


def _record(net, input_shape):
    """Run ``net`` once on zeros of ``input_shape`` with hooks; return {id(block): (shape, macs)}."""
    seen = {}

    def hook(block, _inputs, output):
        shape = tuple(output.shape)
        seen[id(block)] = (shape, 0 if children(block) else layer_macs(block, shape))

    handles, stack = [], [net]
    while stack:
        block = stack.pop()
        handles.append(block.register_forward_hook(hook))
        stack.extend(child for _, child in children(block))
    with warnings.catch_warnings():  # initialise only what is not yet initialised
        warnings.simplefilter("ignore")
        net.initialize()
    if isinstance(net, nn.HybridBlock):
        net.hybridize(active=False)  # hooks on inner layers only fire when run eagerly
    try:
        net(np.zeros(input_shape))
    except MXNetError as err:  # MXNet's message is a C++ traceback whose last line says what failed
        last = str(err).strip().splitlines()[-1].replace("MXNetError: ", "")
        raise UserError(f"the network cannot take an input of shape {tuple(input_shape)}, "
                        f"too small for its layers ({last}): use a larger input") from None
    finally:
        for handle in handles:
            handle.detach()
    return seen


def _subtree_macs(block, seen):
    own = seen.get(id(block), (None, 0))[1]
    return own + sum(_subtree_macs(child, seen) for _, child in children(block))


def layer_table(net, input_shape, depth=1):
    """One row per layer down to ``depth`` levels of nesting: name, kind, output_shape, params, macs, level.

    Initialises parameters that are not yet initialised and runs ``net`` eagerly once (a hybridized
    net is switched back to imperative mode).

    >>> from gluon_resnet import get_model
    >>> rows = layer_table(get_model("simple_residual_cnn"), (1, 1, 28, 28))
    >>> [(r["kind"], r["output_shape"]) for r in rows][-2:]
    [('Flatten', (1, 512)), ('Dense', (1, 10))]
    """
    seen = _record(net, input_shape)
    rows = []

    def walk(block, prefix, level):
        for name, child in children(block):
            shape = seen.get(id(child), (None, 0))[0]
            rows.append(dict(name=prefix + name, kind=type(child).__name__, output_shape=shape,
                             params=count_params(child), macs=_subtree_macs(child, seen), level=level))
            if level < depth:
                walk(child, prefix + name + ".", level + 1)

    walk(net, "", 1)
    return rows


def totals(net, rows):
    """Parameters of ``net`` and multiply-adds of the top-level rows."""
    return count_params(net), sum(r["macs"] for r in rows if r["level"] == 1)


def weighted_depth(net):
    """Conv and dense layers on the main path, skipping shortcut projections: the "18" in ResNet-18."""
    count = 0
    for name, child in children(net):
        if name == "shortcut" or (name == "conv3" and isinstance(net, (Residual, HybridResidual))):
            continue
        count += 1 if isinstance(child, (nn.Conv2D, nn.Dense)) else weighted_depth(child)
    return count


def table_setting(name):
    """The input shape and classes a model is shown with in the README table."""
    if name.startswith("cifar_"):
        return (1, 3, 32, 32), 10
    if name == "simple_residual_cnn" or name.startswith("fmnist_"):
        return (1, 1, 28, 28), 10
    if name == "resnet18_d2l":
        return (1, 1, 224, 224), 10
    return (1, 3, 224, 224), 1000


def human(number):
    """12345678 -> '12.35M': three or four significant figures with a k/M/G suffix."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if number >= size:
            return f"{number / size:.2f}{suffix}"
    return str(number)


def format_walk(net, rows):
    """The walk as aligned text, nested rows indented, then the totals."""
    lines = [f"{'layer':<28} {'kind':<18} {'output shape':<20} {'params':>12} {'mult-adds':>10}"]
    for r in rows:
        name = "  " * (r["level"] - 1) + r["name"]
        shape = "x".join(map(str, r["output_shape"] or ("-",)))
        lines.append(f"{name:<28} {r['kind']:<18} {shape:<20} {r['params']:>12,} {human(r['macs']):>10}")
    params, macs = totals(net, rows)
    lines.append(f"total: {params:,} trainable parameters, {macs:,} multiply-adds ({human(macs)})")
    return "\n".join(lines)


def model_table(names=None, progress=None):
    """The README's markdown table: model, depth, input, classes, parameters, multiply-adds."""
    lines = ["| model | depth | input | classes | params | multiply-adds |",
             "|---|---:|---|---:|---:|---:|"]
    for name in names or list_models(ordered=True):
        shape, classes = table_setting(name)
        net = get_model(name, num_classes=classes, in_channels=shape[1])
        params, macs = totals(net, layer_table(net, shape))
        size = "x".join(map(str, shape[1:]))
        lines.append(f"| {name} | {weighted_depth(net)} | {size} | {classes} | {params:,} | {human(macs)} |")
        if progress:
            progress(name)
    return "\n".join(lines)


def parse_shape(text):
    """'1,1,224,224' -> (1, 1, 224, 224); anything else is a UserError."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise UserError(f"--input must be four positive integers N,C,H,W like 1,1,224,224, not {text!r}")
    return shape


def parse_args(argv=None):
    parser = ArgumentParser(
        prog="python -m gluon_resnet.shapes",
        description="Walk a network: each layer's output shape, trainable parameters and multiply-adds "
                    "(convolutions and dense layers, as the ResNet paper counts FLOPs), then totals.")
    parser.add_argument("model", nargs="?", default="resnet18_d2l",
                        help="a name from the registry (default: resnet18_d2l); see --list")
    parser.add_argument("--input", default="1,1,224,224", metavar="N,C,H,W",
                        help="input shape; C sets the network's input channels (default: 1,1,224,224)")
    parser.add_argument("--classes", type=int, default=10, help="output classes (default: 10)")
    parser.add_argument("--depth", type=int, default=1,
                        help="levels of nesting to show: 1 = top-level layers, 2 = also their blocks, ...")
    parser.add_argument("--list", action="store_true", help="print the registered model names and exit")
    parser.add_argument("--table", action="store_true",
                        help="print the README's markdown table of every model (takes a minute or two)")
    return parser.parse_args(argv)


@friendly
def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print("\n".join(list_models()))
    elif args.table:
        names = list_models(ordered=True)
        with tqdm(total=len(names), disable=not sys.stderr.isatty(), desc="models") as bar:
            print(model_table(names, progress=lambda _: bar.update()))
    else:
        shape = parse_shape(args.input)
        net = get_model(args.model, num_classes=args.classes, in_channels=shape[1])
        print(format_walk(net, layer_table(net, shape, depth=args.depth)))


if __name__ == "__main__":
    main()
