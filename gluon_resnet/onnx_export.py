"""Deploy: through ONNX (export with MXNet's own exporter, run and check with onnxruntime), or in
MXNet's own symbol format (``export_model``, ``load_exported``).

MXNet 1.9.1 ships an exporter (``mx.onnx.export_model``) that knows MXNet's classic operators
(``Convolution``, ``Activation``, ``elemwise_add``, ...), which the package's compiled blocks emit,
but none of the numpy-interface operators that numpy-style code turns into when it is hybridized:
``x + y`` becomes ``_npi_add``, ``npx.relu`` ``_npx_relu`` and ``np.pad`` (option A's shortcut)
``_npi_pad``. ``register_converters`` adds those three to MXNet's converter registry, so every
registry network exports without changing how its code reads.

The lesson's imperative ResNet-18 (``nn.Block``) has no graph to export; ``hybrid_twin`` copies its
parameters into the compiled twin, which the tests prove computes the same function.
"""
import ast
import os
import tempfile
from pathlib import Path

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
import numpy as np
from mxnet.gluon import HybridBlock

from .errors import UserError
from .files import _public, replacing
from .models import hybridize_static
from .runtime import context_of

ONNX_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect"}
_registered = False


def _onnx_modules():
    """MXNet's exporter and its op-translation helpers; a UserError if onnx is missing."""
    try:
        import onnx  # noqa: F401
        from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
        from mxnet.onnx.mx2onnx._op_translations import _op_translations_opset12 as ops
    except ImportError as err:
        raise UserError(f"ONNX export needs the onnx package ({err}): "
                        "pip install -r requirements.txt") from None
    return MXNetGraph, ops


def convert_npi_pad(node, **kwargs):
    """``_npi_pad`` (``np.pad``) as ONNX ``Pad``: numpy's ((before, after), ...) pairs become ONNX's
    [all befores, all afters]; the pad widths and the fill value are constant inputs (opset >= 11)."""
    from onnx.helper import make_node

    _, ops = _onnx_modules()
    name, inputs, attrs = ops.get_inputs(node, kwargs)
    mode = attrs.get("mode", "constant")
    if mode not in ONNX_PAD_MODES:
        raise NotImplementedError(f"np.pad mode {mode!r} has no ONNX equivalent")
    pairs = ast.literal_eval(attrs["pad_width"])
    ops.create_const_node(f"{name}_pads", np.array([b for b, _ in pairs] + [a for _, a in pairs],
                                                   dtype=np.int64), kwargs)
    pad_inputs = [inputs[0], f"{name}_pads"]
    if mode == "constant":
        dtype = ops.get_input_dtypes(node, kwargs)[0]
        ops.create_const_scalar_node(f"{name}_value", dtype.type(float(attrs.get("constant_value", 0))),
                                     kwargs)
        pad_inputs.append(f"{name}_value")
    return [make_node("Pad", pad_inputs, [name], mode=ONNX_PAD_MODES[mode], name=name)]


def register_converters():
    """Teach MXNet's exporter ``_npi_add`` (ONNX ``Add``, which broadcasts as numpy does),
    ``_npx_relu`` (``Relu``) and ``_npi_pad`` (``Pad``). Safe to call more than once."""
    global _registered
    if _registered:
        return
    graph, ops = _onnx_modules()
    graph.register("_npi_add")(lambda node, **kw: ops.create_basic_op_node("Add", node, kw))
    graph.register("_npx_relu")(lambda node, **kw: ops.create_basic_op_node("Relu", node, kw))
    graph.register("_npi_pad")(convert_npi_pad)
    _registered = True


def hybrid_twin(net, name="resnet18_d2l", **options):
    """The compiled twin of an imperative registry net (``get_model(name, imperative=True)``),
    carrying the same parameters: the graph the exporter needs, the same function."""
    from .models import get_model

    twin = get_model(name, imperative=False, **options)
    with tempfile.TemporaryDirectory() as tmp:
        net.save_parameters(os.path.join(tmp, "p.params"))
        twin.load_parameters(os.path.join(tmp, "p.params"), ctx=mx.cpu())
    return twin


