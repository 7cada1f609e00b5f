"""The command line (gluon_resnet.train): presets, flags, help, and bad input as one line and exit 2."""
import os
import subprocess
import sys

import pytest

import mxnet as mx
import numpy as np

from gluon_resnet import train as train_mod
from gluon_resnet.runtime import usable_cpus
from helpers import ROOT, fails
from helpers import train_cli as cli


def test_presets_fill_defaults_and_flags_win():
    args, given = train_mod.parse_args(["--preset", "lesson"])
    assert (args.model, args.resize, args.lr, args.batch_size, args.epochs) == ("resnet18_d2l", 96, 0.05, 256, 10)
    args, given = train_mod.parse_args(["--preset", "lesson", "--epochs", "3", "--lr", "0.2"])
    assert (args.epochs, args.lr, args.resize) == (3, 0.2, 96) and given == {"epochs", "lr"}
    for name, preset in train_mod.PRESETS.items():
        args, _ = train_mod.parse_args(["--preset", name, "--device", "cpu"])
        assert args.recipe() == preset.recipe() and (args.preset, args.device) == (name, "cpu")
    fast, given = train_mod.parse_args(["--preset", "fast", "--no-tta"])
    assert (fast.model, fast.flip, fast.tta, given) == ("fmnist_resnet8", True, False, {"tta"})
    quick, _ = train_mod.parse_args(["--preset", "quick"])
    assert (quick.resize, quick.batch_size, quick.epochs, quick.schedule) == (None, 128, 1, "onecycle")
    long, _ = train_mod.parse_args(["--preset", "long"])  # how often to score travels with the preset
    every, given = train_mod.parse_args(["--preset", "long", "--test-every", "1"])
    assert (long.test_every, every.test_every, given) == (5, 1, {"test_every"})
    assert every.command() == "python -m gluon_resnet.train --preset long --test-every 1"


def test_every_setting_is_a_flag_and_settings_are_frozen():
    from dataclasses import FrozenInstanceError, fields

    from gluon_resnet.settings import Settings
    text = train_mod.build_parser().format_help()
    assert all(f"--{f.name.replace('_', '-')}" in text for f in fields(Settings))
    assert train_mod.parse_args([])[0] == Settings()  # the parser's defaults are the dataclass's
    with pytest.raises(FrozenInstanceError):
        Settings().lr = 1.0


def test_help_explains_the_flags(run_cli):
    out = run_cli("gluon_resnet.train", "--help")
    assert out.returncode == 0
    for flag in ("--epochs", "--batch-size", "--lr", "--resize", "--device", "--data-dir", "--preset",
                 "--out", "--resume", "--schedule", "--label-smoothing", "--num-gpus", "--seed", "--no-loss-guard",
                 "--erase", "--cutmix", "--mixup", "--ema", "--sam", "--tta-shifts", "--zero-init", "--no-wd-bn-bias",
                 "--test-every"):
        assert flag in out.stdout


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--epochs", "two"], "--epochs must be a number"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--lr", "nan"], "--lr must be > 0"),
    (["--resize", "4"], "--resize must be >= 8"),
    (["--momentum", "1"], "--momentum must be >= 0 and < 1"),
    (["--wd", "-1"], "--wd must be >= 0"),
    (["--label-smoothing", "1.5"], "--label-smoothing must be >= 0 and < 1"),
    (["--subset", "3"], "--subset must be >= 10"),
    (["--num-gpus", "0"], "--num-gpus must be >= 1"),
    (["--erase", "1.5"], "--erase must be >= 0 and <= 1"),
    (["--cutmix", "-0.1"], "--cutmix must be >= 0 and <= 1"),
    (["--cutmix", "0.5", "--mixup", "0.5"], "--cutmix and --mixup are alternatives: give one of them"),
    (["--ema", "1"], "--ema must be >= 0 and < 1"),
    (["--sam", "-0.05"], "--sam must be >= 0"),
    (["--tta-shifts", "9"], "--tta-shifts must be >= 0 and <= 4"),
    (["--tta-shifts", "1", "--tta-copies", "6"], "argument --tta-copies: invalid choice: 6 (choose from 2, 4, 8)"),
    (["--tta-copies", "8"], "--tta-copies 8 scores shifted copies: give --tta-shifts S as well"),
    (["--test-every", "0"], "--test-every must be >= 1"),
    (["--small-size", "20"], "--small-size SIZE and --small-epochs N go together"),
    (["--small-epochs", "3"], "--small-size SIZE and --small-epochs N go together"),
    (["--small-size", "28", "--small-epochs", "3"], "--small-size 28 is not smaller than the 28x28 images"),
    (["--resize", "16", "--small-size", "20", "--small-epochs", "3"], "is not smaller than the 16x16 images"),
    (["--epochs", "5", "--small-size", "20", "--small-epochs", "5"], "leaves none of the 5 epochs at full size"),
    (["--preset", "fast", "--clean-epochs", "2"], "--clean-epochs 2 has nothing to leave out"),
    (["--preset", "best", "--clean-epochs", "35"], "leaves none of the 35 epochs augmented"),
    (["--clean-epochs", "-1"], "--clean-epochs must be >= 0"),
    (["--alternate-flip"], "--alternate-flip changes how --flip mirrors the images: give --flip as well"),
    (["--preset", "best", "--no-flip", "--alternate-flip"], "give --flip as well"),
    (["--model", "resnet9000"], "invalid choice: 'resnet9000' (choose from "),
    (["--preset", "turbo"], "invalid choice: 'turbo' (choose from 'best', 'fast', 'lesson', 'long', 'quick')"),
])
def test_bad_flags_are_one_line_and_exit_2(capsys, argv, message):
    assert message in fails(capsys, *argv)


