"""Shipped weights: they score what their manifest says, load offline, and refuse what does not fit."""
import fnmatch
import hashlib
import shutil
import tomllib

import numpy as np
import pytest

import mxnet as mx

from gluon_resnet import pretrained
from gluon_resnet.errors import UserError
from gluon_resnet.models import get_model
from gluon_resnet.settings import Settings, parse_args

from helpers import ROOT, epoch_rows, save_run

NAME = "fmnist_resnet8"
SHIPPED = {"fmnist_resnet8": "python -m gluon_resnet.train --preset fast --epochs 21",
           "fmnist_resnet9": "python -m gluon_resnet.train --preset long --seed 2"}


def test_every_shipped_name_is_tested_here():
    assert pretrained.shipped() == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_weights_score_their_manifest_accuracy_on_the_real_test_set(fashion, name):
    info = pretrained.manifest(name)
    net = get_model(name, pretrained=True)
    net.hybridize()
    X = fashion.test_images[:, None].astype(np.float32) / 255
    plain, mirrored = (np.concatenate([net(mx.np.array(x[i:i + 1000])).asnumpy() for i in range(0, len(x), 1000)])
                       for x in (X, X[..., ::-1]))
    assert len(X) == info["test_images"] == 10000
    for scores, key in ((plain, "test_accuracy"), (plain + mirrored, "test_accuracy_tta")):
        accuracy = (scores.argmax(axis=1) == fashion.test_labels).mean()
        assert abs(accuracy - info[key]) <= 0.001, (key, accuracy)  # within 0.1 points


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_manifest_describes_the_file_and_how_it_was_made(name):
    info = pretrained.manifest(name)
    data = (pretrained.WEIGHTS / info["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data) == info["bytes"] < 2_000_000
    assert info["model"] == name and info["train_command"] == SHIPPED[name]
    assert info["command"].startswith("python -m gluon_resnet.pretrained --from-run ")
    assert not info["command"].split()[-1].startswith("/")  # no one machine's folders
    assert info["cpu"] and info["trained_utc"] and info["test_accuracy"] > 0.9


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_manifest_command_still_trains_that_net_for_those_epochs(name):
    """Presets move (best was fmnist_resnet8 once): a manifest's command must still say what made it."""
    info = pretrained.manifest(name)
    prog, _, flags = info["train_command"].partition("python -m gluon_resnet.train")
    settings, _ = parse_args(flags.split())
    assert (prog, settings.model, settings.epochs) == ("", name, info["epochs"])


def test_the_package_data_ships_the_weights():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["gluon_resnet"]
    for path in pretrained.WEIGHTS.iterdir():
        assert any(fnmatch.fnmatch(f"weights/{path.name}", p) for p in patterns), path.name


def test_names_without_weights_and_other_shapes_are_refused():
    have = ", ".join(sorted(SHIPPED))
    with pytest.raises(UserError, match=f"no shipped weights for 'resnet50' \\(weights ship for: {have}\\)"):
        get_model("resnet50", pretrained=True)
    with pytest.raises(UserError, match="unknown model 'resnet9'"):
        get_model("resnet9", pretrained=True)
    with pytest.raises(UserError, match="have 10 classes and 1 input channel\\(s\\), not 5 and 1"):
        get_model(NAME, pretrained=True, num_classes=5)
    with pytest.raises(UserError, match="not 10 and 3"):
        get_model(NAME, pretrained=True, in_channels=3)
    with pytest.raises(UserError, match="do not fit this network"):
        get_model(NAME, pretrained=True, shortcut="C")  # extra projection layers the weights lack


@pytest.mark.parametrize("damage, words", [
    (lambda d: d[:1000] + bytes([d[1000] ^ 1]) + d[1001:], "is damaged"),
    (lambda d: d[:len(d) // 2], "is damaged"),
    (None, "is missing or unreadable"),
])
def test_a_damaged_weights_file_is_refused(tmp_path, damage, words):
    shutil.copy(pretrained.WEIGHTS / f"{NAME}.json", tmp_path)
    params = tmp_path / f"{NAME}.params"
    if damage:
        params.write_bytes(damage((pretrained.WEIGHTS / f"{NAME}.params").read_bytes()))
    with pytest.raises(UserError, match=words):
        pretrained.load_pretrained(get_model(NAME), NAME, folder=tmp_path)


def test_a_broken_manifest_is_refused(tmp_path):
    (tmp_path / f"{NAME}.json").write_text("{ not json")
    with pytest.raises(UserError, match=f"{NAME}.json is damaged"):
        pretrained.load_pretrained(get_model(NAME), NAME, folder=tmp_path)


def fake_run(folder, finished=True, environment=None, **settings):
    """A run folder as train --out writes it (through ``run.Saver``), of an untrained fmnist_resnet8."""
    net = get_model(NAME)
    net.initialize(mx.init.Xavier())
    net(mx.np.zeros((1, 1, 28, 28)))
    settings = Settings(model=NAME, epochs=1 if finished else 2, **settings)
    save_run(folder, net, settings, epoch_rows(1, seconds=90.0), environment=environment or {"cpus": 2})
    return net


def test_weights_made_from_a_run_load_back(tmp_path, capsys, fashion, monkeypatch):
    # the accuracy figures are checked against the real test set above; here only the files matter
    monkeypatch.setattr(pretrained, "score_test_set", lambda net, data_dir=None: (0.25, 0.5, 10000))
    net = fake_run(tmp_path / "run", lr=0.2)
    assert pretrained.main(["--from-run", str(tmp_path / "run"), "--out", str(tmp_path / "w")]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'w' / NAME}.params")
    info = pretrained.manifest(NAME, tmp_path / "w")
    assert info["train_command"] == "python -m gluon_resnet.train --model fmnist_resnet8 --epochs 1 --lr 0.2"
    assert info["command"] == f"python -m gluon_resnet.pretrained --from-run {tmp_path.name}/run"  # not absolute
    assert info["train_minutes"] == 1.5 and info["environment"] == {"cpus": 2}
    assert (info["test_accuracy"], info["test_accuracy_tta"]) == (0.25, 0.5)
    loaded = pretrained.load_pretrained(get_model(NAME), NAME, folder=tmp_path / "w")
    X = mx.np.array(fashion.test_images[:8, None].astype(np.float32) / 255)
    np.testing.assert_array_equal(loaded(X).asnumpy(), net(X).asnumpy())
    assert pretrained.main(["--out", str(tmp_path / "w")]) == 0
    assert capsys.readouterr().out.startswith(f"{NAME}: test acc ")


def test_the_manifest_names_the_cpu_and_threads_the_run_trained_on_not_this_machines(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "score_test_set", lambda net, data_dir=None: (0.25, 0.5, 10000))
    cpu = {"model": "AMD EPYC", "generation": "Zen 5", "family": "26", "model_number": "2", "cores": 2,
           "threads": 1, "isa": "avx512_core_bf16"}  # one thread: it trained beside another run
    fake_run(tmp_path / "run", environment={"cpu": cpu})
    info = pretrained.make_weights(tmp_path / "run", tmp_path / "w")
    assert info["cpu"] == "AMD EPYC (Zen 5, family 26 model 2; 1 thread on 2 cores, avx512_core_bf16)"


@pytest.mark.parametrize("finished, config, words", [
    (False, {}, "has not finished its 2 epochs"),
    (True, {"subset": 500}, "no --resize, no --subset"),
])
def test_weights_only_from_a_finished_full_run(tmp_path, finished, config, words):
    fake_run(tmp_path / "run", finished, **config)
    with pytest.raises(UserError, match=words):
        pretrained.make_weights(tmp_path / "run", tmp_path / "w")
    assert not (tmp_path / "w").exists()
