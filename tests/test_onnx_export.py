"""ONNX export: every registry family, checked by onnxruntime against MXNet on the same inputs."""
import json

import numpy as np
import pytest

import mxnet as mx
from mxnet.gluon import nn

from gluon_resnet import evaluate, onnx_export, train
from gluon_resnet.errors import UserError
from gluon_resnet.models import get_model

TOLERANCE = 1e-4  # largest logit difference allowed between MXNet and onnxruntime

# Each family in a small size: a stage or two of narrow blocks, so the whole set runs in seconds.
FAMILIES = {
    "basic (option B)": ("resnet18", dict(layer_dims=(1, 1), channels=(8, 16))),
    "option C": ("resnet18", dict(layer_dims=(1, 1), channels=(8, 16), shortcut="C")),
    "bottleneck": ("resnet50", dict(layer_dims=(1, 1), channels=(4, 8))),
    "pre-activation basic": ("resnet18_v2", dict(layer_dims=(1, 1), channels=(8, 16))),
    "pre-activation bottleneck": ("resnet50_v2", dict(layer_dims=(1, 1), channels=(4, 8))),
    "ResNeXt": ("resnext50_32x4d", dict(layer_dims=(1, 1), channels=(16, 32), groups=4, width_per_group=8)),
    "option A": ("cifar_resnet20", dict(layer_dims=(1, 1, 1), channels=(4, 8, 16))),
    "plain": ("plain18", dict(layer_dims=(1, 1), channels=(8, 16))),
    "plain CIFAR": ("cifar_plain20", dict(layer_dims=(1, 1, 1), channels=(4, 8, 16))),
    "lesson ResNet-18": ("resnet18_d2l", dict(stages=((1, 64), (1, 16)))),
    "simple residual CNN": ("simple_residual_cnn", {}),
    "fmnist_resnet8": ("fmnist_resnet8", {}),
}


def randomized(net, shape, seed=0):
    """``net`` initialised, with random BatchNorm statistics and scales, so that a converter that
    dropped them would show."""
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier())
    net(mx.np.zeros(shape))
    rng = np.random.default_rng(seed)
    for name, param in net.collect_params().items():
        kind = name.rsplit("_", 1)[-1]
        if kind in ("gamma", "var"):
            param.set_data(mx.np.array(rng.uniform(0.5, 2.0, param.shape).astype(np.float32)))
        elif kind in ("beta", "mean"):
            param.set_data(mx.np.array(rng.uniform(-0.5, 0.5, param.shape).astype(np.float32)))
    return net


def check(net, path, shape, batch=3):
    """MXNet against onnxruntime on random inputs of batch 1 and ``batch`` (one file, free batch size)."""
    sess = onnx_export.session(onnx_export.export_onnx(net, path, (1,) + shape))
    X = np.random.default_rng(1).random((batch,) + shape, dtype=np.float32)
    result = onnx_export.parity(net, sess, [X[:1], X])
    assert result["count"] == batch + 1 and result["same_class"] == batch + 1
    assert result["max_abs_diff"] <= TOLERANCE, result
    return result


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exports_and_onnxruntime_agrees(family, tmp_path):
    name, options = FAMILIES[family]
    shape = (1, 28, 28)
    check(randomized(get_model(name, **options), (1,) + shape), tmp_path / "model.onnx", shape)