def test_an_unknown_model_lists_every_registered_name(capsys):
    from gluon_resnet import list_models
    err = fails(capsys, "--model", "resnet9000")
    assert all(f"'{name}'" in err for name in list_models())


@pytest.mark.skipif(mx.context.num_gpus() > 0, reason="this machine has a GPU")
def test_gpu_without_a_gpu_says_what_to_install(capsys, tmp_path):
    assert "pip install mxnet-cu" in fails(capsys, "--device", "gpu", "--out", tmp_path / "run")
    assert "mxnet-cu" in fails(capsys, "--num-gpus", "2")


def test_out_that_is_a_file_or_unwritable(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    assert "is a file, not a folder" in fails(capsys, "--out", tmp_path / "notes.txt")
    assert "cannot write to --out" in fails(capsys, "--out", tmp_path / "notes.txt" / "run")
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_the_real_command_prints_no_traceback(tmp_path):
    out = cli("--epochs", "0")
    assert out.returncode == 2 and out.stderr.strip() == \
        "error: argument --epochs: --epochs must be >= 1, not 0 (see python -m gluon_resnet.train --help)"




@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_malformed_thread_count_is_one_line_before_mxnet_loads(value):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=value)
    out = subprocess.run([sys.executable, "-m", "gluon_resnet.train", "--help"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == (f"error: OMP_NUM_THREADS={value!r} is not a whole number of at least 1: unset "
                                  f"it or set it to the cores to use, e.g. OMP_NUM_THREADS={usable_cpus()}")


def test_an_mxnet_home_that_is_a_file_is_one_line(capsys, monkeypatch, tmp_path):
    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "home"))
    assert f"MXNET_HOME='{tmp_path / 'home'}' is a file, not a folder" in fails(capsys, "--epochs", "1", "--subset", "100")
    monkeypatch.setenv("MXNET_HOME", "relative/home")
    assert "MXNET_HOME='relative/home' is not an absolute path" in fails(capsys, "--epochs", "1", "--subset", "100")


