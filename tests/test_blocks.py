"""Blocks: shapes, the shortcut options, and the lesson block's compiled twin."""
import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, gluon, np, npx

from gluon_resnet import Residual, blocks
from gluon_resnet.blocks import (BasicBlock, BasicBlockV2, Bottleneck, BottleneckV2, HybridResidual,
                                 ResNeXtBlock, SimpleResidual, ZeroPadShortcut, make_shortcut)
from gluon_resnet.errors import UserError
from gluon_resnet.shapes import count_params

FAMILY = [BasicBlock, Bottleneck, BasicBlockV2, BottleneckV2,
          lambda *a, **k: ResNeXtBlock(*a, groups=2, width_per_group=32, **k)]


def random(*shape, seed=0):
    return np.array(onp.random.default_rng(seed).standard_normal(shape), dtype="float32")


def test_lesson_block_keeps_the_shape():
    blk = Residual(3)
    blk.initialize()
    assert blk(np.random.uniform(size=(4, 3, 6, 6))).shape == (4, 3, 6, 6)


def test_lesson_block_with_1x1conv_halves_and_widens():
    blk = Residual(6, use_1x1conv=True, strides=2)
    blk.initialize()
    assert blk(np.random.uniform(size=(4, 3, 6, 6))).shape == (4, 6, 3, 3)


def outputs_and_grads(block, x):
    x = x.copy()
    x.attach_grad()
    with autograd.record():  # training mode: BN uses the batch statistics
        y = block(x)
        loss = (y * y).sum()
    loss.backward()
    grads = {k: p.grad().asnumpy() for k, p in block._collect_params_with_prefix().items()
             if p.grad_req != "null"}
    return y.asnumpy(), x.grad.asnumpy(), grads


