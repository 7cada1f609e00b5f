"""The model zoo: trained weights that ship inside the package, read by ``get_model(pretrained=True)``.

``gluon_resnet/weights/NAME.params`` holds a network's parameters (``net.save_parameters``) and
``NAME.json`` beside it the manifest: the file's sha256, the test accuracy on the 10,000 real test
images, the training command, the date and the CPU. Loading checks the hash, offline. The files are
made by ``python -m gluon_resnet.pretrained --from-run DIR``; this module only reads them, so that
``models`` can use it without reaching up to the training code.
"""
import hashlib
import json
from pathlib import Path

from .errors import UserError

WEIGHTS = Path(__file__).resolve().parent / "weights"
REMAKE = "reinstall the package, or remake the file with python -m gluon_resnet.pretrained --from-run DIR"


def shipped(folder=None):
    """Names that have weights in ``folder`` (default: the package's own).

    >>> 'fmnist_resnet8' in shipped()
    True
    """
    return sorted(p.stem for p in Path(folder or WEIGHTS).glob("*.json"))


def manifest(name, folder=None):
    """The manifest of ``name``'s weights as a dict; UserError if there are none or it is unreadable."""
    path = Path(folder or WEIGHTS) / f"{name}.json"
    if not path.is_file():
        have = ", ".join(shipped(folder)) or "none"
        raise UserError(f"no shipped weights for {name!r} (weights ship for: {have}); "
                        "train it with python -m gluon_resnet.train --model NAME --out DIR")
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError, UnicodeDecodeError):
        raise UserError(f"{path} is damaged; {REMAKE}") from None


def read_weights(name, folder=None):
    """``(manifest, parameter bytes)`` of ``name``, the bytes checked against the manifest's sha256."""
    info = manifest(name, folder)
    path = Path(folder or WEIGHTS) / info["file"]
    try:
        data = path.read_bytes()
    except OSError:
        raise UserError(f"{path} is missing or unreadable; {REMAKE}") from None
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise UserError(f"{path} is damaged (its sha256 differs from the one in {name}.json); {REMAKE}")
    return info, data


def load_pretrained(net, name, num_classes=10, in_channels=1, ctx=None, folder=None):
    """Load ``name``'s shipped weights into the built ``net``; refuse other classes or channels."""
    import mxnet as mx

    from .checkpoint import restore  # the parameters' bytes, as a checkpoint holds them

    info = manifest(name, folder)
    if (num_classes, in_channels) != (info["num_classes"], info["in_channels"]):
        raise UserError(f"the shipped {name} weights have {info['num_classes']} classes and "
                        f"{info['in_channels']} input channel(s), not {num_classes} and {in_channels}; "
                        "use pretrained=False and train the network for your data")
    info, data = read_weights(name, folder)
    restore(net, {"params": data}, ctx or mx.cpu(), where=f"the shipped {name} weights")
    return net
