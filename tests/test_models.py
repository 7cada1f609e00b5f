"""The registry: every name builds, trains a step, and has the published parameter count."""
import re
import doctest

import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, gluon, np

import gluon_resnet
from gluon_resnet import blocks, models, shapes
from gluon_resnet.errors import UserError
from gluon_resnet.models import ResNet, get_model, list_models, resnet18_d2l
from gluon_resnet.shapes import count_params

# torchvision's counts for the same architectures (1000 classes, RGB input)
IMAGENET_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
                   "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904}
CIFAR_TABLE6 = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}  # millions, option A, 10 classes


@pytest.mark.parametrize("name", IMAGENET_PARAMS)
def test_imagenet_counts_equal_the_standard_implementations(name):
    assert count_params(get_model(name, num_classes=1000, in_channels=3)) == IMAGENET_PARAMS[name]


@pytest.mark.parametrize("depth", CIFAR_TABLE6)
def test_cifar_counts_match_the_paper_table_6(depth):
    millions = count_params(get_model(f"cifar_resnet{depth}", in_channels=3)) / 1e6
    assert round(millions, 1 if depth == 110 else 2) == CIFAR_TABLE6[depth]


def test_lesson_resnet18_count_both_ways():
    for imperative in (False, True):
        net = get_model("resnet18_d2l", imperative=imperative)
        net.initialize()
        net(np.zeros((1, 1, 32, 32)))  # its inner convs infer their input width
        assert count_params(net) == 11_178_378


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_forward_and_backward(name):
    mx.random.seed(0)
    net = get_model(name, imperative=True)  # train.py passes the flag for any name
    net.initialize(mx.init.Xavier())
    x, y = np.random.uniform(size=(2, 1, 32, 32)), np.array([3, 7])
    with autograd.record():
        out = net(x)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(out, y).mean()
    loss.backward()
    assert out.shape == (2, 10)
    first = next(p for p in net.collect_params().values() if p.name.endswith("weight"))
    grad = first.grad().asnumpy()
    assert onp.isfinite(grad).all() and onp.abs(grad).sum() > 0


def test_fmnist_resnet8_is_small_and_works_at_14_7_and_4_pixels():
    net = get_model("fmnist_resnet8")
    rows = {r["name"]: r for r in shapes.layer_table(net, (1, 1, 28, 28))}
    assert [rows[s]["output_shape"] for s in ("stem", "stage1", "stage2", "stage3")] == [
        (1, 32, 14, 14), (1, 32, 14, 14), (1, 64, 7, 7), (1, 128, 4, 4)]
    assert shapes.weighted_depth(net) == 8
    lesson = get_model("resnet18_d2l")
    lesson_macs = shapes.totals(lesson, shapes.layer_table(lesson, (1, 1, 28, 28)))[1]
    macs = shapes.totals(net, list(rows.values()))[1]
    assert count_params(net) * 30 < count_params(lesson) and macs * 3 < lesson_macs


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UserError) as err:
        get_model("resnet19")
    assert "resnet19" in str(err.value) and "resnet18, resnet18_d2l" in str(err.value)


@pytest.mark.parametrize("options, says", [({"num_classes": 0}, "num_classes must be a whole number of at least 1, not 0"),
                                           ({"num_classes": 2.5}, "not 2.5"),
                                           ({"in_channels": -1}, "in_channels must be a whole number of at least 1")])
def test_impossible_class_or_channel_counts_are_one_line_errors(options, says):
    with pytest.raises(UserError, match=re.escape(says)):
        get_model("resnet18_d2l", **options)


def test_cifar_shortcut_is_selectable():
    counts = {s: count_params(get_model("cifar_resnet20", shortcut=s)) for s in "ABC"}
    assert counts["A"] < counts["B"] < counts["C"]
    with pytest.raises(UserError, match="unknown shortcut"):
        get_model("cifar_resnet20", shortcut="D")


def residual_flags(net):
    found = [blk.residual for blk in net.stage1] + [blk.residual for blk in net.stage2]
    return set(found)


def test_plain_twins_are_the_same_nets_without_shortcuts():
    assert residual_flags(get_model("plain34")) == {False}
    assert residual_flags(get_model("resnet34")) == {True}
    # option A shortcuts have no parameters, so the CIFAR twins have exactly the same count
    for depth in CIFAR_TABLE6:
        assert count_params(get_model(f"cifar_plain{depth}")) == \
            count_params(get_model(f"cifar_resnet{depth}"))


def test_layer_dims_constructor_downsamples_only_in_the_first_block_of_a_stage():
    net = ResNet(layer_dims=[2, 2, 2, 2])
    assert count_params(net) == count_params(get_model("resnet18"))
    for stage in (net.stage2, net.stage3, net.stage4):
        strides = [blk.body[0]._kwargs["stride"] for blk in stage]
        assert strides == [(2, 2), (1, 1)]


def test_in_channels_and_classes_shape_the_first_and_last_layer():
    net = get_model("resnet50_v2", num_classes=7, in_channels=3)
    assert net.stem[0].weight.shape == (64, 3, 7, 7)
    assert net.fc.weight.shape == (7, 2048)
    assert hasattr(net, "post")  # pre-activation nets end with BN-ReLU before pooling


def test_hybridized_family_net_matches_eager():
    net = get_model("cifar_resnet20", in_channels=3)
    net.initialize(mx.init.Xavier())
    x = np.random.uniform(size=(2, 3, 16, 16))
    eager = net(x).asnumpy()
    net.hybridize()
    onp.testing.assert_allclose(net(x).asnumpy(), eager, rtol=1e-5, atol=1e-5)