class LessonStyle(nn.HybridBlock):
    """The lesson's forward written as a HybridBlock (``npx.relu(Y + X)``), plus option A's ``np.pad``:
    numpy-interface operators MXNet 1.9.1's exporter does not know by itself."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2D(4, 3, padding=1, in_channels=2)
        self.conv2 = nn.Conv2D(2, 3, padding=1, in_channels=4)
        self.fc = nn.Dense(10, in_units=4 * 8 * 8)

    def hybrid_forward(self, F, X):
        Y = self.conv2(F.npx.relu(self.conv1(X)))
        Y = F.npx.relu(Y + X)
        return self.fc(F.np.pad(Y, ((0, 0), (1, 1), (0, 0), (0, 0))))


def test_numpy_interface_operators_get_converters(tmp_path):
    net = randomized(LessonStyle(), (1, 2, 8, 8))
    net.hybridize()
    net(mx.np.zeros((1, 2, 8, 8)))
    net.export(str(tmp_path / "sym"))
    ops = {node["op"] for node in json.loads((tmp_path / "sym-symbol.json").read_text())["nodes"]}
    assert {"_npi_add", "_npx_relu", "_npi_pad"} <= ops  # what the converters are for
    check(net, tmp_path / "lesson.onnx", (2, 8, 8))


def test_the_lessons_imperative_net_exports_through_its_twin(tmp_path):
    lesson = randomized(get_model("resnet18_d2l", imperative=True, stages=((1, 64), (1, 16))), (1, 1, 28, 28))
    with pytest.raises(UserError, match="hybrid_twin"):
        onnx_export.export_onnx(lesson, tmp_path / "no.onnx", (1, 1, 28, 28))
    twin = onnx_export.hybrid_twin(lesson, "resnet18_d2l", stages=((1, 64), (1, 16)))
    X = mx.np.array(np.random.default_rng(2).random((3, 1, 28, 28), dtype=np.float32))
    np.testing.assert_allclose(twin(X).asnumpy(), lesson(X).asnumpy(), atol=1e-5)
    check(twin, tmp_path / "twin.onnx", (1, 28, 28))


def test_shipped_weights_agree_with_onnxruntime_on_the_real_test_set(fashion, tmp_path):
    net = get_model("fmnist_resnet8", pretrained=True)
    spec = {"name": "fmnist_resnet8", "num_classes": 10, "imperative": False}
    path, result = onnx_export.export_and_check(net, spec, tmp_path / "m.onnx",
                                                fashion.test_images)
    assert result["count"] == 10000 and result["same_class"] == 10000
    assert result["max_abs_diff"] <= TOLERANCE


def test_evaluate_onnx_writes_the_file_and_reports_parity(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--model", "fmnist_resnet8", "--subset", "200", "--batch-size", "50", "--epochs", "1",
                       "--quiet", "--out", str(run)]) == 0
    assert evaluate.main([str(run), "--subset", "300", "--onnx"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime: same class for 300 of 300 images" in out
    assert str(run / "model.onnx") in out.splitlines()[-1]
    sess = onnx_export.session(run / "model.onnx")
    assert sess.get_inputs()[0].shape[1:] == [1, 28, 28]


def test_export_and_parity_feed_the_net_on_its_own_context(tmp_path):
    """A net loaded on another device (here a second CPU context): the exporter's dummy input and the
    parity check's batches go where its parameters are (a mismatch is an MXNet error)."""
    net = get_model("fmnist_resnet8")
    mx.random.seed(0)
    net.initialize(mx.init.Xavier(), ctx=mx.cpu(1))
    sess = onnx_export.session(onnx_export.export_onnx(net, tmp_path / "m.onnx", (1, 1, 28, 28)))
    X = np.random.default_rng(3).random((4, 1, 28, 28), dtype=np.float32)
    result = onnx_export.parity(net, sess, [X])
    assert result["count"] == 4 and result["same_class"] == 4 and result["max_abs_diff"] <= TOLERANCE


def test_a_failed_export_leaves_the_old_file_and_no_scraps(tmp_path, monkeypatch):
    import mxnet.onnx as mx_onnx

    net = randomized(get_model("fmnist_resnet8"), (1, 1, 28, 28))
    target = tmp_path / "m.onnx"
    target.write_bytes(b"the previous export")

    def half_written(sym, params, shapes, dtype, out, **kwargs):
        open(out, "wb").write(b"half an onnx file")
        raise OSError("No space left on device")
    monkeypatch.setattr(mx_onnx, "export_model", half_written)
    with pytest.raises(OSError, match="No space"):
        onnx_export.export_onnx(net, target, (1, 1, 28, 28))
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"] and target.read_bytes() == b"the previous export"


def test_export_model_reloads_as_a_symbol_block_with_the_same_predictions(tmp_path):
    net = get_model("resnet18_d2l")
    net.initialize(mx.init.Xavier())
    X = mx.np.array(np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32))
    net(X)
    files = onnx_export.export_model(net, tmp_path / "model", (1, 1, 16, 16))
    assert [f.name for f in files] == ["model-symbol.json", "model-0000.params"]
    deployed = onnx_export.load_exported(tmp_path / "model")
    np.testing.assert_allclose(deployed(X).asnumpy(), net(X).asnumpy(), rtol=1e-5, atol=1e-6)
