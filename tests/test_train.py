import numpy as np

from gluon_resnet import train as train_mod
from gluon_resnet.data import ArrayLoader
from gluon_resnet.models import get_model

import mxnet as mx


def test_loss_falls_and_accuracy_rises_on_real_images(small_real):
    Xtr, ytr, Xte, yte = small_real
    mx.random.seed(0)
    train_iter = ArrayLoader(Xtr, ytr, 64, shuffle=True, seed=0)
    test_iter = ArrayLoader(Xte, yte, 250)
    history = train_mod.train(get_model("resnet18_d2l"), train_iter, test_iter, 3, 0.05, mx.cpu(),
                              log=lambda line: None)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_acc"] > 0.5  # ten classes: chance is 0.1
    assert history[-1]["test_acc"] > 0.4


def test_preset_fills_defaults_and_flags_win():
    args = train_mod.parse_args(["--preset", "lesson"])
    assert (args.resize, args.lr, args.batch_size, args.epochs) == (96, 0.05, 256, 10)
    args = train_mod.parse_args(["--preset", "lesson", "--epochs", "3", "--lr", "0.2"])
    assert (args.epochs, args.lr, args.resize) == (3, 0.2, 96)


def test_help_explains_the_flags(run_cli):
    out = run_cli("gluon_resnet.train", "--help")
    assert out.returncode == 0
    for flag in ("--epochs", "--batch-size", "--lr", "--resize", "--device", "--data-dir", "--preset"):
        assert flag in out.stdout


def test_bad_flag_values_exit_2_with_one_line(run_cli):
    out = run_cli("gluon_resnet.train", "--epochs", "0")
    assert out.returncode == 2 and "--epochs must be >= 1" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_trains_on_a_real_subset_and_prints_the_summary(run_cli):
    out = run_cli("gluon_resnet.train", "--subset", "512", "--epochs", "1", "--batch-size", "64")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[-2].startswith("loss ") and "test acc" in lines[-2]
    assert lines[-1].endswith("examples/sec on cpu(0)")