def test_fast_stays_as_it_was_and_best_and_long_are_its_recipe_on_fmnist_resnet9_longer_with_crops():
    fast, _ = train_mod.parse_args(["--preset", "fast"])
    assert (fast.model, fast.epochs, fast.erase, fast.ema, fast.tta_shifts, fast.zero_init, fast.wd_bn_bias,
            fast.crop_pad, fast.wd, fast.cutmix, fast.mixup) == ("fmnist_resnet8", 9, 0.0, 0.0, 0, False, True, 0,
                                                                 5e-4, 0.0, 0.0)
    best, _ = train_mod.parse_args(["--preset", "best"])
    long, _ = train_mod.parse_args(["--preset", "long"])
    differs = lambda a, b: {k for k in train_mod.RECIPE if getattr(a, k) != getattr(b, k)}  # noqa: E731
    assert differs(best, fast) == {"model", "epochs", "crop_pad", "wd", "test_every", "tta_shifts", "tta_copies",
                                   "whiten"}
    assert (best.model, best.epochs, best.crop_pad, best.erase, best.wd) == ("fmnist_resnet9", 35, 1, 0.0, 2e-4)
    assert (best.tta, best.tta_shifts, best.tta_copies) == (True, 1, 4)  # mirror images and four moved copies
    assert best.whiten and not long.whiten  # best's first layer is whitened and frozen, long's learns
    assert differs(long, best) == {"epochs", "whiten"} and long.epochs == 70  # long is best trained longer
    unwhitened, given = train_mod.parse_args(["--preset", "best", "--no-whiten"])
    assert not unwhitened.whiten and given == {"whiten"} and differs(unwhitened, long) == {"epochs"}
    assert fast.epochs < best.epochs < long.epochs
    # the older bests (fmnist_resnet8, then fmnist_resnet9 for 21 epochs, then for 35 with erasing and
    # weight decay 5e-4, then 2e-4) and the older long are still flags away and are written so; all of
    # them scored the test set after every epoch (--test-every 1), as best and long did before 2026-12-06,
    # and without shifted copies (--tta-shifts 0), as best and long did before 2026-12-07; no best before
    # session 24 whitened its first layer (--no-whiten)
    old_best, _ = train_mod.parse_args(["--preset", "best", "--no-whiten", "--test-every", "1", "--tta-shifts", "0"])
    assert old_best.command() == "python -m gluon_resnet.train --preset best --tta-shifts 0 --test-every 1 --no-whiten"
    assert old_best.tta_copies == 2  # saved as the runs before --tta-copies were, so they group together
    old, _ = train_mod.parse_args(["--preset", "fast", "--epochs", "21"])
    assert old.command() == "python -m gluon_resnet.train --preset fast --epochs 21"
    old9, _ = train_mod.parse_args(["--preset", "best", "--epochs", "21", "--crop-pad", "0", "--wd", "5e-4",
                                    "--test-every", "1", "--tta-shifts", "0", "--no-whiten"])
    assert old9.command() == "python -m gluon_resnet.train --preset fast --model fmnist_resnet9 --epochs 21"
    erasing, _ = train_mod.parse_args(["--preset", "best", "--crop-pad", "0", "--erase", "0.25", "--test-every", "1",
                                       "--tta-shifts", "0", "--no-whiten"])
    assert erasing.command() == "python -m gluon_resnet.train --preset fast --model fmnist_resnet9 --epochs 35 --wd 0.0002 --erase 0.25"
    erase35, _ = train_mod.parse_args(["--preset", "best", "--crop-pad", "0", "--erase", "0.25", "--wd", "5e-4",
                                       "--test-every", "1", "--tta-shifts", "0", "--no-whiten"])
    assert erase35.command() == "python -m gluon_resnet.train --preset fast --model fmnist_resnet9 --epochs 35 --erase 0.25"
    erase_long, _ = train_mod.parse_args(["--preset", "long", "--crop-pad", "0", "--erase", "0.25",
                                          "--test-every", "1", "--tta-shifts", "0"])  # sessions 11-13
    assert erase_long.recipe() == erasing.but(epochs=70).recipe()
    assert erase_long.command() == "python -m gluon_resnet.train --preset fast --model fmnist_resnet9 --epochs 70 --wd 0.0002 --erase 0.25"
    levers, given = train_mod.parse_args(["--preset", "best", "--erase", "0.5", "--zero-init", "--no-wd-bn-bias"])
    assert (levers.erase, levers.crop_pad, levers.zero_init, levers.wd_bn_bias, given) == (
        0.5, 1, True, False, {"erase", "zero_init", "wd_bn_bias"})


def test_small_size_reaches_the_training_batches_only():
    from gluon_resnet import distributed
    settings, _ = train_mod.parse_args(["--subset", "100", "--batch-size", "50", "--epochs", "3",
                                        "--small-size", "14", "--small-epochs", "1"])
    train_iter, test_iter = train_mod.load_data(settings, distributed.connect("device"))
    sizes = []
    for epoch in range(3):
        train_iter.set_epoch(epoch)
        sizes.append(next(iter(train_iter))[0].shape[2:])
    assert sizes == [(14, 14), (28, 28), (28, 28)]
    assert next(iter(test_iter))[0].shape[2:] == (28, 28)  # every test at full size


