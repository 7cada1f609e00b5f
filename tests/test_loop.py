"""The training loop (gluon_resnet.loop): learning, devices, the loss guard, smoothing, schedules."""
import numpy as np
import pytest

import mxnet as mx
from mxnet import autograd, np as mnp

from gluon_resnet import loop
from gluon_resnet.data import ArrayLoader, balanced_subset
from gluon_resnet.models import get_model
from gluon_resnet.settings import Settings


def test_loss_falls_and_accuracy_rises_on_real_images(small_real):
    Xtr, ytr, Xte, yte = small_real
    Xtr, ytr = balanced_subset(Xtr, ytr, 600)
    mx.random.seed(0)
    train_iter = ArrayLoader(Xtr, ytr, 50, shuffle=True, seed=0)
    Xte, yte = balanced_subset(Xte, yte, 300)
    test_iter = ArrayLoader(Xte, yte, 300)
    rows = []
    history = loop.train(get_model("resnet18_d2l"), train_iter, test_iter, Settings(epochs=3, lr=0.05),
                         mx.cpu(), log=lambda line: None, on_epoch=rows.append)
    assert rows == history and [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_acc"] > 0.5  # ten classes: chance is 0.1
    assert history[-1]["test_acc"] > 0.4


def test_scoring_the_test_set_less_often_leaves_training_as_it_was(small_real):
    """--test-every 2 over 3 epochs: epoch 1 unscored, 2 and 3 scored, and every number the same as
    when each epoch is scored (scoring runs the net in inference mode: no weights, no BN statistics
    and no random draws change)."""
    Xtr, ytr, Xte, yte = small_real
    Xtr, ytr = balanced_subset(Xtr, ytr, 300)
    Xte, yte = balanced_subset(Xte, yte, 200)

    def run(every):
        lines = []
        settings = Settings(model="fmnist_resnet8", epochs=3, lr=0.1, momentum=0.9, schedule="onecycle",
                            tta=True, tta_shifts=1, seed=0, test_every=every)
        history = loop.train(get_model("fmnist_resnet8"), ArrayLoader(Xtr, ytr, 50, shuffle=True, seed=0),
                             ArrayLoader(Xte, yte, 100), settings, mx.cpu(), log=lines.append)
        return history, lines

    every, _ = run(1)
    sparse, lines = run(2)
    assert [row["test_acc"] is None for row in sparse] == [True, False, False]
    assert None not in [row["test_acc"] for row in every]
    assert [row["test_acc"] for row in sparse[1:]] == [row["test_acc"] for row in every[1:]]
    assert [row["train_loss"] for row in sparse] == [row["train_loss"] for row in every]
    assert "test acc -," in lines[0] and "test acc -," not in lines[1]


def _step_on(devices, make_net, X, y, start):
    net = make_net()
    net.load_parameters(start, ctx=devices)
    loop.train_epoch(net, loop.make_trainer(net, lr=0.5), [(X, y)], devices, 0)
    return [[p.data(c).asnumpy() for p in net.collect_params().values()] for c in devices]


def _no_bn_net():
    from mxnet.gluon import nn
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), nn.Dense(10))
    return net


def _start(make_net, X, path):
    base = make_net()
    base.initialize(mx.init.Xavier())
    base(X)
    base.save_parameters(path)
    return [p.data().asnumpy() for p in base.collect_params().values()]


def test_several_devices_take_the_same_step_as_one(tmp_path):
    """split_and_load over two CPU contexts with one Trainer: the same update as on one device."""
    rng = np.random.default_rng(0)
    X = mnp.array(rng.random((8, 1, 16, 16), dtype=np.float32))
    y = mnp.array(rng.integers(0, 10, 8), dtype="int32")
    path = str(tmp_path / "start.params")
    for make_net in (_no_bn_net, lambda: get_model("resnet18_d2l")):
        start = _start(make_net, X, path)
        one = _step_on([mx.cpu(0)], make_net, X, y, path)[0]
        two = _step_on([mx.cpu(0), mx.cpu(1)], make_net, X, y, path)
        for a, b in zip(*two):
            np.testing.assert_allclose(a, b)  # the two copies stay in sync
        assert np.abs(one[-2] - start[-2]).max() > 1e-3  # a real step was taken
        if make_net is _no_bn_net:  # BatchNorm sees each device's half alone; without it, equal
            for a, b in zip(one, two[0]):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_nan_loss_stops_with_the_epoch_and_batch():
    net = get_model("resnet18_d2l")
    net.initialize(mx.init.Xavier())
    batch = (mnp.zeros((4, 1, 16, 16)), mnp.array([0, 1, 2, 3], dtype="int32"))

    def batches():  # the second batch meets a poisoned output bias, as after a blown-up step
        yield batch
        bias = list(net.collect_params().values())[-1]
        bias.set_data(mnp.full(bias.shape, np.nan))
        yield batch
    with pytest.raises(loop.Diverged, match="nan in epoch 3, batch 2"):
        loop.train_epoch(net, loop.make_trainer(net), batches(), [mx.cpu()], 2)


