"""The run folder (gluon_resnet.run): what --out holds, resume, SIGTERM, NaN and exploding losses,
a full disk, two runs on one folder."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import mxnet as mx

from gluon_resnet import checkpoint as ckpt
from gluon_resnet import loop, run
from gluon_resnet import train as train_mod
from gluon_resnet.run import read_run
from helpers import ROOT, TINY, fails, full_disk_on, save_run
from helpers import train_cli as cli

SMALL = [*TINY, "--model", "simple_residual_cnn"]  # the same 5 batches per epoch, a 41,514-parameter net


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted two-epoch run on a tiny real subset."""
    folder = tmp_path_factory.mktemp("runs") / "reference"
    out = cli(*TINY, "--epochs", "2", "--out", folder)
    assert out.returncode == 0, out.stderr
    return folder


def test_a_run_folder_holds_metrics_curves_and_checkpoint(reference):
    metrics = json.loads((reference / "metrics.json").read_text())
    assert [row["epoch"] for row in metrics["history"]] == [1, 2] and metrics["finished"]
    assert metrics["config"]["resize"] == 16 and metrics["environment"]["mxnet"] == "1.9.1"
    for key in ("train_loss", "train_acc", "test_acc", "examples_per_sec", "seconds"):
        assert all(key in row for row in metrics["history"])
    assert (reference / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert read_run(reference).epoch == 2


def test_sigterm_mid_epoch_then_resume_matches_the_uninterrupted_run(reference, tmp_path):
    run = tmp_path / "run"
    proc = cli(*TINY, "--epochs", "2", "--out", run, popen=True)
    deadline = time.time() + 300
    while not (run / ckpt.CHECKPOINT).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)  # epoch 1 is saved; epoch 2 is under way
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert f"the checkpoint of epoch 1 in {run} is intact" in err
    assert f"resume with: python -m gluon_resnet.train --resume {run}" in err
    assert read_run(run).epoch == 1
    out = cli("--resume", run, "--quiet")
    assert out.returncode == 0, out.stderr
    assert "resuming" in out.stdout and "after epoch 1 of 2" in out.stdout
    resumed = json.loads((run / "metrics.json").read_text())["history"]
    straight = json.loads((reference / "metrics.json").read_text())["history"]
    assert [r["epoch"] for r in resumed] == [1, 2]
    assert [r["data_order"] for r in resumed] == [r["data_order"] for r in straight]
    assert abs(resumed[-1]["test_acc"] - straight[-1]["test_acc"]) <= 0.005


