"""ema.WeightAverage: the average trails the weights, is swapped in only for scoring, and the loop scores it."""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet import np as mnp

from gluon_resnet import loop
from gluon_resnet.data import ArrayLoader, balanced_subset
from gluon_resnet.ema import WeightAverage
from gluon_resnet.models import get_model
from gluon_resnet.settings import Settings


def _dense(value=0.0):
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize(mx.init.Constant(value))
    return net


def _set(net, value):
    for p in net.collect_params().values():
        p.set_data(mnp.full(p.shape, value))


def _weights(net):
    return [p.data().asnumpy() for p in net.collect_params().values()]


def test_the_average_is_swapped_in_for_evaluation_and_the_own_weights_come_back():
    net = _dense()
    ema = WeightAverage(net, decay=0.9, every=1)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5})
    X, y = mnp.random.uniform(size=(16, 4)), mnp.random.randint(0, 3, (16,))
    for step in range(20):
        with autograd.record():
            loss = loop.cross_entropy(net(X), y).mean()
        loss.backward()
        trainer.step(1)
        ema.update(step)
    own = _weights(net)
    with ema.applied():
        inside = _weights(net)
        averaged_out = net(X).asnumpy()
    assert all(np.array_equal(a, b.asnumpy()) for a, b in zip(inside, ema.average))
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(inside, own))  # the average trails the weights
    assert all(np.array_equal(a, b) for a, b in zip(_weights(net), own))
    assert not np.allclose(averaged_out, net(X).asnumpy())


def test_early_updates_forget_the_initial_weights_despite_a_slow_decay():
    net = _dense(0.0)
    ema = WeightAverage(net, decay=0.99, every=1)
    ema.update(0)                      # the average starts at the initial weights, 0
    _set(net, 1.0)
    for step in range(1, 31):
        ema.update(step)
    # A plain 0.99 average would still sit at 1 - 0.99**30 = 0.26; the warm-up rule is past 0.9.
    assert all((a.asnumpy() > 0.9).all() for a in ema.average)
    for step in range(31, 1000):       # later, the decay is the one asked for: the average moves slowly
        ema.update(step)
    _set(net, 2.0)
    ema.update(1000)
    assert all(np.allclose(a.asnumpy(), 1.01, atol=1e-4) for a in ema.average)


def test_only_every_kth_step_counts():
    net = _dense(0.0)
    ema = WeightAverage(net, decay=0.5, every=5)
    ema.update(0)
    _set(net, 1.0)
    for step in range(1, 5):
        ema.update(step)
    assert ema.updates == 1 and all((a.asnumpy() == 0).all() for a in ema.average)


def test_the_loop_scores_the_averaged_weights(small_real, monkeypatch):
    Xtr, ytr, Xte, yte = small_real
    Xtr, ytr = balanced_subset(Xtr, ytr, 300)
    train_iter, test_iter = ArrayLoader(Xtr, ytr, 50, shuffle=True, seed=0), ArrayLoader(Xte, yte, 500)
    net = get_model("fmnist_resnet8")
    made = []  # the average the loop makes for settings.ema, updated every second step here

    def every_second_step(net, decay):
        made.append(WeightAverage(net, decay, every=2))
        return made[-1]
    monkeypatch.setattr(loop, "WeightAverage", every_second_step)
    history = loop.train(net, train_iter, test_iter, Settings(epochs=2, lr=0.1, momentum=0.9, ema=0.5), mx.cpu(),
                         log=lambda line: None)
    (ema,) = made
    assert ema.decay == 0.5 and ema.updates == 6  # 12 steps, every second one
    with ema.applied():
        averaged = loop.accuracy_sums(net, test_iter, mx.cpu())
    assert history[-1]["test_acc"] == averaged[0] / averaged[1]
    assert any(not np.array_equal(p.data().asnumpy(), a.asnumpy())
               for p, a in zip(ema.params, ema.average))