def test_an_exploding_loss_stops_like_a_nan_unless_the_guard_is_off():
    net = mx.gluon.nn.Dense(10)
    net.initialize()
    X, y = mnp.ones((4, 8)), mnp.array([0, 1, 2, 3], dtype="int32")
    huge = (X * 1e5, y)  # finite, but a loss far above a thousand times the first batch's
    with pytest.raises(loop.Diverged, match=r"the loss rose to .* in epoch 1, batch 2, over 1000 times"):
        loop.train_epoch(net, loop.make_trainer(net, lr=1e-9), [(X, y), huge], [mx.cpu()], 0,
                         guard=loop.LossGuard(1000))
    loop.train_epoch(net, loop.make_trainer(net, lr=1e-9), [(X, y), huge], [mx.cpu()], 0,
                     guard=loop.LossGuard(None))  # off: only NaN/inf stop the run


def test_label_smoothing_moves_the_best_prediction_off_the_one_hot_target():
    y = mnp.array([0], dtype="int32")
    confident, softer = mnp.array([[12.0, 0.0, 0.0]]), mnp.array([[3.0, 0.0, 0.0]])
    assert float(loop.cross_entropy(confident, y)[0]) < float(loop.cross_entropy(softer, y)[0])
    assert float(loop.cross_entropy(confident, y, 0.3)[0]) > float(loop.cross_entropy(softer, y, 0.3)[0])


def test_label_shares_as_targets_weigh_the_loss_of_each_label():
    logits = mnp.array([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    by_index = [loop.cross_entropy(logits, mnp.array(labels, dtype="int32"), 0.1).asnumpy() for labels in ([0, 1], [2, 2])]
    one_hot = mnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(loop.cross_entropy(logits, one_hot, 0.1).asnumpy(), by_index[0], rtol=1e-5)
    shares = mnp.array([[0.7, 0.0, 0.3], [0.0, 0.25, 0.75]])
    np.testing.assert_allclose(loop.cross_entropy(logits, shares, 0.1).asnumpy(),
                               [0.7 * by_index[0][0] + 0.3 * by_index[1][0], 0.25 * by_index[0][1] + 0.75 * by_index[1][1]],
                               rtol=1e-5)
    assert loop.hard_labels(shares).asnumpy().tolist() == [0, 2]


def test_without_smoothing_the_loss_is_minus_the_log_of_the_softmax_of_the_target():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]], dtype=np.float32)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = loop.cross_entropy(mnp.array(logits), mnp.array([2, 1], dtype="int32")).asnumpy()
    np.testing.assert_allclose(got, -np.log(softmax[[0, 1], [2, 1]]), rtol=1e-5)


def test_smoothing_e_is_smallest_where_the_target_gets_1_minus_e_plus_e_over_k():
    """The smoothed target puts e / K on every class; the loss is flat (zero gradient) at the logits
    whose softmax is that target, and without smoothing the same logits still get pushed."""
    k, e, y = 4, 0.2, mnp.array([1], dtype="int32")
    target = np.full(k, e / k)
    target[1] += 1 - e
    for smoothing, flat in ((e, True), (0.0, False)):
        logits = mnp.array(np.log(target)[None])
        logits.attach_grad()
        with autograd.record():
            loss = loop.cross_entropy(logits, y, smoothing)
        loss.backward()
        grad = logits.grad.asnumpy()
        assert (np.abs(grad).max() < 1e-6) == flat, grad


