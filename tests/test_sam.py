"""sam.SharpnessAware: the step uses the gradient at the ascended weights, which come back exactly; the loop uses it."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet import np as mnp

from gluon_resnet import loop
from gluon_resnet.data import ArrayLoader
from gluon_resnet.models import get_model, hybridize_static
from gluon_resnet.sam import SharpnessAware
from gluon_resnet.settings import Settings


def _linear(w):
    net = gluon.nn.Dense(1, in_units=len(w), use_bias=False)
    net.initialize()
    net.weight.set_data(mnp.array([w], dtype="float32"))
    return net


def test_one_step_follows_the_gradient_of_the_point_rho_uphill():
    # loss = (w . x)^2 / 2 has the gradient (w . x) x, so by hand: e = rho * sign(w . x) * x / |x|,
    # and one SGD step of rate 1 goes from w to w - ((w + e) . x) x.
    w, x, rho = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 2.0]), 0.3
    net = _linear(w)
    sam = SharpnessAware(net, rho)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 1.0})
    X = mnp.array([x], dtype="float32")

    def backward():  # loss and gradients at the net's weights now
        with autograd.record():
            loss = (net(X) ** 2).sum() / 2
        loss.backward()
    backward()
    with sam.ascended():
        ascended = net.weight.data().asnumpy()[0]
        backward()  # the gradients are now those at w + e
    trainer.step(1)
    e = rho * np.sign(w @ x) * x / np.linalg.norm(x)
    assert np.allclose(ascended, w + e, atol=1e-6)
    assert np.allclose(net.weight.data().asnumpy()[0], w - ((w + e) @ x) * x, atol=1e-5)
    assert not np.allclose(net.weight.data().asnumpy()[0], w - (w @ x) * x, atol=1e-3)  # plain SGD's step


@pytest.mark.parametrize("compiled", [False, True])
def test_the_weights_come_back_bit_for_bit(compiled):
    net = get_model("fmnist_resnet8")
    net.initialize(mx.init.Xavier())
    if compiled:
        hybridize_static(net)
    X = mnp.random.uniform(size=(8, 1, 28, 28))
    with autograd.record():
        loss = net(X).sum()
    loss.backward()
    sam = SharpnessAware(net, 0.05)
    before = [p.data().asnumpy() for p in sam.params]
    with sam.ascended():
        moved = [p.data().asnumpy() for p in sam.params]
        with autograd.record():
            again = net(X).sum()
        again.backward()
    after = [p.data().asnumpy() for p in sam.params]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert sum(float(np.square(m - b).sum()) for m, b in zip(moved, before)) == pytest.approx(0.05 ** 2, rel=1e-3)
    assert all(p.grad_req != "null" for p in sam.params) and len(sam.params) < len(list(net.collect_params().values()))


def test_rho_must_be_positive():
    with pytest.raises(ValueError, match="rho must be > 0"):
        SharpnessAware(_linear([1.0]), 0)


def test_the_loop_steps_with_the_second_gradient(small_real, monkeypatch):
    Xtr, ytr, Xte, yte = small_real

    def run(rho):
        train_iter, test_iter = ArrayLoader(Xtr, ytr, 50, shuffle=True, seed=0), ArrayLoader(Xte, yte, 500)
        net = get_model("fmnist_resnet8")
        history = loop.train(net, train_iter, test_iter, Settings(epochs=1, lr=0.1, momentum=0.9, sam=rho, seed=3),
                             mx.cpu(), log=lambda line: None)
        return history[0], [p.data().asnumpy() for p in net.collect_params().values()]

    made = []
    real = loop.SharpnessAware
    monkeypatch.setattr(loop, "SharpnessAware", lambda net, rho: made.append(real(net, rho)) or made[-1])
    plain_row, plain = run(0.0)
    assert not made  # off by default
    sam_row, with_sam = run(0.05)
    assert len(made) == 1 and made[0].rho == 0.05
    assert any(not np.allclose(a, b) for a, b in zip(plain, with_sam))  # same seed and batches, other steps
    assert sam_row["test_acc"] > 0.5 and plain_row["test_acc"] > 0.5   # both learn (chance: 0.1)
