import json
import os
import zipfile

import numpy as np
import pytest

import mxnet as mx
from mxnet import autograd, np as mnp
from mxnet.gluon import nn

from gluon_resnet import checkpoint as ckpt
from gluon_resnet.errors import UserError
from gluon_resnet.models import get_model
from gluon_resnet.loop import make_trainer

X = mnp.array(np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32))


def small_net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), nn.Dense(10))
    net.initialize(mx.init.Xavier())
    return net


def trained(net):
    """A trainer with momentum after one step, so its state is not empty."""
    trainer = make_trainer(net, lr=0.1, momentum=0.9)
    with autograd.record():
        loss = net(X).sum()
    loss.backward()
    trainer.step(4)
    return trainer


def values(net):
    return [p.data().asnumpy() for p in net.collect_params().values()]


def test_round_trip_restores_parameters_and_momentum(tmp_path):
    net = small_net()
    trainer = trained(net)
    ckpt.save_checkpoint(tmp_path, net, trainer, {"epoch": 3, "config": {"model": "x"}})
    assert sorted(os.listdir(tmp_path)) == [ckpt.CHECKPOINT]  # no temporary left behind
    meta, members = ckpt.read_checkpoint(tmp_path)
    assert meta["epoch"] == 3 and meta["config"] == {"model": "x"}
    twin = small_net()
    twin(X)
    ckpt.restore(twin, members, mx.cpu())
    twin_trainer = make_trainer(twin, lr=0.1, momentum=0.9)
    ckpt.restore_trainer(twin_trainer, members)
    for a, b in zip(values(net), values(twin)):
        np.testing.assert_array_equal(a, b)
    # the same next step from the same momentum gives the same parameters
    for n, t in ((net, trainer), (twin, twin_trainer)):
        with autograd.record():
            loss = n(X).sum()
        loss.backward()
        t.step(4)
    for a, b in zip(values(net), values(twin)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_damaged_or_half_written_checkpoints_are_refused(tmp_path):
    net = small_net()
    ckpt.save_checkpoint(tmp_path, net, trained(net), {"epoch": 1, "config": {}})
    path = tmp_path / ckpt.CHECKPOINT
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # as a kill -9 mid-write would leave a plain write
    with pytest.raises(UserError, match="damaged or half-written"):
        ckpt.read_checkpoint(tmp_path)
    flipped = bytearray(whole)
    flipped[200] ^= 0xFF  # inside the parameters
    path.write_bytes(bytes(flipped))
    with pytest.raises(UserError, match="damaged"):
        ckpt.read_checkpoint(tmp_path)


def test_a_crash_during_a_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    net = small_net()
    trainer = trained(net)
    ckpt.save_checkpoint(tmp_path, net, trainer, {"epoch": 1, "config": {}})
    before = (tmp_path / ckpt.CHECKPOINT).read_bytes()

    def killed(*args):
        raise KeyboardInterrupt  # the moment before the rename
    monkeypatch.setattr(ckpt.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, net, trainer, {"epoch": 2, "config": {}})
    monkeypatch.undo()
    assert (tmp_path / ckpt.CHECKPOINT).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == [ckpt.CHECKPOINT]
    assert ckpt.read_checkpoint(tmp_path)[0]["epoch"] == 1


def test_missing_runs_and_wrong_networks_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="is not a folder"):
        ckpt.read_checkpoint(tmp_path / "nowhere")
    with pytest.raises(UserError, match="holds no checkpoint"):
        ckpt.read_checkpoint(tmp_path)
    net = small_net()
    ckpt.save_checkpoint(tmp_path, net, trained(net), {"epoch": 1, "config": {}})
    _, members = ckpt.read_checkpoint(tmp_path)
    with pytest.raises(UserError, match="do not fit this network"):
        ckpt.restore(get_model("resnet18_d2l"), members, mx.cpu())


def test_a_checkpoint_of_another_format_is_refused_in_one_line(tmp_path):
    net = small_net()
    ckpt.save_checkpoint(tmp_path, net, trained(net), {"epoch": 1, "config": {}})
    path = tmp_path / ckpt.CHECKPOINT
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(members["meta.json"])
    meta["format"] = ckpt.FORMAT + 1
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in dict(members, **{"meta.json": json.dumps(meta)}).items():
            zf.writestr(name, data)
    with pytest.raises(UserError, match=f"is in checkpoint format {ckpt.FORMAT + 1}, but this version"):
        ckpt.read_checkpoint(tmp_path)


def test_load_model_builds_the_network_the_checkpoint_names(tmp_path):
    net = get_model("simple_residual_cnn", num_classes=4)
    net.initialize(mx.init.Xavier())
    net(X)
    spec = {"name": "simple_residual_cnn", "num_classes": 4, "imperative": False}
    ckpt.save_checkpoint(tmp_path, net, trained(net), {"epoch": 1, "model": spec, "config": {}})
    np.testing.assert_allclose(ckpt.load_model(tmp_path)(X).asnumpy(), net(X).asnumpy(), rtol=1e-5, atol=1e-6)


def test_the_zip_holds_what_the_docstring_says(tmp_path):
    net = small_net()
    ckpt.save_checkpoint(tmp_path, net, trained(net), {"epoch": 1, "config": {}})
    with zipfile.ZipFile(tmp_path / ckpt.CHECKPOINT) as zf:
        assert sorted(zf.namelist()) == ["meta.json", "params", "trainer.states"]


def test_export_reloads_as_a_symbol_block_with_the_same_predictions(tmp_path):
    net = get_model("resnet18_d2l")
    net.initialize(mx.init.Xavier())
    net(X)
    files = ckpt.export_model(net, tmp_path / "model", (1, 1, 16, 16))
    assert [f.name for f in files] == ["model-symbol.json", "model-0000.params"]
    deployed = ckpt.load_exported(tmp_path / "model")
    np.testing.assert_allclose(deployed(X).asnumpy(), net(X).asnumpy(), rtol=1e-5, atol=1e-6)