def test_bad_resume_targets_change_nothing(capsys, reference, tmp_path):
    before = (reference / ckpt.CHECKPOINT).read_bytes()
    assert "holds no checkpoint" in fails(capsys, "--resume", tmp_path)
    assert "is not a folder" in fails(capsys, "--resume", tmp_path / "nothing")
    assert "with other settings: --resize 32 (saved: 16)" in fails(capsys, "--resume", reference, "--resize", "32")
    assert "holds a resnet18_d2l run with other settings: --model cifar_resnet20 (saved: resnet18_d2l)" \
        in fails(capsys, "--resume", reference, "--model", "cifar_resnet20")
    assert "already finished its 2 epochs; nothing to resume (--resume" in fails(capsys, "--resume", reference)
    assert "already holds a run" in fails(capsys, *TINY, "--out", reference)
    half = tmp_path / "half"
    half.mkdir()
    (half / ckpt.CHECKPOINT).write_bytes(before[: len(before) // 3])
    assert "damaged or half-written" in fails(capsys, "--resume", half)
    assert (half / ckpt.CHECKPOINT).read_bytes() == before[: len(before) // 3]
    assert (reference / ckpt.CHECKPOINT).read_bytes() == before


def test_resume_with_more_epochs_trains_a_constant_rate_run_on(reference, tmp_path):
    run = tmp_path / "longer"
    shutil.copytree(reference, run)
    out = cli("--resume", run, "--epochs", "3", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "after epoch 2 of 3" in out.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    straight = json.loads((reference / "metrics.json").read_text())["history"]
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3] and metrics["finished"]
    assert metrics["history"][:2] == straight and metrics["config"]["epochs"] == 3
    assert read_run(run).epoch == 3


def test_resume_keeps_the_runs_test_every_unless_told_otherwise(tmp_path):
    first = tmp_path / "first"
    assert cli(*TINY, "--epochs", "1", "--test-every", "3", "--out", first).returncode == 0
    second = tmp_path / "second"
    shutil.copytree(first, second)
    assert cli("--resume", first, "--epochs", "4", "--quiet").returncode == 0
    out = cli("--resume", second, "--epochs", "3", "--test-every", "1", "--quiet")
    assert out.returncode == 0, out.stderr
    kept, changed = (json.loads((run / "metrics.json").read_text()) for run in (first, second))
    assert [row["test_acc"] is None for row in kept["history"]] == [False, True, False, False]  # 3rd, last
    assert kept["config"]["test_every"] == 3 and changed["config"]["test_every"] == 1
    assert None not in [row["test_acc"] for row in changed["history"]]


def test_resume_cannot_shorten_a_run_or_stretch_a_schedule(capsys, reference, tmp_path):
    assert "has already trained 2 epochs; ask for more than 2" in fails(capsys, "--resume", reference, "--epochs", "1")
    cycle = tmp_path / "cycle"
    out = cli(*TINY, "--epochs", "1", "--schedule", "onecycle", "--out", cycle)
    assert out.returncode == 0, out.stderr
    before = (cycle / ckpt.CHECKPOINT).read_bytes()
    err = fails(capsys, "--resume", cycle, "--epochs", "2")
    assert "follows a onecycle schedule drawn over its 1 epochs, so its length cannot change" in err
    assert fails(capsys, "--resume", cycle).endswith("already finished its 1 epochs; nothing to resume")
    assert (cycle / ckpt.CHECKPOINT).read_bytes() == before


def test_resume_into_another_architecture_is_refused(capsys, reference, tmp_path):
    from mxnet.gluon import nn
    record = read_run(reference)
    net = nn.HybridSequential()
    net.add(nn.Dense(10))
    net.initialize()
    net(mx.np.zeros((1, 4)))
    save_run(tmp_path / "other", net, record.settings, record.history[:1])  # names resnet18_d2l, holds a Dense
    assert "do not fit this network" in fails(capsys, "--resume", tmp_path / "other")


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(capsys, monkeypatch, tmp_path):
    calls = []
    real = loop.cross_entropy

    def poisoned(y_hat, y, smoothing=0.0):
        calls.append(1)
        loss = real(y_hat, y, smoothing)
        return loss * float("nan") if len(calls) > 6 else loss  # 5 batches per epoch: epoch 2, batch 2
    monkeypatch.setattr(loop, "cross_entropy", poisoned)
    run = tmp_path / "run"
    err = fails(capsys, *SMALL, "--epochs", "3", "--out", run)
    assert "the loss became nan in epoch 2, batch 2" in err
    assert f"the checkpoint of epoch 1 in {run} is kept" in err
    assert read_run(run).epoch == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point of the test
def test_a_stop_signal_swallowed_by_a_finalizer_still_stops_after_the_batch():
    caught = []
    with pytest.raises(KeyboardInterrupt):
        with run.sigterm_as_interrupt(caught):
            class Finalized:
                def __del__(self):
                    os.kill(os.getpid(), signal.SIGTERM)  # KeyboardInterrupt raised here is ignored
            Finalized()
            time.sleep(0.05)
            assert caught == [signal.SIGTERM]  # the signal was seen, its exception swallowed
            net = mx.gluon.nn.Dense(10)
            net.initialize()
            batch = (mx.np.ones((2, 4)), mx.np.array([1, 2], dtype="int32"))
            loop.train_epoch(net, loop.make_trainer(net), [batch], [mx.cpu()], 0,
                             should_stop=lambda: bool(caught))  # the loop asks after the batch
    assert caught == [signal.SIGTERM]


def test_an_exploding_loss_stops_the_run_unless_the_guard_is_off(capsys, monkeypatch, tmp_path):
    calls = []
    real = loop.cross_entropy

    def exploding(y_hat, y, smoothing=0.0):  # from epoch 2, batch 2: 10,000 times the loss, same gradient
        calls.append(1)
        loss = real(y_hat, y, smoothing)
        return loss + 1e4 * loss.detach() if len(calls) > 6 else loss
    monkeypatch.setattr(loop, "cross_entropy", exploding)
    guarded = tmp_path / "guarded"
    err = fails(capsys, *SMALL, "--epochs", "2", "--out", guarded)
    assert "in epoch 2, batch 2, over 1000 times its first-epoch value" in err
    assert f"the checkpoint of epoch 1 in {guarded} is kept" in err
    assert read_run(guarded).epoch == 1
    calls.clear()
    assert train_mod.main([*SMALL, "--epochs", "2", "--no-loss-guard", "--out", str(tmp_path / "free")]) == 0
    assert read_run(tmp_path / "free").epoch == 2


@pytest.mark.parametrize("name", [ckpt.CHECKPOINT, "metrics.json", "curves.png"])
def test_a_full_disk_ends_in_one_line_and_keeps_the_last_complete_epoch(capsys, monkeypatch, tmp_path, name):
    folder = tmp_path / "run"
    monkeypatch.setattr(os, "fsync", full_disk_on(2, name))  # epoch 2's file
    err = fails(capsys, *SMALL, "--epochs", "2", "--out", folder)
    assert err == (f"error: cannot save epoch 2 in {folder} (the disk is full); the files of epoch 1 are "
                   f"intact; free some space, then resume with python -m gluon_resnet.train --resume {folder}")
    assert sorted(os.listdir(folder)) == sorted([ckpt.CHECKPOINT, "metrics.json", "curves.png"])
    assert read_run(folder).epoch == 1
    assert [r["epoch"] for r in json.loads((folder / "metrics.json").read_text())["history"]] == [1]
    assert (folder / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_two_runs_started_on_one_folder_at_once_one_proceeds(tmp_path):
    folder = tmp_path / "run"
    procs = [cli(*TINY, "--epochs", "1", "--out", folder, popen=True) for _ in range(2)]
    results = sorted((p.wait(timeout=600), p.stderr.read().strip()) for p in procs)
    for p in procs:
        p.stdout.close(), p.stderr.close()
    assert results[0][0] == 0, results[0][1]
    assert results[1] == (2, f"error: {folder} is in use by another run: wait for it to end or choose another --out")
    assert read_run(folder).epoch == 1


def test_the_folder_lock_goes_with_its_process_even_on_kill_9(capsys, tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from gluon_resnet import run; run.RunFolder(sys.argv[1]); "
                               "print('locked', flush=True); time.sleep(600)", str(folder)],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert "is in use by another run" in fails(capsys, *TINY, "--out", folder)
    finally:
        holder.kill()  # SIGKILL: no handler, no cleanup code runs
        holder.wait()
        holder.stdout.close()
    with run.RunFolder(folder) as taken:
        assert taken.path == folder
    assert os.listdir(folder) == []  # the lock leaves no file behind


def test_a_resumed_one_cycle_run_goes_on_with_the_rate_and_weights_of_a_straight_one(monkeypatch, tmp_path):
    flags = [*SMALL, "--epochs", "2", "--schedule", "onecycle", "--momentum", "0.9"]
    assert train_mod.main([*flags, "--out", str(tmp_path / "straight")]) == 0
    real_save = run.Saver.__call__

    def save_then_stop(self, net, trainer, history):  # as a SIGTERM right after epoch 1 is saved
        real_save(self, net, trainer, history)
        raise KeyboardInterrupt
    monkeypatch.setattr(run.Saver, "__call__", save_then_stop)
    assert train_mod.main([*flags, "--out", str(tmp_path / "stopped")]) == 128 + signal.SIGINT
    monkeypatch.undo()
    assert train_mod.main(["--resume", str(tmp_path / "stopped"), "--quiet"]) == 0
    straight, resumed = (json.loads((tmp_path / name / "metrics.json").read_text())["history"]
                         for name in ("straight", "stopped"))
    assert [r["lr"] for r in resumed] == [r["lr"] for r in straight]
    assert resumed[-1]["train_loss"] == pytest.approx(straight[-1]["train_loss"], rel=1e-4)
    assert resumed[-1]["test_acc"] == pytest.approx(straight[-1]["test_acc"], abs=0.006)


def test_the_step_schedule_divides_the_rate_by_ten_twice_and_ends_at_a_hundredth(tmp_path):
    assert train_mod.main([*SMALL, "--epochs", "4", "--lr", "0.1", "--schedule", "step", "--warmup-epochs", "0.5",
                           "--momentum", "0.9", "--out", str(tmp_path / "step")]) == 0
    rates = [r["lr"] for r in json.loads((tmp_path / "step" / "metrics.json").read_text())["history"]]
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.001)
    assert sorted(set(round(r, 6) for r in rates)) == [0.001, 0.01, 0.1]