def export_onnx(net, path, input_shape, dynamic_batch=True):
    """Write ``net`` as the ONNX file ``path`` for inputs of ``input_shape`` (N, C, H, W).

    With ``dynamic_batch`` the batch dimension is left free, so one file serves batch 1 and
    batch 256. The file is renamed into place only when complete. Returns its path.
    """
    if not isinstance(net, HybridBlock):
        raise UserError("only a HybridBlock has a graph to export; for the lesson's imperative "
                        "ResNet-18 export onnx_export.hybrid_twin(net), which holds the same parameters")
    register_converters()
    import mxnet.onnx as mx_onnx

    path = Path(path)
    hybridize_static(net)
    net(mx.np.zeros(input_shape, ctx=context_of(net)))
    with tempfile.TemporaryDirectory(prefix="gluon-resnet-onnx-") as tmp, replacing(path) as (out,):
        net.export(os.path.join(tmp, "net"), epoch=0)  # the graph and weights the exporter reads
        dynamic = [(None,) + tuple(input_shape[1:])] if dynamic_batch else None
        mx_onnx.export_model(os.path.join(tmp, "net-symbol.json"), os.path.join(tmp, "net-0000.params"),
                             [tuple(input_shape)], np.float32, out, dynamic=dynamic_batch,
                             dynamic_input_shapes=dynamic)
    return path


def session(path, threads=None):
    """An onnxruntime session for the file ``path`` on the CPU, with ``threads`` intra-op threads
    (default: as many as this process may use, as MXNet does)."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise UserError(f"running ONNX files needs onnxruntime ({err}): pip install -r requirements.txt") from None
    from .runtime import usable_cpus

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS") or usable_cpus())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(sess, images):
    """onnxruntime's outputs for the float32 batch ``images`` (N, C, H, W), as a numpy array."""
    return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(images, dtype=np.float32)})[0]


def parity(net, sess, batches):
    """Compare ``net`` (MXNet) with ``sess`` (onnxruntime) on float32 ``batches`` (N, C, H, W):
    ``{"count", "same_class", "max_abs_diff"}``, the last the largest logit difference seen."""
    count, same, worst, ctx = 0, 0, 0.0, context_of(net)
    for batch in batches:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        ours = net(mx.np.array(batch, ctx=ctx)).asnumpy()
        theirs = run_session(sess, batch)
        count += len(batch)
        same += int((ours.argmax(axis=1) == theirs.argmax(axis=1)).sum())
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return {"count": count, "same_class": same, "max_abs_diff": worst}


def export_and_check(net, model, path, images, batch_size=500):
    """``evaluate --onnx``: write a run's net (``model``: its ``RunRecord.model``) to ``path`` and
    compare onnxruntime with MXNet on uint8 ``images`` (N, H, W). Returns ``(path, parity)``."""
    from .data import ArrayLoader

    if not isinstance(net, HybridBlock):  # a run trained with --imperative
        net = hybrid_twin(net, model["name"], num_classes=model["num_classes"])
    path = export_onnx(net, path, (1, 1) + images.shape[1:])
    loader = ArrayLoader(images, np.zeros(len(images), dtype=np.int32), batch_size)
    return path, parity(net, session(path), (X.asnumpy() for X, _ in loader))


# ---------------------------------------------------------------------------- MXNet's own format

def export_model(net, prefix, input_shape, ctx=None):
    """Write ``PREFIX-symbol.json`` and ``PREFIX-0000.params`` for deployment (``HybridBlock.export``).

    The graph is traced on one zero batch of ``input_shape``; both files are renamed into place
    only once both are written. Reload with ``load_exported(prefix)``.
    """
    prefix = Path(prefix)
    hybridize_static(net)
    net(mx.np.zeros(input_shape, ctx=ctx or mx.cpu()))
    targets = [prefix.parent / f"{prefix.name}-symbol.json", prefix.parent / f"{prefix.name}-0000.params"]
    with tempfile.TemporaryDirectory(prefix="gluon_resnet-export-") as folder, \
            replacing(*targets) as temps:
        net.export(os.path.join(folder, prefix.name), epoch=0)
        for target, tmp in zip(targets, temps):
            Path(tmp).write_bytes((Path(folder) / target.name).read_bytes())
    return targets


def load_exported(prefix, ctx=None):
    """The exported network as a ``gluon.SymbolBlock``, independent of this package's classes."""
    import warnings

    with warnings.catch_warnings():  # "cannot decide type for data": it is float32, set at first call
        warnings.simplefilter("ignore", UserWarning)
        return mx.gluon.SymbolBlock.imports(f"{prefix}-symbol.json", ["data"], f"{prefix}-0000.params",
                                            ctx=ctx or mx.cpu())