def test_clean_epochs_reach_the_training_batches_only():
    """``--preset best --clean-epochs 1``: the last epoch trains on uncropped images (each as it is
    or mirrored); the epochs before it on shifted crops."""
    from gluon_resnet import distributed
    settings, _ = train_mod.parse_args(["--preset", "best", "--subset", "100", "--batch-size", "100",
                                        "--epochs", "3", "--clean-epochs", "1"])
    train_iter, _ = train_mod.load_data(settings, distributed.connect("device"))
    from gluon_resnet.data import to_unit_floats
    raw = to_unit_floats(train_iter.images[np.sort(train_iter.batch_indices(0)[0])])  # one batch: all 100
    uncropped = []
    for epoch in range(3):
        train_iter.set_epoch(epoch)
        got = next(iter(train_iter))[0].asnumpy()[:, 0]
        uncropped.append(bool(((got == raw).all(axis=(1, 2)) | (got == raw[..., ::-1]).all(axis=(1, 2))).all()))
    assert uncropped == [False, False, True]


def test_alternate_flip_mirrors_each_training_image_every_other_epoch():
    """``--preset best --alternate-flip``: each image is mirrored in epochs 0 and 2 or in epoch 1,
    half of them each way, while its one-pixel crop stays random."""
    from gluon_resnet import distributed
    settings, _ = train_mod.parse_args(["--preset", "best", "--alternate-flip", "--subset", "100",
                                        "--batch-size", "100", "--epochs", "3"])
    train_iter, _ = train_mod.load_data(settings, distributed.connect("device"))
    images = train_iter.images[np.sort(train_iter.batch_indices(0)[0])]  # one batch: all 100
    seen = []
    for epoch in range(3):
        train_iter.set_epoch(epoch)
        got = np.round(next(iter(train_iter))[0].asnumpy()[:, 0] * 255).astype(np.uint8)
        seen.append([mirrored_crop(image, out) for image, out in zip(images, got)])
    clear = [i for i in range(len(images)) if None not in (seen[0][i], seen[1][i], seen[2][i])]
    assert len(clear) > 90  # the others are crops of themselves and of their mirror image alike
    assert all(seen[0][i] != seen[1][i] and seen[0][i] == seen[2][i] for i in clear)
    assert 30 < sum(seen[0][i] for i in clear) < 70


def mirrored_crop(image, out):
    """Whether ``out`` is a one-pixel crop of ``image``'s mirror image (True) or of ``image`` itself
    (False); None when it is both."""
    def crops(img):
        padded = np.pad(img, 1)
        return [padded[t:t + 28, s:s + 28] for t in range(3) for s in range(3)]
    as_is = any((out == c).all() for c in crops(image))
    as_mirror = any((out == c).all() for c in crops(image[:, ::-1]))
    assert as_is or as_mirror
    return None if as_is and as_mirror else as_mirror


def test_zero_init_on_a_model_without_such_blocks_is_a_one_line_error(capsys, tmp_path):
    err = fails(capsys, "--model", "resnet18_d2l", "--zero-init", "--subset", "20", "--epochs", "1",
                "--out", tmp_path / "run")
    assert err.startswith("error: --zero-init needs a registry ResNet")
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_run_with_every_lever_saves_them_and_names_the_cpu(tmp_path):
    import json

    out = cli("--model", "fmnist_resnet8", "--subset", "200", "--epochs", "2", "--batch-size", "50",
              "--erase", "0.5", "--cutmix", "0.5", "--crop-pad", "2", "--ema", "0.9", "--sam", "0.05", "--tta", "--tta-shifts", "1", "--zero-init",
              "--no-wd-bn-bias", "--optimizer", "nag", "--momentum", "0.9", "--quiet", "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    config, cpu = metrics["config"], metrics["environment"]["cpu"]
    assert (config["erase"], config["cutmix"], config["ema"], config["sam"], config["tta_shifts"], config["zero_init"],
            config["wd_bn_bias"]) == (0.5, 0.5, 0.9, 0.05, 1, True, False)
    assert cpu["model"] and cpu["cores"] >= 1 and cpu["threads"] >= 1 and cpu["isa"]
    speed = out.stdout.strip().splitlines()[-1]
    assert f"examples/sec on cpu(0) ({cpu['model']} (" in speed and speed.endswith(f", {cpu['isa']}))")
