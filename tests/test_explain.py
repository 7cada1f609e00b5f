"""Grad-CAM: what the maps are, for every kind of registry network, and ``evaluate --cam``."""
import numpy as np
import pytest

import mxnet as mx

from gluon_resnet import evaluate, explain, train
from gluon_resnet.data import to_unit_floats
from gluon_resnet.errors import UserError
from gluon_resnet.models import get_model


@pytest.fixture(scope="module")
def shipped():
    net = get_model("fmnist_resnet8", pretrained=True)
    net.hybridize()
    return net


@pytest.fixture(scope="module")
def test_batch(fashion):
    take = np.concatenate([np.flatnonzero(fashion.test_labels == c)[:10] for c in range(10)])
    return fashion.test_images[take], fashion.test_labels[take]


def as_input(images):
    return to_unit_floats(images[:, None])


def test_before_global_pooling_grad_cam_is_the_class_activation_map(shipped, test_batch):
    """With global average pooling and one dense layer after the last stage, the gradient of a score
    with respect to the feature maps is the dense weight over the map's area, so Grad-CAM reduces to
    Zhou et al.'s CAM: the dense layer's weights applied to the maps at every place."""
    X = as_input(test_batch[0][:8])
    cams, scores = explain.grad_cam(shipped, X, resize=False)
    A = mx.np.array(X)
    for name in ("stem", "stage1", "stage2", "stage3"):
        A = getattr(shipped, name)(A)
    W = shipped.fc.weight.data().asnumpy()
    predicted = scores.argmax(axis=1)
    cam = np.maximum(np.einsum("nk,nkhw->nhw", W[predicted], A.asnumpy()), 0)
    cam /= cam.reshape(len(cam), -1).max(axis=1)[:, None, None]
    np.testing.assert_allclose(cams, cam, atol=1e-5)
    np.testing.assert_allclose(scores, shipped(mx.np.array(X)).asnumpy(), atol=1e-5)


def blank_out(X, cams, on_object, hottest, share=0.15):
    """``X`` with ``share`` of each garment's pixels set to 0: those with the hottest or coldest map."""
    X = X.copy()
    for image, cam, mask in zip(X, cams, on_object):
        heat = np.where(mask, cam, -np.inf if hottest else np.inf).ravel()
        order = np.argsort(-heat if hottest else heat, kind="stable")
        image.reshape(-1)[order[:int(share * mask.sum())]] = 0
    return X


def test_the_hot_places_are_the_ones_the_score_depends_on(shipped, test_batch):
    """A faithfulness check on 100 real test images: blanking the hottest 15% of each garment's
    pixels lowers the predicted class's score more than blanking its coldest 15%."""
    images, _ = test_batch
    X = as_input(images)
    cams, scores = explain.grad_cam(shipped, X)
    assert cams.shape == images.shape and 0 <= cams.min() and cams.max() <= 1
    rows, predicted = np.arange(len(X)), scores.argmax(axis=1)

    def drop(hottest):
        masked = shipped(mx.np.array(blank_out(X, cams, images > 0, hottest))).asnumpy()
        return (scores[rows, predicted] - masked[rows, predicted]).mean()
    assert drop(hottest=True) > 1.3 * drop(hottest=False)


def test_an_early_stage_keeps_batchnorm_in_inference_mode(shipped, test_batch):
    X = as_input(test_batch[0][:5])
    cams, scores = explain.grad_cam(shipped, X, layer="stage1", resize=False)
    assert cams.shape == (5, 14, 14)
    np.testing.assert_allclose(scores, shipped(mx.np.array(X)).asnumpy(), atol=1e-5)


def test_another_class_gives_another_map(shipped, test_batch):
    X = as_input(test_batch[0][:10])
    own, scores = explain.grad_cam(shipped, X)
    runner_up = np.argsort(scores, axis=1)[:, -2]
    other, _ = explain.grad_cam(shipped, X, classes=runner_up)
    assert np.abs(own - other).max(axis=(1, 2)).min() > 0.05


@pytest.mark.parametrize("name, options, last", [
    ("resnet18_d2l", dict(stages=((1, 64), (1, 16))), "5"),
    ("resnet18_d2l", dict(stages=((1, 64), (1, 16)), imperative=True), "5"),
    ("resnet18_v2", dict(layer_dims=(1, 1), channels=(8, 16)), "post"),
    ("simple_residual_cnn", {}, "7"),
    ("cifar_resnet20", dict(layer_dims=(1, 1, 1), channels=(4, 8, 16)), "stage3"),
])
def test_every_kind_of_network_gets_maps(name, options, last):
    net = get_model(name, **options)
    net.initialize(mx.init.Xavier())
    X = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    assert explain.default_layer(net) == last
    cams, scores = explain.grad_cam(net, X)
    assert cams.shape == (2, 28, 28) and scores.shape == (2, 10)
    np.testing.assert_allclose(scores, net(mx.np.array(X)).asnumpy(), atol=1e-5)


def test_maps_and_the_cam_figure_feed_the_net_on_its_own_context(test_batch):
    """A net on another device (a second CPU context here, a GPU under ``evaluate --device gpu``)
    gets its inputs there; MXNet refuses inputs on another context."""
    net = get_model("fmnist_resnet8", pretrained=True)
    net.collect_params().reset_ctx(mx.cpu(1))
    net.hybridize()
    images, labels = test_batch
    cams, scores = explain.grad_cam(net, as_input(images[:4]))
    assert cams.shape == (4, 28, 28) and scores.shape == (4, 10)
    cams, _ = explain.grad_cam(net, mx.np.array(as_input(images[:4])), classes=labels[:4])  # on cpu(0)
    assert cams.shape == (4, 28, 28)
    fig = explain.cam_figure(net, images, labels, count=4)
    assert len(fig.axes) == 4


def test_a_wrong_layer_is_one_clear_error(shipped):
    X = np.zeros((1, 1, 28, 28), dtype=np.float32)
    with pytest.raises(UserError, match="no layer 'stage9'.*stem, stage1, stage2, stage3, pool, fc"):
        explain.grad_cam(shipped, X, layer="stage9")
    with pytest.raises(UserError, match="the network's output"):
        explain.grad_cam(shipped, X, layer="fc")


def test_evaluate_cam_writes_right_and_wrong_answers(tmp_path, capsys):
    run = tmp_path / "run"
    assert train.main(["--model", "fmnist_resnet8", "--subset", "200", "--batch-size", "50", "--epochs", "1",
                       "--quiet", "--out", str(run)]) == 0
    assert evaluate.main([str(run), "--subset", "200", "--cam"]) == 0
    assert str(run / "cam.png") in capsys.readouterr().out
    from PIL import Image
    with Image.open(run / "cam.png") as image:
        assert image.format == "PNG" and image.width > 600
    (run / "cam.png").unlink()
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(run), "--subset", "200", "--cam-layer", "stage9"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: no layer 'stage9' in this network; choose one of: stem")
    assert not (run / "cam.png").exists()
    assert evaluate.main([str(run), "--subset", "200", "--cam-layer", "stage2"]) == 0
    assert (run / "cam.png").exists()