def applied_rates(schedule, steps, lr=0.4, warmup_steps=0):
    """The learning rate the optimizer really applies at each step: plain SGD on one weight whose
    gradient is 1, so each step moves it by exactly the rate."""
    net = mx.gluon.nn.Dense(1, use_bias=False, in_units=1)
    net.initialize(mx.init.Zero())
    trainer = loop.make_trainer(net, lr=lr, lr_scheduler=loop.make_schedule(schedule, lr, steps, warmup_steps))
    weights = [0.0]
    for _ in range(steps):
        with autograd.record():
            loss = net(mnp.ones((1, 1))).sum()
        loss.backward()
        trainer.step(1)
        weights.append(float(net.weight.data()[0, 0]))
    return -np.diff(weights)


def test_schedules_live_in_the_optimizer_and_warm_up_then_decay():
    cycle = applied_rates("onecycle", 20)
    peak = int(np.argmax(cycle))
    assert cycle[0] == pytest.approx(0.04 + 0.36 / 6, rel=1e-4) and cycle[peak] == pytest.approx(0.4, rel=1e-4)
    assert 4 <= peak <= 7 and np.all(np.diff(cycle[:peak + 1]) > 0) and np.all(np.diff(cycle[peak:]) < 0)
    assert cycle[-1] == pytest.approx(0, abs=1e-6)
    cosine = applied_rates("cosine", 20, warmup_steps=5)
    assert int(np.argmax(cosine)) in (4, 5) and np.all(np.diff(cosine[5:]) <= 1e-7)
    assert cosine[-1] == pytest.approx(0, abs=1e-6)
    np.testing.assert_allclose(applied_rates("constant", 5), 0.4, rtol=1e-5)


def test_step_schedule_divides_the_rate_by_ten_after_half_and_three_quarters_of_the_updates():
    np.testing.assert_allclose(applied_rates("step", 20), [0.4] * 10 + [0.04] * 5 + [0.004] * 5, rtol=1e-3)
    warm = applied_rates("step", 8, warmup_steps=2)
    np.testing.assert_allclose(warm, [0.2, 0.4, 0.4, 0.4, 0.04, 0.04, 0.004, 0.004], rtol=1e-3)  # linear warm-up


def test_shifted_tta_scores_copies_moved_down_right_and_up_left():
    X = mnp.zeros((1, 1, 5, 5))
    X[0, 0, 2, 1] = 1.0
    pixels = lambda batch: batch.reshape(1, -1)  # noqa: E731  the "scores" are the pixels themselves
    seen = loop.scores(pixels, X, shifts=1).reshape(5, 5).asnumpy()
    assert sorted(zip(*np.nonzero(seen))) == [(1, 0), (2, 1), (3, 2)]
    mirrored = loop.scores(pixels, X, tta=True, shifts=1).reshape(5, 5).asnumpy()
    assert sorted(zip(*np.nonzero(mirrored))) == [(1, 0), (1, 4), (2, 1), (2, 3), (3, 2)]
    assert mirrored[3, 2] == 2  # column 2 is the middle of 5: the mirror lands on the same pixel


@pytest.mark.parametrize("copies, shifts, places", [
    (4, 1, [(1, 2), (2, 1), (2, 2), (2, 3), (3, 2)]),                    # up, left, as is, right, down
    (8, 1, [(r, c) for r in (1, 2, 3) for c in (1, 2, 3)]),             # the 3x3 block around the pixel
    (4, 2, [(0, 2), (2, 0), (2, 2), (2, 4), (4, 2)]),                    # two pixels each way
])
def test_shifted_tta_with_more_copies_moves_the_image_to_each_neighbouring_place(copies, shifts, places):
    X = mnp.zeros((1, 1, 5, 5))
    X[0, 0, 2, 2] = 1.0
    pixels = lambda batch: batch.reshape(1, -1)  # noqa: E731  the "scores" are the pixels themselves
    seen = loop.scores(pixels, X, shifts=shifts, copies=copies).reshape(5, 5).asnumpy()
    assert sorted(zip(*np.nonzero(seen))) == sorted(places)
    assert seen.sum() == copies + 1  # each copy lands once; none falls off the 5x5 image


def test_train_takes_one_settings_object_not_a_score_of_keywords():
    import inspect
    assert list(inspect.signature(loop.train).parameters) == [
        "net", "train_iter", "test_iter", "settings", "ctx", "log", "on_epoch", "hooks"]
