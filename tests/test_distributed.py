"""Scale-out on MXNet's kvstore (issue 7): shards, trainer, launcher plan, and real loopback clusters.

The cluster tests start a real scheduler, server and two workers on 127.0.0.1 only.
"""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import ROOT
from gluon_resnet import distributed, launch, loop
from gluon_resnet.data import ArrayLoader
from gluon_resnet.errors import UserError

SMALL_MODEL = "simple_residual_cnn"  # 41,514 parameters: a step's push and pull are cheap on loopback


# ---------------------------------------------------------------------------- in-process pieces

def test_shards_are_equal_disjoint_and_together_make_the_big_batches():
    images = np.arange(103 * 4, dtype=np.uint8).reshape(103, 2, 2)
    labels = np.arange(103) % 10
    whole = ArrayLoader(images, labels, batch_size=8, shuffle=True, seed=5)
    shards = [distributed.ShardedLoader(whole, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]             # 103 // 24: the same steps on every rank
    for epoch in (0, 1):
        orders = [s.order(epoch) for s in shards]
        assert all(len(o) == 32 for o in orders)
        big = whole.order(epoch)[:96].reshape(4, 24)          # one process at batch 3 x 8
        for step in range(4):
            together = np.concatenate([o[step * 8:(step + 1) * 8] for o in orders])
            np.testing.assert_array_equal(together, big[step])
    assert [b[0].shape[0] for b in shards[1]] == [8, 8, 8, 8]  # no short last batch
    assert not np.array_equal(shards[0].order(0), shards[0].order(1))


def test_shards_keep_the_loaders_augmentation_and_clean_finish():
    """Each worker's shard crops (``augment``) and then finishes clean (``finish``) in the epochs the
    whole loader would: a clean finish under ``launch`` is a clean finish."""
    from gluon_resnet.augment import Augment
    images = np.random.default_rng(0).integers(1, 256, (48, 6, 6), dtype=np.uint8)
    whole = ArrayLoader(images, np.arange(48) % 10, batch_size=8, shuffle=True, seed=5,
                        augment=Augment(pad=1), finish=(None, 2))
    shard = distributed.ShardedLoader(whole, 1, 2)
    cropped = []
    for epoch in range(3):
        take = np.sort(shard.batch_indices(epoch)[0])
        shard.set_epoch(epoch)
        got = next(iter(shard))[0].asnumpy()[:, 0]
        cropped.append(not np.allclose(got * 255, images[take], atol=0.01))
    assert cropped == [True, True, False]


def test_shards_keep_every_setting_of_the_loader():
    """Every ``ArrayLoader`` argument, including any added later, reaches the shard unchanged
    (a shard that dropped ``finish`` once trained with crops to the end under ``launch``)."""
    import inspect
    images = np.zeros((40, 4, 4), np.uint8)
    given = {}
    for name in inspect.signature(ArrayLoader).parameters:
        if name == "images":
            given[name] = images
        elif name == "labels":
            given[name] = np.arange(40) % 10
        elif name == "batch_size":
            given[name] = 4
        elif name == "early":
            given[name] = (np.zeros((40, 2, 2), np.uint8), 1)
        else:
            given[name] = object() if name not in ("shuffle", "drop_last", "seed") else 7
    whole = ArrayLoader(**given)
    shard = distributed.ShardedLoader(whole, 1, 2)
    for name in given:
        if name == "labels":
            np.testing.assert_array_equal(shard.labels, whole.labels)
        elif name == "drop_last":
            assert shard.drop_last is True                    # every worker takes whole batches
        else:
            assert getattr(shard, name) is getattr(whole, name), name
    assert (shard.rank, shard.num_workers, len(shard)) == (1, 2, 5)


def test_shard_is_identity_for_one_worker_and_refuses_empty_shards():
    loader = ArrayLoader(np.zeros((10, 2, 2), np.uint8), np.zeros(10), batch_size=4)
    assert distributed.shard(loader, distributed.Cluster("device", 0, 1)) is loader
    with pytest.raises(UserError, match="10 training images do not fill one step of 2 workers x "
                                        "--batch-size 8"):
        distributed.ShardedLoader(ArrayLoader(loader.images, loader.labels, 8), 0, 2)


def test_connect_checks_the_name_and_the_launcher_environment():
    assert distributed.connect("local") == ("local", 0, 1)
    with pytest.raises(UserError, match="unknown --kvstore 'nccl'"):
        distributed.connect("nccl")
    with pytest.raises(UserError, match="gluon_resnet.launch --workers N"):
        distributed.connect("dist_sync", environ={})


def test_dist_kvstore_without_the_launcher_is_a_one_line_error(capsys):
    from gluon_resnet import train

    with pytest.raises(SystemExit) as stop:
        train.main(["--kvstore", "dist_sync", "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: --kvstore dist_sync needs the scheduler and servers")


def test_tag_only_when_there_are_several_workers():
    lines = []
    distributed.Cluster("device", 0, 1).tag(lines.append)("a")
    distributed.Cluster("x", 1, 4).tag(lines.append)("b")
    assert lines == ["a", "[worker 1/4] b"]


def tiny_net():
    from mxnet.gluon import nn

    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), nn.BatchNorm(), nn.Activation("relu"), nn.Dense(10))
    net.initialize()
    return net