def test_lesson_net_hybridized_matches_the_imperative_lesson_blocks(tmp_path):
    x = np.random.uniform(size=(2, 1, 32, 32))
    lesson = resnet18_d2l(imperative=True)
    lesson.initialize(mx.init.Xavier())
    lesson(x)
    lesson.save_parameters(str(tmp_path / "p.params"))
    fast = resnet18_d2l()
    fast.load_parameters(str(tmp_path / "p.params"))
    fast.hybridize()
    with autograd.record():
        a, b = lesson(x), fast(x)
    onp.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-4, atol=1e-4)


def test_public_names():
    assert gluon_resnet.get_model is get_model and gluon_resnet.list_models is list_models
    assert {"ResNet", "BasicBlock", "Bottleneck", "ResNeXtBlock"} <= set(gluon_resnet.__all__)


@pytest.mark.parametrize("module", [blocks, models, shapes], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_fmnist_resnet8_wide_is_the_same_walk_half_again_as_wide():
    narrow, wide = get_model("fmnist_resnet8"), get_model("fmnist_resnet8_wide")
    rows = {r["name"]: r for r in shapes.layer_table(wide, (1, 1, 28, 28))}
    assert [rows[s]["output_shape"] for s in ("stem", "stage1", "stage2", "stage3")] == [
        (1, 48, 14, 14), (1, 48, 14, 14), (1, 96, 7, 7), (1, 192, 4, 4)]
    assert shapes.weighted_depth(wide) == shapes.weighted_depth(narrow) == 8
    macs = [shapes.totals(n, shapes.layer_table(n, (1, 1, 28, 28)))[1] for n in (narrow, wide)]
    assert 2 < macs[1] / macs[0] < 2.5  # 1.5x the width: about 1.5**2 the work


def test_fmnist_resnet9_is_resnet8_with_a_full_resolution_convolution_before_its_stride_2_stem():
    base, fine = get_model("fmnist_resnet8"), get_model("fmnist_resnet9")
    rows = shapes.layer_table(fine, (1, 1, 28, 28), depth=2)
    stem = [r["output_shape"] for r in rows if r["name"].startswith("stem.") and r["kind"] == "Conv2D"]
    assert stem == [(1, 16, 28, 28), (1, 32, 14, 14)]
    walk = [{r["name"]: r["output_shape"] for r in shapes.layer_table(n, (1, 1, 28, 28))} for n in (base, fine)]
    assert walk[0] == walk[1]  # from the stem's output on, the same walk of shapes
    assert (shapes.weighted_depth(base), shapes.weighted_depth(fine)) == (8, 9)
    macs = [shapes.totals(n, shapes.layer_table(n, (1, 1, 28, 28)))[1] for n in (base, fine)]
    assert 1.05 < macs[1] / macs[0] < 1.2  # the cheap part of the net: under a fifth more work


def test_fmnist_resnet15_is_resnet9_with_two_blocks_a_stage():
    nine, fifteen = get_model("fmnist_resnet9"), get_model("fmnist_resnet15")
    tables = [shapes.layer_table(n, (1, 1, 28, 28)) for n in (nine, fifteen)]
    walk = [{r["name"]: r["output_shape"] for r in table} for table in tables]
    assert walk[0] == walk[1]  # the same stem and the same sizes and widths at each stage's end
    assert [len(getattr(n, s)) for n in (nine, fifteen) for s in ("stage1", "stage2", "stage3")] == [1] * 3 + [2] * 3
    assert (shapes.weighted_depth(nine), shapes.weighted_depth(fifteen)) == (9, 15)
    macs = [shapes.totals(n, table)[1] for n, table in zip((nine, fifteen), tables)]
    assert 1.8 < macs[1] / macs[0] < 2.3  # a second block per stage: about twice the work per image


def _relu(x):
    return mx.np.maximum(x, 0)


def test_zero_init_starts_every_block_as_its_shortcut():
    for zero_init in (True, False):
        net = get_model("fmnist_resnet8", zero_init=zero_init)
        net.initialize(mx.init.Xavier())
        for blk in net.blocks():
            x = mx.np.random.uniform(-1, 1, size=(2, blk.body[0].weight.shape[1], 8, 8))
            through = x if blk.shortcut is None else blk.shortcut(x)
            assert onp.allclose(blk(x).asnumpy(), _relu(through).asnumpy(), atol=1e-6) == zero_init
    assert len(get_model("fmnist_resnet8", zero_init=True).blocks()) == 3


def test_weight_decay_leaves_bn_and_biases_alone():
    from gluon_resnet.models import exclude_from_weight_decay

    net = get_model("fmnist_resnet8")
    names = exclude_from_weight_decay(net)
    net.initialize(mx.init.Xavier())
    params = net.collect_params()
    assert names and all(params[n].wd_mult == 0 for n in names)
    decayed = [n for n in params if n.endswith("weight")]
    assert decayed and all(params[n].wd_mult == 1 for n in decayed)
    before = {n: params[n].data().asnumpy() for n in params}
    with autograd.record():
        loss = (net(mx.np.ones((2, 1, 28, 28))) * 0).sum()
    loss.backward()  # every gradient is zero
    trainer = mx.gluon.Trainer(params, "sgd", {"learning_rate": 1.0, "wd": 0.1})
    trainer.step(1)
    for n in decayed:  # with a zero gradient, only weight decay moves a weight: w <- (1 - 0.1) w
        onp.testing.assert_allclose(params[n].data().asnumpy(), 0.9 * before[n], rtol=1e-5, atol=1e-7)
    for n in names:
        onp.testing.assert_array_equal(params[n].data().asnumpy(), before[n])
