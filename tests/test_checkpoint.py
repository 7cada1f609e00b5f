"""The checkpoint format (gluon_resnet.checkpoint), written as training writes it (``run.Saver``)
and read back as every reader does (``run.read_run``)."""
import json
import os
import zipfile

import numpy as np
import pytest

import mxnet as mx
from mxnet import autograd, np as mnp
from mxnet.gluon import nn

from gluon_resnet import checkpoint as ckpt
from gluon_resnet import run
from gluon_resnet.errors import UserError
from gluon_resnet.loop import make_trainer
from gluon_resnet.models import get_model
from gluon_resnet.settings import Settings, build_net
from helpers import epoch_rows, save_run

X = mnp.array(np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32))
SETTINGS = Settings(model="simple_residual_cnn", epochs=3, lr=0.1, momentum=0.9, resize=16)


def small_net():
    """The run's network as ``train`` builds it, initialised."""
    net = build_net(SETTINGS)
    net.initialize(mx.init.Xavier())
    net(X)
    return net


def two_layer_net():
    """A net whose parameter names sort the same in every copy built in this process (Trainer
    keys its states by the sorted position of each name; conv10 sorts before conv6)."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), nn.Dense(10))
    net.initialize(mx.init.Xavier())
    net(X)
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


def test_round_trip_restores_settings_parameters_and_momentum(tmp_path):
    net = two_layer_net()
    trainer = save_run(tmp_path, net, SETTINGS, epoch_rows(2), trained(net))
    assert sorted(os.listdir(tmp_path)) == [ckpt.CHECKPOINT, "curves.png", "metrics.json"]  # no temporary
    record = run.read_run(tmp_path)
    assert record.epoch == 2 and record.settings == SETTINGS and record.history == epoch_rows(2)
    assert record.model == {"name": "simple_residual_cnn", "num_classes": 10, "imperative": False}
    assert not record.finished  # 2 of 3 epochs
    twin = two_layer_net()
    record.restore_net(twin, mx.cpu())
    twin_trainer = make_trainer(twin, lr=0.1, momentum=0.9)
    record.restore_trainer(twin_trainer)
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


def test_load_model_builds_the_network_the_checkpoint_names(tmp_path):
    net = small_net()
    save_run(tmp_path, net, SETTINGS, epoch_rows(3))
    loaded = run.load_model(tmp_path)
    assert type(loaded) is type(net) and run.read_run(tmp_path).finished
    np.testing.assert_allclose(loaded(X).asnumpy(), net(X).asnumpy(), rtol=1e-5, atol=1e-6)


def test_a_checkpoint_from_before_settings_were_one_object_still_loads(tmp_path):
    """Its recipe is a JSON dict that lacks the settings added since; they take their defaults."""
    net = small_net()
    save_run(tmp_path, net, SETTINGS, epoch_rows(1))
    path = tmp_path / ckpt.CHECKPOINT
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(members["meta.json"])
    for newer in ("erase", "ema", "tta_shifts", "tta_copies", "zero_init", "wd_bn_bias", "clean_epochs"):
        del meta["config"][newer]
    meta["config"]["num_classes"] = 10  # an unknown key is dropped, not fatal
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in dict(members, **{"meta.json": json.dumps(meta)}).items():
            zf.writestr(name, data)
    assert run.read_run(tmp_path).settings == SETTINGS


def test_damaged_or_half_written_checkpoints_are_refused(tmp_path):
    net = small_net()
    save_run(tmp_path, net, SETTINGS, epoch_rows(1), trained(net))
    path = tmp_path / ckpt.CHECKPOINT
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # as a kill -9 mid-write would leave a plain write
    with pytest.raises(UserError, match="damaged or half-written"):
        run.read_run(tmp_path)
    flipped = bytearray(whole)
    flipped[200] ^= 0xFF  # inside the parameters
    path.write_bytes(bytes(flipped))
    with pytest.raises(UserError, match="damaged"):
        run.read_run(tmp_path)


def test_a_crash_during_a_write_keeps_the_previous_epoch(tmp_path, monkeypatch):
    net = small_net()
    trainer = save_run(tmp_path, net, SETTINGS, epoch_rows(1), trained(net))
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}

    def killed(*args):
        raise KeyboardInterrupt  # the moment before the first rename
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_run(tmp_path, net, SETTINGS, epoch_rows(2), trainer)
    monkeypatch.undo()
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
    assert run.read_run(tmp_path).epoch == 1


def test_missing_runs_and_wrong_networks_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="is not a folder"):
        run.read_run(tmp_path / "nowhere")
    with pytest.raises(UserError, match="holds no checkpoint"):
        run.read_run(tmp_path)
    save_run(tmp_path, small_net(), SETTINGS, epoch_rows(1))
    with pytest.raises(UserError, match="do not fit this network"):
        run.read_run(tmp_path).restore_net(get_model("resnet18_d2l"), mx.cpu())


def test_a_checkpoint_of_another_format_is_refused_in_one_line(tmp_path):
    save_run(tmp_path, small_net(), SETTINGS, epoch_rows(1))
    path = tmp_path / ckpt.CHECKPOINT
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(members["meta.json"])
    meta["format"] = ckpt.FORMAT + 1
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in dict(members, **{"meta.json": json.dumps(meta)}).items():
            zf.writestr(name, data)
    with pytest.raises(UserError, match=f"is in checkpoint format {ckpt.FORMAT + 1}, but this version"):
        run.read_run(tmp_path)


def test_the_zip_holds_what_the_docstring_says(tmp_path):
    save_run(tmp_path, small_net(), SETTINGS, epoch_rows(1))
    with zipfile.ZipFile(tmp_path / ckpt.CHECKPOINT) as zf:
        assert sorted(zf.namelist()) == ["meta.json", "params", "trainer.states"]
        meta = json.loads(zf.read("meta.json"))
    assert meta["format"] == ckpt.FORMAT and meta["config"] == SETTINGS.recipe()
    assert sorted(meta["sha256"]) == ["params", "trainer.states"]