def test_trainer_averages_over_the_global_batch():
    from mxnet import autograd, np as mnp

    net = tiny_net()
    with autograd.record():
        loss = net(mnp.ones((2, 1, 8, 8))).sum()
    loss.backward()
    trainer = distributed.make_trainer(net.collect_params(), "sgd", {"learning_rate": 0.1},
                                       distributed.Cluster("device", 0, 4))
    assert trainer.optimizer.rescale_grad == pytest.approx(0.25)  # server sums 4 workers' gradients
    trainer.step(32)                                             # -> 1 / (4 * 32): the global mean
    assert trainer.optimizer.rescale_grad == pytest.approx(1 / 128)


def test_param_digest_tracks_the_trained_weights_only():
    from mxnet import np as mnp

    net = tiny_net()
    net(mnp.zeros((1, 1, 8, 8)))
    before = distributed.param_digest(net)
    assert re.fullmatch(r"[0-9a-f]{16}", before)
    stats = [p for p in net.collect_params().values() if p.grad_req == "null"]
    stats[0].set_data(stats[0].data() + 1)                     # BatchNorm running mean: per worker
    assert distributed.param_digest(net) == before
    weight = next(p for p in net.collect_params().values() if p.grad_req != "null")
    weight.set_data(weight.data() * 2)
    assert distributed.param_digest(net) != before


def test_plan_gives_every_process_its_dmlc_role_on_loopback():
    tasks = launch.plan(2, 1, ["127.0.0.1"], 9091, ["--epochs", "1"], threads=None)
    assert [t.name for t in tasks] == ["scheduler", "server 0", "worker 0", "worker 1"]
    for t in tasks:
        assert t.env["DMLC_ROLE"] == t.role and t.env["DMLC_PS_ROOT_PORT"] == "9091"
        assert t.env["DMLC_PS_ROOT_URI"] == t.env["DMLC_NODE_HOST"] == "127.0.0.1"
        assert (t.env["DMLC_NUM_WORKER"], t.env["DMLC_NUM_SERVER"]) == ("2", "1")
    assert tasks[2].argv[1:] == ["-m", "gluon_resnet.train", "--epochs", "1", "--kvstore", "dist_sync"]
    assert tasks[1].env["OMP_NUM_THREADS"] == "1"
    with pytest.raises(UserError, match="not device"):
        launch.with_dist_kvstore(["--kvstore", "device"])
    assert launch.with_dist_kvstore(["--kvstore=dist_device_sync"]) == ["--kvstore=dist_device_sync"]


