"""Layer responses (the paper's Fig. 7): which layers are measured, and what is measured."""
import mxnet as mx
import numpy as onp
from mxnet import autograd, np

import gluon_resnet as gr
from gluon_resnet.analysis import conv_bn_pairs, layer_response_std


def images(n=8, seed=0):
    return np.array(onp.random.default_rng(seed).uniform(size=(n, 1, 28, 28)), dtype="float32")


def ready(name):
    net = gr.get_model(name)
    net.initialize(mx.init.Xavier())
    net(images(2))
    return net


def test_every_3x3_layer_is_measured_and_no_1x1_projection():
    assert len(conv_bn_pairs(ready("cifar_resnet56"))) == 1 + 2 * 27
    # resnet18: the 7x7 stem and the three 1x1 shortcut projections (option B) are not 3x3 layers
    assert len(conv_bn_pairs(ready("resnet18"))) == 16


def test_the_stem_response_matches_running_the_stem_by_hand():
    net = ready("cifar_plain20")
    X = images()
    with autograd.predict_mode():
        by_hand = net.stem[1](net.stem[0](X)).asnumpy()
    expected = by_hand.std(axis=(0, 2, 3)).mean()
    onp.testing.assert_allclose(layer_response_std(net, [X[:3], X[3:]])[0], expected, rtol=1e-4)


def test_a_switched_off_residual_branch_responds_with_zero():
    net = ready("cifar_resnet20")
    last_bn = net.stage2[1].body[4]  # second 3x3 layer of stage 2's second block
    last_bn.gamma.set_data(np.zeros(last_bn.gamma.shape))
    last_bn.beta.set_data(np.zeros(last_bn.beta.shape))
    stds = layer_response_std(net, [images()])
    zero = 1 + 2 * 3 + 2 * 1 + 1
    assert stds[zero] < 1e-6 and min(s for i, s in enumerate(stds) if i != zero) > 1e-3


def test_hooks_are_removed_and_training_mode_uses_batch_statistics():
    net = ready("cifar_plain20")
    first = layer_response_std(net, [images()])
    assert layer_response_std(net, [images()]) == first
    assert all(not bn._forward_hooks for bn in conv_bn_pairs(net))
    # with the batch's own statistics each BN output has std gamma = 1 per channel
    onp.testing.assert_allclose(layer_response_std(net, [images()], training=True), 1, atol=1e-2)
