import re

import mxnet as mx
import pytest

from gluon_resnet import runtime
from gluon_resnet.errors import UserError


def test_threads_follow_the_affinity_mask_unless_set():
    env = {}
    assert runtime.configure_threads(env) == runtime.usable_cpus()
    assert env["OMP_NUM_THREADS"] == str(runtime.usable_cpus())
    env = {"OMP_NUM_THREADS": "1"}
    assert runtime.configure_threads(env) == 1 and env["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2.5"])
def test_a_thread_count_that_is_not_a_positive_whole_number_is_refused(value):
    with pytest.raises(UserError, match=f"OMP_NUM_THREADS='{re.escape(value)}' is not a whole number of at least 1"):
        runtime.configure_threads({"OMP_NUM_THREADS": value})


def test_importing_the_package_sets_the_thread_count(run_cli, tmp_path):
    import subprocess
    import sys
    import os
    code = "import os, gluon_resnet; print(os.environ['OMP_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(__import__("helpers").ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == str(runtime.usable_cpus())


def test_auto_uses_every_gpu_when_present(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 2)
    assert runtime.devices("auto") == [mx.gpu(0), mx.gpu(1)]
    assert runtime.devices("gpu") == [mx.gpu(0), mx.gpu(1)]
    assert runtime.devices("cpu") == [mx.cpu()]


def test_no_gpu_means_cpu_for_auto_and_a_clear_error_for_gpu(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    assert runtime.devices("auto") == [mx.cpu()]
    with pytest.raises(UserError, match="mxnet-cu"):
        runtime.devices("gpu")