def test_hosts_file_prints_one_command_per_process(tmp_path, capsys):
    hosts = tmp_path / "hosts"
    hosts.write_text("# the cluster\nnode-a\nnode-b  # second machine\n\n")
    assert launch.main(["--workers", "3", "--servers", "2", "--hosts", str(hosts), "--port", "9000",
                        "--", "--epochs", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("# run each line on its host (scheduler on node-a:9000)")
    assert [line.split()[1] for line in lines[1:]] == ["node-a", "node-a", "node-b",
                                                        "node-a", "node-b", "node-a"]
    assert "DMLC_ROLE=worker" in lines[-1] and "DMLC_NODE_HOST=node-a" in lines[-1]
    assert "--epochs 2 --kvstore dist_sync" in lines[-1]


def test_launcher_user_errors_are_one_line(tmp_path, capsys):
    for argv, says in ((["--ssh"], "--ssh needs --hosts"),
                       (["--hosts", str(tmp_path / "none")], "cannot read --hosts"),
                       (["--", "--kvstore", "local"], "need --kvstore dist_sync")):
        with pytest.raises(SystemExit) as stop:
            launch.main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and says in err[0]


# ---------------------------------------------------------------------------- real clusters on 127.0.0.1

def cli(module, *args, timeout=120, threads=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **({"OMP_NUM_THREADS": threads} if threads else {}))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


TRAIN = ["--model", SMALL_MODEL, "--subset", "3000", "--epochs", "3", "--lr", "0.1", "--seed", "1",
         "--schedule", "onecycle"]  # the schedule runs in the optimizer, on the servers of a dist kvstore


def by_worker(stdout, pattern):
    """{rank: [match groups per line]} from the workers' tagged lines."""
    found = {}
    for rank, rest in re.findall(r"^\[worker (\d)/2\] (.*)$", stdout, re.M):
        match = re.fullmatch(pattern, rest)
        if match:
            found.setdefault(int(rank), []).append(match.groups())
    return found


def test_two_workers_stay_identical_and_learn_like_one():
    two = cli("gluon_resnet.launch", "--workers", 2, "--servers", 1, "--", *TRAIN, "--batch-size", 16)
    assert two.returncode == 0, two.stdout + two.stderr
    digests = by_worker(two.stdout, r"epoch (\d): parameters ([0-9a-f]{16})")
    assert digests[0] == digests[1] and len(digests[0]) == 3      # identical after every epoch
    assert len({d for _, d in digests[0]}) == 3                     # and they did train
    # the same global batch, on one thread like each worker (the launcher shares the cores out)
    one = cli("gluon_resnet.train", *TRAIN, "--batch-size", 32, threads="1")
    assert one.returncode == 0, one.stderr
    single = float(re.search(r"^loss .* test acc ([\d.]+)$", one.stdout, re.M).group(1))
    accs = by_worker(two.stdout, r"loss .* test acc ([\d.]+)")
    for rank in (0, 1):
        acc = float(accs[rank][0][0])
        assert acc > 0.6 and abs(acc - single) < 0.05, (acc, single)  # same batches: close


# One weight, gradient 1 per example, plain SGD: each step moves the weight by exactly the rate applied.
RATES = """
import sys
import mxnet as mx
from mxnet import autograd, np
from gluon_resnet import distributed, loop
cluster, batch, steps = distributed.connect(sys.argv[1]), int(sys.argv[2]), 12
net = mx.gluon.nn.Dense(1, use_bias=False, in_units=1)
net.initialize(mx.init.Zero())
trainer = loop.make_trainer(net, lr=0.4, cluster=cluster, lr_scheduler=loop.make_schedule("onecycle", 0.4, steps))
before = 0.0
for _ in range(steps):
    with autograd.record():
        loss = net(np.ones((batch, 1))).sum()
    loss.backward()
    trainer.step(batch)
    after = float(net.weight.data()[0, 0])
    print(f"rate {before - after:.7f}", flush=True)
    before = after
"""


def rates(stdout):
    return [float(r) for r in re.findall(r"^rate (\S+)$", stdout, re.M)]


def test_two_workers_follow_the_one_cycle_rate_of_one_process_step_by_step():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    one = subprocess.run([sys.executable, "-c", RATES, "device", "8"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert one.returncode == 0, one.stderr
    tasks = launch.plan(2, 1, [launch.LOOPBACK], launch.free_port(), [], threads=1)
    procs = []
    try:
        for task in tasks:
            argv = [sys.executable, "-c", RATES, "dist_sync", "4"] if task.role == "worker" else task.argv
            procs.append(subprocess.Popen(argv, env=dict(env, **task.env), stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
        outputs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    expected = [loop.make_schedule("onecycle", 0.4, 12)(n) for n in range(1, 13)]
    np.testing.assert_allclose(rates(one.stdout), expected, rtol=1e-4, atol=1e-6)
    for task, out in zip(tasks, outputs):
        if task.role == "worker":
            np.testing.assert_allclose(rates(out), rates(one.stdout), rtol=1e-4, atol=1e-6, err_msg=out)


@pytest.fixture
def start_cluster():
    """Start a launcher in the background; returns it once every process has started, with their
    pids. Whatever happens in the test, the launcher is killed at the end (its children follow)."""
    procs = []

    def start(*train_args, sigint_ignored=False):
        # a launcher started with `cmd &` from a script inherits SIGINT ignored: the harder case
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        proc = subprocess.Popen([sys.executable, "-m", "gluon_resnet.launch", "--workers", "2", "--",
                                 *train_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), preexec_fn=ignore)
        procs.append(proc)
        pids, lines = {}, []
        while len(pids) < 4:
            lines.append(proc.stdout.readline())
            assert lines[-1], "".join(lines)
            started = re.match(r"launch: started (.+) on 127.0.0.1 \(pid (\d+)\)", lines[-1])
            if started:
                pids[started.group(1)] = int(started.group(2))
        return proc, pids, lines
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def leftovers(pids):
    """Live processes that were, or were started by, the cluster's processes."""
    alive = []
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if state[0] != "Z" and (pid in pids.values() or int(state[2]) in pids.values()):
            alive.append(pid)
    return alive


def test_killing_a_worker_stops_the_cluster_and_names_it(start_cluster):
    proc, pids, lines = start_cluster("--model", SMALL_MODEL, "--subset", "2000", "--epochs", "50",
                                      "--batch-size", "16")
    while "epoch 1/50" not in lines[-1]:      # both workers are training and in step
        lines.append(proc.stdout.readline())
        assert lines[-1], "".join(lines)
    os.kill(pids["worker 1"], signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert (f"error: worker 1 (pid {pids['worker 1']}) was killed by signal SIGKILL; "
            "stopped the other 3 processes") in rest
    assert leftovers(pids) == []


def test_ctrl_c_stops_every_process(start_cluster):
    proc, pids, lines = start_cluster("--model", SMALL_MODEL, "--subset", "2000", "--epochs", "50",
                                      sigint_ignored=True)
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted: stopped all 4 processes" in rest
    assert leftovers(pids) == []


FAKE_SSH = """#!/bin/sh
# Stands in for ssh in the test: skips the options, accepts only 127.0.0.1, runs the line here.
while [ "${1#-}" != "$1" ]; do [ "$1" = -o ] && shift; shift; done
[ "$1" = 127.0.0.1 ] || { echo "fake ssh: refusing $1" >&2; exit 255; }
exec sh -c "$2"
"""


def test_hosts_commands_run_as_printed_over_ssh(tmp_path):
    """The per-host lines are real shell commands: run through a local stand-in for ssh, they train."""
    (tmp_path / "ssh").write_text(FAKE_SSH)
    (tmp_path / "ssh").chmod(0o755)
    (tmp_path / "hosts").write_text("127.0.0.1\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=f"{tmp_path}:{os.environ['PATH']}")
    out = subprocess.run([sys.executable, "-m", "gluon_resnet.launch", "--workers", "1",
                          "--threads-per-worker", "1", "--hosts", tmp_path / "hosts", "--ssh", "--",
                          "--model", SMALL_MODEL, "--subset", "200", "--epochs", "1", "--batch-size", "20"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^loss .* test acc", out.stdout, re.M)


def test_help_shows_the_launcher_and_kvstore_flags():
    from gluon_resnet import train

    text = launch.build_parser().format_help()
    for flag in ("--workers", "--servers", "--hosts", "--ssh", "--threads-per-worker", "--port"):
        assert flag in text
    assert "per worker" in text
    assert "--kvstore {device,local,dist_sync,dist_device_sync}" in train.build_parser().format_help()
