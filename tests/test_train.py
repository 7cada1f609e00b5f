import numpy as np
import pytest

import mxnet as mx
from mxnet import np as mnp

from gluon_resnet import loop
from gluon_resnet import train as train_mod
from gluon_resnet.augment import Augment
from gluon_resnet.data import ArrayLoader, balanced_subset
from gluon_resnet.models import get_model


def test_loss_falls_and_accuracy_rises_on_real_images(small_real):
    Xtr, ytr, Xte, yte = small_real
    Xtr, ytr = balanced_subset(Xtr, ytr, 600)
    mx.random.seed(0)
    train_iter = ArrayLoader(Xtr, ytr, 50, shuffle=True, seed=0)
    Xte, yte = balanced_subset(Xte, yte, 300)
    test_iter = ArrayLoader(Xte, yte, 300)
    rows = []
    history = loop.train(get_model("resnet18_d2l"), train_iter, test_iter, 3, 0.05, mx.cpu(),
                         log=lambda line: None, on_epoch=rows.append, seed=0)
    assert rows == history and [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_acc"] > 0.5  # ten classes: chance is 0.1
    assert history[-1]["test_acc"] > 0.4


def _step_on(devices, make_net, X, y, start):
    net = make_net()
    net.load_parameters(start, ctx=devices)
    loop.train_epoch(net, loop.make_trainer(net, lr=0.5), [(X, y)], devices, 0, lambda s: 0.5, 0)
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
        loop.train_epoch(net, loop.make_trainer(net), batches(), [mx.cpu()], 2,
                              lambda step: 0.1, 0)


def test_label_smoothing_spreads_the_target():
    y_hat = mnp.array([[2.0, 0.0, -1.0]])
    y = mnp.array([0], dtype="int32")
    logp = np.log(np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum())
    plain = float(loop.cross_entropy(y_hat, y)[0])
    smooth = float(loop.cross_entropy(y_hat, y, 0.3)[0])
    assert plain == pytest.approx(-logp[0], rel=1e-5)
    assert smooth == pytest.approx(0.7 * -logp[0] + 0.3 * -logp.mean(), rel=1e-5)


def test_schedules_warm_up_and_decay():
    cosine = loop.make_schedule("cosine", 0.4, 100, warmup_steps=10)
    lrs = [cosine(s) for s in range(100)]
    assert lrs[9] == pytest.approx(0.4) and max(lrs) == pytest.approx(0.4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] == pytest.approx(0)
    assert loop.make_schedule("constant", 0.3, 10)(7) == 0.3


def test_loader_order_and_augmentation_repeat_per_epoch(small_real):
    Xtr, ytr = small_real[:2]
    make = lambda: ArrayLoader(Xtr, ytr, 100, shuffle=True, seed=5, augment=Augment(pad=2, flip=True))  # noqa
    a, b = make(), make()
    b.set_epoch(1)
    first_a = [x.asnumpy() for x, _ in a]        # epoch 0
    second_a = next(iter(a))[0].asnumpy()        # epoch 1
    np.testing.assert_array_equal(next(iter(b))[0].asnumpy(), second_a)
    assert not np.array_equal(first_a[0], second_a)
    plain = ArrayLoader(Xtr, ytr, 100, shuffle=True, seed=5)
    assert np.abs(plain.numpy_batch(np.sort(plain.order(0)[:100]))[0] - first_a[0]).sum() > 0


def test_presets_fill_defaults_and_flags_win():
    args = train_mod.parse_args(["--preset", "lesson"])
    assert (args.model, args.resize, args.lr, args.batch_size, args.epochs) == ("resnet18_d2l", 96, 0.05, 256, 10)
    args = train_mod.parse_args(["--preset", "lesson", "--epochs", "3", "--lr", "0.2"])
    assert (args.epochs, args.lr, args.resize) == (3, 0.2, 96) and args.given == {"epochs", "lr"}
    for name, preset in train_mod.PRESETS.items():
        args = train_mod.parse_args(["--preset", name])
        assert all(getattr(args, k) == v for k, v in preset.items())
    fast = train_mod.parse_args(["--preset", "fast", "--no-tta"])
    assert (fast.model, fast.flip, fast.tta, fast.given) == ("fmnist_resnet8", True, False, {"tta"})
    quick = train_mod.parse_args(["--preset", "quick"])
    assert (quick.resize, quick.batch_size, quick.epochs, quick.schedule) == (None, 128, 1, "onecycle")


def test_help_explains_the_flags(run_cli):
    out = run_cli("gluon_resnet.train", "--help")
    assert out.returncode == 0
    for flag in ("--epochs", "--batch-size", "--lr", "--resize", "--device", "--data-dir", "--preset",
                 "--out", "--resume", "--schedule", "--label-smoothing", "--num-gpus", "--seed"):
        assert flag in out.stdout