@pytest.mark.parametrize("kwargs", [{}, {"use_1x1conv": True, "strides": 2}])
def test_hybridized_twin_matches_the_lesson_block(tmp_path, kwargs):
    x = random(4, 3, 8, 8)
    lesson = Residual(6 if kwargs else 3, **kwargs)
    lesson.initialize(mx.init.Xavier())
    lesson(x)
    lesson.save_parameters(str(tmp_path / "p.params"))
    twin = HybridResidual(6 if kwargs else 3, **kwargs)
    twin.load_parameters(str(tmp_path / "p.params"))  # same names, so the same parameters load
    twin.hybridize()
    y1, dx1, g1 = outputs_and_grads(lesson, x)
    y2, dx2, g2 = outputs_and_grads(twin, x)
    assert g1.keys() == g2.keys() and len(g1) >= 8
    onp.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
    onp.testing.assert_allclose(dx1, dx2, rtol=1e-4, atol=1e-4)
    for name in g1:
        onp.testing.assert_allclose(g1[name], g2[name], rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("make", FAMILY, ids=["basic", "bottleneck", "basic_v2", "bottleneck_v2", "resnext"])
@pytest.mark.parametrize("shortcut", ["A", "B", "C", "none"])
@pytest.mark.parametrize("strides", [1, 2])
def test_every_block_keeps_or_halves_the_shape(make, shortcut, strides):
    blk = make(8, strides=strides, in_channels=8, shortcut=shortcut)
    blk.initialize()
    out = blk(random(2, 8, 6, 6))
    assert out.shape == (2, 8 * blk.expansion, 6 // strides, 6 // strides)
    assert onp.isfinite(out.asnumpy()).all()


def test_option_a_subsamples_and_pads_with_real_zeros():
    x = random(2, 3, 5, 5)
    y = ZeroPadShortcut(extra=5, strides=2)(x).asnumpy()
    assert y.shape == (2, 8, 3, 3)
    onp.testing.assert_array_equal(y[:, :3], x.asnumpy()[:, :, ::2, ::2])
    assert (y[:, 3:] == 0).all()


def test_option_a_block_adds_input_only_to_the_old_channels():
    blk = BasicBlock(8, strides=2, in_channels=4, shortcut="A")
    blk.initialize(mx.init.Xavier())
    x = random(2, 4, 6, 6)
    body, out = blk.body(x).asnumpy(), blk(x).asnumpy()
    sub = x.asnumpy()[:, :, ::2, ::2]
    onp.testing.assert_allclose(out[:, :4], onp.maximum(body[:, :4] + sub, 0), atol=1e-6)
    onp.testing.assert_allclose(out[:, 4:], onp.maximum(body[:, 4:], 0), atol=1e-6)
    assert count_params(blk.shortcut) == 0


def test_shortcut_options_b_and_c():
    assert make_shortcut("B", 16, 16, 1) is None                 # B: identity where shapes agree
    assert count_params(make_shortcut("B", 16, 32, 2)) == 16 * 32 + 2 * 32  # 1x1 conv + BN
    assert count_params(make_shortcut("C", 16, 16, 1)) == 16 * 16 + 2 * 16  # C: projection always
    assert make_shortcut("A", 16, 16, 1) is None
    with pytest.raises(UserError, match="choose one of: A, B, C, none"):
        make_shortcut("D", 16, 16, 1)


def test_plain_block_has_no_shortcut():
    blk = BasicBlock(4, in_channels=4, shortcut="none")
    blk.initialize(mx.init.Xavier())
    x = random(2, 4, 5, 5)
    onp.testing.assert_allclose(blk(x).asnumpy(), npx.relu(blk.body(x)).asnumpy(), atol=1e-6)


def test_pre_activation_block_adds_identity_after_everything():
    blk = BasicBlockV2(4, in_channels=4)
    blk.initialize(mx.init.Xavier())
    x = random(2, 4, 5, 5)
    expected = x + blk.body(npx.relu(blk.bn(x)))
    onp.testing.assert_allclose(blk(x).asnumpy(), expected.asnumpy(), atol=1e-6)
    assert (blk(x).asnumpy() < 0).any()  # no ReLU after the sum


def test_bottleneck_reduces_then_expands_four_times():
    blk = Bottleneck(16, in_channels=64)
    weights = [layer.weight.shape for layer in blk.body if hasattr(layer, "weight")
               and len(layer.weight.shape) == 4]
    assert weights == [(16, 64, 1, 1), (16, 16, 3, 3), (64, 16, 1, 1)]


def test_resnext_groups_means_number_of_groups():
    blk = ResNeXtBlock(64, in_channels=256, groups=32, width_per_group=4)  # ResNeXt-50's first stage
    grouped = blk.body[3]
    assert grouped.weight.shape == (128, 128 // 32, 3, 3)  # 32 groups of 4 channels each


def test_bn_free_block_of_the_mnist_tutorial():
    blk = SimpleResidual(16)
    blk.initialize(mx.init.Xavier())
    x = random(2, 16, 6, 6)
    expected = npx.relu(x + blk.conv2(npx.relu(blk.conv1(x))))
    onp.testing.assert_allclose(blk(x).asnumpy(), expected.asnumpy(), atol=1e-6)
    assert count_params(blk) == 2 * (16 * 16 * 9 + 16)


class _SumRelu(gluon.nn.HybridBlock):
    def hybrid_forward(self, F, a, b):
        return blocks.relu(F, blocks.add(F, a, b))


@pytest.mark.parametrize("hybridize", [False, True])
def test_onednn_sum_and_relu_equal_the_numpy_ops_with_gradients(hybridize):
    rng = onp.random.default_rng(0)
    a, b = (mx.np.array(rng.normal(size=(2, 3, 4, 4)).astype("float32")) for _ in range(2))
    for x in (a, b):
        x.attach_grad()
    block = _SumRelu()
    if hybridize:
        block.hybridize()
    with autograd.record():
        out = block(a, b)
        (out * out).sum().backward()
    want = onp.maximum(a.asnumpy() + b.asnumpy(), 0)
    onp.testing.assert_allclose(out.asnumpy(), want, rtol=1e-6)
    onp.testing.assert_allclose(a.grad.asnumpy(), 2 * want, rtol=1e-6)
    onp.testing.assert_allclose(b.grad.asnumpy(), 2 * want, rtol=1e-6)
    assert isinstance(out, mx.np.ndarray)


def test_inception_concatenates_its_paths_and_can_drop_some():
    from gluon_resnet.blocks import Inception
    x = random(2, 8, 6, 6)
    full = Inception(2, (2, 3), (1, 4), 5, in_channels=8)
    full.initialize()
    assert full(x).shape == (2, 2 + 3 + 4 + 5, 6, 6) and len(full.paths) == 4
    pooled_path = full(x)[:, 9:].asnumpy()
    assert (pooled_path >= 0).all()  # every path ends in a ReLU
    two = Inception(2, (2, 3), (0, 0), 0, in_channels=8)
    two.initialize()
    assert two(x).shape == (2, 5, 6, 6) and len(two.paths) == 2
    eager = two(x).asnumpy()
    two.hybridize()
    onp.testing.assert_allclose(two(x).asnumpy(), eager, rtol=1e-5, atol=1e-6)
