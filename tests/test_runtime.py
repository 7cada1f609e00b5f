import os
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


def test_cpu_info_names_the_model_the_cores_and_an_instruction_set_the_cpu_has():
    info = runtime.cpu_info()
    model, flags = runtime.read_cpuinfo()
    assert info["model"] == model and info["cores"] == runtime.usable_cpus()
    assert info["isa_source"] in ("onednn", "cpuinfo")
    need = dict(runtime.ISA_FLAGS).get(info["isa"])
    if flags and need:  # oneDNN never picks kernels for instructions the CPU lacks
        assert need <= flags
    assert runtime.cpu_description(info).startswith(f"{info['model']} (") and info["isa"] in runtime.cpu_description(info)
    assert runtime.cpu_info() == info  # measured once per process


def test_the_onednn_log_names_the_kernel_isa_and_cpuinfo_flags_map_to_onednn_names():
    log = ("dnnl_verbose,info,cpu,isa:Intel AVX2\n"
           "dnnl_verbose,exec,cpu,reorder,jit:uni,undef,...\n"
           "dnnl_verbose,exec,cpu,convolution,gemm:jit,forward_training,...\n"
           "dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core,forward_training,...\n")
    assert runtime.isa_from_onednn_log(log) == "avx512_core"
    assert runtime.isa_from_onednn_log("no log at all") is None
    zen4 = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}
    assert runtime.isa_from_flags(zen4) == "avx512_core_bf16"
    assert runtime.isa_from_flags(zen4 - {"avx512_bf16"}) == "avx512_core_vnni"
    assert runtime.isa_from_flags(zen4 - {"avx512_bf16", "avx512_vnni"}) == "avx512_core"
    assert runtime.isa_from_flags(zen4 - {"avx512bw"}) == "avx2"  # avx512f alone is not avx512_core
    assert runtime.isa_from_flags(set()) == "unknown"


def test_read_cpuinfo_takes_the_first_cpus_model_and_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\n"
                    "model name\t: AMD EPYC 9R14 96-Core Processor\nflags\t\t: fpu avx2 fma\n\n"
                    "processor\t: 1\nmodel name\t: something else\nflags\t\t: fpu\n")
    assert runtime.read_cpuinfo(info) == ("AMD EPYC 9R14 96-Core Processor", {"fpu", "avx2", "fma"})
    fields = {}
    runtime.read_cpuinfo(info, fields_out=fields)
    assert (fields["processor"], fields["cpu family"], fields["model"]) == ("0", "25", "17")
    model, flags = runtime.read_cpuinfo(tmp_path / "missing")
    assert model and flags == set()


def test_the_probes_answer_is_handed_down_and_trusted_only_on_the_same_cpu(monkeypatch):
    import subprocess

    probes = []

    def fake_probe(cmd, **kwargs):
        probes.append(kwargs["env"]["DNNL_VERBOSE"])
        return subprocess.CompletedProcess(cmd, 0, stderr="", stdout="dnnl_verbose,exec,cpu,convolution,"
                                           "jit:avx512_core,forward_inference,...\n")
    monkeypatch.setattr(subprocess, "run", fake_probe)
    monkeypatch.delenv(runtime.ISA_ENV, raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(runtime, "_CPU", {})
    assert runtime.cpu_info()["isa"] == "avx512_core" and probes == ["1"]
    assert os.environ[runtime.ISA_ENV].startswith("avx512_core|")     # left for child processes
    monkeypatch.setattr(runtime, "_CPU", {})                           # a child process: no probe
    assert runtime.cpu_info()["isa"] == "avx512_core" and len(probes) == 1
    monkeypatch.setattr(runtime, "_CPU", {})                           # another CPU's answer: probe again
    monkeypatch.setenv(runtime.ISA_ENV, "avx2|another CPU|23|49|")
    assert runtime.cpu_info()["isa"] == "avx512_core" and len(probes) == 2
    monkeypatch.setattr(runtime, "_CPU", {})                           # oneDNN capped: probe again
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    runtime.cpu_info()
    assert len(probes) == 3
